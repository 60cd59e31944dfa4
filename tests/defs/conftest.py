"""The project's definitions on an ephemeral instance, with the settings a code location
gets from its environment (dg.EnvVar) pointed at a temporary storage root."""

from __future__ import annotations

import dagster as dg
import pytest

from hum_dagster.defs.resources.settings import HumSettings, env_defaults
from hum_dagster.defs.synthesis.partitions import sync_partitions


@pytest.fixture
def hum_env(tmp_path, monkeypatch):
    """The .env defaults with the storage root in ``tmp_path``; returns the root."""
    for name, value in env_defaults().items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "storage"
    monkeypatch.setenv("HUM_STORAGE_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def project_defs() -> dg.Definitions:
    from hum_dagster.definitions import defs

    return defs()


def register(instance: dg.DagsterInstance, catalog: str | None = None) -> dict:
    """Register the catalog's partitions; returns the entries by name."""
    settings = HumSettings(storage_root="unused", **({"catalog": catalog} if catalog else {}))
    entries = settings.entries()
    sync_partitions(instance, entries.values())
    return entries


def run(definitions: dg.Definitions, instance, keys, partition=None, run_config=None):
    """Materialize ``keys`` (asset keys; their checks come along) for one partition."""
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey.from_coercible(k) for k in keys}
    )
    return job.execute_in_process(
        partition_key=partition, instance=instance, raise_on_error=False, run_config=run_config
    )


def run_check(definitions: dg.Definitions, instance, asset, check: str, partition=None):
    """Execute one asset check (only) against what is stored, as the UI's "Execute" on a
    check of a partition does: a run selecting the check alone."""
    key = dg.AssetCheckKey(dg.AssetKey.from_coercible(asset), check)
    partitions_def = definitions.resolve_asset_graph().get(key.asset_key).partitions_def
    job = dg.define_asset_job("one_check", selection=dg.AssetSelection.checks(key),
                              partitions_def=partitions_def)
    merged = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job]))
    # by tag: execute_in_process's partition_key wants a selected asset to take the
    # partitions definition from, and this run selects a check only
    result = merged.resolve_job_def("one_check").execute_in_process(
        tags={"dagster/partition": partition} if partition else None,
        instance=instance, raise_on_error=False,
    )
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == check]
    assert len(evaluations) == 1, (check, result.success)
    return evaluations[0]


SOURCE_KEYS = ("raw_sources", "source_quarantine", "basic_instructions", "schema_dictionary")
