"""The response cache: warm re-runs, many writers at once, failures, s3:// roots."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.llm import client as client_mod
from hum_dagster.llm.cache import ResponseCache, cache_key
from hum_dagster.llm.client import ClientConfig, OpenAIRunner
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse


@pytest.fixture(scope="module")
def server():
    with LoopbackOpenAI() as srv:
        yield srv


@pytest.fixture
def fake(server, monkeypatch):
    server.reset()
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cache-test")
    yield server


def config(base_url: str, **kw) -> ClientConfig:
    return ClientConfig(model="test-model", base_url=base_url, backoff_base_s=0.01, **kw)


def req(text: str, **kw) -> LLMRequest:
    return LLMRequest(
        step="cache.step",
        template="t",
        template_version="v1",
        messages=({"role": "user", "content": text},),
        **kw,
    )


def test_warm_rerun_sends_zero_requests(fake, tmp_path):
    requests = [req(f"warm {i}") for i in range(20)]
    cold = OpenAIRunner(config(fake.base_url, flush_every=7), str(tmp_path), "live").run(requests)
    assert len(fake.chat_requests()) == 20
    assert len(list((tmp_path / "shards").glob("*.jsonl"))) == 3  # 7 + 7 + 6
    warm_runner = OpenAIRunner(config(fake.base_url), str(tmp_path), "live")  # a new process, say
    warm = warm_runner.run(requests)
    assert len(fake.chat_requests()) == 20
    assert all(isinstance(r, LLMResponse) and r.cached for r in warm)
    assert [r.content for r in warm] == [r.content for r in cold]
    assert [r.created_at for r in warm] == [r.created_at for r in cold]
    assert warm_runner.last_usage.requests_sent == 0 and warm_runner.last_usage.cache_hits == 20


def test_cache_entry_holds_what_was_asked_for(fake, tmp_path):
    OpenAIRunner(config(fake.base_url), str(tmp_path), "live").run([req("entry")])
    [shard] = (tmp_path / "shards").glob("*.jsonl")
    entry = json.loads(shard.read_text())
    for name in (
        "key",
        "content",
        "parsed",
        "usage",
        "model",
        "requested_at",
        "answered_at",
        "step",
        "template",
        "template_version",
        "sample_index",
    ):
        assert name in entry, name
    assert entry["answered_at"] >= entry["requested_at"] and entry["step"] == "cache.step"


def test_key_covers_everything_that_shapes_the_answer():
    base = dict(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        params={"temperature": 0.1},
        json_schema=None,
        template="t",
        template_version="1",
        sample_index=0,
    )
    key = cache_key(**base)
    assert key == cache_key(**{**base, "params": {"temperature": 0.1, "top_p": None}})
    for change in (
        {"model": "m2"},
        {"messages": [{"role": "user", "content": "y"}]},
        {"params": {"temperature": 0.2}},
        {"json_schema": {"type": "object"}},
        {"template": "t2"},
        {"template_version": "2"},
        {"sample_index": 1},
    ):
        assert cache_key(**{**base, **change}) != key, change


def test_failures_are_never_served_as_hits(fake, tmp_path):
    fake.default = {"kind": "bad_json"}
    runner = OpenAIRunner(config(fake.base_url, max_invalid_retries=0), str(tmp_path), "live")
    [failure] = runner.run([req("fails")])
    assert isinstance(failure, LLMFailure)
    assert ResponseCache(str(tmp_path)).get(failure.key) is None
    assert [f["key"] for f in ResponseCache(str(tmp_path)).failures()] == [failure.key]
    [replayed] = OpenAIRunner(config(fake.base_url), str(tmp_path), "replay").run([req("fails")])
    assert isinstance(replayed, LLMFailure) and replayed.reason.startswith("replay_miss")
    fake.default = {"kind": "ok"}
    [fixed] = runner.run([req("fails")])  # live asks again
    assert isinstance(fixed, LLMResponse) and not fixed.cached and len(fake.chat_requests()) == 2


def test_cached_answer_the_validator_rejects_is_asked_again(fake, tmp_path):
    OpenAIRunner(config(fake.base_url), str(tmp_path), "live").run([req("strict")])
    runner = OpenAIRunner(config(fake.base_url), str(tmp_path), "live")
    fake.queue({"kind": "content", "content": '{"echo": "strict", "ok": true}'})
    [result] = runner.run([req("strict")], lambda p: None if p.get("ok") else "not ok")
    assert not result.cached and result.parsed["ok"] is True
    # later readers find both entries and serve whichever one the validator accepts
    again = OpenAIRunner(config(fake.base_url), str(tmp_path), "live")
    [strict] = again.run([req("strict")], lambda p: None if p.get("ok") else "not ok")
    [loose] = again.run([req("strict")])
    assert strict.cached and strict.parsed["ok"] is True
    assert loose.cached and "ok" not in loose.parsed  # first wins when anything goes
    assert len(fake.chat_requests()) == 2


def _writer(root: str, worker: int, barrier, n: int) -> None:
    cache = ResponseCache(root, flush_every=5)
    barrier.wait()
    for i in range(n):
        for key in (f"own-{worker}-{i}", f"shared-{i}"):
            cache.put(
                {"key": key, "content": f"w{worker}", "parsed": {"w": worker}, "answered_at": i}
            )
    cache.flush()


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    root, workers, n = str(tmp_path / "cache"), 4, 40
    ctx = mp.get_context("fork")  # fast; the children use no parent thread
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_writer, args=(root, w, barrier, n)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    shards = os.listdir(os.path.join(root, "shards"))
    assert len(shards) == workers * (2 * n // 5) and not [s for s in shards if ".tmp" in s]
    a, b = ResponseCache(root), ResponseCache(root)
    assert len(a) == workers * n + n
    for w in range(workers):
        for i in range(n):
            assert a.get(f"own-{w}-{i}")["content"] == f"w{w}"
    # overlapping keys: every reader picks the same winner, the entry of the first shard
    winners = {a.get(f"shared-{i}")["content"] for i in range(n)}
    assert all(a.get(f"shared-{i}")["content"] == b.get(f"shared-{i}")["content"] for i in range(n))
    assert winners <= {f"w{w}" for w in range(workers)}
    first_shard = sorted(shards)[0]
    first = json.loads((tmp_path / "cache" / "shards" / first_shard).read_text().splitlines()[1])
    assert a.get(first["key"])["content"] == first["content"]


def _live_worker(root: str, base_url: str, worker: int, barrier) -> None:
    os.environ["OPENAI_API_KEY"] = "sk-cache-test"
    runner = OpenAIRunner(config(base_url, flush_every=3), root, "live")
    barrier.wait()
    texts = [f"own {worker} {i}" for i in range(6)] + [f"shared {i}" for i in range(6)]
    results = runner.run([req(t) for t in texts])
    assert all(isinstance(r, LLMResponse) for r in results)


def test_concurrent_live_runners_then_warm_rerun(fake, tmp_path):
    root = str(tmp_path / "cache")
    ctx = mp.get_context("fork")  # fast; the children use no parent thread
    barrier = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_live_worker, args=(root, fake.base_url, w, barrier)) for w in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    sent = len(fake.chat_requests())
    assert 3 * 6 + 6 <= sent <= 3 * 12
    texts = [f"own {w} {i}" for w in range(3) for i in range(6)] + [f"shared {i}" for i in range(6)]
    runner = OpenAIRunner(config(fake.base_url), root, "live")
    results = runner.run([req(t) for t in texts])
    assert len(fake.chat_requests()) == sent and runner.last_usage.requests_sent == 0
    assert all(r.cached for r in results)


def test_compaction_keeps_every_entry_and_the_winner(tmp_path):
    root = str(tmp_path)
    for w in range(3):
        cache = ResponseCache(root)
        for i in range(4):
            cache.put({"key": f"k{i}", "content": f"w{w}", "parsed": w})
        cache.put({"key": f"only-{w}", "content": "x", "parsed": None})
        cache.flush()
    before = ResponseCache(root)
    winners = {k: before.get(k)["content"] for k in before}
    assert ResponseCache(root).compact() == 3
    assert len(list((tmp_path / "shards").glob("*.jsonl"))) == 1
    after = ResponseCache(root)
    assert {k: after.get(k)["content"] for k in after} == winners
    assert winners["k0"] == "w0"


def test_corrupt_line_is_skipped(tmp_path, caplog):
    cache = ResponseCache(str(tmp_path))
    cache.put({"key": "good", "content": "c", "parsed": 1})
    cache.flush()
    [shard] = (tmp_path / "shards").glob("*.jsonl")
    shard.write_text(shard.read_text() + "{not json\n")
    fresh = ResponseCache(str(tmp_path))
    assert fresh.get("good")["content"] == "c" and len(fresh) == 1
    assert "not JSON" in caplog.text


def test_a_run_reads_only_its_own_answers_first_writer_still_wins(tmp_path):
    """``refresh(wanted)``: a process replaying its requests holds their answers only, not
    the whole cache; with two answers under one key the older shard's still wins."""
    root = str(tmp_path)
    for w in range(3):
        cache = ResponseCache(root, flush_every=1000)
        for i in range(50):
            cache.put({"key": f"k{i}", "content": f"w{w}", "parsed": {"key": "nested"}})
        cache.flush()
    fresh = ResponseCache(root)
    assert fresh.refresh(["k3", "k7", "absent"]) == 3  # shards scanned
    assert set(fresh._index) == {"k3", "k7"}  # private: what the process holds
    assert fresh.get("k3")["content"] == "w0" and fresh.get("absent") is None
    assert fresh.refresh(["k3"]) == 0  # looked for already: no second scan
    assert fresh.get("k9")["content"] == "w0"  # a key not looked for: read as before
    assert len(fresh) == 50


def test_a_corrupt_line_does_not_hide_the_wanted_answers(tmp_path, caplog):
    cache = ResponseCache(str(tmp_path))
    for key in ("a", "b"):
        cache.put({"key": key, "content": key, "parsed": 1})
    cache.flush()
    [shard] = (tmp_path / "shards").glob("*.jsonl")
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    fresh = ResponseCache(str(tmp_path))
    fresh.refresh(["b"])
    assert fresh.get("b")["content"] == "b" and set(fresh._index) == {"b"}
    assert "not JSON" in caplog.text


def test_cache_on_s3(fake, s3_bucket):
    root = f"{s3_bucket}/run/llm_cache"
    requests = [req(f"s3 {i}") for i in range(6)]
    OpenAIRunner(config(fake.base_url, flush_every=4), root, "live").run(requests)
    fake.default = {"kind": "bad_json"}
    OpenAIRunner(config(fake.base_url, max_invalid_retries=0), root, "live").run([req("s3 bad")])
    sent = len(fake.chat_requests())
    assert sent == 7
    warm = OpenAIRunner(config(fake.base_url), root, "live")
    results = warm.run(requests)
    assert all(r.cached for r in results) and len(fake.chat_requests()) == sent
    assert warm.last_usage.requests_sent == 0
    cache = ResponseCache(root)
    assert len(cache) == 6 and len(cache.failures()) == 1
    assert cache.compact() == 2 and len(ResponseCache(root)) == 6
