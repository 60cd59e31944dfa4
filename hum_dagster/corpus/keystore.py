"""The corpus scan's per-row keys on disk, queried out of core in DuckDB.

The scan (``build.scan_rows``) computes, per train-mode row and batch by batch, the
lean columns, the exact and normalised duplicate hashes, the MinHash band keys, the
token counts, the contamination flag, the split key and the mix rank. Held in memory
they grow with the corpus (about 250 bytes a row, 1.4 GB at 5.6M rows before any copy);
here each batch goes to a Parquet file in a work folder (from this process or from the
scan's worker processes, see ``KeyStore``) and every step that needs all
rows at once (first of each duplicate group, the band buckets, the pool, the mix's
choice per cell) is a DuckDB query with a memory limit, which spills to the same
folder when it needs more. What comes back to Python is what the step decides: the
rows to drop (a few percent), the candidate pairs, and the chosen rows' lean columns.

DuckDB keeps the memory a query freed for its next one until the database closes (no
setting gives it back; measured: 200 MB held after the de-duplication at 0.5x), so the
store's tables and views live in a database file in the work folder and every step
closes its connection when done; a result comes back through a Parquet file, read
after the connection is closed, so DuckDB's buffers and the result are never held at
once.

Why DuckDB: it is already the project's warehouse, its window functions and joins
spill to disk under ``memory_limit`` (polars' engines do not bound a group-by or a
join), and it reads the Parquet batches in place. Sharded Dagster partitions would
need a second fan-in for near duplicates (a pair can share a band with any shard) and a
Spark or Ray cluster is heavier than the problem. No Dagster imports.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl


def _step(method):
    """A store step: its connection is closed when it returns (see the module note). A
    step that runs out of DuckDB's memory limit (an operator that cannot spill) runs once
    more with twice the limit, kept for the later steps and named in ``retries``; a
    second failure is one line naming the setting."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            try:
                return method(self, *args, **kwargs)
            except duckdb.OutOfMemoryException:
                self.release()
                before, self.memory_mb = self.memory_mb, self.memory_mb * 2
                self.retries.append(
                    f"{method.__name__}: out of DuckDB's {before} MB, run again with "
                    f"{self.memory_mb} MB"
                )
            try:
                return method(self, *args, **kwargs)
            except duckdb.OutOfMemoryException as exc:
                raise MemoryError(
                    f"the corpus step {method.__name__} ran out of DuckDB's memory at "
                    f"{self.memory_mb} MB (twice the limit set): raise HUM_CORPUS_MEMORY_MB"
                ) from exc
        finally:
            self.release()

    return run


# Rows are compared in this order everywhere: the smallest instruction id of a group
# stays (``_row``, the scan position, breaks ties between rows with one id).
ORDER = "instruction_id, _row"


@dataclass
class KeyStore:
    """A work folder of ``keys-*.parquet`` batches and a DuckDB connection over them.

    ``append`` writes ``keys-<n>.parquet``, numbered in this process; the scan's worker
    processes (``build.scan_rows`` with ``scan_workers``) write ``keys-<table>-<n>.parquet``
    into ``path`` themselves and the scan adds their number to ``batches`` (which says
    whether there are keys at all). Every query reads the glob and orders by ``ORDER``,
    so neither the files' names nor their boundaries matter."""

    memory_mb: int = 256
    threads: int = 2
    workdir: str | None = None
    path: str = field(init=False)
    batches: int = field(init=False, default=0)
    retries: list[str] = field(init=False, default_factory=list)
    _con: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="hum-corpus-keys-", dir=self.workdir)

    def append(self, batch: pl.DataFrame) -> None:
        """Add a batch of keys (before any query: the ``lean`` view is made on first use)."""
        batch.write_parquet(
            os.path.join(self.path, f"keys-{self.batches:06d}.parquet"), compression="lz4"
        )
        self.batches += 1

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The open connection (opened on first use after ``release``)."""
        if self._con is None:
            database = os.path.join(self.path, "keys.duckdb")
            fresh = not os.path.exists(database)
            con = duckdb.connect(database, config={
                "memory_limit": f"{self.memory_mb}MB",
                "threads": self.threads,
                "temp_directory": os.path.join(self.path, "spill"),
                "preserve_insertion_order": False,
            })
            if fresh:
                con.execute(
                    "CREATE TABLE dropped (_row UINTEGER, reason VARCHAR, detail VARCHAR)"
                ).fetchall()
            if fresh and self.batches:
                con.execute(
                    "CREATE VIEW lean AS SELECT * FROM read_parquet("
                    f"'{self.path}/keys-*.parquet')"
                ).fetchall()
            self._con = con
        return self._con

    def release(self) -> None:
        """Close the connection: DuckDB gives its memory back only then. The tables and
        views stay in the database file for the next step."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the cleaning ------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes in the work folder now (the keys and any DuckDB spill files)."""
        return sum(
            os.path.getsize(os.path.join(folder, name))
            for folder, _, names in os.walk(self.path) for name in names
        )

    @_step
    def rows(self) -> int:
        if not self.batches:
            return 0
        return self.con.execute("SELECT count(*) FROM lean").fetchall()[0][0]

    @_step
    def drop_repeats(self, key: str, reason: str) -> int:
        """Mark every row of a ``key`` group but its first (by ``ORDER``), among the rows
        not yet dropped, as dropped for ``reason``; the number marked."""
        if not self.batches:
            return 0
        before = self._dropped()
        self._run(
            f"""INSERT INTO dropped
            SELECT _row, '{reason}', NULL FROM (
                SELECT _row, row_number() OVER (PARTITION BY {key} ORDER BY {ORDER}) AS n
                FROM lean ANTI JOIN dropped USING (_row))
            WHERE n > 1"""
        )
        return self._dropped() - before

    @_step
    def candidate_pairs(self, bands: int) -> pl.DataFrame:
        """(keep_row, drop_row) as ``dedup.candidate_pairs``: in every band bucket of one
        frame, among the rows not dropped, each member against the bucket's first row
        when their records differ; distinct, sorted by drop_row, keep_row."""
        empty = pl.DataFrame(schema={"keep_row": pl.Int64, "drop_row": pl.Int64})
        if not self.batches or not bands:
            return empty
        # The rows not dropped, once, on disk; then one band at a time. The first row of
        # a bucket is the least (instruction_id, _row, _rec) struct: a plain aggregate
        # (one value a group) where ``first(... ORDER BY ...)`` keeps every row of every
        # group until it sorts them (with all bands in one query, DuckDB ran out of its
        # 256 MB at 2.2M rows).
        cols = ", ".join(f"_band{b}" for b in range(bands))
        self._run(
            "CREATE OR REPLACE TABLE _live AS SELECT _row, _rec, _frame, instruction_id, "
            f"{cols} FROM lean ANTI JOIN dropped USING (_row)"
        )
        found = []
        for b in range(bands):
            band = f"_band{b}"
            found.append(pl.from_arrow(self.con.sql(
                f"""SELECT CAST(f.first.r AS BIGINT) AS keep_row,
                       CAST(s._row AS BIGINT) AS drop_row
                FROM _live s JOIN (
                    SELECT _frame, {band},
                           min({{'i': instruction_id, 'r': _row, 'c': _rec}}) AS first
                    FROM _live GROUP BY _frame, {band} HAVING count(*) > 1
                ) f USING (_frame, {band})
                WHERE s._row <> f.first.r AND s._rec <> f.first.c"""
            ).to_arrow_table()))
        self._run("DROP TABLE _live")
        pairs = pl.concat(found).unique().sort("drop_row", "keep_row")
        return pairs if pairs.height else empty

    @_step
    def mark(self, rows: pl.DataFrame, reason: str) -> None:
        """Mark ``rows`` (``_row``, ``detail``) dropped for ``reason``."""
        if rows.height:
            frame = rows.select(
                pl.col("_row").cast(pl.UInt32), pl.lit(reason).alias("reason"),
                pl.col("detail").cast(pl.String),
            )
            self.con.register("_marked", frame)
            self._run("INSERT INTO dropped SELECT _row, reason, detail FROM _marked")
            self.con.unregister("_marked")

    @_step
    def drop_where(self, condition: str, reason: str, detail: str = "NULL") -> int:
        """Mark the rows not yet dropped where ``condition`` holds; the number marked."""
        if not self.batches:
            return 0
        before = self._dropped()
        self._run(
            f"""INSERT INTO dropped SELECT _row, '{reason}', CAST({detail} AS VARCHAR)
            FROM lean ANTI JOIN dropped USING (_row) WHERE {condition}"""
        )
        return self._dropped() - before

    def _run(self, statement: str) -> None:
        self.con.execute(statement).fetchall()  # finished, so the next statement may run

    def _frame(self, query: str, categories: tuple[str, ...] = ()) -> pl.DataFrame:
        """The query's rows (in its order) as one polars frame, ``categories`` made
        categorical: written to a Parquet file by DuckDB, read back once the connection
        is closed, so that DuckDB's memory and the result are not held at once."""
        path = os.path.join(self.path, "result.parquet")
        self._run(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
        self.release()
        try:
            return _categorical(pl.read_parquet(path), categories)
        finally:
            os.remove(path)

    def _dropped(self) -> int:
        return self.con.execute("SELECT count(*) FROM dropped").fetchall()[0][0]

    @_step
    def removed(self) -> pl.DataFrame:
        """The dropped rows: _row, instruction_id, task, source, reason, detail (by _row)."""
        schema = {"_row": pl.UInt32, "instruction_id": pl.String, "task": pl.String,
                  "source": pl.String, "reason": pl.String, "detail": pl.String}
        if not self.batches:
            return pl.DataFrame(schema=schema)
        frame = self._frame(
            """SELECT d._row, l.instruction_id, l.task, l.source, d.reason, d.detail
            FROM dropped d JOIN lean l USING (_row) ORDER BY d._row"""
        )
        return frame.cast(schema) if frame.height else pl.DataFrame(schema=schema)

    # -- the pool and the mix ----------------------------------------------------------

    @_step
    def pool_view(self, columns: list[str], where: str = "TRUE", source: str = "") -> None:
        """``pool``: the rows not dropped (and ``where``), with ``columns``; with
        ``source="pool"``, the rows of the current pool where ``where`` holds."""
        cols = ", ".join(columns)
        origin = source or "lean ANTI JOIN dropped USING (_row)"
        query = f"SELECT {cols} FROM {origin} WHERE {where}"
        if source:  # a view cannot be defined over itself: materialize the narrower pool
            self._run(f"CREATE OR REPLACE TABLE _pool_narrow AS {query}")
            query = "SELECT * FROM _pool_narrow"
        self._run(f"CREATE OR REPLACE VIEW pool AS {query}")

    @_step
    def pool_frame(self, categories: tuple[str, ...]) -> pl.DataFrame:
        """The pool in memory, ``_row`` order, ``categories`` as polars categoricals."""
        return self._frame("SELECT * FROM pool ORDER BY _row", categories)

    @_step
    def supply(self) -> dict[tuple[str, str], int]:
        """Rows per (kind, task) in the pool."""
        rows = self.con.execute(
            f"SELECT {KIND_SQL} AS kind, task, count(*) FROM pool GROUP BY ALL"
        ).fetchall()
        return {(k, t): n for k, t, n in rows}

    @_step
    def chosen(
        self,
        quotas: dict[tuple[str, str], int],
        categories: tuple[str, ...],
        leave_out: tuple[str, ...] = (),
    ) -> pl.DataFrame:
        """The pool rows within their cell's quota by rank (``mix.mix``'s choice), in rank
        order, ``kind`` added, the pool's columns but ``leave_out``."""
        table = pl.DataFrame(
            {"kind": [c[0] for c in quotas], "task": [c[1] for c in quotas],
             "_quota": [quotas[c] for c in quotas]},
            schema={"kind": pl.String, "task": pl.String, "_quota": pl.Int64},
        )
        self.con.register("_quotas", table)
        frame = self._frame(
            f"""SELECT * EXCLUDE ({', '.join(('_pos', '_quota', *leave_out))}) FROM (
                SELECT p.*, {KIND_SQL} AS kind,
                       row_number() OVER (PARTITION BY {KIND_SQL}, task ORDER BY rank, {ORDER}) - 1
                       AS _pos
                FROM pool p) JOIN _quotas USING (kind, task)
            WHERE _pos < _quota ORDER BY rank, {ORDER}""",
            categories,
        )  # the connection, and with it the registered quotas, is closed by now
        return frame


KIND_SQL = "CASE WHEN strategy = 'basic' THEN 'basic' ELSE 'compound' END"


def _categorical(frame: pl.DataFrame, categories: tuple[str, ...]) -> pl.DataFrame:
    return frame.with_columns(
        pl.col(c).cast(pl.Categorical) for c in categories if c in frame.columns
    )
