"""The corpus library path at the paper's scale: 2.8M instructions, 2 cores.

Generates (in a separate process, not measured) instruction rows at the paper's mix
(55% basic / 45% compound; NER 23, RE 29, SPO 11, EE 5, EET 3, EEA 2, OpenIE 4, KGE 12,
MRC 2, TC 1, IG 8 percent) into Parquet parts. Texts are real sentences (CrossNER train
from ../shared/data, else the shipped samples) with about half of their words replaced
per copy by words of the same vocabulary, so that copies are distinct and not near
duplicates of each other, as in a real corpus. Planted on purpose: 0.3% near duplicates
(one character changed), 0.1% inputs that contain a benchmark sentence (CrossNER
politics test), 0.1% inputs far over the token limit.

Then, in a fresh process, runs the library path (not the Dagster graph):
scan (exact keys, MinHash, token counts with the SmolLM2 tokenizer, decontamination
against ``load_benchmarks()``) -> exact/near de-dup -> limits -> mix -> split ->
export (alpaca + OpenAI chat JSONL) -> stats + chart, printing wall time, rows/s per
stage and peak RSS.

    .venv/bin/python bench/corpus_scale.py                  # 2.8M rows
    .venv/bin/python bench/corpus_scale.py --rows 300000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hum_dagster.corpus.mix import GUIDELINE_STRATEGIES, PAPER_KIND_SHARES, PAPER_TASK_SHARES  # noqa: E402
from hum_dagster.paths import ASSETS_DIR, shared_data_dir  # noqa: E402
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, instruction_schema  # noqa: E402

STRATEGIES = (*GUIDELINE_STRATEGIES, "preference_rules", "format_variants")
FORMATS = ("json", "text", "markdown", "code", "yaml")
PART = 200_000


def sentences() -> tuple[list[str], list[str]]:
    shared = shared_data_dir()
    train = shared / "crossner" / "politics" / "train.txt"
    test = shared / "crossner" / "politics" / "test.txt"
    if not train.is_file():
        train = test = ASSETS_DIR / "samples" / "ner_en.conll"

    def read(path: Path) -> list[str]:
        out, cur = [], []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                if cur:
                    out.append(" ".join(cur))
                cur = []
            elif not line.startswith("-DOCSTART-"):
                cur.append(line.split()[0])
        if cur:
            out.append(" ".join(cur))
        return [s for s in out if len(s.split()) >= 5]

    return read(train), read(test)


def generate(total: int, out_dir: str) -> None:
    train, test = sentences()
    vocab = sorted({w for s in train for w in s.split()})
    base_words = [s.split() for s in train]
    rng = np.random.default_rng(0)
    cells = [
        (k, t)
        for k in PAPER_KIND_SHARES
        for t in PAPER_TASK_SHARES
        if not (k == "compound" and t == "IG")
    ]
    shares = {}
    compound_tasks = {t: v for t, v in PAPER_TASK_SHARES.items() if t != "IG"}
    for k, t in cells:
        if k == "basic":
            # IG is all basic: basic keeps the 55% while IG's 8% sits inside it
            rest = PAPER_KIND_SHARES["basic"] - PAPER_TASK_SHARES["IG"]
            shares[(k, t)] = (
                PAPER_TASK_SHARES["IG"]
                if t == "IG"
                else rest * compound_tasks[t] / sum(compound_tasks.values())
            )
        else:
            shares[(k, t)] = (
                PAPER_KIND_SHARES["compound"] * compound_tasks[t] / sum(compound_tasks.values())
            )
    part = 0
    buf: list[dict] = []
    n_row = 0
    for (kind, task), share in shares.items():
        for i in range(int(round(total * share))):
            words = list(base_words[i % len(base_words)])
            mask = rng.random(len(words)) < 0.5
            for j in np.flatnonzero(mask):
                words[j] = vocab[rng.integers(len(vocab))]
            text = " ".join(words) + f" ({i})"
            r = rng.random()
            if r < 0.001:
                text = "As reported : " + test[i % len(test)]
            elif r < 0.002:
                text = " ".join([text] * 80)
            strategy = "basic" if kind == "basic" else STRATEGIES[i % len(STRATEGIES)]
            rid = f"{task}-{i}"
            iid = f"{kind[0]}-{task}-{i}"
            row = {
                "instruction_id": iid,
                "source": f"bench_{task.lower()}",
                "record_id": rid,
                "text_id": rid,
                "task": task,
                "language": "en",
                "mode": "train",
                "strategy": strategy,
                "template": f"{task}en@bench",
                "chunk_index": 0,
                "n_chunks": 1,
                "schema": '["person", "location"]',
                "instruction": json.dumps(
                    {
                        "instruction": f"Extract {task} items following the schema.",
                        "schema": ["person", "location"],
                        "input": text,
                    }
                ),
                "output": json.dumps({"person": words[:2], "location": []}),
                "history": None,
                "system": None,
                "base_instruction_id": f"b-{task}-{i}" if kind == "compound" else None,
                "variant": FORMATS[i % len(FORMATS)] if strategy == "format_variants" else None,
                "provenance": None,
            }
            if task == "IG":
                row["instruction"] = text
                row["output"] = "Sure. " + " ".join(words[::-1])
            buf.append(row)
            if rng.random() < 0.003:  # a near duplicate from another record
                near = dict(row, instruction_id=iid + "-near", record_id=rid + "-near")
                near["instruction"] = row["instruction"].replace("e", "o", 1)
                buf.append(near)
            n_row += 1
            if len(buf) >= PART:
                _flush(buf, out_dir, part)
                part += 1
                buf = []
    if buf:
        _flush(buf, out_dir, part)


def _flush(rows: list[dict], out_dir: str, part: int) -> None:
    pl.from_dicts(rows, schema=instruction_schema(COMPOUND_COLUMNS)).write_parquet(
        os.path.join(out_dir, f"{part:05d}.parquet"), compression_level=1
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(data_dir: str, out_dir: str) -> None:
    from hum_dagster.corpus.build import HumCorpusConfig, build_hum_corpus
    from hum_dagster.corpus.charts import corpus_stats, sample_token_lengths, write_chart
    from hum_dagster.corpus.decontam import BenchmarkIndex, DecontamConfig, benchmark_texts
    from hum_dagster.corpus.export import export_corpus
    from hum_dagster.corpus.tokens import load_tokenizer

    t0 = time.perf_counter()
    source = pl.scan_parquet(os.path.join(data_dir, "*.parquet"))
    tok = load_tokenizer("smollm2-135m-instruct")
    t_tok = time.perf_counter() - t0
    t = time.perf_counter()
    index = BenchmarkIndex.build(benchmark_texts(), DecontamConfig())
    t_bench = time.perf_counter() - t
    t = time.perf_counter()
    corpus = build_hum_corpus(source, HumCorpusConfig(), tokenizer=tok, benchmark_index=index)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    exported = export_corpus(source, corpus.rows, out_dir)
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    sample = sample_token_lengths(source, corpus.rows, tok, 20_000)
    stats = corpus_stats(corpus.rows, sample)
    write_chart(os.path.join(out_dir, "corpus.png"), stats)
    t_stats = time.perf_counter() - t
    total = time.perf_counter() - t0
    r = corpus.report
    n_in = r["train_mode_rows"]
    print(
        f"input rows {n_in:,}; corpus {corpus.rows.height:,} (train {exported.rows['train']:,}, "
        f"validation {exported.rows['validation']:,})"
    )
    print(
        f"removed: {r['removed_by_reason']}; near-dup candidates {r.get('near_duplicate_candidates', 0):,}; "
        f"texts tokenized {r['texts_tokenized']:,}"
    )
    print(f"mix limited: {r['mix']['limited']}")
    print(f"achieved kind {r['mix']['achieved_kind']}")
    print(f"achieved task {r['mix']['achieved_task']}")
    stages = [
        ("load tokenizer", t_tok, 0),
        (f"benchmark index ({index.texts:,} texts)", t_bench, 0),
        ("scan: parquet read + exact keys", r["timings_s"]["scan_s"], n_in),
        ("scan: minhash", r["timings_s"]["minhash_s"], n_in),
        ("scan: token counts", r["timings_s"]["tokens_s"], n_in),
        ("scan: decontamination", r["timings_s"]["decontam_s"], n_in),
        ("exact + near dedup", r["dedup_s"], n_in),
        ("mix", r["mix_s"], r["pool_rows"]),
        ("split", r["split_s"], corpus.rows.height),
        ("export alpaca + openai", t_export, corpus.rows.height),
        ("stats + chart (20k-row token sample)", t_stats, corpus.rows.height),
        ("(build_hum_corpus total)", t_build, n_in),
    ]
    print(f"{'stage':<40} {'seconds':>8} {'rows/s':>10}")
    for name, sec, n in stages:
        rate = f"{n / sec:,.0f}" if n and sec > 0 else "-"
        print(f"{name:<40} {sec:>8.1f} {rate:>10}")
    sizes = {k: os.path.getsize(v) for k, v in exported.files.items()}
    print(f"{'total':<40} {total:>8.1f} {n_in / total:>10,.0f}")
    print(
        f"peak RSS {peak_rss_mb():,.0f} MB; export bytes {sum(sizes.values()) / 1e9:.2f} GB; cores {os.cpu_count()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_800_000)
    parser.add_argument("--generate", nargs=2, metavar=("ROWS", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(int(args.generate[0]), args.generate[1])
        return
    if args.measure:
        measure(*args.measure)
        return
    with tempfile.TemporaryDirectory(prefix="hum-corpus-bench-") as tmp:
        data, out = os.path.join(tmp, "data"), os.path.join(tmp, "out")
        os.makedirs(data)
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate", str(args.rows), data], check=True)
        print(
            f"generated {args.rows:,} rows in {time.perf_counter() - t:.0f} s (not measured)",
            flush=True,
        )
        subprocess.run([sys.executable, __file__, "--measure", data, out], check=True)


if __name__ == "__main__":
    main()
