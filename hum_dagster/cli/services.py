"""The processes ``hum run`` brings up and stops: a code server and the daemon.

The code server (``dagster api grpc``) serves the code location on a free loopback port;
the workspace file points the daemon at it. The daemon dequeues the runs (the run queue
of ``dagster.yaml``), executes the backfill and monitors runs. Their output goes to log
files under ``<HUM_HOME>/logs/``, never to the terminal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

LOCATION = "hum_dagster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceError(RuntimeError):
    """A service did not come up; the message names its log."""


class Services:
    """``with Services(home, env) as services:`` a code server and the daemon."""

    def __init__(self, home: Path, env: dict[str, str], project: Path, daemon_interval: int = 2):
        self.home = home
        self.project = project
        # Started in HUM_HOME, not the project: Dagster's commands load a `.env` file from
        # their working directory over the environment, and the settings given here win.
        self.cwd = home
        self.env = dict(env, HUM_DAEMON_INTERVAL=str(daemon_interval), HUM_PARENT_PID=str(os.getpid()))
        # One core per concurrent run (the run queue admits one run per core): math
        # libraries that take every core in every run only fight each other.
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            self.env.setdefault(name, "1")
        self.env.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.logs = home / "logs"
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.workspace = home / "workspace.yaml"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _start(self, name: str, command: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        handle = open(self.log(name), "ab")  # noqa: SIM115 (closed with the process)
        handle.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        handle.flush()
        self.procs[name] = subprocess.Popen(
            command, cwd=self.cwd, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        handle.close()

    def start(self) -> Services:
        python = sys.executable
        self.workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
            "host": "127.0.0.1", "port": self.port, "location_name": LOCATION}}]}), encoding="utf-8")
        self._start("code_server", [
            python, "-m", "hum_dagster.cli.code_server", "-m", "hum_dagster.definitions",
            "-h", "127.0.0.1", "-p", str(self.port), "--location-name", LOCATION,
            "--working-directory", str(self.project), "--log-level", "warning",
        ])
        self._wait_for_code_server()
        self._start("daemon", [
            python, "-m", "hum_dagster.cli.daemon", "run", "-w", str(self.workspace),
            "--log-level", "warning",
        ])
        return self

    def _wait_for_code_server(self, timeout: float = 180) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.port, host="127.0.0.1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs["code_server"].poll() is not None:
                raise ServiceError(
                    f"the code server exited while loading the code location; see {self.log('code_server')}"
                )
            try:
                client.ping("")
                return
            except Exception:  # not listening yet
                time.sleep(0.3)
        raise ServiceError(f"the code server did not answer in {timeout:.0f} s; see {self.log('code_server')}")

    def dead(self) -> str | None:
        """The name of a service that exited, if one did."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        for name in ("daemon", "code_server"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
