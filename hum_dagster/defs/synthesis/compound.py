"""``compound_instructions``: basic instructions diversified, one partition per source x strategy."""

import json
import time
from collections.abc import Callable, Iterable

import dagster as dg
import polars as pl

from hum_dagster.defs.metadata import count_table, markdown_table
from hum_dagster.defs.resources.llm import (
    LLM_CACHE_DIR,
    LLM_POOL,
    LLMResource,
    llm_check_results,
    llm_check_specs,
    llm_step_metadata,
    raise_for_step,
)
from hum_dagster.defs.resources.settings import HumSettings, catalog
from hum_dagster.defs.synthesis.partitions import compound_partitions
from hum_dagster.dictionary import SchemaDictionary
from hum_dagster.llm.client import LLMError
from hum_dagster.llm.report import StepReport
from hum_dagster.store import fsio
from hum_dagster.store.tables import Table
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, instruction_frame
from hum_dagster.synthesis.formats import (
    FORMAT_CHECK,
    FormatConfig,
    checked_format_rows,
    format_row_problems,
)
from hum_dagster.synthesis.guidelines import (
    GUIDELINE_STRATEGIES,
    OWN_INPUT,
    GuidelineConfig,
    GuidelineReport,
    synthesize_guidelines,
    validate_compound_row,
)
from hum_dagster.synthesis.own_answers import OWN_ANSWER_CHECK, check_own_answers, record_spans
from hum_dagster.synthesis.preferences import PreferenceConfig, preference_rows
from hum_dagster.synthesis.preferences_llm import PREFERENCE_STEP, preference_step_report

PREFERENCE_STRATEGY = "preference_rules"
FORMAT_STRATEGY = "format_variants"
CHUNK_ROWS = 5_000
REJECTIONS_KEPT = 500  # rejected relabellings kept in the partition's footer for inspection
LABELS_CHECK = "outputs_match_own_labels"
OWN_INPUT_CHECK = "no_example_is_own_input"

by_source = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="source")


def synthesize_strategy(
    strategy: str, rows: list[dict], dictionary: SchemaDictionary, settings: HumSettings, runner
) -> tuple[Iterable[dict], Callable[[], dict]]:
    """Rows of one strategy (guideline rows as a generator: a partition's rows can run to
    gigabytes of text) and a function giving the JSON-able report once they are consumed."""
    if strategy in GUIDELINE_STRATEGIES:
        report = GuidelineReport(strategy)
        config = GuidelineConfig(seed=settings.seed)
        return synthesize_guidelines(rows, dictionary, strategy, config, report), report.to_json
    if strategy == PREFERENCE_STRATEGY:
        descriptions = {
            e.label: e.descriptions[0].value
            for e in dictionary.entries.values()
            if e.parent is None and e.descriptions
        }
        result = preference_rows(rows, PreferenceConfig(seed=settings.seed), runner, descriptions)
        report = {
            "rows_in": len(rows),
            "rows_out": len(result.rows),
            "skipped": result.skipped,
            "by_variant": result.counts_by_variant,
            "rejections_by_reason": result.rejections_by_reason(),
            "rejections": result.rejections[:REJECTIONS_KEPT],
            "llm_step": preference_step_report(
                result.llm_usage_hint, result.rejections, runner
            ).to_json(),
        }
        return result.rows, lambda: report
    if strategy == FORMAT_STRATEGY:
        out, report = checked_format_rows(rows, FormatConfig(seed=settings.seed))
        return out, lambda: report
    raise dg.Failure(f"unknown compound strategy {strategy!r}")


@dg.asset(
    partitions_def=compound_partitions,
    group_name="synthesis",
    kinds={"polars", "parquet"},
    description="Compound instructions: basic instructions rewritten with guidelines (descriptions, "
    "examples, output format), paraphrases (label variants, masking, description variants, "
    "representative examples) and preference rules, each with provenance.",
    ins={
        "basic_instructions": dg.AssetIn(partition_mapping=by_source),
        "schema_dictionary": dg.AssetIn(partition_mapping=by_source),
    },
    check_specs=[
        dg.AssetCheckSpec(LABELS_CHECK, asset="compound_instructions",
                          description="Outputs parse and use the instruction's own label names "
                          "(variants and placeholders included); format variants parse back into "
                          "their base answer."),
        dg.AssetCheckSpec(OWN_INPUT_CHECK, asset="compound_instructions",
                          description="No example in an instruction is the instruction's own input."),
        dg.AssetCheckSpec(OWN_ANSWER_CHECK, asset="compound_instructions",
                          description="No gold span of a record appears in the guideline part of "
                          "its compound instructions (descriptions, examples, typical values, rules)."),
        dg.AssetCheckSpec(FORMAT_CHECK, asset="compound_instructions",
                          description="Format variants state their own layout once, in place of the "
                          "JSON reply sentence, and their outputs read back strictly as stated."),
        *llm_check_specs("compound_instructions"),
    ],
    pool=LLM_POOL,
    code_version="1",
)
def compound_instructions(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    llm: LLMResource,
    basic_instructions: Table,
    schema_dictionary: Table,
):
    keys = context.partition_key.keys_by_dimension
    strategy = keys["strategy"]
    entry = catalog()[keys["source"]]
    if schema_dictionary.df.height:
        dictionary = SchemaDictionary.from_rows(schema_dictionary.df.to_dicts())
    else:  # a source without labels (MRC, OpenIE, IG): strategies that need labels skip its rows
        dictionary = SchemaDictionary(source=entry.name, task=entry.task, language=entry.language)
    rows = basic_instructions.df.to_dicts()
    started = time.perf_counter()
    runner = None if llm.mode == "offline" else llm.runner(fsio.join(settings.storage_root, LLM_CACHE_DIR))
    where = f"compound_instructions[{keys['source']}|{strategy}]"
    try:
        out, make_report = synthesize_strategy(strategy, rows, dictionary, settings, runner)
    except LLMError as exc:  # an unreachable endpoint, a model it does not serve, ...
        raise dg.Failure(description=f"{where} {PREFERENCE_STEP}: {exc}", allow_retries=False) from exc
    problems: dict[str, list[dict]] = {
        LABELS_CHECK: [], OWN_INPUT_CHECK: [], OWN_ANSWER_CHECK: [], FORMAT_CHECK: []
    }
    base_rows = {row["instruction_id"]: row for row in rows}
    spans = record_spans(rows)
    # Rows are checked as they come and turned into frames a chunk at a time, so that a
    # partition's text is held once (in the frame), not also as Python dicts.
    chunks, buffer = [], []
    for row in out:
        if strategy == FORMAT_STRATEGY:
            for problem in format_row_problems(row, base_rows[row["base_instruction_id"]]):
                problems[FORMAT_CHECK].append({"instruction_id": row["instruction_id"], "problem": problem})
        else:
            for problem in validate_compound_row(row):
                kind = OWN_INPUT_CHECK if OWN_INPUT in problem else LABELS_CHECK
                problems[kind].append({"instruction_id": row["instruction_id"], "problem": problem})
        for p in check_own_answers([row], spans):
            problems[p.check].append({"instruction_id": p.record, "problem": p.reason})
        buffer.append(row)
        if len(buffer) >= CHUNK_ROWS:
            chunks.append(instruction_frame(buffer, COMPOUND_COLUMNS))
            buffer = []
    chunks.append(instruction_frame(buffer, COMPOUND_COLUMNS))
    del out, buffer
    frame = pl.concat(chunks, rechunk=False)
    report = make_report()
    # only preference rules ask the LLM; other strategies report an offline step
    step = StepReport.from_json(report.get("llm_step"), PREFERENCE_STEP)
    thresholds = llm.thresholds()
    raise_for_step(step, thresholds, where)
    seconds = time.perf_counter() - started
    per_task = dict(frame.group_by("task").len().sort("task").iter_rows()) if frame.height else {}
    sample = frame.head(3).select("task", "instruction", "output").to_dicts()
    return dg.MaterializeResult(
        # the footer keeps what the rows are, not how they were fetched (llm_step counts
        # cache hits), so a re-run over a warm cache writes the same bytes
        value=Table(frame, {"hum.strategy": strategy, "hum.report": json.dumps(
            {k: v for k, v in report.items() if k != "llm_step"}, ensure_ascii=False
        )}),
        metadata={
            "instructions": frame.height,
            "basic_rows_in": len(rows),
            "strategy": strategy,
            "skipped": dg.MetadataValue.json(report.get("skipped", {})),
            "report": dg.MetadataValue.json(
                {k: v for k, v in report.items() if k not in ("rejections", "llm_step")}
            ),
            **(llm_step_metadata(step, thresholds) if strategy == PREFERENCE_STRATEGY else {}),
            "per_task": dg.MetadataValue.md(count_table(per_task, "task")),
            "sample": dg.MetadataValue.md(markdown_table(sample, ["task", "instruction", "output"], 400)),
            "rows_per_second": round(frame.height / seconds, 1) if seconds > 0 else 0.0,
            "dagster/row_count": frame.height,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=name,
                passed=not found,
                metadata={"failures": len(found),
                          "examples": dg.MetadataValue.md(markdown_table(found[:10], ["instruction_id", "problem"]))},
            )
            for name, found in problems.items()
        ] + llm_check_results(step, thresholds),
    )
