"""The LLM steps in the graph, against the loopback OpenAI-compatible server: step
metadata under the llm/* keys, the checks llm_requests_answered and llm_values_accepted,
and partitions that fail in one line (all requests failed, failures past the threshold,
replay misses, a model the endpoint does not serve)."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from conftest import SOURCE_KEYS, register, run
from openai_server import LoopbackOpenAI

from hum_dagster.defs.resources.llm import LLM_ACCEPTED_CHECK, LLM_ANSWERED_CHECK
from hum_dagster.defs.synthesis.compound import compound_key
from hum_dagster.llm import client as client_mod
from hum_dagster.llm.report import summary_line

SOURCE = "ner_en_conll"  # 4 labels: 4 describe requests
SYNONYMS = {
    "person": "named human",
    "organisation": "corporate body",
    "location": "place name",
    "misc": "other name",
}
JUNK = json.dumps({"descriptions": ["Kelmshire", "{", "description1"], "synonyms": ["Chickentown"]})


def answers(good=tuple(SYNONYMS)) -> dict:
    """Per label: a good answer (a sentence, a label name) for ``good``, junk otherwise."""
    pairs = [
        [
            f'Label: "{label}"',
            json.dumps(
                {
                    "descriptions": [f"A {label} of this kind, as the text mentions it."],
                    "synonyms": [SYNONYMS[label]],
                }
            ),
        ]
        for label in good
    ]
    return {"kind": "by_prompt", "answers": pairs, "otherwise": JUNK}


@pytest.fixture
def server(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("HUM_CHECKS_KEY", "sk-checks-test")
    with LoopbackOpenAI() as s:
        s.default = answers()
        yield s


@pytest.fixture
def graph(hum_env, project_defs):
    """(definitions, instance with the sample partitions registered)."""
    instance = dg.DagsterInstance.ephemeral()
    register(instance)
    return project_defs, instance


def llm(server: LoopbackOpenAI, **kw) -> dict:
    """The ``llm`` resource's config for a run against the loopback server."""
    return {
        "mode": "live",
        "base_url": server.base_url,
        "model": "m",
        "api_key_env": "HUM_CHECKS_KEY",
        "max_retries": 0,
        "max_invalid_retries": 0,
        "structured_output": "none",
        **kw,
    }


def materialize(graph, root, config: dict, keys, partition=SOURCE):
    """The project's assets ``keys`` (with their checks) in one run, the LLM resource and
    the storage root set by the run's config."""
    definitions, instance = graph
    resources = {
        "llm": {"config": config},
        "settings": {"config": {"storage_root": str(root)}},
        "io_manager": {"config": {"root": str(root)}},
    }
    return run(definitions, instance, keys, partition, run_config={"resources": resources})


def dictionary_run(graph, root, config):
    return materialize(graph, root, config, SOURCE_KEYS)


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def meta_of(result, key) -> dict:
    [mat] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey.from_coercible(key)
    ]
    return mat.metadata


def dictionary_meta(result) -> dict:
    return meta_of(result, "schema_dictionary")


def failure(result) -> str:
    [event] = [e for e in result.all_events if e.is_step_failure]
    return event.step_failure_data.user_failure_data.description


def test_good_answers_pass_both_checks_with_counts_in_metadata(server, graph, tmp_path):
    result = dictionary_run(graph, tmp_path, llm(server, prices="m=1/2"))
    assert result.success
    found = checks(result)
    assert found[LLM_ANSWERED_CHECK].passed and found[LLM_ACCEPTED_CHECK].passed
    meta = dictionary_meta(result)
    assert meta["llm/step"].value == "dictionary.describe" and meta["llm/mode"].value == "live"
    assert meta["llm/requests"].value == 4 and meta["llm/answered"].value == 4
    assert meta["llm/accepted"].value == 8 and meta["llm/verdict"].value == "ok"
    assert meta["llm/sent_prompt_tokens"].value > 0 and meta["llm/cost_usd"].value > 0
    line = summary_line(meta, SOURCE)
    assert line.startswith(
        f"dictionary.describe [{SOURCE}] live m: 4 requests (0 cached, 4 answered"
    )
    assert meta["llm/summary"].value == summary_line(meta)
    warm = dictionary_run(graph, tmp_path, llm(server))
    meta = dictionary_meta(warm)
    assert meta["llm/cached"].value == 4 and meta["llm/sent"].value == 0
    assert "cost unknown" in meta["llm/summary"].value  # no price for m without HUM_LLM_PRICES


def test_junk_answers_make_the_acceptance_check_fail_visibly(server, graph, tmp_path):
    server.default = answers(good=())
    result = dictionary_run(graph, tmp_path, llm(server))
    assert result.success  # rejected values are dropped: the data stays clean
    accepted = checks(result)[LLM_ACCEPTED_CHECK]
    assert not accepted.passed and accepted.severity == dg.AssetCheckSeverity.ERROR  # none kept
    assert accepted.metadata["accepted"].value == 0 and accepted.metadata["values"].value == 16
    assert accepted.metadata["rejected_by_reason"].value == {
        "entity_not_description": 4,
        "json_or_schema_echo": 4,
        "placeholder": 4,
        "proper_name": 4,
    }
    meta = dictionary_meta(result)
    assert meta["llm/verdict"].value == "warn"
    assert "WARN: 0 of 16 LLM values accepted (0% < 50%" in meta["llm/summary"].value
    server.default = answers(good=("person", "location"))
    half = dictionary_run(graph, tmp_path / "half", llm(server, min_accepted_pct=30))
    check = checks(half)[LLM_ACCEPTED_CHECK]
    assert check.passed and check.metadata["acceptance"].value == 0.3333  # 4 of 12 >= 30%
    strict = dictionary_run(graph, tmp_path / "half", llm(server, min_accepted_pct=50))
    check = checks(strict)[LLM_ACCEPTED_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


def test_failures_warn_under_the_threshold_and_fail_the_partition_over_it(server, graph, tmp_path):
    server.queue("server_error")  # one of the four requests fails (no retries)
    tolerant = dictionary_run(graph, tmp_path / "a", llm(server, max_failed_pct=30))
    assert tolerant.success
    answered = checks(tolerant)[LLM_ANSWERED_CHECK]
    assert not answered.passed and answered.severity == dg.AssetCheckSeverity.WARN
    assert answered.metadata["failed_by_reason"].value == {"server_error": 1}
    server.queue("server_error")
    strict = dictionary_run(graph, tmp_path / "b", llm(server))  # 25% > 10%
    assert not strict.success
    line = failure(strict)
    assert line.startswith(f"schema_dictionary[{SOURCE}]: dictionary.describe live m: 4 requests")
    assert "FAILED: 1 of 4 requests failed (25% > 10%; server_error 1)" in line and "\n" not in line


def test_every_request_failed_fails_even_at_a_tolerant_threshold(server, graph, tmp_path):
    server.default = {"kind": "server_error"}
    result = dictionary_run(graph, tmp_path, llm(server, max_failed_pct=100))
    assert not result.success
    assert (
        "all 4 requests failed (server_error 4): the output would be the offline output"
        in failure(result)
    )


def test_replay_misses_fail_the_partition(server, graph, tmp_path):
    result = dictionary_run(graph, tmp_path, llm(server, mode="replay"))
    assert not result.success and server.chat_requests() == []
    assert "replay m: 4 requests (0 cached, 0 answered, 4 failed: replay_miss 4" in failure(result)


def test_a_model_the_endpoint_does_not_serve_fails_before_any_request(server, graph, tmp_path):
    server.models = ["smollm2-135m"]
    result = dictionary_run(graph, tmp_path, llm(server, model="gpt-4o-mini"))
    assert not result.success and server.chat_requests() == []
    line = failure(result)
    assert line.startswith(f"schema_dictionary[{SOURCE}] dictionary.describe: LLM endpoint")
    assert "does not serve model 'gpt-4o-mini': it serves 'smollm2-135m'" in line
    server.models = ["m"]
    ok = dictionary_run(graph, tmp_path, llm(server))
    assert ok.success and dictionary_meta(ok)["llm/model"].value == "m"


def test_preference_step_reports_its_rejections(server, graph, tmp_path):
    assert dictionary_run(graph, tmp_path, llm(server)).success
    # relabellings that name a label the schema does not have: every one rejected
    bad = json.dumps(
        {
            "description": "d",
            "original_rule": "r",
            "new_rule": "New rule.",
            "relabelled": {"not_a_label": []},
        }
    )
    server.default = {"kind": "content", "content": bad}
    preference = compound_key("preference_rules")
    result = materialize(graph, tmp_path, llm(server), [preference])
    assert result.success
    meta = meta_of(result, preference)
    assert meta["llm/step"].value == "synthesis.preference_rules"
    requests = meta["llm/requests"].value
    assert requests > 0 and meta["llm/answered"].value == requests
    assert meta["llm/rejected_by_reason"].value == {"label_not_in_schema": requests}
    assert meta["llm/accepted"].value == 0
    accepted = checks(result)[LLM_ACCEPTED_CHECK]
    assert not accepted.passed and accepted.severity == dg.AssetCheckSeverity.ERROR
    other = materialize(graph, tmp_path, llm(server), [compound_key("description")])
    assert other.success and all(c.passed for c in other.get_asset_check_evaluations())
