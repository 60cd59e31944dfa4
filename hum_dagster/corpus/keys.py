"""A table's corpus keys, made once beside the table instead of inside the corpus run.

The corpus scan (``build.TableScan``) computes, per train-mode row and without keeping
any text, the exact-duplicate keys, the MinHash band keys, the token counts, the split
and rank keys and the contamination flag. None of these depends on the other tables:
only ``_row``, the row's position among the train-mode rows of all tables, does, and
that is the table's first position plus the row's position in the table. So a table's
keys can be made as soon as the table is written (``table_keys``, numbered from 0),
stored, and read back by every corpus partition (``build.scan_rows(..., stored=...)``,
which adds the table's first position). At the paper's scale that moves the scan's
token counting, MinHash and decontamination (about 480 of the corpus run's 850 s in
stop 23) out of the single corpus run into the runs that write the tables, two of which
run side by side, and the four corpus partitions stop repeating it.

Stored keys are used only when they were made from the same bytes of the table
(``file_digest``) and under the same settings (``keys_fingerprint``: the seeds, the
near-duplicate and token-limit settings, the tokenizer, the benchmark index and the
version of this code). Anything else is scanned again by the corpus, so a stale or
missing keys table costs time, never a wrong row. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

# Bumped whenever the scan's key computation changes what it writes.
KEYS_VERSION = "1"
# The input's hash and byte length, as decontam.MatchCache keys a text: the corpus counts
# its distinct inputs over all tables from them (``decontam_distinct_inputs``).
INPUT_HASH_COLUMNS = ("_in_h", "_in_n")
# Footer entries of a stored keys table.
META_FINGERPRINT = "hum.keys_fingerprint"
META_TABLE_DIGEST = "hum.keys_table_digest"


def file_digest(path: str, chunk: int = 8 * 2**20) -> str:
    """blake2b (16 bytes) of a local file's bytes: which exact table the keys are of."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def tokenizer_identity(tokenizer: Any) -> str | None:
    """A digest of the tokenizer's definition, or None without one."""
    if tokenizer is None:
        return None
    if getattr(tokenizer, "identity", ""):
        return tokenizer.identity
    text = tokenizer.backend.to_str()
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def keys_fingerprint(config: Any, tokenizer: Any = None, benchmark_index: Any = None) -> str:
    """The settings a table's keys depend on, as one string (``config``: a
    ``build.HumCorpusConfig``; the variant, mix quotas, memory and threads do not count)."""
    from hum_dagster.corpus.dedup import NearDupConfig

    near = config.near_dup if config.near_dup is not None else NearDupConfig()
    spec = {
        "version": KEYS_VERSION,
        "seed": config.seed,
        "mix_seed": config.mix.seed if config.mix is not None else config.seed,
        "near_dup": asdict(near) if near else False,
        "max_input_tokens": config.max_input_tokens if tokenizer is not None else None,
        "max_output_tokens": config.max_output_tokens if tokenizer is not None else None,
        "tokenizer": tokenizer_identity(tokenizer),
        "benchmarks": benchmark_index.fingerprint() if benchmark_index is not None else None,
    }
    return json.dumps(spec, sort_keys=True)


def table_keys(
    table: pl.LazyFrame, config: Any, tokenizer: Any = None, benchmark_index: Any = None,
    threads: int | None = None, report: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """The keys of one instruction table's train-mode rows, ``_row`` from 0, with the
    input hash columns; what ``build.TableScan`` writes for it in a corpus run.
    ``report``, when given, receives the scan's timings and count of texts encoded."""
    import time

    from hum_dagster.corpus.build import TableScan, source_parts

    started = time.perf_counter()
    scan = TableScan(
        config, tokenizer, benchmark_index, threads or config.threads, input_hashes=True
    )
    batches: list[pl.DataFrame] = []
    scan.table(source_parts(table)[0], 0, batches.append)
    if report is not None:
        report.update(scan.info(time.perf_counter() - started))
    if not batches:
        return pl.DataFrame()
    return pl.concat(batches, how="vertical", rechunk=True)


@dataclass(frozen=True)
class StoredKeys:
    """A stored keys table as the corpus reads it."""

    frame: pl.LazyFrame
    fingerprint: str
    table_digest: str


def usable(stored: StoredKeys | None, fingerprint: str, table_path: str) -> tuple[bool, str]:
    """(use it, why not): stored keys serve a table when they are of its bytes and were
    made under ``fingerprint``."""
    if stored is None:
        return False, "no stored keys"
    if stored.fingerprint != fingerprint:
        return False, "stored keys were made under other settings"
    if stored.table_digest != file_digest(table_path):
        return False, "stored keys are of another version of the table"
    return True, ""
