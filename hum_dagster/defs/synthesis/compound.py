"""``compound_instructions/<strategy>``: basic instructions diversified, one asset per
strategy of the registry (``hum_dagster.synthesis.strategies``), each partitioned over
the sources the strategy applies to (``defs.synthesis.partitions``)."""

import json
import time

import dagster as dg
import polars as pl

from hum_dagster.defs.checks import require_upstream_checks
from hum_dagster.defs.metadata import count_table, markdown_table
from hum_dagster.defs.resources.llm import LLM_POOL, LLMResource, llm_step_metadata, raise_for_step
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.synthesis.partitions import compound_partitions
from hum_dagster.dictionary import SchemaDictionary
from hum_dagster.llm.client import LLMError
from hum_dagster.llm.report import StepReport
from hum_dagster.store import layout
from hum_dagster.store.tables import Table
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, instruction_frame
from hum_dagster.synthesis.preferences_llm import PREFERENCE_STEP
from hum_dagster.synthesis.strategies import STRATEGIES, Strategy

COMPOUND = "compound_instructions"
CHUNK_ROWS = 5_000
BASIC_KEY = dg.AssetKey("basic_instructions")


def compound_key(strategy: str) -> dg.AssetKey:
    return dg.AssetKey([COMPOUND, strategy])


def build_compound_asset(spec: Strategy) -> dg.AssetsDefinition:
    identity = dg.IdentityPartitionMapping()

    @dg.asset(
        key=compound_key(spec.name),
        partitions_def=compound_partitions[spec.name],
        group_name="synthesis",
        kinds={"polars", "parquet"},
        description=f"Compound instructions, strategy `{spec.name}` ({spec.family}): "
        f"{spec.description}. One partition per source it applies to; every row names its "
        "base instruction and its provenance.",
        ins={
            "basic_instructions": dg.AssetIn(partition_mapping=identity),
            "schema_dictionary": dg.AssetIn(partition_mapping=identity),
        },
        pool=LLM_POOL if spec.uses_llm else None,
        code_version="3",
    )
    def _compound(
        context: dg.AssetExecutionContext,
        settings: HumSettings,
        llm: LLMResource,
        basic_instructions: Table,
        schema_dictionary: Table,
    ) -> dg.MaterializeResult:
        source = context.partition_key
        require_upstream_checks(context, BASIC_KEY, [source])
        entry = settings.entry(source)
        if schema_dictionary.df.height:
            dictionary = SchemaDictionary.from_rows(schema_dictionary.df.to_dicts())
        else:  # a source without labels: strategies that need labels skip its rows
            dictionary = SchemaDictionary(source=entry.name, task=entry.task, language=entry.language)
        rows = basic_instructions.df.to_dicts()
        started = time.perf_counter()
        runner = None
        if spec.uses_llm and llm.mode != "offline":
            runner = llm.runner(layout.llm_cache_dir(settings.storage_root))
        where = f"{compound_key(spec.name).to_user_string()}[{source}]"
        try:
            out = spec.synthesise(rows, dictionary, settings.seed, runner)
        except LLMError as exc:  # an unreachable endpoint, a model it does not serve, ...
            raise dg.Failure(description=f"{where}: {exc}", allow_retries=False) from exc
        # Rows become frames a chunk at a time, so that a partition's text is held once
        # (in the frame), not also as Python dicts.
        chunks, buffer = [], []
        for row in out.rows:
            buffer.append(row)
            if len(buffer) >= CHUNK_ROWS:
                chunks.append(instruction_frame(buffer, COMPOUND_COLUMNS))
                buffer = []
        chunks.append(instruction_frame(buffer, COMPOUND_COLUMNS))
        del out.rows, buffer
        frame = pl.concat(chunks, rechunk=False)
        report = out.report()
        llm_meta = {}
        if spec.uses_llm:  # fail the partition, in one line, when too many requests failed
            step = StepReport.from_json(report.pop("llm_step", None), PREFERENCE_STEP)
            thresholds = llm.thresholds()
            raise_for_step(step, thresholds, where)
            llm_meta = llm_step_metadata(step, thresholds)
        seconds = time.perf_counter() - started
        per_task = dict(frame.group_by("task").len().sort("task").iter_rows()) if frame.height else {}
        sample = frame.head(3).select("task", "instruction", "output").to_dicts()
        return dg.MaterializeResult(
            value=Table(frame, {"hum.strategy": spec.name,
                                "hum.report": json.dumps(report, ensure_ascii=False)}),
            metadata={
                "instructions": frame.height,
                "basic_rows_in": len(rows),
                "strategy": spec.name,
                "family": spec.family,
                "skipped": dg.MetadataValue.json(report.get("skipped", {})),
                "report": dg.MetadataValue.json({k: v for k, v in report.items() if k != "rejections"}),
                **llm_meta,
                "per_task": dg.MetadataValue.md(count_table(per_task, "task")),
                "sample": dg.MetadataValue.md(markdown_table(sample, ["task", "instruction", "output"], 400)),
                "rows_per_second": round(frame.height / seconds, 1) if seconds > 0 else 0.0,
                "dagster/row_count": frame.height,
            },
        )

    return _compound


compound_assets = [build_compound_asset(spec) for spec in STRATEGIES.values()]
