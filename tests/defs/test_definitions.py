"""The Dagster graph on an ephemeral instance: the dg project, its partitions, every
partition materialized, checks, corpus export, settings from environment variables."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest
from conftest import SOURCE_KEYS, register, run

from hum_dagster.defs.resources.settings import env_defaults
from hum_dagster.defs.synthesis.compound import compound_key
from hum_dagster.defs.synthesis.partitions import applicability, compound_partitions
from hum_dagster.paths import PACKAGE_DIR, PROJECT_DIR
from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.store.tables import read_table
from hum_dagster.synthesis.strategies import STRATEGIES, applicable


@pytest.fixture(scope="module")
def built(tmp_path_factory, project_defs):
    """Every partition of the synthesis and corpus assets of the shipped catalog."""
    root = tmp_path_factory.mktemp("storage")
    instance = dg.DagsterInstance.ephemeral()
    results = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env_defaults().items():
            mp.setenv(name, value)
        mp.setenv("HUM_STORAGE_ROOT", str(root))
        entries = register(instance)
        for source in sorted(entries):
            results[source] = run(project_defs, instance, SOURCE_KEYS, source)
            for strategy in applicable(entries[source].task, entries[source].split):
                results[f"{source}|{strategy}"] = run(
                    project_defs, instance, [compound_key(strategy)], source
                )
        results["__corpus__"] = run(project_defs, instance, ["hum_corpus"], "full")
    return root, instance, entries, results


def test_a_dg_project_loaded_from_the_defs_folder(project_defs):
    import tomllib

    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    assert project["tool"]["dg"]["project"]["root_module"] == "hum_dagster"
    assert "dagster" not in project["tool"]  # the older [tool.dagster] table is gone
    repo = project_defs.get_repository_def()
    graph = repo.asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_sources", "source_quarantine", "basic_instructions", "schema_dictionary",
            "hum_corpus", *(f"compound_instructions/{s}" for s in STRATEGIES)} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name, key
        assert node.kinds, key
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"sources", "dictionary", "synthesis", "corpus", "training", "evaluation",
                      "operations"}


def test_resources_are_fed_by_environment_variables(project_defs):
    resources = project_defs.resources
    assert isinstance(resources["settings"].storage_root, dg.EnvVar)
    assert resources["settings"].storage_root.env_var_name == "HUM_STORAGE_ROOT"
    assert resources["settings"].catalog.env_var_name == "HUM_CATALOG"
    assert resources["llm"].mode.env_var_name == "HUM_LLM_MODE"
    assert resources["io_manager"].root.env_var_name == "HUM_STORAGE_ROOT"
    assert resources["settings"].mix_mode.env_var_name == "HUM_MIX_MODE"
    assert resources["settings"].mix_total.env_var_name == "HUM_MIX_TOTAL"
    assert resources["settings"].corpus_threads.env_var_name == "HUM_CORPUS_THREADS"
    assert resources["settings"].corpus_scan_workers.env_var_name == "HUM_CORPUS_SCAN_WORKERS"
    # every variable the definitions read has an embedded default in .env
    assert {"HUM_STORAGE_ROOT", "HUM_CATALOG", "HUM_LLM_MODE", "HUM_LLM_API_KEY_ENV",
            "HUM_TRAIN_LAUNCHER", "HUM_EVAL_LAUNCHER", "HUM_MIX_MODE", "HUM_MIX_TOTAL",
            "HUM_CORPUS_THREADS", "HUM_CORPUS_SCAN_WORKERS"} <= set(env_defaults())


def _module_level_environ(path) -> list[int]:
    """Lines where ``os.environ``/``os.getenv`` is used outside any function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside |= {n.lineno for n in ast.walk(node) if hasattr(n, "lineno")}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and (
            isinstance(node.value, ast.Name) and node.value.id == "os"
        ) and node.lineno not in inside:
            lines.append(node.lineno)
    return lines


def test_no_environment_variable_is_read_at_import_in_defs():
    files = [PACKAGE_DIR / "definitions.py", *(PACKAGE_DIR / "defs").rglob("*.py")]
    found = {str(p.relative_to(PACKAGE_DIR)): _module_level_environ(p) for p in files}
    assert not {k: v for k, v in found.items() if v}, found
    # and the definitions load with none of the settings set
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("HUM_")}
    code = "from hum_dagster.definitions import defs; print(len(defs().resolve_asset_graph().get_all_asset_keys()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and int(out.stdout.split()[-1]) >= 20, out.stderr[-2000:]


def test_only_applicable_source_strategy_pairs_are_partitions():
    instance = dg.DagsterInstance.ephemeral()
    entries = register(instance)
    pairs = {
        (name, strategy)
        for strategy in STRATEGIES
        for name in instance.get_dynamic_partitions(compound_partitions[strategy].name)
    }
    expected = {(n, s) for n, e in entries.items() for s in applicable(e.task, e.split)}
    assert pairs == expected
    by_task = {entries[n].task for n, _ in pairs}
    assert "IG" not in by_task  # chat data has no labels and no answer to reformat
    # format variants only, alone or as the one part of a combined row
    assert {s for n, s in pairs if entries[n].task in ("MRC", "OpenIE")} == {
        "format_variants", "combined"
    }
    assert len(pairs) < len(entries) * len(STRATEGIES)
    # a test-split source gives evaluation rows only: no compound partition at all
    test_entry = CatalogEntry(name="held_out", task="NER", language="en", format="conll",
                              location="x", split="test")
    assert applicable(test_entry.task, test_entry.split) == ()
    # a catalog entry removed from the catalog loses its partitions
    from hum_dagster.defs.synthesis.partitions import sync_partitions

    kept = [e for n, e in entries.items() if n != "ner_en_conll"]
    changes = sync_partitions(instance, kept)
    assert "ner_en_conll" in changes["sources"]["removed"]
    assert "ner_en_conll" not in instance.get_dynamic_partitions("compound_description")


def test_every_partition_materializes_holds_rows_and_checks_pass(built):
    root, instance, entries, results = built
    failed = {k: r for k, r in results.items() if not r.success}
    assert not failed, sorted(failed)
    empty = []
    for key in sorted(entries):
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
        for strategy in applicable(entries[key].task, entries[key].split):
            result = results[f"{key}|{strategy}"]
            expected = set(STRATEGIES[strategy].checks())
            if STRATEGIES[strategy].uses_llm:  # the LLM step's two checks
                expected |= {"llm_requests_answered", "llm_values_accepted"}
            assert {c.check_name for c in result.get_asset_check_evaluations()} == expected
            bad = [(c.check_name, c.metadata) for c in result.get_asset_check_evaluations() if not c.passed]
            assert not bad, (key, strategy, bad)
            meta = result.get_asset_materialization_events()[0].materialization.metadata
            if meta["instructions"].value == 0:
                # the strategy applies to the task, and this sample has nothing for it: every
                # row is accounted for as skipped, with its reason (never faked)
                skipped = meta["skipped"].value
                assert skipped and sum(skipped.values()) >= meta["basic_rows_in"].value, (key, strategy)
                empty.append((key, strategy))
    assert empty == [("ee_zh_iepile", "preference_rules")]  # offline: no EET row has a rule candidate


def test_compound_partitions_hold_their_strategy_and_trace_back_to_basic(built):
    root, _, entries, _ = built
    labelled = [k for k, e in entries.items() if e.task in ("NER", "RE", "EE", "TC")]
    for key in labelled:
        basic_ids = set(read_table(f"{root}/basic_instructions/{key}.parquet").df["instruction_id"])
        for strategy in ("description", "label_variants"):
            frame = read_table(f"{root}/compound_instructions/{strategy}/{key}.parquet").df
            assert frame.height > 0, (key, strategy)
            assert set(frame["strategy"]) == {strategy}
            assert set(frame["base_instruction_id"]) <= basic_ids
            assert not set(frame["instruction_id"]) & basic_ids


def test_corpus_export_is_readable_alpaca_with_dataset_info(built):
    root, instance, entries, results = built
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
            # an empty output only where a format variant lists answers one per line and
            # the record has none (its instruction states the format)
            assert line["output"] != "" or "history" in line or '"format":' in line["instruction"]
            assert isinstance(line["instruction"], str) and line["instruction"]
        assert lines, name
    corpus = read_table(f"{root}/hum_corpus/full.parquet").df
    assert corpus.height == total
    assert set(corpus["mode"].unique()) == {"train"}
    assert {"basic", "description", "examples", "label_variants"} <= set(corpus["strategy"])
    assert corpus.select(pl.struct("instruction", "output").is_duplicated().sum()).item() == 0
    test_sources = {k for k, e in entries.items() if e.split != "train"}
    assert not test_sources & set(corpus["source"].unique())
    meta = results["__corpus__"].get_asset_materialization_events()[0].materialization.metadata
    assert meta["sources_mixed"].value == len(entries)  # the inputs it read, in its metadata
    assert "ner_en_conll" in meta["inputs"].value
    # the default mix (fill) uses every usable row and says so per task
    assert meta["mix_mode"].value == "fill"
    assert meta["mix_settings"].value == {"mix_mode": "fill", "mix_total": 0, "mix_compound": "all"}
    tasks = {r["task"]: r for r in meta["mix_by_task"].value}
    assert sum(r["used"] for r in tasks.values()) == corpus.height
    for row in tasks.values():
        assert row["used"] == row["available"], row
        assert row["limited_by"] == ("all available" if row["available"] else "no rows"), row
    assert set(corpus["task"].unique()) == {t for t, r in tasks.items() if r["used"]}
    assert "| task | target_share | available | wanted | used |" in meta["mix_by_task_table"].value


def test_a_bad_mix_setting_fails_the_corpus_with_one_line(built, project_defs, hum_env):
    root, instance, _, _ = built
    for settings, expected in (
        ({"mix_mode": "balanced"}, "settings: mix_mode: unknown mix mode 'balanced'; "
         "expected one of fill, strict"),
        ({"mix_total": -10}, "settings: mix_total must be >= 0 (0: no total), got -10"),
        ({"mix_compound": "some"}, "settings: mix_compound: unknown compound source 'some'; "
         "expected one of all, combined"),
    ):
        config = {"resources": {
            "settings": {"config": {"storage_root": str(root), **settings}},
            "io_manager": {"config": {"root": str(root)}},
        }}
        result = run(project_defs, instance, ["hum_corpus"], "full", run_config=config)
        assert not result.success
        failure = result.get_step_failure_events()[0].step_failure_data
        assert failure.user_failure_data.description == expected


def test_materialization_metadata_for_people(built):
    root, instance, entries, _ = built
    key = sorted(entries)[0]
    event = instance.get_latest_materialization_event(dg.AssetKey("basic_instructions"))
    assert event is not None
    meta = event.asset_materialization.metadata
    assert {"instructions", "per_task", "sample", "templates"} <= set(meta)
    raw = instance.fetch_materializations(dg.AssetKey("raw_sources"), limit=100).records
    assert any(r.partition_key == key for r in raw)
    raw_meta = raw[0].asset_materialization.metadata
    assert {"records", "quarantined", "label_counts", "sample", "path"} <= set(raw_meta)


def test_partitions_are_deterministic_across_roots_and_order(tmp_path, project_defs, monkeypatch):
    for name, value in env_defaults().items():
        monkeypatch.setenv(name, value)
    frames = []
    keys = None
    for root_name, reverse in (("a", False), ("b", True)):
        monkeypatch.setenv("HUM_STORAGE_ROOT", str(tmp_path / root_name))
        instance = dg.DagsterInstance.ephemeral()
        keys = sorted(register(instance))
        for key in sorted(keys, reverse=reverse):
            assert run(project_defs, instance, SOURCE_KEYS, key).success
        frames.append({k: (tmp_path / root_name / "basic_instructions" / f"{k}.parquet").read_bytes()
                       for k in keys})
    for key in keys:
        assert pl.read_parquet(frames[0][key]).equals(pl.read_parquet(frames[1][key])), key


def test_run_config_overrides_the_environment(tmp_path, project_defs, hum_env):
    """What `hum run --storage-root` does: resource config in the run config wins over the
    environment variable the definitions name."""
    instance = dg.DagsterInstance.ephemeral()
    register(instance)
    other = tmp_path / "elsewhere"
    config = {"resources": {"settings": {"config": {"storage_root": str(other)}},
                            "io_manager": {"config": {"root": str(other)}}}}
    result = run(project_defs, instance, SOURCE_KEYS, "tc_en_csv", run_config=config)
    assert result.success
    assert (other / "basic_instructions" / "tc_en_csv.parquet").exists()
    assert not (hum_env / "basic_instructions").exists()


def test_allocator_returns_memory_unless_the_user_set_it():
    """hum_dagster sets polars' jemalloc to give freed pages back at once (before polars
    loads), and leaves a user's own setting alone. Polars puts its own defaults in front
    on import; jemalloc takes the last value of each option."""
    import os

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


def test_strategies_for_the_same_sources_share_one_partitions_definition():
    names = list(STRATEGIES)
    for a in names:
        for b in names:
            same = applicability(STRATEGIES[a]) == applicability(STRATEGIES[b])
            assert (compound_partitions[a] is compound_partitions[b]) == same, (a, b)
    groups: dict[str, list[str]] = {}
    for name, definition in compound_partitions.items():
        groups.setdefault(definition.name, []).append(name)
    assert groups == {
        "compound_description": ["description", "examples", "output_format", "label_variants",
                                 "label_masking", "description_variants",
                                 "representative_examples"],
        "compound_preference_rules": ["preference_rules"],
        "compound_format_variants": ["format_variants", "combined"],
    }
    # an LLM widens preference_rules to more tasks, so it cannot share with a group
    # whose sources are the same without one
    assert applicability(STRATEGIES["preference_rules"]) != applicability(STRATEGIES["description"])
