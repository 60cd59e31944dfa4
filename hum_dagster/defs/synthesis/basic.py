"""``basic_instructions``: IEPile-style instructions for every record of a source."""


import json
import time
from collections import Counter

import dagster as dg

from hum_dagster.defs.checks import require_upstream_checks
from hum_dagster.defs.metadata import count_table, markdown_table
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.records import LabelSchema, Record
from hum_dagster.store.tables import Table
from hum_dagster.synthesis.basic import BasicConfig, SynthesisReport, synthesize_basic
from hum_dagster.synthesis.columns import instruction_frame


def basic_config(settings: HumSettings, split: str) -> BasicConfig:
    hard = None
    if settings.hard_negative_path:
        with open(settings.hard_negative_path, encoding="utf-8") as handle:
            hard = json.load(handle)
    kwargs = {}
    if settings.split_num:
        kwargs["split_num"] = {**BasicConfig().split_num, **settings.split_num}
    return BasicConfig(
        mode="train" if split == "train" else "test",
        neg_rate=settings.neg_rate,
        random_sort=settings.random_sort,
        hard_negatives=hard,
        seed=settings.seed,
        **kwargs,
    )


@dg.asset(
    partitions_def=source_partitions,
    group_name="synthesis",
    kinds={"polars", "parquet"},
    description="Basic instructions in the IEPile/OneKE structure: one row per record, task "
    "and schema chunk, with provenance (source, record id, template version).",
    code_version="1",
)
def basic_instructions(
    context: dg.AssetExecutionContext, settings: HumSettings, raw_sources: Table
):
    require_upstream_checks(context, dg.AssetKey("raw_sources"), [context.partition_key])
    entry = settings.entry(context.partition_key)
    schema = LabelSchema.from_json(raw_sources.meta.get("hum.label_schema", "{}"))
    config = basic_config(settings, entry.split)
    started = time.perf_counter()
    records = (Record.from_row(row) for row in raw_sources.df.iter_rows(named=True))
    # Every record's rows are checked as they are made; a record whose rows cannot be
    # built or break a check is quarantined with its reason instead of failing the source.
    report = SynthesisReport()
    rows = list(synthesize_basic(records, schema, config, report=report, validate=True))
    seconds = time.perf_counter() - started
    frame = instruction_frame(rows)
    # What the validators found was kept out of the rows (its records are quarantined):
    # the separate asset checks re-read the stored table; the metadata shows what was removed.
    removed = [p.to_row() for p in report.problems]
    skipped = [q.to_row() for q in report.quarantined]
    per_task = Counter(frame["task"].to_list()) if frame.height else Counter()
    sample = frame.head(4).select("task", "instruction", "output").to_dicts() if frame.height else []
    return dg.MaterializeResult(
        value=Table(frame, {"hum.basic_config": json.dumps(_config_dict(config), sort_keys=True)}),
        metadata={
            "instructions": frame.height,
            "records": raw_sources.df.height,
            "quarantined_records": len(skipped),
            "quarantine": dg.MetadataValue.md(
                markdown_table(skipped[:10], ["origin", "reason"])
            ),
            "rows_removed": len(removed),
            "rows_removed_by_check": dg.MetadataValue.md(
                markdown_table(removed[:10], ["check", "record", "reason"])
            ),
            "mode": config.mode,
            "per_task": dg.MetadataValue.md(count_table(dict(per_task), "task")),
            "templates": dg.MetadataValue.json(sorted(set(frame["template"].to_list())) if frame.height else []),
            "sample": dg.MetadataValue.md(markdown_table(sample, ["task", "instruction", "output"], 400)),
            "instructions_per_second": round(frame.height / seconds, 1) if seconds > 0 else 0.0,
            "dagster/row_count": frame.height,
        },
    )


def _config_dict(config: BasicConfig) -> dict:
    return {
        "mode": config.mode,
        "split_num": dict(config.split_num),
        "neg_rate": config.neg_rate,
        "random_sort": config.random_sort,
        "hard_negatives": bool(config.hard_negatives),
        "seed": config.seed,
    }
