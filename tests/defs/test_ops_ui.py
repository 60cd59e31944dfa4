"""The UI path: `dagster dev` (webserver + daemon) on loopback from a fresh instance;
GraphQL sees every asset, check, schedule and sensor, and a partition backfill launched
through GraphQL succeeds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", body, {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"GraphQL {exc.code}: {exc.read()[:2000]!r}") from exc
    assert "errors" not in data, data["errors"]
    return data["data"]


ASSETS = """{ assetNodes { assetKey { path } isPartitioned assetChecksOrError {
  ... on AssetChecks { checks { name } } } } }"""
LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on RepositoryLocation { repositories {
    name schedules { name } sensors { name } } } ... on PythonError { message } } } } } }"""
LAUNCH = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs(limit: 20) { status } } } }"""


@pytest.mark.slow
def test_dagster_dev_loads_everything_and_runs_a_backfill(tmp_path):
    """`hum dev -h 127.0.0.1 -p PORT` (its -h is dagster dev's host): webserver and daemon
    on the instance and settings `hum run` uses."""
    from hum_dagster.cli.instance import open_instance
    from hum_dagster.defs.resources.settings import HumSettings
    from hum_dagster.defs.synthesis.partitions import sync_partitions

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUM_", "DAGSTER_"))}
    env.update(HUM_HOME=str(tmp_path / "hum"), HUM_STORAGE_ROOT=str(tmp_path / "storage"))
    os.environ["HUM_HOME"] = env["HUM_HOME"]
    try:
        instance = open_instance()
    finally:
        os.environ.pop("HUM_HOME")
    sync_partitions(instance, HumSettings(storage_root="unused").entries().values())
    instance.dispose()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hum_dagster.cli.main", "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, "hum dev exited"
                assert time.time() < deadline, "hum dev did not start in 180 s"
                time.sleep(2)
        location = _gql(port, LOCATION)["workspaceOrError"]["locationEntries"][0]
        loaded = location["locationOrLoadError"]
        assert loaded["__typename"] == "RepositoryLocation", loaded
        repo = loaded["repositories"][0]
        assert {"nightly_audit"} <= {s["name"] for s in repo["schedules"]}
        assert {"landing_sensor", "hum_automation", "catalog_partitions"} <= {
            s["name"] for s in repo["sensors"]
        }

        nodes = _gql(port, ASSETS)["assetNodes"]
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {"raw_sources", "basic_instructions", "schema_dictionary",
                "compound_instructions/description", "compound_instructions/format_variants",
                "hum_corpus", "finetuned_checkpoint", "eval_scores", "eval_report"} <= keys
        checks = {c["name"] for n in nodes for c in n["assetChecksOrError"].get("checks", [])}
        assert {"quarantine_rate_below_threshold", "outputs_parse_with_own_labels",
                "no_example_is_own_input", "no_overlap_with_evaluation_sets",
                "outputs_follow_stated_format", "no_own_answer_in_guidelines"} <= checks

        params = {
            "partitionNames": ["ner_en_conll", "tc_zh_jsonl"],
            "assetSelection": [{"path": ["raw_sources"]}, {"path": ["source_quarantine"]},
                               {"path": ["basic_instructions"]}],
            "fromFailure": False,
        }
        launched = _gql(port, LAUNCH, {"p": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill = launched["backfillId"]
        deadline = time.time() + 240
        while True:
            state = _gql(port, STATUS, {"id": backfill})["partitionBackfillOrError"]
            if state["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED",
                                   "CANCELED"):
                break
            assert time.time() < deadline, f"backfill still {state} after 240 s"
            time.sleep(3)
        assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state
        assert state["runs"] and all(r["status"] == "SUCCESS" for r in state["runs"]), state
        for name in ("ner_en_conll", "tc_zh_jsonl"):
            assert (tmp_path / "storage" / "basic_instructions" / f"{name}.parquet").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
