"""The columns of instruction tables, in one place.

Every instruction table (basic and compound) carries ``INSTRUCTION_COLUMNS``; compound
tables add the basic instruction a row was derived from, the strategy's variant (a
paraphrase kind, a rule strategy, an output format), a JSON provenance (dictionary
entries, LLM cache keys, ...) and ``strategies``: every registry strategy the row
carries, ``+``-joined in registry order (``"description+examples"``; a single-strategy
row: its ``strategy``; null on basic rows).
"""

from __future__ import annotations

import polars as pl

INSTRUCTION_COLUMNS = (
    "instruction_id",
    "source",
    "record_id",
    "text_id",
    "task",
    "language",
    "mode",
    "strategy",
    "template",
    "chunk_index",
    "n_chunks",
    "schema",
    "instruction",
    "output",
    "label",
    "history",
    "system",
)
COMPOUND_EXTRA_COLUMNS = ("base_instruction_id", "variant", "provenance", "strategies")
COMPOUND_COLUMNS = (*INSTRUCTION_COLUMNS, *COMPOUND_EXTRA_COLUMNS)
INT_COLUMNS = ("chunk_index", "n_chunks")


def instruction_schema(columns: tuple[str, ...] = INSTRUCTION_COLUMNS) -> dict[str, pl.DataType]:
    """The polars schema of an instruction table with ``columns``."""
    return {c: (pl.Int64 if c in INT_COLUMNS else pl.String) for c in columns}


def instruction_frame(
    rows: list[dict], columns: tuple[str, ...] = INSTRUCTION_COLUMNS
) -> pl.DataFrame:
    """Rows (dicts) as a frame with exactly ``columns``; absent keys become nulls."""
    schema = instruction_schema(columns)
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.from_dicts(rows, schema=schema)
