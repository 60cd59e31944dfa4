"""Automation: the declarative condition, the landing sensor, the source-change sensor."""

import json

import dagster as dg
import yaml

from hum_dagster.defs.operations.automation import (
    HUM_CONDITION,
    JOBS,
    SCHEDULES,
    SENSORS,
    build_landing_sensor,
)
from hum_dagster.operations.landing import CATALOG_NAME, read_catalog

parts = dg.StaticPartitionsDefinition(["a", "b"])


def toy_defs(code_version: str = "1", fail_b: bool = False) -> dg.Definitions:
    @dg.asset(partitions_def=parts, automation_condition=HUM_CONDITION, code_version="1")
    def up(context: dg.AssetExecutionContext):
        if fail_b and context.partition_key == "b":
            raise RuntimeError("corrupt b")
        return 1

    @dg.asset(partitions_def=parts, automation_condition=HUM_CONDITION, code_version=code_version)
    def down(up):
        return up + 1

    return dg.Definitions(assets=[up, down])


def requested(result) -> set[tuple[str, str]]:
    out = set()
    for r in result.results:
        for key in r.true_subset.expensively_compute_asset_partitions():
            out.add((key.asset_key.to_user_string(), key.partition_key))
    return out


def test_condition_requests_missing_then_updated_then_new_code_version():
    instance = dg.DagsterInstance.ephemeral()
    defs = toy_defs()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    # everything is missing; `down` runs after `up` in the same request
    assert requested(first) == {("up", "a"), ("up", "b"), ("down", "a"), ("down", "b")}
    for key in ("a", "b"):
        dg.materialize([*defs.assets], instance=instance, partition_key=key)
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert requested(settled) == set()
    # upstream data changed: only the partition that reads it
    dg.materialize([*defs.assets], instance=instance, partition_key="a", selection=["up"])
    updated = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    assert requested(updated) == {("down", "a")}
    dg.materialize([*defs.assets], instance=instance, partition_key="a", selection=["down"])
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=updated.cursor)
    assert requested(settled) == set()
    # a new code version of `down` makes every partition of it stale
    bumped = dg.evaluate_automation_conditions(
        defs=toy_defs(code_version="2"), instance=instance, cursor=settled.cursor
    )
    assert requested(bumped) == {("down", "a"), ("down", "b")}


def test_failed_partition_is_not_retried_every_tick():
    instance = dg.DagsterInstance.ephemeral()
    defs = toy_defs(fail_b=True)
    result = dg.materialize(
        [*defs.assets], instance=instance, partition_key="b", selection=["up"], raise_on_error=False
    )
    assert not result.success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert ("up", "b") not in requested(tick) and ("up", "a") in requested(tick)


def test_ops_definitions_are_part_of_the_project():
    from hum_dagster.definitions import defs
    from hum_dagster.defs.resources.settings import HumSettings
    from hum_dagster.defs.synthesis.partitions import sync_partitions

    definitions = defs()
    repo = definitions.get_repository_def()
    assert {s.name for s in SENSORS} <= {s.name for s in repo.sensor_defs}
    assert {s.name for s in SCHEDULES} <= {s.name for s in repo.schedule_defs}
    assert all(repo.has_job(j.name) for j in JOBS)
    assert {s.name for s in repo.sensor_defs} == {
        "hum_automation",
        "landing_sensor",
        "source_files_changed",
        "catalog_partitions",
    }
    assert repo.has_job("audit_lineage") and repo.has_schedule_def("nightly_audit")
    assert dg.AssetKey("lineage_audit") in repo.asset_graph.get_all_asset_keys()
    from hum_dagster.defs.operations.automation import automation_sensor

    target = automation_sensor.asset_selection.resolve(repo.asset_graph)
    names = {k.to_user_string() for k in target}
    assert {
        "raw_sources",
        "basic_instructions",
        "schema_dictionary",
        "compound_instructions/description",
        "hum_corpus",
        "eval_scores",
    } <= names
    # the sensor's default condition, applied to the project's graph on an instance with
    # the catalog registered, requests every partition of every root and its downstreams
    instance = dg.DagsterInstance.ephemeral()
    entries = HumSettings(storage_root="unused").entries()
    sync_partitions(instance, entries.values())
    # (the defs folder lists an asset once per module that names it; one of each here)
    unique = dg.Definitions(
        assets=list({id(a): a for a in definitions.assets}.values()),
        asset_checks=list({id(c): c for c in definitions.asset_checks}.values()),
        resources=definitions.resources,
    )
    with_condition = unique.map_resolved_asset_specs(
        func=lambda spec: spec.replace_attributes(automation_condition=HUM_CONDITION),
        selection=list(target),
    )
    result = dg.evaluate_automation_conditions(defs=with_condition, instance=instance)
    by_key = {r.key.to_user_string(): r.true_subset.size for r in result.results}
    assert by_key["raw_sources"] == len(entries)
    assert by_key["basic_instructions"] == len(entries)


def test_catalog_sensor_adds_partitions_for_new_entries(tmp_path):
    from hum_dagster.defs.operations.automation import catalog_partitions
    from hum_dagster.defs.resources.llm import LLMResource
    from hum_dagster.defs.resources.settings import HumSettings

    catalog = tmp_path / "catalog.yaml"
    entry = {"name": "news", "task": "TC", "language": "en", "format": "csv",
             "location": str(tmp_path / "news.csv"), "options": {"text_column": "text",
                                                                  "label_column": "label"}}
    catalog.write_text(yaml.safe_dump({"sources": [entry]}), encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"settings": HumSettings(storage_root="unused", catalog=str(catalog)),
                 "llm": LLMResource(mode="offline")}
    result = catalog_partitions(dg.build_sensor_context(instance=instance, resources=resources))
    requests = {r.partitions_def_name: list(r.partition_keys) for r in result.dynamic_partitions_requests}
    assert requests["sources"] == ["news"]
    assert requests["compound_description"] == ["news"]
    assert "compound_preference_rules" not in requests  # no rule applies to a TC source
    assert not result.run_requests  # it launches nothing
    for name, keys in requests.items():
        instance.add_dynamic_partitions(name, keys)
    again = catalog_partitions(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(again, dg.SkipReason)


def _sidecar(path, **fields):
    path.write_text(yaml.safe_dump(fields), encoding="utf-8")


def test_landing_sensor_registers_only_complete_files_and_launches_them(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    dyn = dg.DynamicPartitionsDefinition(name="landed")

    @dg.asset(partitions_def=dyn)
    def landed_raw():
        return 1

    job = dg.define_asset_job("land_job", selection=[landed_raw], partitions_def=dyn)
    sensor = build_landing_sensor("land", "land_job", dyn, root=str(landing))
    defs = dg.Definitions(assets=[landed_raw], jobs=[job], sensors=[sensor])
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        result = sensor(ctx)
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        return result

    # a data file with no sidecar: never registered; a growing one: not until it is stable
    (landing / "orphan.tsv").write_text("x\n")
    growing = landing / "news.csv"
    growing.write_text("text,label\nfine,positive\n")
    _sidecar(
        landing / "news.source.yaml",
        task="TC",
        language="en",
        format="csv",
        options={"text_column": "text", "label_column": "label"},
    )
    first = tick(None)
    assert (
        not first.run_requests
        and "waiting for stable files: news" in first.skip_reason.skip_message
    )
    with growing.open("a") as handle:
        handle.write("bad,negative\n")  # still uploading
    second = tick(first.cursor)
    assert not second.run_requests
    third = tick(second.cursor)  # unchanged since the last tick: complete
    assert [r.partition_key for r in third.run_requests] == ["news"]
    assert third.run_requests[0].tags["hum/trigger"] == "landing"
    assert instance.get_dynamic_partitions("landed") == ["news"]
    catalog = read_catalog(str(landing / CATALOG_NAME))
    assert catalog[0]["name"] == "news" and catalog[0]["location"] == str(growing)
    assert tick(third.cursor).run_requests == []  # launched once

    # a bad sidecar (unknown format) is reported, never registered
    (landing / "weird.bin").write_text("?")
    _sidecar(
        landing / "weird.source.yaml", task="TC", language="en", format="nope", file="weird.bin"
    )
    state = third.cursor
    for _ in range(3):
        result = tick(state)
        state = result.cursor
        assert not result.run_requests
    assert "weird" in json.loads(state)["rejected"]
    assert [e["name"] for e in read_catalog(str(landing / CATALOG_NAME))] == ["news"]


def test_landing_sensor_with_static_partitions_waits_for_a_reload(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    static = dg.StaticPartitionsDefinition(["known"])
    sensor = build_landing_sensor("land", "job", static, root=str(landing))
    (landing / "fresh.csv").write_text("text,label\na,b\n")
    _sidecar(landing / "fresh.source.yaml", task="TC", language="en", format="csv")
    instance = dg.DagsterInstance.ephemeral()
    one = sensor(dg.build_sensor_context(instance=instance))
    two = sensor(dg.build_sensor_context(instance=instance, cursor=one.cursor))
    assert not two.run_requests
    assert "reload the code location" in two.skip_reason.skip_message
    assert read_catalog(str(landing / CATALOG_NAME))[0]["name"] == "fresh"
