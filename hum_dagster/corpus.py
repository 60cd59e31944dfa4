"""Building the training corpus from instruction tables (first version: basic only).

Later stages add mixing proportions, near-duplicate removal, token limits and
decontamination; this module keeps the parts every version needs: exact
de-duplication, a deterministic order, and a seeded train/validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# Columns every instruction table carries (basic and, later, compound).
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


# Compound instructions carry the basic columns plus these: the basic instruction they
# were derived from, the strategy's variant (a paraphrase kind, a rule strategy, an
# output format) and a JSON provenance (dictionary entries, LLM cache keys, ...).
COMPOUND_EXTRA_COLUMNS = ("base_instruction_id", "variant", "provenance")


COMPOUND_COLUMNS = (*INSTRUCTION_COLUMNS, *COMPOUND_EXTRA_COLUMNS)
_INT_COLUMNS = ("chunk_index", "n_chunks")


def instruction_frame(rows: list[dict], columns: tuple[str, ...] = INSTRUCTION_COLUMNS) -> pl.DataFrame:
    """Rows (dicts) as a frame with exactly ``columns``; absent keys become nulls."""
    schema = {c: (pl.Int64 if c in _INT_COLUMNS else pl.String) for c in columns}
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.from_dicts(rows, schema=schema)


@dataclass(frozen=True)
class CorpusConfig:
    seed: int = 42
    validation_fraction: float = 0.02
    min_validation: int = 1


@dataclass(frozen=True)
class CorpusResult:
    corpus: pl.DataFrame  # with a "split" column: train | validation
    input_rows: int
    test_mode_rows: int
    duplicates_removed: int


def _conform(table: pl.DataFrame) -> pl.DataFrame:
    """``table`` with exactly the compound columns (basic tables lack the extra ones)."""
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in COMPOUND_COLUMNS if c not in table.columns]
    return table.with_columns(missing).select(COMPOUND_COLUMNS)


def build_corpus(tables: list[pl.DataFrame], config: CorpusConfig) -> CorpusResult:
    """Concatenate train-mode instructions (basic and compound), drop exact duplicates,
    split by a seeded hash.

    Test-mode rows (evaluation instructions) never enter a training corpus. The
    validation split is chosen by hashing ``instruction_id`` with the seed, so a row
    keeps its side whatever else is in the corpus.
    """
    frame = pl.concat(
        [instruction_frame([], COMPOUND_COLUMNS), *(_conform(t) for t in tables)], how="vertical_relaxed"
    )
    input_rows = frame.height
    train_mode = frame.filter(pl.col("mode") == "train")
    test_rows = input_rows - train_mode.height
    unique = train_mode.sort("instruction_id").unique(
        subset=["instruction", "output", "history", "system"], keep="first", maintain_order=True
    )
    duplicates = train_mode.height - unique.height
    bucket = (
        pl.concat_str([pl.lit(f"{config.seed}|"), pl.col("instruction_id")]).hash(seed=0) % 1_000_000
    )
    threshold = int(config.validation_fraction * 1_000_000)
    corpus = unique.with_columns(
        pl.when(bucket < threshold).then(pl.lit("validation")).otherwise(pl.lit("train")).alias("split")
    )
    if corpus.height > 1 and (corpus["split"] == "validation").sum() < config.min_validation:
        # Tiny corpora: make sure a validation set exists (the lowest-bucket rows).
        order = corpus.with_columns(bucket.alias("_b")).sort("_b")
        chosen = set(order["instruction_id"][: config.min_validation].to_list())
        corpus = corpus.with_columns(
            pl.when(pl.col("instruction_id").is_in(chosen))
            .then(pl.lit("validation"))
            .otherwise(pl.col("split"))
            .alias("split")
        )
    return CorpusResult(corpus, input_rows, test_rows, duplicates)
