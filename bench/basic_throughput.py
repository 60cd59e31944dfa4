"""Basic-instruction synthesis at scale: instructions per second and peak RSS.

Builds a large NER + RE corpus by replicating real records (CrossNER politics and
science for NER, FewRel for RE, from ../shared/data; the shipped samples when that
folder is absent), then streams it through ``synthesize_basic`` into Parquet parts,
once in one process and once with a process per core. Each copy of a record gets a
copy marker appended to its text so records stay distinct, as in a real corpus.

    .venv/bin/python bench/basic_throughput.py                 # 1M records (500k NER + 500k RE)
    .venv/bin/python bench/basic_throughput.py --records 200000 --records 1000000

Reference (from the issue): IEPile's converter turned CoNLL-2003's 14,041 training
sentences x10 (140,410 NER instructions) into instructions in 6.1 s wall with 300 MB
peak RSS on a 2-core machine: 23,018 instructions/s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hum_dagster.paths import ASSETS_DIR, shared_data_dir  # noqa: E402
from hum_dagster.readers import read_source  # noqa: E402
from hum_dagster.readers.catalog import CatalogEntry  # noqa: E402
from hum_dagster.records import LabelSchema, Record  # noqa: E402
from hum_dagster.store.tables import PARQUET_ZSTD_LEVEL  # noqa: E402
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic  # noqa: E402
from hum_dagster.synthesis.columns import instruction_schema  # noqa: E402

IEPILE_REFERENCE = 140_410 / 6.1  # instructions per second, 2 cores
BATCH = 50_000
SCHEMA = instruction_schema()


def base_sources() -> list[tuple[list[Record], LabelSchema]]:
    shared = shared_data_dir()
    if shared.is_dir():
        ner_entries = [
            CatalogEntry(f"crossner_{d}", "NER", "en", "conll", str(shared / "crossner" / d / "train.txt"))
            for d in ("politics", "science")
        ]
        re_entry = CatalogEntry(
            "fewrel", "RE", "en", "fewrel", str(shared / "fewrel" / "val_wiki.json"),
            options={"pid2name": str(shared / "fewrel" / "pid2name.json")},
        )
    else:
        ner_entries = [CatalogEntry("ner_sample", "NER", "en", "conll", str(ASSETS_DIR / "samples" / "ner_en.conll"))]
        re_entry = CatalogEntry("re_sample", "RE", "en", "fewrel", str(ASSETS_DIR / "samples" / "fewrel_en.json"),
                                options={"pid2name": str(ASSETS_DIR / "samples" / "pid2name_en.json")})
    ner_records: list[Record] = []
    ner_types: set[str] = set()
    for entry in ner_entries:
        result = read_source(entry)
        ner_records += result.records
        ner_types |= set(result.schema.types)
    re_result = read_source(re_entry)
    return [
        (ner_records, LabelSchema(types=sorted(ner_types))),
        (re_result.records, re_result.schema),
    ]


def replicated(base: list[Record], start: int, stop: int):
    """Records start..stop of the endless replication of ``base`` (copy marker appended)."""
    for i in range(start, stop):
        record = base[i % len(base)]
        copy = i // len(base)
        if copy == 0:
            yield record
        else:
            text = f"{record.text} [{copy}]"
            yield replace(record, text=text, record_id=f"{record.record_id}-{copy}", text_id="")


def synthesize_range(args: tuple[int, int, int, int, str]) -> int:
    """Worker: synthesize records [start, stop) of both tasks; write Parquet parts."""
    task_index, start, stop, seed, out_dir = args
    records, schema = BASES[task_index]
    config = BasicConfig(seed=seed)
    rows: list[dict] = []
    written = 0
    part = 0
    for row in synthesize_basic(replicated(records, start, stop), schema, config):
        rows.append(row)
        if len(rows) >= BATCH:
            written += _flush(rows, out_dir, f"{task_index}-{start}-{part}")
            part += 1
            rows = []
    if rows:
        written += _flush(rows, out_dir, f"{task_index}-{start}-{part}")
    return written


def _flush(rows: list[dict], out_dir: str, name: str) -> int:
    frame = pl.from_dicts(rows, schema=SCHEMA)
    frame.write_parquet(os.path.join(out_dir, f"{name}.parquet"), compression_level=PARQUET_ZSTD_LEVEL)
    return frame.height


BASES: list[tuple[list[Record], LabelSchema]] = []


def _init(bases):
    BASES[:] = bases


def run(total: int, workers: int, bases) -> tuple[int, float, float]:
    per_task = total // 2
    ranges = []
    shard = max(1, per_task // (workers * 4)) if workers > 1 else per_task
    for task_index in range(2):
        for start in range(0, per_task, shard):
            ranges.append((task_index, start, min(per_task, start + shard), 42))
    with tempfile.TemporaryDirectory(prefix="hum-bench-") as out_dir:
        jobs = [(*r, out_dir) for r in ranges]
        started = time.perf_counter()
        if workers == 1:
            _init(bases)
            written = sum(synthesize_range(j) for j in jobs)
        else:
            ctx = mp.get_context("fork")
            with ctx.Pool(workers, initializer=_init, initargs=(bases,)) as pool:
                written = sum(pool.imap_unordered(synthesize_range, jobs))
        seconds = time.perf_counter() - started
    return written, seconds, _peak_rss_mb()


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, action="append", help="total NER+RE records (repeatable)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--one", nargs=2, type=int, metavar=("RECORDS", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        # One measurement in a fresh process, so peak RSS belongs to this size alone.
        total, workers = args.one
        bases = base_sources()
        written, seconds, rss = run(total, workers, bases)
        print(f"RESULT {written} {seconds} {rss}")
        return

    sizes = args.records or [1_000_000]
    started = time.perf_counter()
    bases = base_sources()
    print(f"base records: NER {len(bases[0][0])}, RE {len(bases[1][0])} "
          f"(read in {time.perf_counter() - started:.1f} s; cores: {os.cpu_count()})")
    print(f"{'records':>10} {'procs':>5} {'instructions':>13} {'seconds':>8} {'instr/s':>10} "
          f"{'x IEPile':>8} {'peak RSS MB':>11}")
    for total in sizes:
        for workers in sorted({1, args.workers}):
            env = dict(os.environ)
            if workers > 1:  # one process per core: keep polars from adding threads of its own
                env["POLARS_MAX_THREADS"] = "1"
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(total), str(workers)],
                capture_output=True, text=True, check=True, env=env,
            )
            line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
            written, seconds, rss = int(line.split()[1]), float(line.split()[2]), float(line.split()[3])
            rate = written / seconds
            print(f"{total:>10} {workers:>5} {written:>13} {seconds:>8.1f} {rate:>10.0f} "
                  f"{rate / IEPILE_REFERENCE:>8.1f} {rss:>11.0f}", flush=True)
    print("instr/s: synthesis wall time (records generated, instructions built, Parquet parts "
          "written); peak RSS: the largest of the process and its workers (ru_maxrss), each "
          "configuration in a fresh process")


if __name__ == "__main__":
    main()
