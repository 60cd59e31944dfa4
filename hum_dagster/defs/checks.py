"""Helpers shared by the asset checks of every stage (the checks themselves stand beside
their assets, in each stage's ``checks.py``).

- ``check_result``: ``records.Problem`` values from a library validator become one
  ``AssetCheckResult`` (passed when there are none), with counts and examples;
- ``upstream_check_failures`` / ``require_upstream_checks``: the blocking checks of the
  upstream partitions an asset reads. Dagster's ``blocking=True`` stops downstream steps
  in the same run; an asset in a later run (another partitions definition, a backfill's
  next iteration, the UI) asks here, so a partition whose error-severity check failed
  never feeds anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter

from hum_dagster.defs.metadata import markdown_table
from hum_dagster.records import Problem

EXAMPLES = 10


def severity_of(name: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.WARN if name == "warn" else dg.AssetCheckSeverity.ERROR


def check_result(
    problems: Sequence[Problem],
    *,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    passed: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
    rows: int | None = None,
    asset_key: dg.AssetKey | None = None,
    check_name: str | None = None,
) -> dg.AssetCheckResult:
    """One check's result from the problems its validators found (passed: none found,
    unless ``passed`` says otherwise). ``asset_key`` and ``check_name`` name the check
    where one step evaluates several (a ``multi_asset_check``)."""
    reasons = Counter(p.reason for p in problems)
    meta: dict[str, Any] = {
        "failures": len(problems),
        "records_with_problems": len({p.record for p in problems}),
        "examples": dg.MetadataValue.md(
            markdown_table([p.to_row() for p in problems[:EXAMPLES]], ["record", "reason"])
        ),
    }
    if problems:
        meta["first_problem"] = f"{problems[0].record}: {problems[0].reason}"[:300]
    if rows is not None:
        meta["rows_checked"] = rows
    if len(reasons) > 1:
        meta["most_common_reasons"] = dg.MetadataValue.md(
            markdown_table(
                [{"reason": r, "count": n} for r, n in reasons.most_common(EXAMPLES)],
                ["reason", "count"],
            )
        )
    meta.update(metadata or {})
    return dg.AssetCheckResult(
        passed=(not problems) if passed is None else passed, severity=severity, metadata=meta,
        asset_key=asset_key, check_name=check_name,
    )


def full_graph(context: dg.AssetExecutionContext):
    """The code location's whole asset graph (a run's job may hold only a subset of it,
    without the checks of the assets it reads)."""
    from hum_dagster.definitions import defs  # built once per process

    return defs().resolve_asset_graph()


def upstream_check_failures(
    context: dg.AssetExecutionContext, upstream: dg.AssetKey, partitions: Iterable[str | None]
) -> list[str]:
    """One line per (partition, blocking check) of ``upstream`` whose latest evaluation
    failed with error severity."""
    graph = full_graph(context)
    keys = [
        k for k in graph.get_check_keys_for_assets({upstream}) if graph.get_check_spec(k).blocking
    ]
    if not keys:
        return []
    storage = context.instance.event_log_storage
    lines = []
    for partition in partitions:
        latest = storage.get_latest_asset_check_execution_by_key(
            keys, partition_filter=PartitionKeyFilter(key=partition)
        )
        for key in sorted(latest, key=lambda k: k.name):
            evaluation = evaluation_of(latest[key])
            if evaluation is None or evaluation.passed:
                continue
            if evaluation.severity != dg.AssetCheckSeverity.ERROR:
                continue
            where = f"[{partition}]" if partition else ""
            failures = evaluation.metadata.get("failures")
            count = f" ({failures.value} problems)" if failures is not None else ""
            lines.append(f"{upstream.to_user_string()}{where} failed its check {key.name}{count}")
    return lines


def require_upstream_checks(
    context: dg.AssetExecutionContext, upstream: dg.AssetKey, partitions: Iterable[str | None]
) -> None:
    """Fail (one readable line per cause) when a blocking check of an upstream partition
    this asset reads has failed."""
    lines = upstream_check_failures(context, upstream, partitions)
    if lines:
        raise dg.Failure(
            description="; ".join(lines) + ": fix it and re-materialize it first",
            allow_retries=False,
        )


def evaluation_of(record):
    """The check's evaluation, or None while it is only planned."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    if record.status not in (Status.SUCCEEDED, Status.FAILED):
        return None
    return record.evaluation


def failed_attempt(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, after_storage_id: int
) -> str | None:
    """The run id of the latest attempt at ``key[partition]`` when it came after the
    materialization ``after_storage_id`` and failed (or was canceled) without
    materializing it; None otherwise."""
    from dagster._core.storage.dagster_run import DagsterRunStatus

    planned = instance.get_latest_planned_materialization_info(key, partition)
    if planned is None or planned.storage_id <= after_storage_id:
        return None
    run = instance.get_run_by_id(planned.run_id)
    if run is not None and run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        return planned.run_id
    return None
