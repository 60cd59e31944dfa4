"""Batch API mode end to end against the loopback server."""

from __future__ import annotations

import json

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.llm import client as client_mod
from hum_dagster.llm.batch import BatchManager, poll_batches
from hum_dagster.llm.client import ClientConfig, OpenAIRunner
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse

KEY = "sk-batch-FAKE-9911"


@pytest.fixture
def fake(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackOpenAI() as srv:
        yield srv


def config(fake: LoopbackOpenAI) -> ClientConfig:
    return ClientConfig(
        model="batch-model", base_url=fake.base_url, price_in_per_m=2.0, price_out_per_m=8.0
    )


def req(text: str, step: str = "batch.step") -> LLMRequest:
    return LLMRequest(
        step=step,
        template="t",
        template_version="v1",
        messages=({"role": "user", "content": text},),
        json_schema={"type": "object"},
    )


def test_submit_persist_poll_collect_then_cache_hits(fake, tmp_path):
    root = str(tmp_path / "llm_cache")
    requests = [req(f"batch {i}") for i in range(5)] + [req("refuse me [[batch-fail]]")]
    OpenAIRunner(config(fake), root, "live").run([requests[0]])  # already cached: not submitted
    fake.reset()

    ids = BatchManager(config(fake), root).submit(requests)
    assert len(ids) == 1
    [state_file] = (tmp_path / "llm_cache" / "batches").glob("*.json")
    state = json.loads(state_file.read_text())
    assert state["batch_id"] == ids[0] and len(state["requests"]) == 5 and not state["collected"]
    uploaded = fake.files[state["input_file_id"]]["data"].decode().splitlines()
    lines = [json.loads(x) for x in uploaded]
    assert {x["custom_id"] for x in lines} == set(state["requests"])
    assert all(
        x["url"] == "/v1/chat/completions" and x["body"]["model"] == "batch-model" for x in lines
    )
    assert fake.batches[ids[0]]["completion_window"] == "24h"
    assert BatchManager(config(fake), root).submit(requests) == []  # open batch holds them

    # a new manager (another process, after a crash) picks the batch up from the state file
    later = BatchManager(config(fake), root)
    first = later.poll()
    assert first.batches == {ids[0]: "in_progress"} and first.open == 1 and later.collect() == []
    second = later.poll()
    assert second.batches == {ids[0]: "completed"} and second.finished == 1
    results = later.collect()
    assert sum(isinstance(r, LLMResponse) for r in results) == 4
    [failure] = [r for r in results if isinstance(r, LLMFailure)]
    assert failure.reason.startswith("batch_error") and failure.step == "batch.step"
    assert later.poll().open == 0 and later.collect() == []  # collected exactly once

    usage = later.usage
    assert usage.batch_requests == 4 and usage.failures == {"batch_error": 1}
    expected = (usage.batch_prompt_tokens * 2.0 + usage.batch_completion_tokens * 8.0) * 0.5 / 1e6
    assert usage.batch_prompt_tokens > 0 and usage.cost_usd == pytest.approx(expected)

    chat_before = len(fake.chat_requests())
    runner = OpenAIRunner(config(fake), root, "replay")
    replayed = runner.run(requests[:5])
    assert all(isinstance(r, LLMResponse) and r.cached for r in replayed)
    assert replayed[1].parsed["echo"] == "batch 1"
    assert len(fake.chat_requests()) == chat_before == 0
    # the refused request is not cached: a new submit sends only it
    again = BatchManager(config(fake), root).submit(requests)
    assert len(again) == 1
    newest = json.loads((tmp_path / "llm_cache" / "batches" / f"{again[0]}.json").read_text())
    assert list(newest["requests"].values())[0]["prompt"].startswith("refuse me")
    for path in (tmp_path / "llm_cache").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text()


def test_poll_batches_validates_per_step(fake, tmp_path):
    root = str(tmp_path)
    BatchManager(config(fake), root).submit([req("keep", step="a"), req("drop", step="b")])
    fake.batch_polls_to_complete = 1
    validators = {"a": lambda p: None, "b": lambda p: "step b rejects everything"}
    status, usage = poll_batches(config(fake), root, validators)
    assert status.done and status.collected == 1
    assert usage.batch_requests == 1 and usage.failures == {"invalid": 1}
    replay = OpenAIRunner(config(fake), root, "replay").run(
        [req("keep", step="a"), req("drop", step="b")]
    )
    assert isinstance(replay[0], LLMResponse) and isinstance(replay[1], LLMFailure)
