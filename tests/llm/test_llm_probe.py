"""The endpoint probe (GET /v1/models) against the loopback OpenAI-compatible server and a
closed port: loud, one-line errors before any request, and the served model recorded."""

from __future__ import annotations

import json
import socket

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.llm import client as client_mod
from hum_dagster.llm.client import (
    ClientConfig,
    EndpointUnreachableError,
    LLMConfigError,
    ModelNotServedError,
    OpenAIRunner,
)
from hum_dagster.llm.types import LLMRequest, LLMResponse

REQ = LLMRequest(
    step="probe.step",
    template="t",
    template_version="1",
    messages=({"role": "user", "content": "hello"},),
)


@pytest.fixture
def fake(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("HUM_PROBE_KEY", "sk-probe-test")
    with LoopbackOpenAI() as server:
        yield server


def config(base_url: str, **kw) -> ClientConfig:
    return ClientConfig(
        **{
            "model": "served-model",
            "base_url": base_url,
            "api_key_env": "HUM_PROBE_KEY",
            "timeout_s": 5.0,
            "backoff_base_s": 0.01,
            "structured_output": "none",
            **kw,
        }
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_endpoint_is_one_error_before_any_request(tmp_path, monkeypatch):
    monkeypatch.setenv("HUM_PROBE_KEY", "sk-probe-test")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    runner = OpenAIRunner(config(url, max_retries=6), str(tmp_path), "live")
    with pytest.raises(EndpointUnreachableError) as info:
        runner.run([REQ] * 3)
    message = str(info.value)
    assert url in message and "unreachable" in message and "\n" not in message
    assert runner.last_usage.requests_sent == 0  # no chat request was tried


def test_a_model_the_server_does_not_list_is_an_error_naming_what_it_serves(fake, tmp_path):
    fake.models = ["smollm2-135m"]
    runner = OpenAIRunner(config(fake.base_url, model="gpt-4o-mini"), str(tmp_path), "live")
    with pytest.raises(ModelNotServedError, match="'gpt-4o-mini'.*'smollm2-135m'"):
        runner.run([REQ])
    assert fake.chat_requests() == [] and len(fake.model_requests()) == 1


def test_the_served_model_is_recorded_in_every_answer(fake, tmp_path):
    fake.models = ["other", "served-model"]
    runner = OpenAIRunner(config(fake.base_url), str(tmp_path), "live")
    [result] = runner.run([REQ])
    assert isinstance(result, LLMResponse)
    assert runner.served_model == "served-model" and runner.endpoint.models == (
        "other",
        "served-model",
    )
    [shard] = (tmp_path / "shards").glob("*.jsonl")
    assert json.loads(shard.read_text())["served_model"] == "served-model"
    # a warm run needs no endpoint: no probe, no request, even with the server gone
    fake.stop()
    warm = OpenAIRunner(config(fake.base_url), str(tmp_path), "live")
    [again] = warm.run([REQ])
    assert again.cached and warm.endpoint is None


def test_a_server_without_a_model_list_is_used_under_the_configured_name(fake, tmp_path):
    assert fake.models is None  # GET /v1/models answers 404
    runner = OpenAIRunner(config(fake.base_url), str(tmp_path), "live")
    [result] = runner.run([REQ])
    assert isinstance(result, LLMResponse)
    assert runner.endpoint.models is None and "no model list" in runner.endpoint.note
    assert runner.served_model == "served-model"


def test_check_model_off_sends_no_probe(fake, tmp_path):
    fake.models = ["something-else"]
    runner = OpenAIRunner(config(fake.base_url, check_model="off"), str(tmp_path), "live")
    [result] = runner.run([REQ])
    assert isinstance(result, LLMResponse) and fake.model_requests() == []
    with pytest.raises(LLMConfigError, match="check_model"):
        config(fake.base_url, check_model="sometimes")
