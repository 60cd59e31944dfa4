"""Lineage audits, the Dagster side: the event log, code and data versions, staleness.

``materialization_audit`` reads the latest materialization of every partition of every
asset from the instance and says, for each, whether it is stale and why:

- ``code``: the asset's code version changed since it was materialized;
- ``upstream``: an upstream partition it reads was materialized after it (its
  ``dagster/input_event_pointer/<dep>`` tag points at an older event);
- ``source file``: a ``raw_sources`` file was modified after the materialization;
- ``dagster``: what Dagster's own stale-status resolver reports (the UI's "Unsynced").

``lineage_audit`` is an asset that writes the full audit (``hum_dagster.operations.audit`` over the
Parquet outputs plus the above) as Markdown and JSON under ``<storage root>/audit/``.
"""

import json
from typing import Any

import dagster as dg

from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.operations.audit import Audit, Section, file_version, lineage, render_markdown
from hum_dagster.store import fsio, layout

INPUT_POINTER = "dagster/input_event_pointer/"
PAGE = 1000


def latest_by_partition(
    instance: dg.DagsterInstance, key: dg.AssetKey
) -> dict[str | None, dg.EventLogRecord]:
    """The newest materialization record of each partition of ``key`` (None: unpartitioned)."""
    latest: dict[str | None, dg.EventLogRecord] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(key, limit=PAGE, cursor=cursor, ascending=False)
        for record in result.records:
            latest.setdefault(record.partition_key, record)
        if not result.has_more:
            return latest
        cursor = result.cursor


def _dep_partitions(
    asset_graph, child: dg.AssetKey, parent: dg.AssetKey, partition: str | None
) -> list[str | None] | None:
    """The parent partitions a child partition reads; None means every partition."""
    child_def = asset_graph.get(child).partitions_def
    parent_def = asset_graph.get(parent).partitions_def
    if parent_def is None:
        return [None]
    if partition is None or child_def is None:
        return None
    if child_def == parent_def or isinstance(
        asset_graph.get_partition_mapping(child, parent), dg.IdentityPartitionMapping
    ):
        return [partition]
    if isinstance(child_def, dg.MultiPartitionsDefinition):
        keys = child_def.get_partition_key_from_str(str(partition))
        for dim in child_def.partitions_defs:
            if dim.partitions_def == parent_def:
                return [keys.keys_by_dimension[dim.name]]
    return None


def _multi_key(partitions_def, partition: str | None):
    if partition is None or not isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return partition
    return partitions_def.get_partition_key_from_str(partition)


def stale_resolver(instance: dg.DagsterInstance, asset_graph):
    """Dagster's own stale-status resolver (internal API; None if it cannot be built)."""
    try:
        from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
        from dagster._core.definitions.data_version import CachingStaleStatusResolver
        from dagster._time import get_current_datetime

        view = AssetGraphView(
            temporal_context=TemporalContext(
                effective_dt=get_current_datetime(), last_event_id=None
            ),
            instance=instance,
            asset_graph=asset_graph,
        )
        return CachingStaleStatusResolver(
            instance=instance, asset_graph=asset_graph, loading_context=view
        )
    except Exception:  # an internal API: the audit works without it
        return None


def _dagster_status(resolver, key: dg.AssetKey, partition: str | None) -> str:
    if resolver is None:
        return ""
    try:
        status = resolver.get_status(key, partition)
        if status.value != "STALE":
            return status.value.lower()
        causes = resolver.get_stale_root_causes(key, partition)
        return "stale: " + "; ".join(
            f"{c.key.asset_key.to_user_string()}"
            f"{'[' + str(c.key.partition_key) + ']' if c.key.partition_key else ''} {c.reason}"
            for c in causes[:3]
        )
    except Exception as exc:  # e.g. too many partitions for the resolver
        return f"unknown ({type(exc).__name__})"


def materialization_audit(
    instance: dg.DagsterInstance,
    asset_graph,
    keys: list[dg.AssetKey] | None = None,
    check_files: bool = True,
) -> tuple[Section, Section]:
    """(materializations, stale): one row per materialized partition; the stale ones with why."""
    keys = keys or sorted(asset_graph.materializable_asset_keys, key=lambda k: k.to_user_string())
    order = {k: i for i, k in enumerate(asset_graph.toposorted_asset_keys)}
    keys = sorted(keys, key=lambda k: (order.get(k, 0), k.to_user_string()))
    latest = {key: latest_by_partition(instance, key) for key in keys}
    stale_parts: dict[dg.AssetKey, set] = {}
    for key in list(latest):  # upstreams outside ``keys`` are needed for the comparison
        for parent in asset_graph.get(key).parent_keys:
            if parent not in latest and parent in asset_graph.materializable_asset_keys:
                latest[parent] = latest_by_partition(instance, parent)
    resolver = stale_resolver(instance, asset_graph)
    table = Section(
        "materializations",
        [
            "asset",
            "partition",
            "run_id",
            "timestamp",
            "code_version",
            "data_version",
            "status",
            "reasons",
            "dagster",
        ],
    )
    stale = Section("stale", ["asset", "partition", "reasons"])
    for key in keys:
        node = asset_graph.get(key)
        for partition, record in sorted(latest[key].items(), key=lambda kv: str(kv[0])):
            mat = record.asset_materialization
            tags = mat.tags or {}
            reasons = []
            stored_code = tags.get("dagster/code_version")
            if node.code_version is not None and stored_code != node.code_version:
                reasons.append(f"code version {stored_code} -> {node.code_version}")
            for tag, pointer in tags.items():
                if not tag.startswith(INPUT_POINTER):
                    continue
                parent = dg.AssetKey.from_user_string(tag[len(INPUT_POINTER) :])
                parent_latest = latest.get(parent, {})
                wanted = _dep_partitions(asset_graph, key, parent, partition)
                records = (
                    list(parent_latest.values())
                    if wanted is None
                    else [parent_latest[p] for p in wanted if p in parent_latest]
                )
                stale_parents = [
                    r for r in records if r.partition_key in stale_parts.get(parent, ())
                ]
                if stale_parents:
                    where = (
                        f"[{stale_parents[0].partition_key}]"
                        if stale_parents[0].partition_key
                        else ""
                    )
                    reasons.append(f"upstream {parent.to_user_string()}{where} is stale")
                newer = [r for r in records if r.storage_id > int(pointer)]
                if newer:
                    first = min(newer, key=lambda r: r.storage_id)
                    where = f"[{first.partition_key}]" if first.partition_key else ""
                    reasons.append(
                        f"upstream {parent.to_user_string()}{where} re-materialized "
                        f"({len(newer)} newer)"
                    )
            if check_files and key == dg.AssetKey("raw_sources"):
                files = mat.metadata.get("files")
                for path in (files.value if files is not None else []) or []:
                    version = file_version(path)
                    if not version["exists"]:
                        reasons.append(f"source file missing: {path}")
                    elif version["modified"] and version["modified"] > record.timestamp:
                        reasons.append(f"source file modified after materialization: {path}")
            row = {
                "asset": key.to_user_string(),
                "partition": partition,
                "run_id": record.run_id,
                "timestamp": record.timestamp,
                "code_version": stored_code,
                "data_version": (tags.get("dagster/data_version") or "")[:16],
                "status": "stale" if reasons else "fresh",
                "reasons": "; ".join(reasons),
                "dagster": _dagster_status(
                    resolver, key, _multi_key(node.partitions_def, partition)
                ),
            }
            table.rows.append(row)
            if reasons:
                stale_parts.setdefault(key, set()).add(partition)
                stale.rows.append(
                    {"asset": row["asset"], "partition": partition, "reasons": row["reasons"]}
                )
    return table, stale


def missing_partitions(instance: dg.DagsterInstance, asset_graph, keys=None) -> Section:
    """Partitions that were never materialized, per asset."""
    section = Section("missing", ["asset", "missing", "of", "examples"])
    keys = keys or sorted(asset_graph.materializable_asset_keys, key=lambda k: k.to_user_string())
    for key in keys:
        node = asset_graph.get(key)
        have = set(latest_by_partition(instance, key))
        if node.partitions_def is None:
            wanted = [None]
        else:
            wanted = list(node.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
        absent = [p for p in wanted if p not in have]
        if absent:
            section.rows.append(
                {
                    "asset": key.to_user_string(),
                    "missing": len(absent),
                    "of": len(wanted),
                    "examples": ", ".join(str(p) for p in absent[:5]),
                }
            )
    return section


def full_audit(
    instance: dg.DagsterInstance, asset_graph, storage_root: str, target: str = "corpus"
) -> Audit:
    """The outputs' lineage plus the event log's materializations, staleness and gaps."""
    audit = lineage(storage_root, target)
    materializations, stale = materialization_audit(instance, asset_graph)
    audit.sections += [stale, missing_partitions(instance, asset_graph), materializations]
    return audit


def write_audit(audit: Audit, directory: str) -> dict[str, str]:
    paths = {
        "markdown": fsio.join(directory, "lineage.md"),
        "json": fsio.join(directory, "lineage.json"),
    }
    fsio.write_bytes_atomic(paths["markdown"], render_markdown(audit).encode("utf-8"))
    fsio.write_bytes_atomic(
        paths["json"],
        json.dumps(audit.to_json(), ensure_ascii=False, indent=1, default=str).encode("utf-8"),
    )
    return paths


def _md(section: Section | None, limit: int = 50) -> dg.MetadataValue:
    from hum_dagster.operations.audit import markdown_section

    return dg.MetadataValue.md(markdown_section(section, limit) if section else "(none)")


@dg.asset(
    group_name="operations",
    kinds={"duckdb"},
    deps=["hum_corpus"],
    description="Lineage audit of the corpus: sources (files, versions), schema-dictionary "
    "entries, template versions and cached LLM responses behind it, instructions per source "
    "x task x strategy, and which materializations are stale and why. Markdown and JSON "
    "under <storage root>/audit/.",
    code_version="1",
)
def lineage_audit(context: dg.AssetExecutionContext, settings: HumSettings) -> dg.MaterializeResult:
    audit = full_audit(context.instance, context.repository_def.asset_graph, settings.storage_root)
    paths = write_audit(audit, layout.audit_dir(settings.storage_root))
    counts: dict[str, Any] = {s.title: len(s.rows) for s in audit.sections}
    return dg.MaterializeResult(
        metadata={
            "stale": counts.get("stale", 0),
            "sources": len({r["source"] for r in audit.section("sources").rows})
            if audit.section("sources")
            else 0,
            "llm_responses": counts.get("llm_responses", 0),
            "counts": dg.MetadataValue.json(counts),
            "contributions": _md(audit.section("contributions"), 100),
            "stale_materializations": _md(audit.section("stale")),
            "missing_partitions": _md(audit.section("missing")),
            "templates": _md(audit.section("templates")),
            "llm_cache_keys": _md(audit.section("llm_responses")),
            "report": dg.MetadataValue.path(paths["markdown"]),
            "report_json": dg.MetadataValue.path(paths["json"]),
        }
    )


audit_job = dg.define_asset_job(
    "audit_lineage",
    selection=dg.AssetSelection.assets(lineage_audit),
    description="Audit the corpus lineage and the staleness of every materialization.",
)
