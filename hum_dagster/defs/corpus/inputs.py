"""Which upstream partitions the corpus may mix, and why not.

The corpus is a fan-in over every source partition: it is built only when every
registered source partition it reads is materialized, passed its blocking checks, did not
fail after its last materialization and is not older than its source files. Otherwise it
fails and names each such partition (one line each), so stale or broken rows never
become training data unannounced. (In a backfill Dagster already stops the corpus when an
upstream partition fails; this covers the UI, sensors and earlier materializations.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from hum_dagster.defs.checks import failed_attempt, upstream_check_failures
from hum_dagster.operations.audit import file_version
from hum_dagster.store.tables import TableRef

RAW = dg.AssetKey("raw_sources")


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def input_problems(
    context: dg.AssetExecutionContext,
    upstream: Mapping[dg.AssetKey, tuple[list[str], Mapping[str, TableRef]]],
) -> tuple[list[str], list[dict]]:
    """(problems, inputs): one line per unusable upstream partition; and a row per source
    saying which materialization of it the corpus reads (for the metadata).

    ``upstream``: asset key -> (its registered partitions, the stored tables by partition).
    """
    instance = context.instance
    problems: list[str] = []
    inputs: list[dict] = []
    blocked: set[str] = set()  # sources already named: their downstream lines add nothing
    basic_key = dg.AssetKey("basic_instructions")
    sources, _ = upstream.get(basic_key, ([], {}))
    if not sources:
        return ["no source partitions are registered: the catalog lists no sources"], []
    for source in sources:
        raw = _latest(instance, RAW, source)
        if raw is None:
            problems.append(f"raw_sources[{source}] was never materialized")
            blocked.add(source)
            continue
        run = failed_attempt(instance, RAW, source, raw.storage_id)
        if run:
            problems.append(
                f"raw_sources[{source}] failed in run {run[:8]} after its last materialization "
                f"({_when(raw.timestamp)}): the stored rows are out of date"
            )
            blocked.add(source)
            continue
        files = raw.asset_materialization.metadata.get("files")
        for path in (files.value if files is not None else None) or []:
            version = file_version(path)
            if not version["exists"]:
                problems.append(f"raw_sources[{source}]: source file {path} no longer exists")
                blocked.add(source)
            elif version["modified"] and version["modified"] > raw.timestamp:
                problems.append(
                    f"raw_sources[{source}] ({_when(raw.timestamp)}) is older than its source "
                    f"file {path}: re-materialize it"
                )
                blocked.add(source)
        lines = upstream_check_failures(context, RAW, [source])
        if lines:
            problems.extend(lines)
            blocked.add(source)
        if source not in blocked:
            inputs.append({"source": source, "raw_sources": _when(raw.timestamp),
                           "run": raw.run_id[:8]})
    for key, (partitions, tables) in upstream.items():
        for partition in partitions:
            if partition in blocked:
                continue
            name = f"{key.to_user_string()}[{partition}]"
            if partition not in tables:
                problems.append(f"{name} is not materialized")
                continue
            latest = _latest(instance, key, partition)
            if latest is not None:
                run = failed_attempt(instance, key, partition, latest.storage_id)
                if run:
                    problems.append(f"{name} failed in run {run[:8]} after its last materialization")
                    continue
            problems.extend(upstream_check_failures(context, key, [partition]))
    return problems, inputs
