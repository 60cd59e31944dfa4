"""Lineage audits over real outputs and a real event log; instance configs validate."""

import os
import shutil

import dagster as dg
import pytest
from dagster._core.instance.config import dagster_instance_config

from hum_dagster.definitions import defs
from hum_dagster.defs.operations.audit import full_audit, materialization_audit
from hum_dagster.defs.resources.io_manager import TableIOManager
from hum_dagster.defs.resources.llm import LLMResource
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.synthesis.compound import compound_key
from hum_dagster.defs.synthesis.partitions import sync_partitions
from hum_dagster.operations.audit import lineage, render_markdown
from hum_dagster.paths import PROJECT_DIR

SOURCE = "ner_en_conll"


def _resources(root):
    return {
        "io_manager": TableIOManager(root=root),
        "settings": HumSettings(storage_root=root),
        "llm": LLMResource(mode="offline"),
    }


def test_audit_names_sources_templates_dictionary_entries_and_staleness(tmp_path):
    root = str(tmp_path / "storage")
    instance = dg.DagsterInstance.ephemeral()
    sync_partitions(instance, HumSettings(storage_root=root).entries().values())
    dg.materialize(
        _assets(),
        selection=["raw_sources", "source_quarantine", "basic_instructions", "schema_dictionary"],
        partition_key=SOURCE,
        instance=instance,
        resources=_resources(root),
    )
    for strategy in ("description", "label_variants"):
        dg.materialize(
            _assets(),
            selection=[compound_key(strategy)],
            instance=instance,
            partition_key=SOURCE,
            resources=_resources(root),
        )

    audit = lineage(root, "instructions")
    sources = audit.section("sources").rows
    assert sources[0]["source"] == SOURCE and len(sources[0]["sha256"]) == 16
    strategies = {r["strategy"] for r in audit.section("contributions").rows}
    assert strategies == {"basic", "description", "label_variants"}
    assert sum(r["instructions"] for r in audit.section("contributions").rows) > 0
    assert any(r["version"] for r in audit.section("templates").rows)
    entries = audit.section("dictionary_entries").rows
    assert entries and all(r["kind"] != "NOT IN DICTIONARY" for r in entries)
    assert "### contributions" in render_markdown(audit)

    graph = defs().resolve_asset_graph()
    table, stale = materialization_audit(instance, graph)
    assert not stale.rows, stale.rows
    # re-read the source: everything downstream of it is now stale, and says why
    dg.materialize(
        _assets(),
        selection=["raw_sources", "source_quarantine"],
        partition_key=SOURCE,
        instance=instance,
        resources=_resources(root),
    )
    _, stale = materialization_audit(instance, graph)
    reasons = {(r["asset"], str(r["partition"])): r["reasons"] for r in stale.rows}
    assert "upstream raw_sources" in reasons[("basic_instructions", SOURCE)]
    compound = [v for (a, p), v in reasons.items() if a.startswith("compound_instructions/")]
    assert len(compound) == 2 and all("upstream" in v for v in compound), reasons
    full = full_audit(instance, graph, root, "instructions")
    assert full.section("missing").rows  # other sources were never materialized


def _assets():
    from hum_dagster.defs.dictionary.assets import schema_dictionary
    from hum_dagster.defs.sources.assets import raw_sources
    from hum_dagster.defs.synthesis.basic import basic_instructions
    from hum_dagster.defs.synthesis.compound import compound_assets

    return [raw_sources, basic_instructions, schema_dictionary, *compound_assets]


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.postgres.yaml", "dagster.s3.yaml"])
def test_instance_configs_validate(tmp_path, name, monkeypatch):
    for var in (
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
        "HUM_DAGSTER_LOG_BUCKET",
    ):
        monkeypatch.setenv(var, "x")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
    shutil.copy(PROJECT_DIR / "resources" / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_retries"]["enabled"] is True
    assert os.path.exists(tmp_path / "dagster.yaml")
