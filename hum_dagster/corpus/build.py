"""Building the training corpus from instruction tables: one cleaning pass (exact,
normalised and near duplicates, token limits, decontamination; its streaming scan in
several processes when ``scan_workers`` says so), mixing to target
proportions (``mix.py``), a seeded train/validation split by text (every instruction of
one text, its basic and compound rows and every chunk, lands in the same split; for
MRC all questions on one passage). Export is in ``export.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from hum_dagster.records import Problem
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, INT_COLUMNS, instruction_frame

# --------------------------------------------------------------------------- the Hum corpus
#
# ``build_hum_corpus`` is the full path: one streaming pass over the instruction rows
# computes, per row and without keeping any text, the exact-duplicate keys, the MinHash
# band keys, the token counts and the contamination flag; everything after that (exact
# and near de-duplication, limits, mixing, ablation variants, split) works on that lean
# frame, and ``hum_dagster.corpus.export.export_corpus`` streams the texts out again. Peak
# memory is the lean frame (about 200 bytes a row) plus one batch of text. With
# ``HumCorpusConfig.scan_workers`` above one the pass runs in that many spawned processes,
# whole tables each, largest first (``_scan_in_workers``): each table's first ``_row``
# comes from a count of the train-mode rows of the tables before it, so the keys are
# those of one process, and each worker adds one batch of text and its own tokenizer and
# decontamination caches to the memory.

LEAN_COLUMNS = (
    "instruction_id",
    "base_instruction_id",
    "source",
    "task",
    "language",
    "strategy",
    "strategies",
    "variant",
)


# Lean columns with a handful of values, held as categoricals: a string column costs 16
# bytes a row (a view) plus its text, a categorical 4 (2.8M rows: about 250 MB saved on
# each copy of the lean frame). The corpus rows ``build_hum_corpus`` returns keep them
# (a cast to strings cost a copy of seven columns: 220 MB at 2M rows).
CATEGORY_COLUMNS = ("source", "task", "language", "strategy", "strategies", "variant")

# What the scan reads: the lean columns and the texts the keys and counts come from.
SCAN_COLUMNS = (
    *LEAN_COLUMNS, "record_id", "text_id", "schema", "instruction", "output", "history", "system"
)


@dataclass(frozen=True)
class HumCorpusConfig:
    seed: int = 42
    validation_fraction: float = 0.02
    min_validation: int = 1
    variant: str = "full"  # full | no_guidelines | no_preference_rules | no_format_variants
    mix: Any = None  # mix.MixConfig (default: the paper's shares, fill: every usable row)
    near_dup: Any = None  # dedup.NearDupConfig; None: default; False: exact duplicates only
    max_input_tokens: int = 1500
    max_output_tokens: int = 500
    batch_rows: int = 10_000  # compound prompts run to several kB: about 50 MB of text
    examples: int = 5
    # the out-of-core steps (keystore.KeyStore): DuckDB's memory limit and threads (also
    # the scan's threads for MinHash and token counts), and where the per-row keys are
    # written (None: the system's temp folder)
    memory_mb: int = 256
    threads: int = 2
    workdir: str | None = None
    # processes the scan runs over the tables in (``scan_rows``; 1: this process)
    scan_workers: int = 1


@dataclass
class HumCorpus:
    # lean: LEAN_COLUMNS but base_instruction_id, + _row, rank, kind, split, split_key,
    # input_tokens, output_tokens
    rows: pl.DataFrame
    report: dict[str, Any]
    removed: pl.DataFrame  # _row, instruction_id, task, source, reason, detail


Source = pl.LazyFrame | pl.DataFrame | Sequence[pl.LazyFrame | pl.DataFrame]


def source_parts(source: Source) -> list[pl.LazyFrame]:
    """The instruction tables of ``source`` (one table, or a list: frames or Parquet
    scans, in order), each with exactly the compound columns and types."""
    items = list(source) if isinstance(source, list | tuple) else [source]
    return [_conform(item.lazy()) for item in items]


def _conform(table: pl.LazyFrame) -> pl.LazyFrame:
    """``table`` with exactly the compound columns (basic tables lack the extra ones)."""
    names = set(table.collect_schema().names())
    return table.select(
        [
            (pl.col(c) if c in names else pl.lit(None)).cast(_dtype(c)).alias(c)
            for c in COMPOUND_COLUMNS
        ]
    )


def _dtype(column: str) -> pl.DataType:
    return pl.Int64() if column in INT_COLUMNS else pl.String()


def train_rows(source: Source) -> pl.LazyFrame:
    """The train-mode rows with ``_row``, their position: the key every later pass uses.
    For joins and small sources; big passes read ``train_batches``."""
    parts = source_parts(source)
    lf = pl.concat(parts, how="vertical") if parts else _conform(pl.LazyFrame())
    return lf.filter(pl.col("mode") == "train").with_row_index("_row")


# A batch's read columns, as polars estimates them: rows run from a few hundred bytes
# (basic NER) to 17 kB (examples rows with their schema), so a count of rows alone lets a
# batch, and the keys and texts made from it, grow tenfold with the table read.
BATCH_BYTES = 32 * 2**20
FIRST_ROWS = 500  # each table's first slice, which measures its bytes per row


def train_batches(
    source: Source,
    columns: Sequence[str] | None = None,
    batch_rows: int = 50_000,
    batch_bytes: int = BATCH_BYTES,
) -> Iterator[pl.DataFrame]:
    """``train_rows(source)`` in batches of at most ``batch_rows`` input rows and, after
    each table's first slice, about ``batch_bytes`` of the read columns, reading only
    ``columns`` (and ``_row``). Each table is read slice by slice, so memory holds one
    batch whatever the source size (polars' ``collect_batches`` runs ahead of its
    consumer and buffers the whole result)."""
    start = 0
    for part in source_parts(source):
        for batch in table_batches(part, columns, batch_rows, batch_bytes, start):
            start += batch.height
            yield batch


def table_batches(
    part: pl.LazyFrame,
    columns: Sequence[str] | None = None,
    batch_rows: int = 50_000,
    batch_bytes: int = BATCH_BYTES,
    start: int = 0,
) -> Iterator[pl.DataFrame]:
    """One table's part of ``train_batches`` (``part``: one of ``source_parts``), its
    train-mode rows numbered from ``start`` on (the train-mode rows of the tables before)."""
    wanted = list(columns) if columns is not None else list(COMPOUND_COLUMNS)
    read = wanted if "mode" in wanted else [*wanted, "mode"]
    total = part.select(pl.len()).collect().item()
    offset, size = 0, min(batch_rows, FIRST_ROWS)
    while offset < total:
        raw = part.slice(offset, size).select(read).collect()
        offset += size
        if raw.height and batch_bytes:
            per_row = max(1, raw.estimated_size() // raw.height)
            size = min(batch_rows, max(FIRST_ROWS, batch_bytes // per_row))
        else:
            size = batch_rows
        batch = (
            raw.filter(pl.col("mode") == "train")
            .with_row_index("_row", offset=start)
            .select("_row", *wanted)
        )
        del raw
        start += batch.height
        if batch.height:
            yield batch


def rows_by_position(
    source: Source,
    rows: Sequence[int] | pl.Series,
    columns: Sequence[str],
    batch_rows: int = 50_000,
) -> pl.DataFrame:
    """The train-mode rows whose ``_row`` is in ``rows``, with ``columns``, in ``_row`` order."""
    found = [_owned(batch) for batch in _batches_with_rows(source, rows, columns, batch_rows)]
    schema = {"_row": pl.UInt32(), **{c: _dtype(c) for c in columns}}
    return pl.concat(found) if found else pl.DataFrame(schema=schema)


def _batches_with_rows(
    source: Source, rows: Sequence[int] | pl.Series, columns: Sequence[str], batch_rows: int
) -> Iterator[pl.DataFrame]:
    """The non-empty parts of ``train_batches`` holding the rows at positions ``rows``."""
    want = pl.Series("_row", rows, dtype=pl.UInt32).unique().sort()
    if not len(want):
        return
    for batch in train_batches(source, columns, batch_rows):
        found = batch.filter(pl.col("_row").is_in(want.implode()))
        if found.height:
            yield found


def _owned(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy of ``frame`` holding only its own text. A filtered string column is views
    into the buffers of the whole batch it came from: keeping 1% of 2.8M long prompts
    that way held 3.7 GB (measured), a compact copy holds 1%."""
    return pl.from_arrow(frame.to_arrow())  # type: ignore[return-value]


def _prompt_expr() -> pl.Expr:
    return pl.when(pl.col("history").is_null() & pl.col("system").is_null()).then(
        pl.col("instruction")
    )


def scan_rows(
    source: Source,
    config: HumCorpusConfig,
    store: Any,
    tokenizer: Any = None,
    benchmark_index: Any = None,
) -> dict[str, Any]:
    """The streaming pass: every per-row key and measurement of the train-mode rows,
    batch by batch into ``store`` (a ``keystore.KeyStore``); the pass's report. With
    ``config.scan_workers`` above one and more than one table, the tables are scanned in
    that many processes (``_scan_in_workers``), with the same keys."""
    parts = source_parts(source)
    if config.scan_workers > 1 and len(parts) > 1:
        return _scan_in_workers(parts, config, store, tokenizer, benchmark_index)
    t0 = time.perf_counter()
    scan = TableScan(config, tokenizer, benchmark_index, config.threads)
    start = 0
    for part in parts:
        start += scan.table(part, start, store.append)
    wall = time.perf_counter() - t0
    return {**scan.info(wall), "scan_workers": 1, "scan_wall_s": round(wall, 2)}


class TableScan:
    """The scan's work on one table after another (``table``): the keys of each batch,
    with the timings, the count of texts encoded and the decontamination cache kept
    across the tables of one process."""

    def __init__(
        self, config: HumCorpusConfig, tokenizer: Any, benchmark_index: Any, threads: int
    ) -> None:
        from hum_dagster.corpus.decontam import MatchCache
        from hum_dagster.corpus.dedup import NearDupConfig

        self.config = config
        self.threads = threads
        self.near = config.near_dup if config.near_dup is not None else NearDupConfig()
        self.mix_seed = config.mix.seed if config.mix is not None else config.seed
        if tokenizer is not None and hasattr(tokenizer, "threads"):
            tokenizer = replace(tokenizer, threads=threads)  # the same caches
        self.tokenizer = tokenizer
        self.matcher = MatchCache(benchmark_index) if benchmark_index is not None else None
        self.timings = {"minhash_s": 0.0, "tokens_s": 0.0, "decontam_s": 0.0}
        self.encoded = 0

    def table(self, part: pl.LazyFrame, start: int, write: Any) -> int:
        """Scan ``part`` (one of ``source_parts``), its train-mode rows numbered from
        ``start``, each batch's keys to ``write``; the number of train-mode rows."""
        from hum_dagster.corpus.dedup import (
            band_keys,
            dedup_text_expr,
            exact_key_exprs,
            frame_key_expr,
            input_text_expr,
        )
        from hum_dagster.corpus.mix import rank_keys
        from hum_dagster.corpus.tokens import prompt_text

        config, near, timings = self.config, self.near, self.timings
        rows = 0
        for batch in table_batches(part, SCAN_COLUMNS, config.batch_rows, BATCH_BYTES, start):
            rows += batch.height
            keys = [
                *exact_key_exprs(),
                frame_key_expr(),
                input_text_expr().alias("_input"),
                _prompt_expr().alias("_prompt"),
            ]
            batch = batch.with_columns(keys).with_columns(dedup_text_expr(pl.col("_input")))
            lean = batch.select(
                "_row",
                *LEAN_COLUMNS,
                "_exact",
                "_norm",
                "_frame",
                pl.col("record_id").hash(seed=14).alias("_rec"),
            ).with_columns(
                split_keys(batch, config.seed), rank_keys(batch["instruction_id"], self.mix_seed)
            )
            t = time.perf_counter()
            if near:
                bands = band_keys(batch["_dedup_text"].to_list(), near, threads=self.threads)
                lean = lean.with_columns(
                    [pl.Series(f"_band{b}", bands[:, b], dtype=pl.UInt64) for b in range(near.bands)]
                )
            timings["minhash_s"] += time.perf_counter() - t
            t = time.perf_counter()
            if self.tokenizer is not None:
                prompts = [
                    p if p is not None else prompt_text(i, s, h)
                    for p, i, s, h in zip(
                        batch["_prompt"],
                        batch["instruction"],
                        batch["system"],
                        batch["history"],
                        strict=True,
                    )
                ]
                outputs = batch["output"].fill_null("").to_list()
                n_in, e1 = self.tokenizer.count_over_limit(prompts, config.max_input_tokens)
                n_out, e2 = self.tokenizer.count_over_limit(outputs, config.max_output_tokens)
                self.encoded += e1 + e2
                lean = lean.with_columns(
                    pl.Series("input_tokens", n_in, dtype=pl.Int32),
                    pl.Series("output_tokens", n_out, dtype=pl.Int32),
                )
            timings["tokens_s"] += time.perf_counter() - t
            t = time.perf_counter()
            if self.matcher is not None:
                lean = lean.with_columns(self.matcher.match(batch["_input"]))
            timings["decontam_s"] += time.perf_counter() - t
            del batch
            write(lean)
        return rows

    def info(self, wall: float) -> dict[str, Any]:
        """The report of the scan so far, ``wall`` its seconds (``scan_s``: those not
        spent in MinHash, token counts and decontamination)."""
        timings = {"scan_s": wall - sum(self.timings.values()), **self.timings}
        info = {
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "texts_tokenized": self.encoded,
        }
        if self.matcher is not None:
            info["decontam_distinct_inputs"] = self.matcher.matched
        return info


# --------------------------------------------------------------------------- scan workers
#
# Much of the scan is Python holding the GIL (the prompts, the tokenizer's piece cache,
# the decontamination cache), so ``scan_workers`` processes scan whole tables side by
# side. ``_row`` numbers the train-mode rows across the tables in order: the parent
# counts each table's train-mode rows first (one column read) and gives every table its
# first ``_row``. The workers are spawned (the parent runs polars' and the tokenizers'
# thread pools, which a fork would copy mid-flight); the tokenizer and the benchmark
# index reach each once (``_worker_start``), the tables one at a time, largest first.
# A worker writes its batches itself into the store's folder as
# ``keys-<table>-<batch>.parquet`` (renamed into place once written, so a batch file is
# always whole); every later step reads ``keys-*.parquet`` in ``_row`` order, so which
# worker wrote what does not matter. A failing table fails the scan with one error
# naming it, and the workers' files are removed.


class ScanError(RuntimeError):
    """A table of the corpus scan failed (one line: the table and the reason)."""


def _scan_in_workers(
    parts: list[pl.LazyFrame],
    config: HumCorpusConfig,
    store: Any,
    tokenizer: Any,
    benchmark_index: Any,
) -> dict[str, Any]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    t0 = time.perf_counter()
    counts = []
    for i, part in enumerate(parts):
        try:
            counts.append(
                part.filter(pl.col("mode") == "train").select(pl.len()).collect().item()
            )
        except Exception as exc:
            raise ScanError(_table_failed(i, parts, exc)) from None
    starts = np.cumsum([0, *counts[:-1]]).tolist()
    order = sorted((i for i, n in enumerate(counts) if n), key=lambda i: (-counts[i], i))
    workers = max(1, min(config.scan_workers, len(order)))
    threads = max(1, config.threads // config.scan_workers)
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_start,
        initargs=(config, tokenizer, benchmark_index, threads, store.path),
    )
    results: dict[int, dict[str, Any]] = {}
    try:
        futures = {executor.submit(_worker_table, i, parts[i], starts[i]): i for i in order}
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except BrokenProcessPool:
                raise ScanError(
                    f"the corpus scan failed on table {i} of {len(parts)}{_table_name(parts[i])}"
                    ": a scan worker process ended without a result (killed, perhaps for "
                    "memory; HUM_CORPUS_SCAN_WORKERS sets how many run)"
                ) from None
            except Exception as exc:  # the worker's ScanError, or one of unpickling
                raise ScanError(_table_failed(i, parts, exc)) from None
    except BaseException:
        _stop(executor)
        _remove_worker_batches(store.path)
        raise
    executor.shutdown(wait=True)
    wall = time.perf_counter() - t0
    timings = {"scan_s": 0.0, "minhash_s": 0.0, "tokens_s": 0.0, "decontam_s": 0.0}
    peaks: dict[int, int] = {}
    for result in results.values():
        for k, v in result["timings_s"].items():
            timings[k] += v
        pid = result["pid"]
        peaks[pid] = max(peaks.get(pid, 0), result["peak_mb"])
    store.batches += sum(r["files"] for r in results.values())
    info: dict[str, Any] = {
        # seconds summed over the workers; scan_wall_s is the pass's own
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "texts_tokenized": sum(r["encoded"] for r in results.values()),
    }
    if benchmark_index is not None:
        # distinct inputs over all tables, as one process counts them (each worker's
        # cache sees only its own tables; their sum depends on who scanned what)
        seen = [r["new_inputs"] for r in results.values()]
        info["decontam_distinct_inputs"] = (
            pl.concat(seen).unique().height if seen else 0
        )
    info["scan_workers"] = workers
    info["scan_wall_s"] = round(wall, 2)
    info["memory_mb"] = {"scan_workers": [peaks[p] for p in sorted(peaks)]}
    return info


_WORKER: dict[str, Any] = {}


def _worker_start(
    config: HumCorpusConfig, tokenizer: Any, benchmark_index: Any, threads: int, folder: str
) -> None:
    """A scan worker's set-up, once: its ``TableScan`` (tokenizer, benchmark index); and
    SIGTERM's default action, which a failed scan's ``_stop`` relies on (a worker inherits
    an ignored SIGTERM from a parent that ignores it, as a pytest-xdist worker does)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER.update(scan=TableScan(config, tokenizer, benchmark_index, threads), folder=folder)


def _worker_table(index: int, part: pl.LazyFrame, start: int) -> dict[str, Any]:
    """Scan table ``index`` in a worker; its batch files, timings, counts and peak RSS."""
    import os

    scan: TableScan = _WORKER["scan"]
    folder: str = _WORKER["folder"]
    before = dict(scan.timings)
    encoded = scan.encoded
    known = scan.matcher.known.height if scan.matcher is not None else 0
    files = 0

    def write(lean: pl.DataFrame) -> None:
        nonlocal files
        path = os.path.join(folder, f"keys-{index:05d}-{files:06d}.parquet")
        lean.write_parquet(path + ".part", compression="lz4")
        os.replace(path + ".part", path)  # never a half-written keys-*.parquet
        files += 1

    t0 = time.perf_counter()
    try:
        scan.table(part, start, write)
    except Exception as exc:
        raise ScanError(f"{exc.__class__.__name__}: {_first_line(exc)}") from None
    wall = time.perf_counter() - t0
    spent = {k: v - before[k] for k, v in scan.timings.items()}
    result: dict[str, Any] = {
        "files": files,
        "timings_s": {"scan_s": wall - sum(spent.values()), **spent},
        "encoded": scan.encoded - encoded,
        "pid": os.getpid(),
        "peak_mb": _vm_hwm_mb(),
    }
    if scan.matcher is not None:
        result["new_inputs"] = scan.matcher.known.slice(known).select("_h", "_n")
    return result


def _table_failed(index: int, parts: list[pl.LazyFrame], exc: BaseException) -> str:
    reason = str(exc) if isinstance(exc, ScanError) else (
        f"{exc.__class__.__name__}: {_first_line(exc)}"
    )
    return (
        f"the corpus scan failed on table {index} of {len(parts)}{_table_name(parts[index])}: "
        f"{reason}"
    )


def _table_name(part: pl.LazyFrame) -> str:
    """`` (Parquet SCAN [path])`` for a file scan, else nothing."""
    import re

    try:
        found = re.search(r"(\w+ SCAN \[[^\]]*\])", part.explain(optimized=False))
    except Exception:
        return ""
    return f" ({found.group(1)})" if found else ""


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else repr(exc)


def _stop(executor: Any) -> None:
    """End a failed scan's workers now: the tables still running are of no use (the
    executor has no public way to end them before Python 3.14)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=30)


def _remove_worker_batches(folder: str) -> None:
    """Remove the batch files of the workers (whole or not) from ``folder``."""
    import glob
    import os

    for path in glob.glob(os.path.join(folder, "keys-*-*.parquet*")):
        os.remove(path)


def _vm_hwm_mb() -> int:
    """This process's peak RSS (MB, Linux ``VmHWM``; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def split_keys(batch: pl.DataFrame, seed: int) -> pl.Series:
    """``split_key`` per row: a seeded blake2b of the row's text (``text_id``; the record
    id where a row has none), so every instruction made from one text gets the same key
    and the same split."""
    from hum_dagster.corpus.mix import rank_keys

    texts = batch.select(
        pl.coalesce(pl.col("text_id").cast(pl.String), pl.col("record_id").cast(pl.String))
        .fill_null("")
        .alias("_text")
    )["_text"]
    distinct = texts.unique(maintain_order=True)
    keys = rank_keys(distinct.to_list(), seed, "split")
    lookup = pl.DataFrame({"_text": distinct, "split_key": keys})
    return texts.to_frame().join(lookup, on="_text", how="left", maintain_order="left")[
        "split_key"
    ]


# What the pool (the rows left after cleaning) carries into the mix.
POOL_COLUMNS = ("_row", *LEAN_COLUMNS, "split_key", "rank")


def clean_rows(
    source: Source,
    config: HumCorpusConfig,
    store: Any,
    tokenizer: Any = None,
    benchmark_index: Any = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """(removed, report): scan ``source`` into ``store`` and mark, out of core, the
    train-mode rows that exact and near de-duplication, the token limits (when a
    tokenizer is given) and decontamination (when a ``decontam.BenchmarkIndex`` is given)
    remove; ``removed`` names each dropped row's reason. Afterwards the store's ``pool``
    view holds the rows left (``POOL_COLUMNS`` and the token counts)."""
    from hum_dagster.corpus.dedup import NearDupConfig, dedup_text_expr, verify_pairs

    started = time.perf_counter()
    info = scan_rows(source, config, store, tokenizer, benchmark_index)
    _peak(info, "after_scan")
    report: dict[str, Any] = {"train_mode_rows": store.rows(), **info,
                              "keys_bytes": store.size_bytes()}
    t = time.perf_counter()
    # Within each group the row with the smallest instruction id stays.
    report["exact_duplicates"] = store.drop_repeats("_exact", "exact_duplicate")
    report["normalised_duplicates"] = store.drop_repeats("_norm", "normalised_duplicate")
    report["near_duplicates"] = 0
    near = config.near_dup if config.near_dup is not None else NearDupConfig()
    if near:
        pairs = store.candidate_pairs(near.bands)
        report["near_duplicate_candidates"] = pairs.height
        if pairs.height:
            need = pl.concat([pairs["keep_row"], pairs["drop_row"]])
            texts: dict[int, str] = {}
            for batch in _batches_with_rows(
                source, need, ["instruction", "output"], config.batch_rows
            ):
                found = batch.select("_row", dedup_text_expr())
                texts.update(
                    zip(found["_row"].to_list(), found["_dedup_text"].to_list(), strict=True)
                )
            report["near_duplicate_texts"] = len(texts)
            confirmed = (
                verify_pairs(pairs, texts, near).unique("drop_row", keep="first").sort("drop_row")
            )
            store.mark(
                confirmed.select(
                    pl.col("drop_row").alias("_row"),
                    pl.format("of row {} (jaccard {})", "keep_row", pl.col("similarity").round(3))
                    .alias("detail"),
                ),
                "near_duplicate",
            )
            report["near_duplicates"] = confirmed.height
            report["near_duplicate_examples"] = [
                {"kept": texts[k][:300], "removed": texts[d][:300], "jaccard": round(s, 3)}
                for k, d, s in confirmed.head(config.examples).iter_rows()
            ]
            del texts
    report["dedup_s"] = round(time.perf_counter() - t, 2)
    _peak(report, "after_dedup")
    columns = list(POOL_COLUMNS)
    if tokenizer is not None:
        report["too_long"] = store.drop_where(
            f"input_tokens > {int(config.max_input_tokens)} "
            f"OR output_tokens > {int(config.max_output_tokens)}",
            "too_long",
            "format('input {} / output {} tokens', input_tokens, output_tokens)",
        )
        report["tokenizer"] = tokenizer.name
        report["token_limits"] = {
            "input": config.max_input_tokens,
            "output": config.max_output_tokens,
        }
        columns += ["input_tokens", "output_tokens"]
    if benchmark_index is not None:
        n = store.drop_where("contaminated_by IS NOT NULL", "contaminated", "contaminated_by")
    removed = store.removed()
    if benchmark_index is not None:
        dirty = removed.filter(pl.col("reason") == "contaminated")
        report["decontamination"] = {
            "removed": n,
            "by_benchmark": dict(
                dirty.group_by("detail").len().sort("detail").iter_rows()
            ),
            "benchmarks": benchmark_index.names,
            "benchmark_texts": benchmark_index.texts,
        }
    if store.batches:
        store.pool_view(columns)
    report["pool_rows"] = report["train_mode_rows"] - removed.height
    report["clean_s"] = round(time.perf_counter() - started, 2)
    report["removed_by_reason"] = dict(removed.group_by("reason").len().sort("reason").iter_rows())
    return removed, report


def _peak(report: dict[str, Any], phase: str) -> None:
    """The process's peak RSS so far (MB, Linux ``VmHWM``) under ``memory_mb``: where in
    the build the memory went. Then what the phase freed goes back to the system
    (``release_freed``), so that the next phase starts from what is still held."""
    release_freed()
    hwm = _vm_hwm_mb()
    if hwm:  # 0: not Linux
        report.setdefault("memory_mb", {})[phase] = hwm


def release_freed() -> None:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``; elsewhere
    nothing). The scan's Python strings (prompts, outputs: tens of MB a batch) are freed
    into glibc's arenas, which keep them: measured on three large tables, 100 MB of a
    464 MB process was such free memory."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def split_expr(seed: int, fraction: float) -> pl.Expr:
    """train | validation from a stable per-row key (see ``mixing.rank_keys``)."""
    threshold = int(fraction * (2**63 - 1))
    return (
        pl.when(pl.col("_split_key") < threshold)
        .then(pl.lit("validation"))
        .otherwise(pl.lit("train"))
    )


def assign_split(
    rows: pl.DataFrame, seed: int, fraction: float, min_validation: int = 1
) -> pl.DataFrame:
    """train | validation by text: rows with the same ``split_key`` (made by the scan
    from the row's text, see ``split_keys``) share a split, so no text is in both. At
    least ``min_validation`` rows go to validation, whole texts at a time, while the
    corpus has more than one text. Rows without ``split_key`` are keyed by their
    instruction id."""
    from hum_dagster.corpus.mix import rank_keys

    if "split_key" in rows.columns:
        keyed = rows.with_columns(pl.col("split_key").alias("_split_key"))
    else:
        keyed = rows.with_columns(
            rank_keys(rows["instruction_id"], seed, "split").alias("_split_key")
        )
    keyed = keyed.with_columns(split_expr(seed, fraction).alias("split"))
    n_texts = keyed["_split_key"].n_unique()
    if n_texts > 1 and (keyed["split"] == "validation").sum() < min_validation:
        sizes = keyed.group_by("_split_key").len().sort("_split_key")
        need = np.searchsorted(np.cumsum(sizes["len"].to_numpy()), min_validation) + 1
        chosen = sizes["_split_key"][: min(int(need), n_texts - 1)]
        keyed = keyed.with_columns(
            pl.when(pl.col("_split_key").is_in(chosen.implode()))
            .then(pl.lit("validation"))
            .otherwise(pl.col("split"))
            .alias("split")
        )
    return keyed.drop("_split_key")


SPLIT_CHECK = "no_text_in_both_splits"


def split_problems(rows: pl.DataFrame) -> list[Problem]:
    """The ``no_text_in_both_splits`` check on a split corpus (``split`` and
    ``split_key``): one ``Problem`` per text whose rows are in both train and
    validation."""
    if rows.height == 0 or "split_key" not in rows.columns:
        return []
    both = (
        rows.group_by("split_key")
        .agg(pl.col("split").n_unique().alias("splits"), pl.col("instruction_id").first())
        .filter(pl.col("splits") > 1)
        .sort("split_key")
    )
    return [
        Problem(SPLIT_CHECK, str(iid), "a text has instructions in both train and validation")
        for iid in both["instruction_id"].to_list()
    ]



def build_hum_corpus(
    source: Source,
    config: HumCorpusConfig | None = None,
    *,
    tokenizer: Any = None,
    benchmark_index: Any = None,
) -> HumCorpus:
    """Clean, mix (``config.variant``), split. Export with ``export.export_corpus``.

    The per-row keys live in a ``keystore.KeyStore`` (Parquet batches in a work folder,
    DuckDB under ``config.memory_mb``): the full corpus is chosen there, out of core; an
    ablation variant's replacements need the pool in memory (``mix.build_variant``)."""
    from hum_dagster.corpus.keystore import KeyStore
    from hum_dagster.corpus.mix import (
        COMBINED_ONLY,
        MixConfig,
        as_full_variant,
        build_variant,
        mix_chosen,
    )

    config = config or HumCorpusConfig()
    mix_config = config.mix or MixConfig(seed=config.seed)
    config = replace(config, mix=mix_config)
    with KeyStore(config.memory_mb, config.threads, config.workdir) as store:
        removed, report = clean_rows(source, config, store, tokenizer, benchmark_index)
        t = time.perf_counter()
        if not store.batches:
            mixed = build_variant(_empty_pool(tokenizer is not None), config.variant, mix_config)
        elif config.variant == "full":
            if mix_config.compound != "all":  # as mix.eligible
                names = ", ".join(f"'{n}'" for n in COMBINED_ONLY)
                store.pool_view(["*"], f"strategy IN ({names})", source="pool")
            mixed = as_full_variant(mix_chosen(
                store.supply(),
                # the base instruction ids serve the ablations' replacements only
                lambda quotas: store.chosen(quotas, CATEGORY_COLUMNS, ("base_instruction_id",)),
                mix_config,
            ))
        else:
            mixed = build_variant(store.pool_frame(CATEGORY_COLUMNS), config.variant, mix_config)
    if store.retries:
        report["duckdb_memory_retries"] = store.retries
    report["mix"] = mixed.report
    report["mix_s"] = round(time.perf_counter() - t, 2)
    _peak(report, "after_mix")
    t = time.perf_counter()
    rows = assign_split(
        mixed.rows.drop("base_instruction_id", strict=False),
        config.seed, config.validation_fraction, config.min_validation,
    )
    report["split"] = dict(rows.group_by("split").len().sort("split").iter_rows())
    report["split_by"] = "text"
    report["split_texts"] = (
        dict(rows.group_by("split").agg(pl.col("split_key").n_unique()).sort("split").iter_rows())
        if rows.height
        else {}
    )
    report["texts_in_both_splits"] = len(split_problems(rows))
    report["split_s"] = round(time.perf_counter() - t, 2)
    _peak(report, "after_split")
    return HumCorpus(rows, report, removed)


def _empty_pool(tokens: bool) -> pl.DataFrame:
    """A pool of no rows, with the pool's columns and types."""
    frame = instruction_frame([], LEAN_COLUMNS).with_columns(
        pl.lit(0, pl.UInt32).alias("_row"),
        pl.lit(0, pl.Int64).alias("split_key"),
        pl.lit(0, pl.Int64).alias("rank"),
        *([pl.lit(0, pl.Int32).alias(c) for c in ("input_tokens", "output_tokens")] if tokens else []),
    )
    return frame.head(0)


def corpus_frame(source: Source, corpus: HumCorpus) -> pl.DataFrame:
    """The corpus rows with every column (text included), in rank order, in memory:
    for small corpora and tests; ``export.sorted_corpus_parts`` streams large ones."""
    keep = corpus.rows.select("_row", "rank", "split")
    full = rows_by_position(source, keep["_row"], COMPOUND_COLUMNS).join(keep, on="_row")
    return full.sort("rank", "instruction_id").drop("_row")
