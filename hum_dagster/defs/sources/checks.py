"""Checks of the ``sources`` group."""

import dagster as dg

from hum_dagster.defs.checks import check_result
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.records import Problem
from hum_dagster.store.tables import TableRef

QUARANTINE_CHECK = "quarantine_rate_below_threshold"


def quarantine_problems(name: str, records: int, quarantined: int, threshold: float) -> list[Problem]:
    total = records + quarantined
    rate = quarantined / total if total else 0.0
    if rate <= threshold:
        return []
    return [Problem(QUARANTINE_CHECK, name,
                    f"{quarantined} of {total} records quarantined ({rate:.1%} > {threshold:.1%})")]


@dg.asset_check(
    asset="raw_sources",
    name=QUARANTINE_CHECK,
    partitions_def=source_partitions,
    blocking=True,
    additional_ins={"source_quarantine": dg.AssetIn()},
    description="The share of quarantined records stays at or below settings.max_quarantine_rate "
    "(error: a source this broken feeds nothing downstream).",
)
def quarantine_rate_below_threshold(
    context: dg.AssetCheckExecutionContext,
    settings: HumSettings,
    raw_sources: TableRef,
    source_quarantine: TableRef,
) -> dg.AssetCheckResult:
    records, quarantined = raw_sources.rows(), source_quarantine.rows()
    total = records + quarantined
    problems = quarantine_problems(
        context.partition_key, records, quarantined, settings.max_quarantine_rate
    )
    return check_result(problems, rows=total, metadata={
        "quarantine_rate": round(quarantined / total, 4) if total else 0.0,
        "threshold": settings.max_quarantine_rate,
        "quarantined": quarantined,
        "total": total,
    })
