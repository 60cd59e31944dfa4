"""Checks of the ``corpus`` group."""

import dagster as dg
import polars as pl

from hum_dagster.corpus.build import SPLIT_CHECK, split_problems
from hum_dagster.corpus.decontam import NO_OVERLAP_CHECK, contamination_problems
from hum_dagster.defs.checks import check_result
from hum_dagster.defs.corpus.partitions import corpus_partitions
from hum_dagster.defs.corpus.setup import benchmark_index
from hum_dagster.store.tables import TableRef

BATCH_ROWS = 50_000


@dg.asset_check(
    asset="hum_corpus",
    name=NO_OVERLAP_CHECK,
    partitions_def=corpus_partitions,
    blocking=True,
    description="No stored corpus row's input overlaps an evaluation set (the benchmark "
    "n-gram index, re-checked against the stored rows; warns when the evaluation sets are "
    "unavailable and nothing can be checked).",
)
def no_overlap_with_evaluation_sets(hum_corpus: TableRef) -> dg.AssetCheckResult:
    index, status = benchmark_index()
    if index is None:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"status": status}
        )
    problems, rows = [], 0
    for batch in hum_corpus.scan().select("instruction_id", "instruction").collect_batches(
        chunk_size=BATCH_ROWS
    ):
        rows += batch.height
        problems.extend(contamination_problems(batch, index))
    return check_result(problems, rows=rows, metadata={
        "benchmarks": dg.MetadataValue.json(index.names), "benchmark_texts": index.texts,
    })


@dg.asset_check(
    asset="hum_corpus",
    name=SPLIT_CHECK,
    partitions_def=corpus_partitions,
    blocking=True,
    description="No text has instructions in both the train and the validation split (the "
    "split is by text: every instruction made from one text, or one MRC passage, is on one "
    "side).",
)
def no_text_in_both_splits(hum_corpus: TableRef) -> dg.AssetCheckResult:
    rows = (
        hum_corpus.scan()
        .select(
            "instruction_id",
            "split",
            pl.coalesce(pl.col("text_id"), pl.col("record_id")).alias("split_key"),
        )
        .collect()
    )
    return check_result(split_problems(rows), rows=rows.height)
