"""``schema_dictionary`` with ``HUM_LLM_DICTIONARY_EXAMPLES=1`` against the loopback
OpenAI-compatible server: one step report for both LLM steps (describe + examples) under
the llm/* keys, the two LLM checks on it, the examples step's own counts under
``dictionary/examples``; junk answers fail the partition in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import pytest
from conftest import SOURCE_KEYS, register, run
from openai_server import LoopbackOpenAI

sys.path.insert(0, str(Path(__file__).parents[1] / "dictionary"))
from answers_fewrel import JUNK, PLAUSIBLE, by_prompt  # noqa: E402

from hum_dagster.defs.resources.llm import LLM_ACCEPTED_CHECK, LLM_ANSWERED_CHECK  # noqa: E402
from hum_dagster.llm import client as client_mod  # noqa: E402

SOURCE = "re_en_fewrel"  # 4 relations: 4 describe + 4 examples requests


@pytest.fixture
def server(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("HUM_EXAMPLES_KEY", "sk-examples-test")
    with LoopbackOpenAI() as s:
        yield s


def _run(server, hum_env, project_defs, tmp_path, answers):
    server.default = by_prompt(answers)
    instance = dg.DagsterInstance.ephemeral()
    register(instance)
    llm = {"mode": "live", "base_url": server.base_url, "model": "m",
           "api_key_env": "HUM_EXAMPLES_KEY", "max_retries": 0, "max_invalid_retries": 0,
           "structured_output": "none", "dictionary_examples": 1}
    resources = {"llm": {"config": llm}, "settings": {"config": {"storage_root": str(tmp_path)}},
                 "io_manager": {"config": {"root": str(tmp_path)}}}
    return run(project_defs, instance, SOURCE_KEYS, SOURCE, run_config={"resources": resources},
               )


def test_plausible_answers_one_report_for_both_steps(server, hum_env, project_defs, tmp_path):
    result = _run(server, hum_env, project_defs, tmp_path, PLAUSIBLE)
    assert result.success
    [mat] = [e.materialization for e in result.get_asset_materialization_events()
             if e.materialization.asset_key == dg.AssetKey("schema_dictionary")]
    meta = mat.metadata
    assert meta["llm/step"].value == "dictionary.describe+dictionary.examples"
    assert meta["llm/requests"].value == 8 and meta["llm/failed"].value == 0
    assert meta["llm/values"].value == 11 + 26 and meta["llm/accepted"].value == 11 + 24
    assert meta["llm/rejected_by_reason"].value == {"meaning_changed": 2}
    examples = meta["dictionary/examples"].value
    assert examples["added"] == {"positives": 5, "negatives": 6, "candidates": 5}
    found = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert found[LLM_ANSWERED_CHECK].passed and found[LLM_ACCEPTED_CHECK].passed
    assert "label_examples@" in meta["entries"].value  # the origin shows in the UI view


def test_junk_answers_fail_the_partition_in_one_line(server, hum_env, project_defs, tmp_path):
    result = _run(server, hum_env, project_defs, tmp_path, JUNK)
    assert not result.success
    [event] = [e for e in result.all_events if e.is_step_failure]
    line = event.step_failure_data.user_failure_data.description
    assert "\n" not in line
    assert line.startswith(f"schema_dictionary[{SOURCE}]: dictionary.describe+dictionary.examples")
    assert "2 of 8 requests failed" in line
