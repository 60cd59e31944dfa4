"""Automation: declarative conditions, the landing and source-change sensors, schedules.

- ``hum_automation`` (an ``AutomationConditionSensorDefinition``) applies
  :data:`HUM_CONDITION` to every asset from ``raw_sources`` down to ``eval_scores`` (and
  what depends on them) that has no condition of its own: a partition is requested when
  it is missing (and its last run did not fail), when an upstream partition it reads was
  updated, or when the asset's code version changed; never while its upstreams are
  missing or running, or while it is running itself.
- ``catalog_partitions`` (the one sensor that starts running) adds a partition for every
  catalog entry that has none (sources, and the compound partitions of the strategies
  that apply to it), so a new entry needs no code-location reload; it launches nothing.
- ``landing_sensor`` watches ``settings.landing`` (``HUM_LANDING``: a folder or an ``s3://``
  prefix) for new sources (see ``hum_dagster/operations/landing.py``: a
  ``<name>.source.yaml`` sidecar is the done marker, and the data file must keep the same
  size and modification time over two ticks), registers them in the landing catalog and
  as dynamic partitions in the same tick, and launches ``synthesize_source`` for each;
  ``hum_automation`` then carries them through compound instructions and the corpus.
- ``source_files_changed`` re-runs ``synthesize_source`` for a catalog source whose
  file changed (size, time or ETag) since the last tick or since its last materialization.
- ``nightly_audit`` materializes ``lineage_audit`` at 03:00 UTC.

Every sensor that launches runs, and the schedule, starts STOPPED (turn them on in the
UI or with ``dagster sensor start``), so ``dagster dev`` never launches runs nobody asked
for.
"""

import json

import dagster as dg

from hum_dagster.defs.operations.audit import audit_job
from hum_dagster.defs.resources.llm import LLMResource
from hum_dagster.defs.resources.settings import LANDING_CATALOG, HumSettings
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.defs.synthesis.partitions import partition_requests
from hum_dagster.operations.landing import PATH_OPTIONS, register, scan, validate_entry
from hum_dagster.readers.catalog import CatalogError, load_catalog
from hum_dagster.store import fsio

SOURCE_JOB = "synthesize_source"
STOPPED = dg.DefaultSensorStatus.STOPPED


_ready = (
    ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)
_missing = (
    dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()
).with_label("missing (last run did not fail)")
_stale = (
    (dg.AutomationCondition.any_deps_updated() | dg.AutomationCondition.code_version_changed())
    .since_last_handled()
    .with_label("upstream updated or code version changed")
)
HUM_CONDITION = ((_missing | _stale) & _ready).with_label("hum: missing or stale")
"""Missing partitions (all of them, not only newly added ones: ``on_missing`` and
``eager`` skip partitions that were already missing when the condition was first
applied) and stale ones (an upstream partition updated, or a new code version).
A failed partition is not retried every tick; a new upstream update or code version
retries it."""

AUTOMATED = (
    dg.AssetSelection.keys("raw_sources").downstream()
    | dg.AssetSelection.keys("eval_scores").downstream()
)

automation_sensor = dg.AutomationConditionSensorDefinition(
    "hum_automation",
    target=AUTOMATED,
    default_condition=HUM_CONDITION,
    use_user_code_server=True,  # required for default_condition
    default_status=STOPPED,
    minimum_interval_seconds=30,
    description="Materializes missing partitions and re-materializes stale ones (upstream "
    "updated, code version changed) from raw_sources down to eval_scores.",
)


def build_landing_sensor(
    name: str = "landing_sensor",
    job_name: str = SOURCE_JOB,
    partitions_def: dg.PartitionsDefinition = source_partitions,
    root: str | None = None,
    minimum_interval_seconds: int = 30,
) -> dg.SensorDefinition:
    """A sensor registering landed sources and launching ``job_name`` per new partition.

    With a ``DynamicPartitionsDefinition`` the new names are added as partitions and run in
    the same tick (for the project's source partitions, the compound partitions of the
    strategies that apply to each new source too). With a static one, a registered source
    is launched once the code location, reloaded, lists it as a partition. ``root``
    overrides ``settings.landing``.
    """

    @dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=STOPPED,
        description="Registers new source files from settings.landing (HUM_LANDING; sidecar "
        "<name>.source.yaml as done marker, stable size over two ticks) as partitions and "
        "launches their synthesis.",
        required_resource_keys=set() if root else {"settings", "llm"},
    )
    def _landing(context: dg.SensorEvaluationContext):
        settings = None if root else context.resources.settings
        where = root or settings.landing
        if not where:
            return dg.SkipReason("settings.landing (HUM_LANDING) is not set")
        landing_catalog = fsio.join(where, LANDING_CATALOG)
        state = json.loads(context.cursor) if context.cursor else {}
        pending = state.get("pending", {})  # name -> fingerprint seen once
        waiting = state.get("waiting", {})  # registered, not yet launched
        launched = state.get("launched", {})  # name -> fingerprint launched
        rejected = state.get("rejected", {})  # name -> fingerprint with a bad sidecar
        landed, problems = scan(where)
        ready = []
        for item in landed:
            fp = item.fingerprint
            if fp in (launched.get(item.name), waiting.get(item.name), rejected.get(item.name)):
                continue
            if pending.get(item.name) != fp:  # first sight, or still being written
                pending[item.name] = fp
                continue
            problem = validate_entry(item.entry)
            if problem:
                problems.append(problem)
                rejected[item.name] = fp
                pending.pop(item.name, None)
                continue
            ready.append(item)
        if ready:
            register(landing_catalog, [item.entry for item in ready])
            for item in ready:
                waiting[item.name] = item.fingerprint
                pending.pop(item.name, None)
                context.log.info(f"registered landed source {item.name} ({item.data})")
        for problem in problems:
            context.log.warning(problem)

        dynamic_requests = []
        if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
            new = [
                n
                for n in sorted(waiting)
                if not context.instance.has_dynamic_partition(partitions_def.name, n)
            ]
            if new and partitions_def is source_partitions:
                entries = [e for e in load_catalog(landing_catalog) if e.name in new]
                llm = settings is not None and context.resources.llm.mode != "offline"
                dynamic_requests.extend(partition_requests(context.instance, entries, llm))
            elif new:
                dynamic_requests.append(partitions_def.build_add_request(new))
            launchable = sorted(waiting)
        else:
            known = set(
                partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
            )
            launchable = sorted(n for n in waiting if n in known)
        runs = []
        for n in launchable:
            fp = waiting.pop(n)
            runs.append(
                dg.RunRequest(
                    run_key=f"landing:{n}:{fp}",
                    partition_key=n,
                    tags={"hum/trigger": "landing", "hum/source": n},
                )
            )
            launched[n] = fp
        cursor = json.dumps(
            {"pending": pending, "waiting": waiting, "launched": launched, "rejected": rejected},
            sort_keys=True,
        )
        skip = None
        if not runs:
            parts = []
            if pending:
                parts.append(f"waiting for stable files: {', '.join(sorted(pending))}")
            if waiting:
                parts.append(
                    f"registered, not yet partitions (reload the code location): "
                    f"{', '.join(sorted(waiting))}"
                )
            skip = "; ".join(parts) or "no new sources"
        return dg.SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=dynamic_requests or None,
            cursor=cursor,
            skip_reason=skip,
        )

    return _landing


landing_sensor = build_landing_sensor()


@dg.sensor(
    name="catalog_partitions",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for every catalog entry that has none (sources, and the "
    "compound partitions of the strategies that apply to it). Launches nothing; "
    "`hum run` also removes the partitions of entries no longer in its catalog.",
)
def catalog_partitions(context: dg.SensorEvaluationContext, settings: HumSettings, llm: LLMResource):
    try:
        entries = settings.entries()
    except CatalogError as exc:
        return dg.SkipReason(f"the catalog cannot be read: {exc}")
    requests = partition_requests(context.instance, entries.values(), llm.mode != "offline")
    if not requests:
        return dg.SkipReason(f"all {len(entries)} catalog entries have partitions")
    return dg.SensorResult(dynamic_partitions_requests=requests)


def _fingerprint(path: str) -> str:
    fs, p = fsio.filesystem(path)
    try:
        fs.invalidate_cache(p)
        info = fs.info(p)
    except FileNotFoundError:
        return "missing"
    modified = info.get("mtime") or info.get("LastModified")
    return f"{info.get('size')}:{info.get('ETag') or modified}"


def _modified(path: str) -> float | None:
    fs, p = fsio.filesystem(path)
    try:
        info = fs.info(p)
    except FileNotFoundError:
        return None
    modified = info.get("mtime") or info.get("LastModified")
    return modified.timestamp() if hasattr(modified, "timestamp") else modified


def entry_files(entry) -> list[str]:
    files = [entry.resolve()]
    files += [entry.resolve(str(entry.option(k))) for k in PATH_OPTIONS if entry.option(k)]
    return files


@dg.sensor(
    name="source_files_changed",
    job_name=SOURCE_JOB,
    minimum_interval_seconds=60,
    default_status=STOPPED,
    description="Re-runs synthesize_source for a catalog source whose files changed.",
)
def source_change_sensor(context: dg.SensorEvaluationContext, settings: HumSettings):
    known = json.loads(context.cursor) if context.cursor else {}
    runs = []
    try:
        entries = settings.entries()
    except CatalogError as exc:
        return dg.SkipReason(f"the catalog cannot be read: {exc}")
    for name, entry in sorted(entries.items()):
        files = entry_files(entry)
        fp = "|".join(_fingerprint(f) for f in files)
        previous = known.get(name)
        changed = previous is not None and previous != fp
        if previous is None:  # first look: compare with the last materialization
            event = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey("raw_sources"), asset_partitions=[name]
                ),
                limit=1,
            ).records
            if event:
                times = [_modified(f) for f in files]
                changed = any(t is not None and t > event[0].timestamp for t in times)
        if changed and "missing" not in fp:
            runs.append(
                dg.RunRequest(
                    run_key=f"changed:{name}:{fp}",
                    partition_key=name,
                    tags={"hum/trigger": "source_changed", "hum/source": name},
                )
            )
        known[name] = fp
    return dg.SensorResult(
        run_requests=runs,
        cursor=json.dumps(known, sort_keys=True),
        skip_reason=None if runs else "no source file changed",
    )


nightly_audit = dg.ScheduleDefinition(
    name="nightly_audit",
    job=audit_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Audit lineage and staleness every night.",
)

SCHEDULES = [nightly_audit]
SENSORS = [automation_sensor, landing_sensor, source_change_sensor, catalog_partitions]
JOBS = [audit_job]
