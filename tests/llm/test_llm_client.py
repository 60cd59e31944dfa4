"""The LLM runner against a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.llm import client as client_mod
from hum_dagster.llm.client import (
    ClientConfig,
    LLMConfigError,
    LLMFailedError,
    LLMOfflineError,
    OpenAIRunner,
    ReplayMissError,
    raise_for_failures,
)
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse

FAKE_KEY = "sk-hum-FAKE-KEY-7f3a9c21"
SCHEMA = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}


@pytest.fixture(scope="module")
def server():
    with LoopbackOpenAI() as srv:
        yield srv


@pytest.fixture
def fake(server, monkeypatch):
    server.reset()
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    yield server
    server.reset()


def config(server: LoopbackOpenAI, **kw) -> ClientConfig:
    base = dict(
        model="test-model",
        base_url=server.base_url,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        timeout_s=5.0,
    )
    base.update(kw)
    return ClientConfig(**base)


def req(
    text: str, *, step: str = "test.step", sample_index: int = 0, schema=SCHEMA, **params
) -> LLMRequest:
    return LLMRequest(
        step=step,
        template="tmpl",
        template_version="v1",
        messages=({"role": "system", "content": "You echo."}, {"role": "user", "content": text}),
        sample_index=sample_index,
        json_schema=schema,
        params=params,
    )


def needs_echo(parsed):
    return None if isinstance(parsed, dict) and "echo" in parsed else "no echo key"


def test_normal_answers_in_order_with_usage_and_seeds(fake, tmp_path):
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    requests = [req(f"hello {i}") for i in range(5)] + [req("hello 0", sample_index=1)]
    results = runner.run(requests, needs_echo)
    assert all(isinstance(r, LLMResponse) for r in results)
    assert [r.parsed["echo"] for r in results] == [f"hello {i}" for i in range(5)] + ["hello 0"]
    assert [r.parsed["seed"] for r in results] == [0] * 5 + [1000]  # sample_index shapes the seed
    assert len({r.key for r in results}) == 6 and not any(r.cached for r in results)
    sent = fake.chat_requests()
    assert len(sent) == 6
    assert all(r.headers["Authorization"] == f"Bearer {FAKE_KEY}" for r in sent)
    assert all(r.body["response_format"]["type"] == "json_schema" for r in sent)
    assert sent[0].body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert sent[0].body["temperature"] == 0.7 and sent[0].body["max_tokens"] == 1024
    usage = runner.last_usage
    assert (usage.requests_sent, usage.responses, usage.cache_hits, usage.failed) == (6, 6, 0, 0)
    assert usage.prompt_tokens == sum(r.usage["prompt_tokens"] for r in results) > 0


def test_identical_requests_in_one_run_are_sent_once(fake, tmp_path):
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    results = runner.run([req("same"), req("same", step="other.step")])
    assert len(fake.chat_requests()) == 1
    assert results[0].key == results[1].key and results[1].step == "other.step"


@pytest.mark.parametrize("header", ["retry_after", "retry_after_ms"])
def test_429_waits_at_least_retry_after(fake, tmp_path, header):
    fake.queue({"kind": "rate_limit", header: 0.4 if header == "retry_after" else 400})
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [result] = runner.run([req("limited")])
    assert isinstance(result, LLMResponse)
    first, second = fake.chat_requests()
    assert second.t - first.t >= 0.4
    assert runner.last_usage.retries == 1 and runner.last_usage.requests_sent == 2


def test_429_pause_holds_back_other_requests(fake, tmp_path):
    fake.queue({"kind": "rate_limit", "retry_after": 0.4})
    fake.latency = 0.05
    runner = OpenAIRunner(config(fake, max_in_flight=1), str(tmp_path), "live")
    runner.run([req(f"q{i}") for i in range(3)])
    times = [r.t for r in fake.chat_requests()]
    assert len(times) == 4 and times[1] - times[0] >= 0.4  # the next request waited too


def test_server_error_then_success(fake, tmp_path):
    fake.queue("server_error", "server_error")
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [result] = runner.run([req("flaky")])
    assert isinstance(result, LLMResponse) and len(fake.chat_requests()) == 3
    assert runner.last_usage.retries == 2


def test_server_errors_exhaust_retries_into_failure(fake, tmp_path):
    fake.default = {"kind": "server_error"}
    runner = OpenAIRunner(config(fake, max_retries=2), str(tmp_path), "live")
    [result] = runner.run([req("down")])
    assert isinstance(result, LLMFailure) and result.reason.startswith("server_error")
    assert result.attempts == 3 and len(fake.chat_requests()) == 3
    assert runner.last_usage.failures == {"server_error": 1}


def test_timeout_is_retried(fake, tmp_path):
    fake.queue({"kind": "slow", "delay": 0.8})
    runner = OpenAIRunner(config(fake, timeout_s=0.3), str(tmp_path), "live")
    [result] = runner.run([req("slow")])
    assert isinstance(result, LLMResponse) and len(fake.chat_requests()) == 2
    fake.queue({"kind": "slow", "delay": 0.8})
    runner = OpenAIRunner(config(fake, timeout_s=0.3, max_retries=0), str(tmp_path), "live")
    [result] = runner.run([req("slow again")])
    assert isinstance(result, LLMFailure) and result.reason.startswith("timeout")


def test_dropped_connection_is_retried(fake, tmp_path):
    fake.queue("drop")
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [result] = runner.run([req("dropped")])
    assert isinstance(result, LLMResponse) and len(fake.chat_requests()) == 2
    fake.queue("drop")
    runner = OpenAIRunner(config(fake, max_retries=0), str(tmp_path), "live")
    [result] = runner.run([req("dropped again")])
    assert isinstance(result, LLMFailure) and result.reason.startswith("connection_error")


def test_malformed_http_body_is_retried(fake, tmp_path):
    fake.queue("malformed_body")
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [result] = runner.run([req("garbled")])
    assert isinstance(result, LLMResponse) and len(fake.chat_requests()) == 2


def test_malformed_json_answer_retried_with_new_seeds_then_failure(fake, tmp_path):
    fake.default = {"kind": "bad_json"}
    runner = OpenAIRunner(config(fake, max_invalid_retries=2), str(tmp_path), "live")
    [result] = runner.run([req("give json", sample_index=2)])
    assert isinstance(result, LLMFailure)
    assert result.reason.startswith("invalid_json") and result.attempts == 3
    assert [r.body["seed"] for r in fake.chat_requests()] == [2000, 2001, 2002]
    assert runner.last_usage.failures == {"invalid_json": 1} and runner.last_usage.retries == 2
    recorded = runner.cache.failures()
    assert [f["key"] for f in recorded] == [result.key] and recorded[0]["step"] == "test.step"


def test_validator_rejection_retried_then_accepted(fake, tmp_path):
    fake.queue({"kind": "content", "content": '{"other": 1}'})
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [result] = runner.run([req("validate me")], needs_echo)
    assert isinstance(result, LLMResponse) and result.parsed["echo"] == "validate me"
    assert len(fake.chat_requests()) == 2
    fake.default = {"kind": "content", "content": '{"other": 1}'}
    [failure] = runner.run([req("never valid")], needs_echo)
    assert isinstance(failure, LLMFailure) and failure.reason.startswith("invalid: no echo key")


def test_answer_in_prose_and_fences_is_extracted(fake, tmp_path):
    fake.queue(
        {"kind": "content", "content": 'Sure!\n```json\n{"echo": "x", "items": [1, 2,],}\n```\nBye'}
    )
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [result] = runner.run([req("prose")], needs_echo)
    assert result.parsed == {"echo": "x", "items": [1, 2]}


@pytest.mark.parametrize("status", [400, 500])
def test_structured_output_falls_back_once_and_remembers(fake, tmp_path, status):
    fake.reject_json_schema = True
    fake.reject_status = status
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")
    [first] = runner.run([req("one")], needs_echo)
    [second] = runner.run([req("two")], needs_echo)
    assert isinstance(first, LLMResponse) and isinstance(second, LLMResponse)
    formats = [(r.body.get("response_format") or {}).get("type") for r in fake.chat_requests()]
    assert formats == ["json_schema", "json_object", "json_object"]  # learnt: no second 400
    assert fake.chat_requests()[1].body["response_format"]["schema"] == SCHEMA
    hinted = fake.chat_requests()[1].body["messages"][0]["content"]
    assert hinted.startswith("You echo.") and json.dumps(SCHEMA) in hinted


def test_requests_waiting_for_a_slot_use_the_mode_learnt_meanwhile(fake, tmp_path):
    """One request at a time (a local server): the refusal of json_schema is learnt on the
    first call, and the requests that were queued behind it do not repeat it."""
    fake.reject_json_schema = True
    fake.reject_status = 500
    runner = OpenAIRunner(config(fake, max_in_flight=1), str(tmp_path), "live")
    results = runner.run([req(f"queued {i}") for i in range(6)], needs_echo)
    assert all(isinstance(r, LLMResponse) for r in results)
    formats = [(r.body.get("response_format") or {}).get("type") for r in fake.chat_requests()]
    assert formats == ["json_schema"] + ["json_object"] * 6


def test_forced_json_schema_rejected_is_a_failure(fake, tmp_path):
    fake.reject_json_schema = True
    runner = OpenAIRunner(config(fake, structured_output="json_schema"), str(tmp_path), "live")
    [result] = runner.run([req("forced")])
    assert isinstance(result, LLMFailure) and result.reason.startswith("bad_request")
    assert "json_schema is not supported" in result.reason and len(fake.chat_requests()) == 1


def test_structured_none_sends_no_response_format(fake, tmp_path):
    runner = OpenAIRunner(config(fake, structured_output="none"), str(tmp_path), "live")
    runner.run([req("plain")])
    body = fake.chat_requests()[0].body
    assert "response_format" not in body and "JSON schema" in body["messages"][0]["content"]


def test_max_in_flight_is_respected(fake, tmp_path):
    for _ in range(100):  # answers to earlier tests' timed-out requests may still be pending
        if fake.in_flight == 0:
            break
        time.sleep(0.05)
    fake.max_in_flight = 0
    fake.latency = 0.1
    runner = OpenAIRunner(config(fake, max_in_flight=3), str(tmp_path), "live")
    results = runner.run([req(f"p{i}") for i in range(12)])
    assert all(isinstance(r, LLMResponse) for r in results)
    assert 1 <= fake.max_in_flight <= 3


def test_rate_limit_headers_pause_requests(fake, tmp_path):
    fake.headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "300ms",
        "x-ratelimit-remaining-tokens": "100000",
        "x-ratelimit-reset-tokens": "1s",
    }
    runner = OpenAIRunner(config(fake, max_in_flight=1), str(tmp_path), "live")
    runner.run([req(f"h{i}") for i in range(3)])
    times = [r.t for r in fake.chat_requests()]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.3
    assert runner.last_usage.rate_limit_wait_s >= 0.5


def test_run_from_inside_an_event_loop(fake, tmp_path):
    runner = OpenAIRunner(config(fake), str(tmp_path), "live")

    async def inside():
        return runner.run([req("looped")])

    [result] = asyncio.run(inside())
    assert isinstance(result, LLMResponse)


def test_replay_mode_serves_cache_and_names_misses(fake, tmp_path):
    OpenAIRunner(config(fake), str(tmp_path), "live").run([req("known")])
    fake.reset()
    replay = OpenAIRunner(config(fake), str(tmp_path), "replay")
    results = replay.run(
        [req("known"), req("unknown prompt " + "x" * 300, step="dictionary.describe")]
    )
    assert fake.chat_requests() == []
    assert isinstance(results[0], LLMResponse) and results[0].cached
    miss = results[1]
    assert isinstance(miss, LLMFailure) and miss.reason.startswith("replay_miss")
    assert "dictionary.describe" in miss.reason and "unknown prompt xxx" in miss.reason
    assert ("x" * 185) in miss.reason and ("x" * 186) not in miss.reason  # first 200 chars
    with pytest.raises(ReplayMissError, match="dictionary.describe"):
        raise_for_failures(results)
    raise_for_failures(results[:1])


def test_raise_for_failures_on_other_failures(fake, tmp_path):
    fake.default = {"kind": "bad_json"}
    runner = OpenAIRunner(config(fake, max_invalid_retries=0), str(tmp_path), "live")
    results = runner.run([req("bad")])
    raise_for_failures(results, replay_only=True)
    with pytest.raises(LLMFailedError, match="invalid_json"):
        raise_for_failures(results)


def test_offline_mode_refuses_to_run(fake, tmp_path):
    runner = OpenAIRunner(config(fake), None, "offline")
    assert runner.mode == "offline"
    with pytest.raises(LLMOfflineError, match="test.step"):
        runner.run([req("no")])
    assert fake.chat_requests() == []


def test_usage_cost_from_prices(fake, tmp_path):
    runner = OpenAIRunner(
        config(fake, price_in_per_m=2.0, price_out_per_m=8.0), str(tmp_path), "live"
    )
    results = runner.run([req("one two three"), req("four five")])
    prompt = sum(r.usage["prompt_tokens"] for r in results)
    completion = sum(r.usage["completion_tokens"] for r in results)
    assert runner.last_usage.cost_usd == pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6)
    meta = runner.last_usage.as_metadata()
    assert meta["llm_requests_sent"] == 2 and meta["llm_prompt_tokens"] == prompt
    assert meta["llm_cost_usd"] == pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6, abs=1e-6)
    assert all(isinstance(v, int | float | str) for v in meta.values())
    runner.run([req("one two three")])
    assert runner.last_usage.cost_usd == 0 and runner.last_usage.cache_hits == 1
    assert runner.usage.requests_sent == 2 and runner.usage.cache_hits == 1  # cumulative


def test_api_key_never_leaks(fake, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_LOG", "debug")
    fake.queue("server_error", {"kind": "rate_limit", "retry_after": 0.05}, "bad_json", "drop")
    runner = OpenAIRunner(config(fake, max_invalid_retries=1), str(tmp_path), "live")
    results = runner.run([req(f"secret test {i}") for i in range(4)])
    fake.reject_json_schema = True
    results += OpenAIRunner(
        config(fake, structured_output="json_schema"), str(tmp_path), "live"
    ).run([req("rejected")])
    fake.default = {"kind": "bad_json"}
    results += runner.run([req("always bad")])
    assert any(isinstance(r, LLMFailure) for r in results)
    assert fake.chat_requests()[0].headers["Authorization"].endswith(FAKE_KEY)  # the key was used
    texts = [caplog.text, repr(results), json.dumps(runner.usage.as_metadata())]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_text())
    for exc_call in (
        lambda: OpenAIRunner(config(fake), None, "offline").run([req("x")]),
        lambda: raise_for_failures(results),
        lambda: (
            OpenAIRunner(config(fake), str(tmp_path), "replay").run([req("nope")])
            and raise_for_failures(
                OpenAIRunner(config(fake), str(tmp_path), "replay").run([req("nope")])
            )
        ),
    ):
        with pytest.raises(Exception) as info:
            exc_call()
        texts.append(str(info.value) + repr(info.value))
    assert len(texts) > 5
    for text in texts:
        assert FAKE_KEY not in text
    assert "FAKE-KEY" not in "".join(texts)


def test_missing_key_variable_is_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("HUM_TEST_NO_SUCH_KEY", raising=False)
    runner = OpenAIRunner(config(fake, api_key_env="HUM_TEST_NO_SUCH_KEY"), str(tmp_path), "live")
    with pytest.raises(LLMConfigError, match="HUM_TEST_NO_SUCH_KEY"):
        runner.run([req("keyless")])


def test_bad_config_values_are_refused(tmp_path):
    with pytest.raises(LLMConfigError, match="structured_output"):
        ClientConfig(structured_output="xml")
    with pytest.raises(LLMConfigError, match="mode"):
        OpenAIRunner(ClientConfig(), str(tmp_path), "sometimes")


def test_free_text_answers_are_cached_and_returned_unparsed(fake, tmp_path):
    """Evaluation asks for text: a non-JSON answer is kept as it is, never re-sampled."""
    server = fake
    server.queue({"kind": "content", "content": "person: Obama | location: Hawaii"})
    runner = OpenAIRunner(config(server, max_invalid_retries=2), str(tmp_path), "live")
    request = LLMRequest(
        step="eval.generate", template="eval", template_version="v1",
        messages=({"role": "user", "content": "extract entities"},), expect_json=False,
    )
    [first] = runner.run([request])
    assert isinstance(first, LLMResponse)
    assert first.content == "person: Obama | location: Hawaii" and first.parsed is None
    assert len(server.chat_requests()) == 1  # not re-sampled although it is not JSON
    again_runner = OpenAIRunner(config(server, max_invalid_retries=2), str(tmp_path), "live")
    [again] = again_runner.run([request])
    assert again.cached and again.content == first.content
    assert len(server.chat_requests()) == 1  # served from the cache
    json_request = LLMRequest(
        step="eval.generate", template="eval", template_version="v1",
        messages=request.messages,
    )
    assert runner.key(json_request) != runner.key(request)
