"""The paper's scale through the Dagster graph: about 2.8M instructions from replicated
real sources, ``raw_sources`` -> ``basic_instructions`` / ``schema_dictionary`` -> nine
``compound_instructions`` strategies -> ``hum_corpus[full]``, on a persistent Dagster
instance, as ``hum run`` materializes them.

Sources (written first, not measured) are copies of the real files in ../shared/data in
their own formats (CoNLL, FewRel JSON, C3 JSON, IMDB CSV, CaRB TSV, IEPile JSON) with about
half of the words outside entity spans replaced per copy by words of the same file, so
that copies are distinct records (as in a real corpus, not near duplicates), declared
``split: train``. FewRel and C3 are split into several partitions of about 11k and 20k
records; every other source is one partition.

Measured: stage 1 runs each source's jobs (``synthesize_source`` then one
``synthesize_compound`` run per strategy) in ``--workers`` processes (default 2, the
cores of the target machine); stage 2 materializes ``hum_corpus[full]`` in a fresh
process. Printed: wall time, instructions and instructions/s per stage and per asset,
the corpus step's own breakdown (from its ``timings_s`` metadata) and the peak RSS of
every process (``VmHWM``). The LLM runs offline (rule-based preference rows); the
LLM replay path is measured by ``bench/llm_throughput.py``.

    .venv/bin/python bench/corpus_graph.py                 # about 2.8M instructions
    .venv/bin/python bench/corpus_graph.py --scale 0.1     # a tenth, for a quick look
    .venv/bin/python bench/corpus_graph.py --keep DIR      # keep instance and outputs
    .venv/bin/python bench/corpus_graph.py --keep DIR --corpus-only   # stage 2 again
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hum_dagster.paths import ASSETS_DIR, shared_data_dir  # noqa: E402

# (source, copies per partition, partitions) at --scale 1: about 2.8M instructions.
PLAN = {
    "fewrel": (1, 4),
    "crossner_politics": (60, 1),
    "crossner_science": (60, 1),
    "c3": (10, 4),
    "imdb": (25, 1),
}


# --------------------------------------------------------------------------- sources


def _swap(words: list[str], keep: set[int], vocab: list[str], rng) -> list[str]:
    out = list(words)
    for j in np.flatnonzero(rng.random(len(words)) < 0.5):
        if int(j) not in keep:
            out[j] = vocab[rng.integers(len(vocab))]
    return out


def write_conll(src: Path, dest: Path, copies: int, rng) -> int:
    sentences, cur = [], []
    for line in src.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                sentences.append(cur)
            cur = []
        elif not line.startswith("-DOCSTART-"):
            cur.append(line.split())
    if cur:
        sentences.append(cur)
    vocab = sorted({tok for s in sentences for tok, tag in s if tag == "O" and tok.isalpha()})
    with open(dest, "w", encoding="utf-8") as out:
        for _ in range(copies):
            for s in sentences:
                words = [t for t, _ in s]
                keep = {i for i, (_, tag) in enumerate(s) if tag != "O" or not words[i].isalpha()}
                for w, (_, tag) in zip(_swap(words, keep, vocab, rng), s, strict=True):
                    out.write(f"{w}\t{tag}\n")
                out.write("\n")
    return copies * len(sentences)


def write_fewrel(src: Path, dest: Path, copies: int, rng) -> int:
    data = json.loads(src.read_text(encoding="utf-8"))
    vocab = sorted(
        {w for items in data.values() for it in items for w in it["tokens"] if w.isalpha()}
    )
    out: dict[str, list] = {}
    for _ in range(copies):
        for rel, items in data.items():
            for it in items:
                keep = {p for ent in (it["h"], it["t"]) for span in ent[2] for p in span}
                keep |= {i for i, w in enumerate(it["tokens"]) if not w.isalpha()}
                out.setdefault(rel, []).append(
                    dict(it, tokens=_swap(it["tokens"], keep, vocab, rng))
                )
    dest.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return sum(len(v) for v in out.values())


def _swap_chars(text: str, chars: list[str], rng) -> str:
    cs = list(text)
    for j in np.flatnonzero(rng.random(len(cs)) < 0.5):
        if "\u4e00" <= cs[j] <= "\u9fff":
            cs[j] = chars[rng.integers(len(chars))]
    return "".join(cs)


def write_c3(src: Path, dest: Path, copies: int, rng, start: int) -> int:
    data = json.loads(src.read_text(encoding="utf-8"))
    chars = sorted({c for doc in data for p in doc[0] for c in p if "\u4e00" <= c <= "\u9fff"})
    out = []
    for copy in range(start, start + copies):
        for paragraphs, questions, ident in data:
            new = [_swap_chars(p, chars, rng) for p in paragraphs]
            asked = [dict(q, question=_swap_chars(q["question"], chars, rng)) for q in questions]
            out.append([new, asked, f"{ident}-c{copy}"])
    dest.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return sum(len(doc[1]) for doc in out)


def write_imdb(src: Path, dest: Path, copies: int, rng) -> int:
    with open(src, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    vocab = sorted({w for r in rows for w in r["text"].split() if w.isalpha()})
    with open(dest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "text"])
        writer.writeheader()
        for _ in range(copies):
            for r in rows:
                words = r["text"].split()
                writer.writerow(
                    {"label": r["label"], "text": " ".join(_swap(words, set(), vocab, rng))}
                )
    return copies * len(rows)


def generate(out: Path, scale: float) -> list[dict]:
    """Write the scaled sources and ``catalog.yaml``; the catalog entries."""
    shared = shared_data_dir()
    if not (shared / "fewrel" / "val_wiki.json").is_file():
        raise SystemExit(f"the real benchmark files are missing: {shared} (see ../shared/data)")
    rng = np.random.default_rng(0)
    entries: list[dict] = []

    def copies(name: str) -> tuple[int, int]:
        """(copies per partition, partitions) at ``scale``: a one-partition source scales
        its copies, a split one its partitions."""
        per, parts = PLAN[name]
        if parts == 1:
            return max(1, round(per * scale)), 1
        return per, max(1, round(parts * scale))

    for domain in ("politics", "science"):
        per, _ = copies(f"crossner_{domain}")
        dest = out / f"crossner_{domain}.conll"
        n = write_conll(shared / "crossner" / domain / "train.txt", dest, per, rng)
        entries.append(
            {
                "name": f"crossner_{domain}_x{per}",
                "task": "NER",
                "language": "en",
                "format": "conll",
                "split": "train",
                "location": str(dest),
                "options": {"scheme": "BIO"},
                "records": n,
            }
        )
    per, parts = copies("fewrel")
    for p in range(parts):
        dest = out / f"fewrel_{p}.json"
        n = write_fewrel(shared / "fewrel" / "val_wiki.json", dest, per, rng)
        entries.append(
            {
                "name": f"fewrel_part{p}",
                "task": "RE",
                "language": "en",
                "format": "fewrel",
                "split": "train",
                "location": str(dest),
                "options": {"pid2name": str(shared / "fewrel" / "pid2name.json")},
                "records": n,
            }
        )
    per, parts = copies("c3")
    for p in range(parts):
        dest = out / f"c3_{p}.json"
        n = write_c3(shared / "c3" / "c3-m-dev.json", dest, per, rng, p * per)
        entries.append(
            {
                "name": f"c3_part{p}",
                "task": "MRC",
                "language": "zh",
                "format": "c3",
                "split": "train",
                "location": str(dest),
                "records": n,
            }
        )
    per, _ = copies("imdb")
    dest = out / "imdb.csv"
    n = write_imdb(shared / "imdb" / "texts.csv", dest, per, rng)
    entries.append(
        {
            "name": f"imdb_x{per}",
            "task": "TC",
            "language": "en",
            "format": "csv",
            "split": "train",
            "location": str(dest),
            "options": {
                "text_column": "text",
                "label_column": "label",
                "labels": ["negative", "positive"],
            },
            "records": n,
        }
    )
    # Used once, as they are: CaRB, the IEPile samples (SPO, EE, KGE), the IG samples.
    entries.append(
        {
            "name": "carb_dev",
            "task": "OpenIE",
            "language": "en",
            "format": "carb",
            "split": "train",
            "location": str(shared / "carb" / "dev.tsv"),
        }
    )
    for task, folder in (("SPO", "SPO"), ("EE", "EE"), ("KGE", "KG")):
        entries.append(
            {
                "name": f"iepile_{folder.lower()}",
                "task": task,
                "language": "zh",
                "format": "iepile",
                "split": "train",
                "location": str(shared / "iepile" / folder / "sample.json"),
                "options": {"schema": str(shared / "iepile" / folder / "schema.json")},
            }
        )
    import yaml

    samples = yaml.safe_load((ASSETS_DIR / "catalog.yaml").read_text(encoding="utf-8"))["sources"]
    for entry in samples:
        if entry["task"] == "IG":
            entries.append(dict(entry, location=str(ASSETS_DIR / entry["location"])))
    catalog = [{k: v for k, v in e.items() if k != "records"} for e in entries]
    (out / "catalog.yaml").write_text(yaml.safe_dump({"sources": catalog}, allow_unicode=True))
    return entries


# --------------------------------------------------------------------------- Dagster runs


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that across
    exec, so a spawned worker reported at least the RSS its parent had when it started
    it (the line "bench process" below shows that one)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _failure(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            error = data.error
            while error.cause is not None:
                error = error.cause
            return f"{error.cls_name}: {error.message.strip()}"
    return "" if result.success else "run failed"


def _meta(result, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key.to_user_string() == asset:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return {}


def run_source(name: str) -> dict:
    """One source's runs, each job of it in-process (in a worker process)."""
    import dagster as dg

    from hum_dagster.definitions import defs
    from hum_dagster.defs.resources.settings import HumSettings
    from hum_dagster.synthesis.strategies import applicable

    definitions = defs()
    instance = dg.DagsterInstance.get()
    entry = HumSettings(storage_root=os.environ["HUM_STORAGE_ROOT"],
                        catalog=os.environ["HUM_CATALOG"]).entry(name)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    result = definitions.resolve_job_def("synthesize_source").execute_in_process(
        partition_key=name, instance=instance, raise_on_error=False, run_config=QUIET
    )
    seconds["source"] = time.perf_counter() - t
    out = {
        "name": name,
        "ok": result.success,
        "error": _failure(result),
        "records": _meta(result, "raw_sources").get("records", 0),
        "basic": _meta(result, "basic_instructions").get("instructions", 0),
        "compound": 0,
        "compound_s": 0.0,
    }
    if result.success:
        for strategy in applicable(entry.task, entry.split):
            t = time.perf_counter()
            run = definitions.resolve_job_def(f"synthesize_{strategy}").execute_in_process(
                partition_key=name, instance=instance, raise_on_error=False, run_config=QUIET
            )
            out["compound_s"] += time.perf_counter() - t
            if not run.success:
                out["ok"], out["error"] = False, f"{strategy}: {_failure(run)}"
                continue
            meta = _meta(run, f"compound_instructions/{strategy}")
            out["compound"] += int(meta.get("instructions", 0))
    out["source_s"] = seconds["source"]
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def run_corpus(mix_mode: str, mix_total: int) -> dict:
    import dagster as dg

    from hum_dagster.definitions import defs

    settings = {"mix_mode": mix_mode, "mix_total": mix_total}
    config = {**QUIET, "resources": {"settings": {"config": settings}}}
    t = time.perf_counter()
    result = defs().resolve_job_def("build_corpus").execute_in_process(
        partition_key="full",
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
        run_config=config,
    )
    wall = time.perf_counter() - t
    out = {
        "ok": result.success,
        "error": _failure(result),
        "wall_s": wall,
        "peak_rss_mb": _peak_rss_mb(),
    }
    if result.success:
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        for key in ("instructions", "timings_s", "removed_by_reason", "achieved_mix", "limited_by"):
            value = meta[key].value if key in meta else None
            out[key] = value
    return out


def _init(env: dict[str, str]) -> None:
    os.environ.update(env)


def _fresh_process(env: dict[str, str]) -> ProcessPoolExecutor:
    """One spawned process, as Dagster's multiprocess executor gives a step: a forked
    one would start with this process's pages and count them in its peak RSS."""
    return ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=(env,)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--mix-mode",
        default="fill",
        choices=["fill", "strict", "redistribute"],
        help="the corpus mix: with fill a task short of its share (the IEPile and IG samples "
        "are tiny) gives its quota to the others (redistribute: the old name of fill); strict "
        "would cut the corpus to what the scarcest task allows",
    )
    parser.add_argument(
        "--mix-total",
        type=int,
        default=1_000_000,
        help="corpus size asked of the mix at --scale 1 (0: the largest the shares allow)",
    )
    parser.add_argument("--keep", help="a folder to keep the instance and outputs in")
    parser.add_argument(
        "--corpus-only",
        action="store_true",
        help="with --keep of an earlier run: only materialize hum_corpus[full] again",
    )
    args = parser.parse_args()
    if args.corpus_only and not (args.keep and (Path(args.keep) / "sources").is_dir()):
        parser.error("--corpus-only needs --keep DIR of an earlier run")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="hum-graph-bench-"))
    data = tmp / "sources"
    home = tmp / "home" / "dagster_home"
    if not args.corpus_only:
        data.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        entries = generate(data, args.scale)
        print(
            f"wrote {len(entries)} sources ({sum(e.get('records', 0) for e in entries):,} "
            f"records in the replicated ones) in {time.perf_counter() - t:.0f} s (not measured)",
            flush=True,
        )
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(
            (Path(__file__).resolve().parent.parent / "resources" / "dagster.yaml").read_text()
        )
    from hum_dagster.defs.resources.settings import HumSettings, env_defaults
    from hum_dagster.defs.synthesis.partitions import sync_partitions

    env = {
        **env_defaults(),  # what the code location gets from .env
        "DAGSTER_HOME": str(home),
        "HUM_HOME": str(tmp / "home"),
        "HUM_STORAGE_ROOT": str(tmp / "storage"),
        "HUM_CATALOG": str(data / "catalog.yaml"),
        "HUM_LLM_MODE": "offline",
    }
    os.environ.update(env)
    import dagster as dg

    instance = dg.DagsterInstance.get()  # create its storage once, before the workers race
    sync_partitions(instance, HumSettings(storage_root=env["HUM_STORAGE_ROOT"],
                                          catalog=env["HUM_CATALOG"]).entries().values())
    if args.corpus_only:
        with _fresh_process(env) as pool:
            corpus = pool.submit(
                run_corpus, args.mix_mode, round(args.mix_total * args.scale)
            ).result()
        _print_corpus(corpus, None)
        return
    names = [e["name"] for e in entries]
    # Biggest first, so that no big source starts last while the other worker idles.
    order = sorted(
        names, key=lambda n: -next(e.get("records", 0) for e in entries if e["name"] == n)
    )
    started = time.perf_counter()
    # A fresh process per source, as Dagster's multiprocess executor gives every step.
    with ProcessPoolExecutor(
        args.workers, initializer=_init, initargs=(env,), max_tasks_per_child=1
    ) as pool:
        results = list(pool.map(run_source, order))
    stage1 = time.perf_counter() - started
    with _fresh_process(env) as pool:
        corpus = pool.submit(run_corpus, args.mix_mode, round(args.mix_total * args.scale)).result()
    total = time.perf_counter() - started

    basic = sum(r["basic"] for r in results)
    compound = sum(r["compound"] for r in results)
    failed = [r for r in results if not r["ok"]]
    print(f"\n{'source':<26} {'records':>8} {'basic':>9} {'compound':>9} {'src s':>7} {'cmp s':>7}")
    for r in sorted(results, key=lambda r: r["name"]):
        print(
            f"{r['name']:<26} {r['records']:>8,} {r['basic']:>9,} {r['compound']:>9,} "
            f"{r['source_s']:>7.1f} {r['compound_s']:>7.1f}"
            + ("" if r["ok"] else f"  FAILED {r['error']}")
        )
    inst = basic + compound
    src_s = sum(r["source_s"] for r in results)
    cmp_s = sum(r["compound_s"] for r in results)
    print(
        f"\ninstructions synthesized: {inst:,} ({basic:,} basic, {compound:,} compound); "
        f"{len(failed)} sources failed"
    )
    print(f"{'stage':<52} {'seconds':>8} {'instr/s':>10}")
    print(
        f"{'1. sources, ' + str(args.workers) + ' workers (wall)':<52} {stage1:>8.1f} {inst / stage1:>10,.0f}"
    )
    print(
        f"{'   raw + basic + dictionary (process time, summed)':<52} {src_s:>8.1f} {basic / src_s if src_s else 0:>10,.0f}"
    )
    print(
        f"{'   compound, 9 strategies (process time, summed)':<52} {cmp_s:>8.1f} {compound / cmp_s if cmp_s else 0:>10,.0f}"
    )
    _print_corpus(corpus, inst)
    print(f"{'total':<52} {total:>8.1f} {inst / total:>10,.0f}")
    print(
        f"peak RSS: source workers {max(r['peak_rss_mb'] for r in results):,.0f} MB "
        f"(largest of {args.workers}); bench process {_peak_rss_mb():,.0f} MB (not measured: "
        f"it writes the sources); cores {os.cpu_count()}; outputs in {tmp}"
    )


def _print_corpus(corpus: dict, inst: int | None) -> None:
    rate = f"{inst / corpus['wall_s']:>10,.0f}" if inst else ""
    print(f"{'2. hum_corpus[full] (wall)':<52} {corpus['wall_s']:>8.1f} {rate}")
    for key, value in sorted((corpus.get("timings_s") or {}).items()):
        print(f"{'   ' + key:<52} {value:>8.1f}")
    if corpus["ok"]:
        print(
            f"corpus: {corpus['instructions']:,} instructions; removed {corpus['removed_by_reason']}"
        )
        print(f"limited by: {corpus['limited_by']}")
    else:
        print(f"corpus FAILED: {corpus['error']}")
    print(f"peak RSS: corpus process {corpus['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
