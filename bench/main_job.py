"""The main job as a user meets it: README command 1's `hum run` from an empty `.hum`.

Runs ``hum run`` (extra arguments are passed on, e.g. ``--skip-eval``) with ``HUM_HOME``
set to a fresh temporary folder, samples every process it starts (code server, daemon,
forkserver, run processes, trainer) from ``/proc`` every 0.2 s, and prints:

- wall time, and the time per stage from the runs' start and end (event log);
- runs launched (by the asset they materialize), and whether any failed;
- peak RSS: the largest sum over the live processes at one sample, and the largest
  single process (VmHWM);
- CPU utilisation: CPU seconds of the process tree per wall second over the cores, for
  the whole run and for the synthesis stage (sources and compound instructions, where
  both cores should be busy), and the machine's own busy share from ``/proc/stat`` (so a
  figure measured while others used the machine says so).

    .venv/bin/python bench/main_job.py                 # the whole default, training and eval included
    .venv/bin/python bench/main_job.py --skip-eval     # stop after the corpus
    .venv/bin/python bench/main_job.py --keep DIR      # keep the .hum folder in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(ppid, cpu seconds, rss bytes) of a live process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _machine_busy() -> tuple[float, float]:
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) / TICK, idle / TICK


class Sampler(threading.Thread):
    """The process tree under ``root``: CPU per process (last seen), RSS sums, VmHWM."""

    def __init__(self, root: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.cpu: dict[int, float] = {}
        self.hwm: dict[int, int] = {}
        self.peak_sum = 0
        self.timeline: list[tuple[float, float]] = []  # (time, tree cpu seconds so far)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            stats = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    got = _stat(int(entry))
                    if got:
                        stats[int(entry)] = got
            children = defaultdict(list)
            for pid, (ppid, _, _) in stats.items():
                children[ppid].append(pid)
            tree, todo = set(), [self.root]
            while todo:
                pid = todo.pop()
                if pid in stats and pid not in tree:
                    tree.add(pid)
                    todo.extend(children[pid])
            rss = 0
            for pid in tree:
                _, cpu, resident = stats[pid]
                self.cpu[pid] = cpu
                self.hwm[pid] = max(self.hwm.get(pid, 0), _hwm(pid), resident)
                rss += resident
            self.peak_sum = max(self.peak_sum, rss)
            self.timeline.append((time.monotonic(), sum(self.cpu.values())))
            time.sleep(self.interval)

    def cpu_between(self, start: float, end: float) -> float:
        inside = [c for t, c in self.timeline if start <= t <= end]
        return (inside[-1] - inside[0]) if len(inside) > 1 else 0.0


def stage_of(asset: str) -> str:
    if asset.startswith("compound_instructions"):
        return "compound"
    return {"raw_sources": "sources", "source_quarantine": "sources", "basic_instructions": "sources",
            "schema_dictionary": "sources", "hum_corpus": "corpus", "base_models": "training",
            "finetuned_checkpoint": "training", "llamafactory_config": "training",
            "eval_scores": "evaluation", "eval_report": "evaluation"}.get(asset, asset)


def runs_by_stage(home: Path) -> tuple[Counter, dict, int]:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster_home")))
    counts: Counter = Counter()
    spans: dict[str, list[float]] = {}
    failed = 0
    for record in instance.get_run_records():
        run = record.dagster_run
        keys = sorted(k.to_user_string() for k in run.asset_selection or [])
        stage = stage_of(keys[0]) if keys else run.job_name
        counts[stage] += 1
        failed += run.status.value == "FAILURE"
        if record.start_time and record.end_time:
            span = spans.setdefault(stage, [record.start_time, record.end_time])
            span[0], span[1] = min(span[0], record.start_time), max(span[1], record.end_time)
    instance.dispose()
    return counts, spans, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="keep the .hum folder here (default: a temp folder, removed)")
    args, extra = parser.parse_known_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hum-bench-"))
    home = folder / ".hum"
    if home.exists() and any(home.iterdir()):
        print(f"{home} is not empty: the benchmark starts from an empty .hum", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUM_", "DAGSTER_"))}
    env["HUM_HOME"] = str(home)
    command = [str(PROJECT / ".venv" / "bin" / "hum"), "run", *extra]
    machine0 = _machine_busy()
    started = time.monotonic()
    wall0 = time.time()
    proc = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    output = []
    for line in proc.stdout:
        output.append(line)
        sys.stdout.write(line)
    proc.wait()
    wall = time.monotonic() - started
    sampler.stop.set()
    sampler.join(2)
    machine1 = _machine_busy()
    cores = os.cpu_count() or 1
    counts, spans, failed = runs_by_stage(home)
    cpu_total = sum(sampler.cpu.values())
    synth = [spans[s] for s in ("sources", "compound") if s in spans]
    synth_util = None
    if synth:
        s0, s1 = min(s[0] for s in synth), max(s[1] for s in synth)
        mono = lambda t: started + (t - wall0)  # noqa: E731
        synth_util = sampler.cpu_between(mono(s0), mono(s1)) / ((s1 - s0) * cores) if s1 > s0 else None
    total, idle = machine1[0] - machine0[0], machine1[1] - machine0[1]
    figures = {
        "command": " ".join(["hum", "run", *extra]),
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "runs_launched": sum(counts.values()),
        "runs_by_stage": dict(counts),
        "runs_failed": failed,
        "stage_spans_s": {k: round(v[1] - v[0], 1) for k, v in sorted(spans.items(), key=lambda kv: kv[1][0])},
        "processes_seen": len(sampler.cpu),
        "peak_rss_sum_mib": round(sampler.peak_sum / 2**20),
        "peak_rss_max_process_mib": round(max(sampler.hwm.values(), default=0) / 2**20),
        "cpu_seconds": round(cpu_total, 1),
        "cpu_utilisation": round(cpu_total / (wall * cores), 2),
        "cpu_utilisation_synthesis": round(synth_util, 2) if synth_util is not None else None,
        "machine_busy_share": round(1 - idle / total, 2) if total else None,
        "other_load_share": round(max(0.0, (1 - idle / total) - cpu_total / (wall * cores)), 2) if total else None,
        "cores": cores,
    }
    print("\nmain job figures:")
    print(json.dumps(figures, indent=1))
    if figures["other_load_share"] and figures["other_load_share"] > 0.1:
        print(f"note: other processes used about {figures['other_load_share']:.0%} of the machine "
              "during the run: measured while the machine was shared")
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
