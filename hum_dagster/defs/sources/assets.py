"""``raw_sources`` and ``source_quarantine``: each catalog entry read and normalised."""

import json
import time

import dagster as dg
import polars as pl

from hum_dagster.defs.metadata import count_table, label_counts, markdown_table
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.readers import read_source
from hum_dagster.records import Quarantined, Record, SourceError
from hum_dagster.store.tables import Table

RECORD_SCHEMA = {
    "source": pl.String,
    "task": pl.String,
    "language": pl.String,
    "text": pl.String,
    "gold": pl.String,
    "origin": pl.String,
    "split": pl.String,
    "record_id": pl.String,
    "text_id": pl.String,
}
QUARANTINE_SCHEMA = {"source": pl.String, "origin": pl.String, "reason": pl.String, "raw": pl.String}


def records_frame(records: list[Record]) -> pl.DataFrame:
    return pl.DataFrame([r.to_row() for r in records], schema=RECORD_SCHEMA, orient="row")


def quarantine_frame(rows: list[Quarantined]) -> pl.DataFrame:
    return pl.DataFrame([q.to_row() for q in rows], schema=QUARANTINE_SCHEMA, orient="row")


@dg.multi_asset(
    outs={
        "raw_sources": dg.AssetOut(
            description="Each catalog source read from its file or s3:// URI and normalised "
            "to canonical records (record id, task, language, text, gold structure).",
            kinds={"polars", "parquet"},
            is_required=True,
        ),
        "source_quarantine": dg.AssetOut(
            description="Records a reader could not use, with the file:line and the reason.",
            kinds={"polars", "parquet"},
        ),
    },
    partitions_def=source_partitions,
    group_name="sources",
    code_version="1",
)
def raw_sources(context: dg.AssetExecutionContext, settings: HumSettings):
    name = context.partition_key
    entry = settings.entry(name)
    started = time.perf_counter()
    try:
        result = read_source(entry)
    except SourceError as exc:
        raise dg.Failure(
            description=f"source '{name}' ({entry.format}) cannot be read: {exc}",
            metadata={"location": exc.location, "reason": exc.reason},
            allow_retries=False,
        ) from exc
    except FileNotFoundError as exc:
        raise dg.Failure(
            description=f"source '{name}': file not found: {exc.filename or exc}",
            allow_retries=False,
        ) from exc
    seconds = time.perf_counter() - started
    records = records_frame(result.records)
    quarantine = quarantine_frame(result.quarantine)
    total = records.height + quarantine.height
    counts = label_counts(records)
    schema_json = result.schema.to_json()
    meta = {
        "hum.label_schema": schema_json,
        "hum.files": json.dumps(result.files),
        "hum.catalog_entry": json.dumps(
            {"name": entry.name, "task": entry.task, "language": entry.language,
             "format": entry.format, "location": entry.location, "split": entry.split,
             "options": entry.options},
            ensure_ascii=False, sort_keys=True,
        ),
    }
    sample = records.head(5).select("record_id", "origin", "text", "gold").to_dicts()
    yield dg.MaterializeResult(
        asset_key="raw_sources",
        value=Table(records, meta),
        metadata={
            "records": records.height,
            "quarantined": quarantine.height,
            "quarantine_rate": round(quarantine.height / total, 4) if total else 0.0,
            # Repeated records are a property of the dataset: kept (each its own record)
            # unless the source sets `duplicates: drop`; counted here, never quarantined.
            "duplicates": len(result.duplicates),
            "duplicates_dropped": sum(d.dropped for d in result.duplicates),
            "duplicate_summary": result.duplicate_summary(),
            "task": entry.task,
            "language": entry.language,
            "format": entry.format,
            "split": entry.split,
            "files": dg.MetadataValue.json(result.files),
            "labels": len(counts),
            "label_counts": dg.MetadataValue.md(count_table(counts)),
            "label_schema": dg.MetadataValue.json(json.loads(schema_json)),
            "sample": dg.MetadataValue.md(markdown_table(sample, ["record_id", "origin", "text", "gold"])),
            "read_seconds": round(seconds, 3),
            "dagster/row_count": records.height,
        },
    )
    reasons = (
        quarantine.group_by("reason").len().sort("len", descending=True).head(20).to_dicts()
        if quarantine.height
        else []
    )
    yield dg.MaterializeResult(
        asset_key="source_quarantine",
        value=Table(quarantine, {"hum.source": name}),
        metadata={
            "quarantined": quarantine.height,
            "reasons": dg.MetadataValue.md(markdown_table(reasons, ["reason", "len"])),
            "sample": dg.MetadataValue.md(
                markdown_table(quarantine.head(10).to_dicts(), ["origin", "reason", "raw"])
            ),
            "dagster/row_count": quarantine.height,
        },
    )
