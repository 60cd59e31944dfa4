"""The executor is a setting: in_process by default, multiprocess or k8s by run config or
HUM_EXECUTOR (read when the run starts)."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from hum_dagster.defs.resources.executor import _sub_config, executor_kind

JOB_MODULE = '''
import os, dagster as dg
from hum_dagster.defs.resources.executor import hum_executor

@dg.asset
def first() -> int:
    return os.getpid()

@dg.asset
def second(first: int) -> int:
    return os.getpid()

def pid_job():
    job = dg.define_asset_job("pids", selection=[first, second])
    return dg.Definitions(assets=[first, second], jobs=[job], executor=hum_executor).resolve_job_def("pids")
'''

RUNNER = '''
import json, sys, dagster as dg
import pid_jobs
config = json.loads(sys.argv[1])
with dg.instance_for_test(temp_dir=sys.argv[2]) as instance:
    with dg.execute_job(dg.reconstructable(pid_jobs.pid_job), instance=instance, run_config=config) as result:
        assert result.success
        print(json.dumps({e.step_key: e.pid for e in result.all_events if e.is_step_success}))
'''


def _pids(tmp_path, env: dict, run_config: dict | None = None) -> tuple[int, int]:
    (tmp_path / "pid_jobs.py").write_text(JOB_MODULE, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(run_config or {}), str(home)],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    pids = json.loads(out.stdout.strip().splitlines()[-1])
    return pids["first"], pids["second"]


def test_in_process_by_default_multiprocess_by_run_config_or_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HUM_EXECUTOR"}
    a, b = _pids(tmp_path, env)
    assert a == b  # every step in the run's own process
    a, b = _pids(tmp_path, env, {"execution": {"config": {"kind": "multiprocess"}}})
    assert a != b  # one process per step
    a, b = _pids(tmp_path, {**env, "HUM_EXECUTOR": "multiprocess"})
    assert a != b  # deployment-wide, read when the run starts


def test_kind_comes_from_config_then_environment(monkeypatch):
    monkeypatch.delenv("HUM_EXECUTOR", raising=False)
    assert executor_kind({}) == "in_process"
    monkeypatch.setenv("HUM_EXECUTOR", "multiprocess")
    assert executor_kind({}) == "multiprocess"
    assert executor_kind({"kind": "k8s"}) == "k8s"
    with pytest.raises(dg.DagsterInvalidConfigError, match="not one of"):
        executor_kind({"kind": "threads"})


def test_k8s_settings_are_validated_by_the_k8s_executor():
    pytest.importorskip("dagster_k8s")
    from dagster_k8s import k8s_job_executor

    config = _sub_config(k8s_job_executor, {"job_namespace": "hum", "max_concurrent": 8})
    assert config["job_namespace"] == "hum" and config["max_concurrent"] == 8
    with pytest.raises(dg.DagsterInvalidConfigError):
        _sub_config(k8s_job_executor, {"not_a_setting": 1})
