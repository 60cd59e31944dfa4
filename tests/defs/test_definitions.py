"""The Dagster graph on an ephemeral instance: every partition, checks, corpus export."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from hum_dagster.definitions import defs
from hum_dagster.defs.corpus.assets import hum_corpus
from hum_dagster.defs.dictionary.assets import schema_dictionary
from hum_dagster.defs.resources.io_manager import TableIOManager
from hum_dagster.defs.resources.llm import LLMResource
from hum_dagster.defs.resources.settings import HumSettings, catalog
from hum_dagster.defs.sources.assets import raw_sources
from hum_dagster.defs.synthesis.basic import basic_instructions
from hum_dagster.defs.synthesis.compound import compound_instructions
from hum_dagster.defs.synthesis.partitions import COMPOUND_STRATEGIES
from hum_dagster.store.tables import read_table

ALL_ASSETS = [raw_sources, basic_instructions, schema_dictionary, compound_instructions, hum_corpus]


def resources(root: str) -> dict:
    return {
        "io_manager": TableIOManager(root=root),
        "settings": HumSettings(storage_root=root),
        "llm": LLMResource(mode="offline"),
    }


def materialize_all(root: str, instance: dg.DagsterInstance) -> dict[str, dg.ExecuteInJobResult]:
    results = {}
    for key in sorted(catalog()):
        results[key] = dg.materialize(
            ALL_ASSETS,
            selection=[raw_sources, basic_instructions, schema_dictionary],
            partition_key=key,
            resources=resources(root),
            instance=instance,
            raise_on_error=False,
        )
        for strategy in COMPOUND_STRATEGIES:
            results[f"{key}|{strategy}"] = dg.materialize(
                ALL_ASSETS,
                selection=[compound_instructions],
                partition_key=dg.MultiPartitionKey({"source": key, "strategy": strategy}),
                resources=resources(root),
                instance=instance,
                raise_on_error=False,
            )
    results["__corpus__"] = dg.materialize(
        ALL_ASSETS,
        selection=[hum_corpus],
        partition_key="full",
        resources=resources(root),
        instance=instance,
        raise_on_error=False,
    )
    return results


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("storage"))
    instance = dg.DagsterInstance.ephemeral()
    return root, instance, materialize_all(root, instance)


def test_definitions_load_with_kinds_groups_and_catalog_partitions():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_sources", "source_quarantine", "basic_instructions", "schema_dictionary",
            "compound_instructions", "hum_corpus"} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name, key
        assert node.kinds, key
    partitions = raw_sources.partitions_def.get_partition_keys()
    assert sorted(partitions) == sorted(catalog())
    assert len(partitions) >= 10


def test_every_partition_materializes_and_checks_pass(built):
    root, instance, results = built
    failed = {k: r for k, r in results.items() if not r.success}
    assert not failed, sorted(failed)
    for key in sorted(catalog()):
        checks = results[key].get_asset_check_evaluations()
        assert {c.check_name for c in checks} == {
            "quarantine_rate_below_threshold",
            "outputs_parse_with_own_labels",
            "spans_occur_in_input",
            "labels_have_descriptions",
            "llm_requests_answered",
            "llm_values_accepted",
        }
        bad = [(c.check_name, c.metadata) for c in checks if not c.passed]
        assert not bad, (key, bad)
        table = read_table(f"{root}/basic_instructions/{key}.parquet")
        assert table.df.height > 0, key
        assert set(table.df["source"].unique()) == {key}
        for strategy in COMPOUND_STRATEGIES:
            compound = results[f"{key}|{strategy}"].get_asset_check_evaluations()
            assert {c.check_name for c in compound} == {
                "outputs_match_own_labels", "no_example_is_own_input",
                "no_own_answer_in_guidelines", "outputs_follow_stated_format",
                "llm_requests_answered", "llm_values_accepted",
            }
            bad = [(c.check_name, c.metadata) for c in compound if not c.passed]
            assert not bad, (key, strategy, bad)


def test_compound_partitions_hold_their_strategy_and_trace_back_to_basic(built):
    root, _, _ = built
    labelled = [k for k, e in catalog().items() if e.task in ("NER", "RE", "EE", "TC")]
    for key in labelled:
        basic_ids = set(read_table(f"{root}/basic_instructions/{key}.parquet").df["instruction_id"])
        for strategy in ("description", "label_variants"):
            frame = read_table(
                f"{root}/compound_instructions/source={key}/strategy={strategy}.parquet"
            ).df
            assert frame.height > 0, (key, strategy)
            assert set(frame["strategy"]) == {strategy}
            assert set(frame["base_instruction_id"]) <= basic_ids
            assert not set(frame["instruction_id"]) & basic_ids


def test_corpus_export_is_readable_alpaca_with_dataset_info(built):
    root, _, results = built
    with open(f"{root}/export/full/dataset_info.json", encoding="utf-8") as handle:
        info = json.load(handle)
    alpaca = {k: v for k, v in info.items() if v["formatting"] == "alpaca"}
    assert set(alpaca) == {"hum_train", "hum_validation"}
    total = 0
    for name, entry in alpaca.items():
        with open(f"{root}/export/full/{entry['file_name']}", encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle]
        total += len(lines)
        for line in lines:
            assert line["output"] != "" or "history" in line
            assert isinstance(line["instruction"], str) and line["instruction"]
        assert lines, name
    corpus = read_table(f"{root}/hum_corpus/full.parquet").df
    assert corpus.height == total
    assert set(corpus["mode"].unique()) == {"train"}
    assert {"basic", "description", "examples", "label_variants"} <= set(corpus["strategy"])
    assert corpus.select(pl.struct("instruction", "output").is_duplicated().sum()).item() == 0
    # test-split sources become evaluation instructions, never training data
    test_sources = {k for k, e in catalog().items() if e.split != "train"}
    assert not test_sources & set(corpus["source"].unique())


def test_materialization_metadata_for_people(built):
    root, instance, _ = built
    key = sorted(catalog())[0]
    event = instance.get_latest_materialization_event(dg.AssetKey("basic_instructions"))
    assert event is not None
    meta = event.asset_materialization.metadata
    assert {"instructions", "per_task", "sample", "templates"} <= set(meta)
    raw = instance.fetch_materializations(dg.AssetKey("raw_sources"), limit=100).records
    assert any(r.partition_key == key for r in raw)
    raw_meta = raw[0].asset_materialization.metadata
    assert {"records", "quarantined", "label_counts", "sample", "path"} <= set(raw_meta)


def test_partitions_are_deterministic_across_roots_and_order(tmp_path):
    keys = sorted(catalog())
    frames = []
    for root, order in ((tmp_path / "a", keys), (tmp_path / "b", list(reversed(keys)))):
        instance = dg.DagsterInstance.ephemeral()
        for key in order:
            dg.materialize(
                ALL_ASSETS, selection=[raw_sources, basic_instructions, schema_dictionary],
                partition_key=key, resources=resources(str(root)), instance=instance,
            )
        frames.append({k: (root / "basic_instructions" / f"{k}.parquet").read_bytes() for k in keys})
    for key in keys:
        a = pl.read_parquet(frames[0][key])
        b = pl.read_parquet(frames[1][key])
        assert a.equals(b), key


def test_allocator_returns_memory_unless_the_user_set_it():
    """hum_dagster sets polars' jemalloc to give freed pages back at once (before polars
    loads), and leaves a user's own setting alone. Polars puts its own defaults in front
    on import; jemalloc takes the last value of each option."""
    import os
    import subprocess
    import sys

    code = "import hum_dagster, os, polars; print(os.environ['_RJEM_MALLOC_CONF'])"

    def effective(env: dict[str, str]) -> dict[str, str]:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return dict(item.split(":", 1) for item in out.stdout.strip().split(","))

    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    conf = effective(env)
    assert (conf["dirty_decay_ms"], conf["muzzy_decay_ms"]) == ("0", "0"), conf
    conf = effective({**env, "_RJEM_MALLOC_CONF": "narenas:2"})
    assert conf["narenas"] == "2" and conf.get("dirty_decay_ms") != "0", conf
