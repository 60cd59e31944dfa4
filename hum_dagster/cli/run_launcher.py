"""A run launcher for one machine whose run workers Dagster's run monitoring can check.

Dagster's ``DefaultRunLauncher`` starts each run as a process of the code server but
cannot tell the monitoring daemon whether that process still lives, so a run whose
process was killed (OOM killer, ``kill -9``, a closed terminal) stays ``STARTED`` forever.
This subclass answers ``check_run_worker_health`` from the pid the run recorded when its
process started ("Started process for run (pid: N)"): alive, or gone. The monitoring
daemon (``run_monitoring`` in ``resources/dagster.yaml``) then marks such a run failed,
and run retries or the next ``hum run`` redo its partitions. Only for runs on this
machine, which is all the default launcher starts.
"""

from __future__ import annotations

import os

from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus


def process_alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process of this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


class LocalRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _run_pid(self, run: DagsterRun) -> int | None:
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            data = getattr(event, "engine_event_data", None) if event else None
            if data is not None and data.marker_start is None and data.metadata.get("pid"):
                message = record.event_log_entry.message or ""
                if message.startswith("Started process for run"):
                    return int(data.metadata["pid"].value)
        return None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if run.status != DagsterRunStatus.STARTED:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        pid = self._run_pid(run)
        if pid is None:  # not started yet: run monitoring's start timeout covers it
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"the run's process (pid {pid}) is gone: it was killed or crashed"
        )
