"""``schema_dictionary``: per-label descriptions, variants, examples, candidates per source."""

import json

import dagster as dg
import polars as pl

from hum_dagster.defs.checks import require_upstream_checks
from hum_dagster.defs.metadata import markdown_table
from hum_dagster.defs.resources.llm import (
    LLM_POOL,
    LLMResource,
    llm_step_metadata,
    raise_for_step,
)
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.dictionary import (
    DICTIONARY_COLUMNS,
    build_dictionary,
    load_seed_book,
    select_seeds,
)
from hum_dagster.dictionary.enrich import DESCRIBE_STEP
from hum_dagster.dictionary.examples import EXAMPLES_STEP
from hum_dagster.llm.client import LLMError
from hum_dagster.llm.report import StepReport
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.records import LabelSchema, Record
from hum_dagster.store import layout
from hum_dagster.store.tables import Table


def dictionary_frame(rows: list[dict]) -> pl.DataFrame:
    schema = {c: (pl.Boolean if c == "symmetric" else pl.String) for c in DICTIONARY_COLUMNS}
    return pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


@dg.asset(
    partitions_def=source_partitions,
    group_name="dictionary",
    kinds={"polars", "parquet"},
    description="Per label of a source: descriptions, label-name variants, 5 positive and 5 "
    "negative examples, frequent values; merged from the data, curated seeds in assets/ and "
    "the LLM, with provenance on every value.",
    pool=LLM_POOL,
    code_version="1",
)
def schema_dictionary(
    context: dg.AssetExecutionContext, settings: HumSettings, llm: LLMResource, raw_sources: Table
):
    require_upstream_checks(context, dg.AssetKey("raw_sources"), [context.partition_key])
    entry = settings.entry(context.partition_key)
    schema = LabelSchema.from_json(raw_sources.meta.get("hum.label_schema", "{}"))
    records = [Record.from_row(row) for row in raw_sources.df.iter_rows(named=True)]
    seeds = select_seeds(load_seed_book(), entry.name, entry.options)
    pid2name = None
    if entry.option("pid2name"):
        pid2name = load_pid2name(entry.resolve(entry.option("pid2name")))
    hard = _hard_negatives(settings)
    runner = None if llm.mode == "offline" else llm.runner(layout.llm_cache_dir(settings.storage_root))
    where = f"schema_dictionary[{context.partition_key}]"
    try:
        dictionary, report = build_dictionary(
            entry.name, entry.task, entry.language, records, schema, seeds,
            hard_negatives=hard, runner=runner, pid2name=pid2name, seed=settings.seed,
            llm_examples=bool(llm.dictionary_examples),
        )
    except LLMError as exc:  # an unreachable endpoint, a model it does not serve, ...
        raise dg.Failure(description=f"{where} {DESCRIBE_STEP}: {exc}", allow_retries=False) from exc
    step = StepReport.from_json(report.llm.get("step_report"), DESCRIBE_STEP)
    step.mode = llm.mode
    examples = report.llm.get("examples")
    if examples:  # dictionary.examples ran too: one report, one verdict, for both steps
        more = StepReport.from_json(examples.get("step_report"), EXAMPLES_STEP)
        more.mode = llm.mode
        step = step.merged(more)
    thresholds = llm.thresholds()
    raise_for_step(step, thresholds, where)
    frame = dictionary_frame(dictionary.to_rows())
    summary = report.coverage_summary
    return dg.MaterializeResult(
        # The footer keeps what the dictionary is, not how it was fetched: LLM usage (cache
        # hits vs requests) goes to metadata only, so a re-run over a warm cache is
        # byte-identical.
        value=Table(frame, {"hum.dictionary_report": json.dumps(
            {k: v for k, v in report.to_json().items() if k != "llm"}, ensure_ascii=False
        )}),
        metadata={
            "labels": frame.height,
            "seeds": dg.MetadataValue.json(report.seeds),
            "coverage_summary": dg.MetadataValue.json(summary),
            "coverage": dg.MetadataValue.md(
                markdown_table(report.coverage, list(report.coverage[0]) if report.coverage else [])
            ),
            "unseeded_labels": dg.MetadataValue.json(report.unseeded),
            **llm_step_metadata(step, thresholds),
            **(
                {
                    "dictionary/examples": dg.MetadataValue.json(
                        {k: v for k, v in examples.items() if k != "step_report"}
                    )
                }
                if examples
                else {}
            ),
            "entries": dg.MetadataValue.md(dictionary.to_markdown(3)),
            "dagster/row_count": frame.height,
        },
    )


def _hard_negatives(settings: HumSettings) -> dict | None:
    if not settings.hard_negative_path:
        return None
    with open(settings.hard_negative_path, encoding="utf-8") as handle:
        return json.load(handle)
