"""Peak memory of the corpus stage at several sizes, on instruction tables the graph made.

Reads the stored tables of a kept ``bench/corpus_graph.py`` run (``--storage``: its
``storage`` folder: ``basic_instructions/*.parquet`` and
``compound_instructions/<strategy>/*.parquet``), takes the first ``fraction`` of the rows of
every table (the replicated sources are copies one after another, so half of every table
is the same sources at half the size), and runs in a fresh process what ``hum_corpus[full]``
runs: clean (exact and near de-dup, token limits, decontamination) -> mix -> split ->
export (alpaca + OpenAI JSONL + the sorted corpus table) -> statistics. Printed per
fraction: input rows, corpus rows, wall time, the process's peak RSS (``VmHWM``) and a
digest of the rows out (instruction id and split, in corpus order), so that two code
versions can be compared on the same input (``--save`` the figures, ``--compare`` with
them later).

    .venv/bin/python bench/corpus_memory.py --storage /tmp/g/storage --fraction 0.25 0.5 1
    .venv/bin/python bench/corpus_memory.py --storage DIR --fraction 1 --save before.json
    .venv/bin/python bench/corpus_memory.py --storage DIR --fraction 1 --compare before.json
    .venv/bin/python bench/corpus_memory.py --storage DIR --fraction 1 --phases
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def tables_of(storage: Path) -> list[Path]:
    """The corpus inputs in the asset's order: basic, then each compound strategy
    (registry order), partitions sorted by name."""
    from hum_dagster.synthesis.strategies import STRATEGIES

    found = sorted((storage / "basic_instructions").glob("*.parquet"))
    for name in STRATEGIES:
        found += sorted((storage / "compound_instructions" / name).glob("*.parquet"))
    return found


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (``VmHWM:``, ``VmRSS:``) in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next((int(line.split()[1]) / 1024 for line in f if line.startswith(field)), 0.0)


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM:")


def _own_phase_peaks(phases: dict) -> None:
    """Make the build record each phase's own peak (and the RSS it ends with) in
    ``phases``: the high-water mark is reset after each (Linux ``clear_refs``)."""
    from hum_dagster.corpus import build

    def peak(report: dict, phase: str) -> None:
        build.release_freed()
        phases[phase] = {"peak": round(_peak_rss_mb()), "end": round(_status_mb("VmRSS:"))}
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")

    build._peak = peak


def measure(
    storage: str, fraction: float, mix_total: int, batch_rows: int = 0, phases: bool = False
) -> dict:
    import polars as pl

    from hum_dagster.corpus.build import HumCorpusConfig, build_hum_corpus
    from hum_dagster.corpus.charts import corpus_stats, sample_token_lengths
    from hum_dagster.corpus.export import export_corpus
    from hum_dagster.corpus.strategy_mix import strategy_mix
    from hum_dagster.corpus.tokens import load_tokenizer
    from hum_dagster.defs.corpus.assets import benchmark_index
    from hum_dagster.defs.resources.settings import HumSettings

    own: dict = {}
    if phases:
        _own_phase_peaks(own)
    started = time.perf_counter()
    tables = []
    for path in tables_of(Path(storage)):
        n = pl.scan_parquet(path).select(pl.len()).collect().item()
        tables.append(pl.scan_parquet(path).head(round(n * fraction)))
    settings = HumSettings(storage_root=storage, mix_total=round(mix_total * fraction))
    tokenizer = load_tokenizer(settings.tokenizer)
    index, _ = benchmark_index()
    config = HumCorpusConfig(seed=settings.seed, mix=settings.mix_config(),
                             memory_mb=settings.corpus_memory_mb)
    if batch_rows:
        config = replace(config, batch_rows=batch_rows)
    corpus = build_hum_corpus(tables, config, tokenizer=tokenizer, benchmark_index=index)
    built = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="hum-corpus-mem-") as tmp:
        exported = export_corpus(tables, corpus.rows, f"{tmp}/export", table_dir=f"{tmp}/parts")
        corpus_stats(corpus.rows, sample_token_lengths(tables, corpus.rows, tokenizer))
        strategy_mix(corpus.rows)
        digest = hashlib.sha256()
        rows = 0
        for part in exported.table_parts:
            frame = pl.read_parquet(part, columns=["instruction_id", "split"])
            rows += frame.height
            for iid, split in frame.iter_rows():
                digest.update(f"{iid}\t{split}\n".encode())
    report = corpus.report
    if phases:
        own["export+stats"] = {"peak": round(_peak_rss_mb()), "end": round(_status_mb("VmRSS:"))}
    return {
        "fraction": fraction,
        "input_rows": report["train_mode_rows"],
        "corpus_rows": rows,
        "removed": report["removed_by_reason"],
        "wall_s": round(time.perf_counter() - started, 1),
        "build_s": round(built, 1),
        # with phases, the high-water mark was reset after each phase: the peak is theirs
        "peak_rss_mb": max(p["peak"] for p in own.values()) if phases else round(_peak_rss_mb()),
        "digest": digest.hexdigest(),
        "timings_s": report.get("timings_s", {}),
        "keys_mb": round(report.get("keys_bytes", 0) / 2**20),
        "memory_mb": own if phases else {
            **report.get("memory_mb", {}), "after_export": round(_peak_rss_mb())
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--storage", required=True, help="the storage folder of a kept run")
    parser.add_argument("--fraction", type=float, nargs="+", default=[1.0])
    parser.add_argument(
        "--mix-total", type=int, default=2_000_000,
        help="corpus size asked of the mix at fraction 1, scaled with the fraction "
        "(default 2,000,000: a --scale 2 run's tables give 0.5x, 1x and 2x the paper's "
        "1M-row corpus at 0.25, 0.5 and 1; 0: every usable row)",
    )
    parser.add_argument("--batch-rows", type=int, default=0,
                        help="rows per scan batch (default: HumCorpusConfig's)")
    parser.add_argument(
        "--phases", action="store_true",
        help="print each phase's own peak RSS and the RSS it ends with (the high-water mark "
        "is reset between phases) instead of the peak so far after each",
    )
    parser.add_argument("--save", help="write the figures to this JSON file")
    parser.add_argument("--compare", help="compare the digests with those of this JSON file")
    args = parser.parse_args()
    if not tables_of(Path(args.storage)):
        parser.error(f"no instruction tables under {args.storage}")
    before = {}
    if args.compare:
        before = {r["fraction"]: r for r in json.loads(Path(args.compare).read_text())}
    results = []
    print(f"{'fraction':>8} {'input rows':>11} {'corpus rows':>12} {'wall s':>7} "
          f"{'peak RSS MB':>12}  rows out")
    for fraction in args.fraction:
        # a fresh process per size: peak RSS is a process's high-water mark
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            r = pool.submit(
                measure, args.storage, fraction, args.mix_total, args.batch_rows, args.phases
            ).result()
        results.append(r)
        same = ""
        if fraction in before:
            same = ("same as " if before[fraction]["digest"] == r["digest"] else "DIFFER from ")
            same += args.compare
        print(f"{fraction:>8} {r['input_rows']:>11,} {r['corpus_rows']:>12,} {r['wall_s']:>7.1f} "
              f"{r['peak_rss_mb']:>12,}  {r['digest'][:12]} {same}", flush=True)
        print(f"{'':>8} removed {r['removed']}; timings {r['timings_s']}; keys on disk "
              f"{r.get('keys_mb', 0):,} MB; peak RSS by phase "
              f"{'(own peak, end)' if args.phases else '(so far)'} {r.get('memory_mb')}",
              flush=True)
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1))
    return 1 if any(
        f in before and before[f]["digest"] != r["digest"] for f, r in
        ((r["fraction"], r) for r in results)
    ) else 0


if __name__ == "__main__":
    sys.exit(main())
