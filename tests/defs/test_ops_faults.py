"""Faults: a run killed mid-way, an LLM endpoint that is down, and secrets never leaking.

Each run is a subprocess on a persistent DAGSTER_HOME that materializes the
``synthesize_source`` job (raw_sources, basic_instructions, schema_dictionary) for two
sources in live LLM mode against the loopback OpenAI-compatible server; the dictionary
step asks the LLM to describe every label.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from openai_server import LoopbackOpenAI

from hum_dagster.paths import DEFAULT_CATALOG

FAKE_KEY = "sk-hum-fake-0123456789abcdef-DO-NOT-LEAK"
SOURCES = ("ner_en_conll", "re_en_fewrel")
ANSWER = json.dumps({"descriptions": ["A label of the sample data."], "synonyms": ["tag"]})

RUNNER = """
import os, sys, dagster as dg
from hum_dagster.definitions import defs
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.synthesis.partitions import sync_partitions
job = defs().resolve_job_def("synthesize_source")
instance = dg.DagsterInstance.get()
settings = HumSettings(storage_root=os.environ["HUM_STORAGE_ROOT"], catalog=os.environ["HUM_CATALOG"])
sync_partitions(instance, settings.entries().values())
failed = []
for name in sys.argv[1:]:
    result = job.execute_in_process(partition_key=name, instance=instance, raise_on_error=False)
    print(f"DONE {name} {'ok' if result.success else 'FAILED'}", flush=True)
    if not result.success:
        failed.append(name)
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data.user_failure_data:
                print(f"REASON {event.step_failure_data.user_failure_data.description}", flush=True)
sys.exit(1 if failed else 0)
"""


def catalog(tmp_path: Path) -> Path:
    shipped = {s["name"]: s for s in yaml.safe_load(DEFAULT_CATALOG.read_text())["sources"]}
    entries = []
    for name in SOURCES:
        entry = json.loads(json.dumps(shipped[name]))
        entry["location"] = str((DEFAULT_CATALOG.parent / entry["location"]).resolve())
        for key in ("schema", "pid2name"):
            if key in entry.get("options", {}):
                entry["options"][key] = str(
                    (DEFAULT_CATALOG.parent / entry["options"][key]).resolve()
                )
        entries.append(entry)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": entries}))
    return path


def env_for(tmp_path: Path, name: str, server: LoopbackOpenAI, **extra) -> dict:
    from hum_dagster.defs.resources.settings import env_defaults

    env = {**os.environ, **env_defaults()}  # what a code location gets from .env
    env.update(
        DAGSTER_HOME=str(tmp_path / name / "home"),
        HUM_CATALOG=str(catalog(tmp_path)),
        HUM_STORAGE_ROOT=str(tmp_path / name / "storage"),
        HUM_LLM_MODE="live",
        HUM_LLM_BASE_URL=server.base_url,
        HUM_LLM_MODEL="test-model",
        HUM_LLM_API_KEY_ENV="HUM_FAKE_KEY",
        HUM_FAKE_KEY=FAKE_KEY,
        **extra,
    )
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    cfg = Path(__file__).resolve().parents[2] / "resources" / "dagster.yaml"
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(cfg.read_text())
    return env


def run(env: dict, *sources: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *sources],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def outputs(root: Path) -> dict[str, str]:
    """sha256 per Parquet file; schema_dictionary's footer report is normalised first.

    Known gap: its ``hum.dictionary_report`` footer stores LLM usage, whose ``cached``
    count differs between a fresh and a cache-served run, so those files are compared on
    their rows and their footer without that count.
    """
    import polars as pl

    digests = {}
    for p in sorted(root.rglob("*.parquet")):
        if p.parent.name != "schema_dictionary":
            digests[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
            continue
        meta = dict(pl.read_parquet_metadata(p))
        meta.pop("ARROW:schema", None)
        report = json.loads(meta.get("hum.dictionary_report", "{}"))
        report.get("llm", {}).pop("cached", None)
        meta["hum.dictionary_report"] = report
        rows = pl.read_parquet(p).write_ndjson()
        digests[str(p.relative_to(root))] = hashlib.sha256(
            (rows + json.dumps(meta, sort_keys=True)).encode()
        ).hexdigest()
    return digests


def bodies(server: LoopbackOpenAI) -> list[str]:
    return [json.dumps(r.body["messages"], sort_keys=True) for r in server.chat_requests()]


@pytest.fixture
def server():
    with LoopbackOpenAI() as s:
        s.default = {"kind": "content", "content": ANSWER}
        yield s


def assert_no_secret(tmp_path: Path, *texts: str) -> None:
    needle = FAKE_KEY.encode()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), f"the API key leaked into {path}"
    for text in texts:
        assert FAKE_KEY not in text


def test_killed_run_resumes_without_repeating_finished_requests(tmp_path, server):
    clean_env = env_for(tmp_path, "clean", server)
    first = run(clean_env, SOURCES[0])
    first_source_requests = bodies(server)
    clean = run(clean_env, SOURCES[1])
    assert first.returncode == 0 and clean.returncode == 0, clean.stdout + clean.stderr
    reference = outputs(tmp_path / "clean" / "storage")
    reference_requests = bodies(server)
    assert first_source_requests, "live mode sent no request"
    server.reset()
    server.default = {"kind": "content", "content": ANSWER}

    env = env_for(tmp_path, "killed", server)
    server.latency = 0.3
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, *SOURCES],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(f"DONE {SOURCES[0]}"):
            break
    deadline = time.monotonic() + 60
    while len(bodies(server)) <= len(first_source_requests) and time.monotonic() < deadline:
        time.sleep(0.02)  # the second source is talking to the LLM: kill it now
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    before_kill = bodies(server)
    # killed while the second source's requests were in flight (answers take 0.3 s)
    assert not (
        tmp_path / "killed" / "storage" / "schema_dictionary" / f"{SOURCES[1]}.parquet"
    ).exists()
    server.latency = 0.0

    again = run(env, *SOURCES)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = bodies(server)[len(before_kill) :]
    # the finished source's answers were cached: none of its requests is sent again
    assert not set(resumed) & set(first_source_requests)
    assert len(resumed) <= len(reference_requests) - len(first_source_requests)
    # nothing half-written: no temp files are left behind by the killed writer
    assert not list((tmp_path / "killed" / "storage").rglob("*.tmp-*"))
    assert outputs(tmp_path / "killed" / "storage") == reference
    count = len(bodies(server))
    assert run(env, *SOURCES).returncode == 0
    assert len(bodies(server)) == count  # a warm re-run sends nothing
    assert_no_secret(
        tmp_path, clean.stdout, clean.stderr, again.stdout, again.stderr, "".join(seen)
    )


def _llm_report(root: Path, source: str) -> dict:
    """The LLM report of the latest schema_dictionary materialization of ``source``, from
    the run's metadata in the instance (the Parquet footer keeps no usage, so re-runs
    over a warm cache are byte-identical)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    home = root.parent / "home"
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("schema_dictionary"), asset_partitions=[source]),
            limit=1,
        ).records
        meta = records[0].asset_materialization.metadata
        return {k[len("llm/"):]: getattr(v, "value", v) for k, v in meta.items() if k.startswith("llm/")}
    finally:
        instance.dispose()


def test_endpoint_down_fails_cleanly_then_the_next_run_finishes(tmp_path, server):
    """With the endpoint down the dictionary partition fails, loudly and in one line (its
    output would be the offline dictionary: a live run must not look like success),
    nothing is cached, and the next run (endpoint back) asks exactly what failed."""
    env = env_for(tmp_path, "down", server)
    root = tmp_path / "down" / "storage"
    server.default = {"kind": "server_error"}
    down = run(env, SOURCES[0])
    assert down.returncode == 1, down.stdout + down.stderr
    [reason] = [line for line in down.stdout.splitlines() if line.startswith("REASON ")]
    assert f"schema_dictionary[{SOURCES[0]}]: dictionary.describe" in reason
    assert "requests failed (server_error" in reason and "FAILED" in reason, reason
    requests = int(reason.split(": ", 2)[2].split(" requests", 1)[0].split()[-1])
    attempts = len(server.chat_requests())
    assert 0 < attempts <= requests * 10  # bounded retries per request
    # rate limited hard (429 + retry-after): the same bounded, loud outcome
    server.reset()
    server.default = {"kind": "rate_limit", "retry_after": 0.05}
    limited = run(env, SOURCES[0])
    assert limited.returncode == 1 and "rate_limited" in limited.stdout
    assert not list((root / "llm_cache").rglob("shards/*.jsonl"))  # failures are never cached
    # the endpoint is back: the next run finishes the rest
    server.reset()
    server.default = {"kind": "content", "content": ANSWER}
    ok = run(env, SOURCES[0])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = _llm_report(root, SOURCES[0])
    assert report["answered"] == report["requests"] == requests and report["failed"] == 0
    sent = len(server.chat_requests())
    assert run(env, SOURCES[0]).returncode == 0
    assert len(server.chat_requests()) == sent  # what succeeded stays cached
    assert_no_secret(
        tmp_path, down.stdout, down.stderr, limited.stdout, limited.stderr, ok.stdout, ok.stderr
    )
