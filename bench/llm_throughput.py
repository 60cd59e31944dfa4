"""LLM layer throughput: requests per second through the runner, and a warm re-run.

Starts the loopback OpenAI-compatible test server (tests/openai_server.py) in its own
process with a simulated latency per answer, sends N distinct requests through
``OpenAIRunner`` (live mode, a fresh cache) with a given number in flight, then runs
the same requests again with a new runner over the same cache and counts the requests
that reached the server (target: 0).

    .venv/bin/python bench/llm_throughput.py                        # 2,000 requests, 64 in flight, 100 ms
    .venv/bin/python bench/llm_throughput.py --requests 5000 --in-flight 128 --latency 0.05

Target (from the issue): at least 200 requests/s at 64 in flight with 100 ms latency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hum_dagster.llm.client import ClientConfig, OpenAIRunner  # noqa: E402
from hum_dagster.llm.types import LLMRequest, LLMResponse  # noqa: E402


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "openai_server.py"),
            "--latency",
            str(latency),
            "--no-record",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def chat_count(base_url: str) -> int:
    request = urllib.request.Request(
        f"{base_url.removesuffix('/v1')}/_control",
        data=b"{}",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["chat_count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()

    os.environ.setdefault("HUM_BENCH_KEY", "sk-bench-unused")
    proc, base_url = start_server(args.latency)
    try:
        config = ClientConfig(
            model="bench-model",
            base_url=base_url,
            api_key_env="HUM_BENCH_KEY",
            max_in_flight=args.in_flight,
            flush_every=500,
            price_in_per_m=0.15,
            price_out_per_m=0.6,
        )
        schema = {"type": "object", "properties": {"echo": {"type": "string"}}}
        requests = [
            LLMRequest(
                step="bench",
                template="bench",
                template_version="1",
                messages=(
                    {"role": "system", "content": "Echo the text as JSON."},
                    {"role": "user", "content": f"bench prompt number {i}"},
                ),
                json_schema=schema,
            )
            for i in range(args.requests)
        ]
        with tempfile.TemporaryDirectory(prefix="hum-llm-bench-") as cache_root:
            runner = OpenAIRunner(config, cache_root, "live")
            start = time.perf_counter()
            results = runner.run(requests)
            cold_s = time.perf_counter() - start
            ok = sum(isinstance(r, LLMResponse) for r in results)
            sent_cold = chat_count(base_url)

            warm_runner = OpenAIRunner(config, cache_root, "live")
            start = time.perf_counter()
            warm = warm_runner.run(requests)
            warm_s = time.perf_counter() - start
            sent_warm = chat_count(base_url) - sent_cold
            shards = len(list(Path(cache_root, "shards").glob("*.jsonl")))

        ideal = args.in_flight / args.latency if args.latency else float("inf")
        print(
            f"requests: {args.requests}, in flight: {args.in_flight}, latency: {args.latency * 1000:.0f} ms "
            f"(ideal {ideal:.0f} req/s)"
        )
        print(
            f"cold run: {cold_s:.2f} s, {args.requests / cold_s:.0f} requests/s, {ok} answers, "
            f"{sent_cold} requests reached the server, {shards} cache shards"
        )
        print(f"usage: {runner.last_usage.as_metadata()}")
        print(
            f"warm re-run: {warm_s:.2f} s, {sent_warm} requests reached the server, "
            f"{sum(r.cached for r in warm)} cache hits"
        )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
