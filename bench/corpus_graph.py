"""The paper's scale through the Dagster graph, as ``hum run`` runs it: about 2.8M
instructions from replicated real sources, ``raw_sources`` -> ``basic_instructions`` /
``schema_dictionary`` -> every ``compound_instructions`` strategy -> ``hum_corpus[full]``,
one asset backfill on a persistent instance (daemon, code server, run queue, ``llm`` pool),
with the LLM steps (dictionary descriptions, preference rules, the combined strategy's
rules) replayed from a cache filled for that run.

Sources (written first, not measured) are copies of the real files in ../shared/data in
their own formats (CoNLL, FewRel JSON, C3 JSON, IMDB CSV, CaRB TSV, IEPile JSON) with about
half of the words outside entity spans replaced per copy by words of the same file, so
that copies are distinct records (as in a real corpus, not near duplicates), declared
``split: train``, in partitions of 4,000-8,000 records (``PLAN``: a run holds one
partition's rows, so the partition size bounds a run's memory).

1. Fill (not measured): ``hum run --synthesis-only`` in live mode against the loopback
   OpenAI-compatible server (tests/openai_server.py) answering as a *simulated model*
   (``simulate``: answers of the asked shape written from the prompt; they pass through the
   cache, the gates and the relabelling checks like real ones, their content means
   nothing). Every LLM answer lands in one cache (``HUM_LLM_CACHE_ROOT``).
2. Measured: ``hum run --skip-eval --corpus-variants full`` on a fresh instance and storage
   in replay mode over that cache (no endpoint at all). Printed: wall time; per stage
   (sources, compound, corpus) its runs, span, instructions and instructions/s; the
   corpus step's own breakdown (its ``timings_s`` metadata); and the peak RSS (``VmHWM``,
   sampled every 0.2 s from /proc) of every process ``hum run`` started: run workers by
   stage, code server, daemon, ``hum run`` itself; and the steps (assets, check steps)
   with the most seconds summed over their partitions, from the event log.

    .venv/bin/python bench/corpus_graph.py                 # about 2.8M instructions
    .venv/bin/python bench/corpus_graph.py --scale 0.1     # a tenth, for a quick look
    .venv/bin/python bench/corpus_graph.py --keep DIR      # keep sources, cache, instances
    .venv/bin/python bench/corpus_graph.py --keep DIR --measure-only   # step 2 again
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hum_dagster.paths import ASSETS_DIR, shared_data_dir  # noqa: E402

# (copies per partition, partitions) at --scale 1: about 2.8M instructions from 173k
# records. FewRel: two partitions per copy (8 of its 16 relations each, 5,600 records).
PLAN = {
    "fewrel": (1, 8),
    "crossner_politics": (20, 3),  # 200 sentences a copy
    "crossner_science": (20, 3),
    "c3": (4, 10),  # 1,991 questions a copy
    "imdb": (5, 5),  # 1,000 reviews a copy
}


# --------------------------------------------------------------------------- sources


def _swap(words: list[str], keep: set[int], vocab: list[str], rng) -> list[str]:
    out = list(words)
    for j in np.flatnonzero(rng.random(len(words)) < 0.5):
        if int(j) not in keep:
            out[j] = vocab[rng.integers(len(vocab))]
    return out


def write_conll(src: Path, dest: Path, copies: int, rng) -> int:
    sentences, cur = [], []
    for line in src.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                sentences.append(cur)
            cur = []
        elif not line.startswith("-DOCSTART-"):
            cur.append(line.split())
    if cur:
        sentences.append(cur)
    vocab = sorted({tok for s in sentences for tok, tag in s if tag == "O" and tok.isalpha()})
    with open(dest, "w", encoding="utf-8") as out:
        for _ in range(copies):
            for s in sentences:
                words = [t for t, _ in s]
                keep = {i for i, (_, tag) in enumerate(s) if tag != "O" or not words[i].isalpha()}
                for w, (_, tag) in zip(_swap(words, keep, vocab, rng), s, strict=True):
                    out.write(f"{w}\t{tag}\n")
                out.write("\n")
    return copies * len(sentences)


def write_fewrel(src: Path, dest: Path, copies: int, rng, part: int = 0, of: int = 1) -> int:
    """``copies`` of the relations ``part`` of ``of`` (every ``of``-th relation by name)."""
    data = json.loads(src.read_text(encoding="utf-8"))
    data = {rel: items for n, (rel, items) in enumerate(sorted(data.items())) if n % of == part}
    vocab = sorted(
        {w for items in data.values() for it in items for w in it["tokens"] if w.isalpha()}
    )
    out: dict[str, list] = {}
    for _ in range(copies):
        for rel, items in data.items():
            for it in items:
                keep = {p for ent in (it["h"], it["t"]) for span in ent[2] for p in span}
                keep |= {i for i, w in enumerate(it["tokens"]) if not w.isalpha()}
                out.setdefault(rel, []).append(
                    dict(it, tokens=_swap(it["tokens"], keep, vocab, rng))
                )
    dest.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return sum(len(v) for v in out.values())


def _swap_chars(text: str, chars: list[str], rng) -> str:
    cs = list(text)
    for j in np.flatnonzero(rng.random(len(cs)) < 0.5):
        if "\u4e00" <= cs[j] <= "\u9fff":
            cs[j] = chars[rng.integers(len(chars))]
    return "".join(cs)


def write_c3(src: Path, dest: Path, copies: int, rng, start: int) -> int:
    data = json.loads(src.read_text(encoding="utf-8"))
    chars = sorted({c for doc in data for p in doc[0] for c in p if "\u4e00" <= c <= "\u9fff"})
    out = []
    for copy in range(start, start + copies):
        for paragraphs, questions, ident in data:
            new = [_swap_chars(p, chars, rng) for p in paragraphs]
            asked = [dict(q, question=_swap_chars(q["question"], chars, rng)) for q in questions]
            out.append([new, asked, f"{ident}-c{copy}"])
    dest.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return sum(len(doc[1]) for doc in out)


def write_imdb(src: Path, dest: Path, copies: int, rng) -> int:
    with open(src, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    vocab = sorted({w for r in rows for w in r["text"].split() if w.isalpha()})
    with open(dest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "text"])
        writer.writeheader()
        for _ in range(copies):
            for r in rows:
                words = r["text"].split()
                writer.writerow(
                    {"label": r["label"], "text": " ".join(_swap(words, set(), vocab, rng))}
                )
    return copies * len(rows)


def generate(out: Path, scale: float) -> list[dict]:
    """Write the scaled sources and ``catalog.yaml``; the catalog entries."""
    shared = shared_data_dir()
    if not (shared / "fewrel" / "val_wiki.json").is_file():
        raise SystemExit(f"the real benchmark files are missing: {shared} (see ../shared/data)")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}

    def written(dest: Path, write) -> int:
        """Records in ``dest``, written first unless an earlier run wrote it (every
        partition draws from its own seed, so a partition is the same at every scale and
        a --scale 1 catalog lists a subset of a --scale 2 one's files)."""
        if dest.name not in manifest or not dest.is_file():
            manifest[dest.name] = write(np.random.default_rng([0, zlib.crc32(dest.name.encode())]))
            manifest_path.write_text(json.dumps(manifest))
        return manifest[dest.name]
    entries: list[dict] = []

    def copies(name: str) -> tuple[int, int]:
        """(copies per partition, partitions) at ``scale``: the partitions scale."""
        per, parts = PLAN[name]
        return per, max(1, round(parts * scale))

    for domain in ("politics", "science"):
        per, parts = copies(f"crossner_{domain}")
        for p in range(parts):
            dest = out / f"crossner_{domain}_{p}.conll"
            n = written(dest, lambda rng, d=dest, dom=domain, per=per: write_conll(
                shared / "crossner" / dom / "train.txt", d, per, rng))
            entries.append(
                {
                    "name": f"crossner_{domain}_part{p}",
                    "task": "NER",
                    "language": "en",
                    "format": "conll",
                    "split": "train",
                    "location": str(dest),
                    "options": {"scheme": "BIO"},
                    "records": n,
                }
            )
    per, parts = copies("fewrel")
    for p in range(parts):
        dest = out / f"fewrel_{p}.json"
        # two partitions per copy of the file: half of its 16 relations each
        n = written(dest, lambda rng, d=dest, p=p: write_fewrel(
            shared / "fewrel" / "val_wiki.json", d, per, rng, p % 2, 2))
        entries.append(
            {
                "name": f"fewrel_part{p}",
                "task": "RE",
                "language": "en",
                "format": "fewrel",
                "split": "train",
                "location": str(dest),
                "options": {"pid2name": str(shared / "fewrel" / "pid2name.json")},
                "records": n,
            }
        )
    per, parts = copies("c3")
    for p in range(parts):
        dest = out / f"c3_{p}.json"
        n = written(dest, lambda rng, d=dest, p=p: write_c3(
            shared / "c3" / "c3-m-dev.json", d, per, rng, p * per))
        entries.append(
            {
                "name": f"c3_part{p}",
                "task": "MRC",
                "language": "zh",
                "format": "c3",
                "split": "train",
                "location": str(dest),
                "records": n,
            }
        )
    per, parts = copies("imdb")
    for p in range(parts):
        dest = out / f"imdb_{p}.csv"
        n = written(dest, lambda rng, d=dest: write_imdb(
            shared / "imdb" / "texts.csv", d, per, rng))
        entries.append(
            {
                "name": f"imdb_part{p}",
                "task": "TC",
                "language": "en",
                "format": "csv",
                "split": "train",
                "location": str(dest),
                "options": {
                    "text_column": "text",
                    "label_column": "label",
                    "labels": ["negative", "positive"],
                },
                "records": n,
            }
        )
    # Used once, as they are: CaRB, the IEPile samples (SPO, EE, KGE), the IG samples.
    entries.append(
        {
            "name": "carb_dev",
            "task": "OpenIE",
            "language": "en",
            "format": "carb",
            "split": "train",
            "location": str(shared / "carb" / "dev.tsv"),
        }
    )
    for task, folder in (("SPO", "SPO"), ("EE", "EE"), ("KGE", "KG")):
        entries.append(
            {
                "name": f"iepile_{folder.lower()}",
                "task": task,
                "language": "zh",
                "format": "iepile",
                "split": "train",
                "location": str(shared / "iepile" / folder / "sample.json"),
                "options": {"schema": str(shared / "iepile" / folder / "schema.json")},
            }
        )
    import yaml

    samples = yaml.safe_load((ASSETS_DIR / "catalog.yaml").read_text(encoding="utf-8"))["sources"]
    for entry in samples:
        if entry["task"] == "IG":
            entries.append(dict(entry, location=str(ASSETS_DIR / entry["location"])))
    catalog = [{k: v for k, v in e.items() if k != "records"} for e in entries]
    (out / "catalog.yaml").write_text(yaml.safe_dump({"sources": catalog}, allow_unicode=True))
    return entries


# --------------------------------------------------------------------------- measuring


class RssSampler(threading.Thread):
    """Every ``interval`` s: the peak RSS (``VmHWM``) and command line of every process
    descended from ``root``. VmHWM is a process's own high-water mark, so a sample taken
    any time before it exits has its peak (a process that lives less than ``interval``
    may be missed)."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak: dict[int, float] = {}
        self.cmd: dict[int, str] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                        parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        mine = {self.root}
        grew = True
        while grew:
            more = {p for p, pp in parents.items() if pp in mine and p not in mine}
            mine |= more
            grew = bool(more)
        for pid in mine:
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as f:
                    hwm = next((int(x.split()[1]) / 1024 for x in f if x.startswith("VmHWM:")), 0)
                if pid not in self.cmd:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        self.cmd[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            self.peak[pid] = max(self.peak.get(pid, 0.0), hwm)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.sample()


def hum_run(flags: list[str], env: dict[str, str], log: Path) -> tuple[int, float, RssSampler]:
    """``hum run FLAGS`` as a user runs it; (exit code, wall seconds, its processes' peaks)."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hum_dagster.cli.main", "run", *flags],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    return code, time.perf_counter() - started, sampler


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "openai_server.py"), "--no-record",
         "--behaviour", "simulate"],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"the loopback server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def run_env(tmp: Path, name: str, llm: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUM_", "DAGSTER_"))}
    env.update({
        "HUM_HOME": str(tmp / name / "home"),
        "HUM_STORAGE_ROOT": str(tmp / name / "storage"),
        "HUM_CATALOG": str(tmp / "sources" / "catalog.yaml"),
        "HUM_LLM_CACHE_ROOT": str(tmp / "llm_cache"),
        "HUM_LLM_MODEL": "simulated-model",
        "HUM_LLM_API_KEY_ENV": "",
        "HUM_LLM_MAX_IN_FLIGHT": "64",
        "HUM_LLM_CHECK_MODEL": "off",
        # the gates reject most simulated answers (a relabelling equal to the original,
        # English descriptions for Chinese labels): counted, not a failure here
        "HUM_LLM_MIN_ACCEPTED_PCT": "0",
        "HUM_SHARED_DATA": str(shared_data_dir()),
        **llm,
    })
    return env


def _run_pid(instance, run_id: str) -> int | None:
    import dagster as dg

    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        data = record.event_log_entry.dagster_event.event_specific_data
        if data is not None and data.metadata.get("pid"):
            return int(data.metadata["pid"].value)
    return None


def runs_report(home: Path) -> list[dict]:
    """Per run of the latest backfill: stage, start, end, pid, instructions, status."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster_home")))
    backfill = instance.get_backfills(limit=1)[0]
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    out = []
    for record in runs:
        run = record.dagster_run
        mats = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        keys, instructions, corpus_meta = set(), 0, {}
        for m in mats:
            mat = m.event_log_entry.dagster_event.event_specific_data.materialization
            name = mat.asset_key.path[0]
            keys.add(name)
            meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            if name in ("basic_instructions", "compound_instructions"):
                instructions += int(meta.get("instructions", 0) or 0)
            if name == "hum_corpus":
                corpus_meta = meta
        # the run's asset selection names its stage (a failed run materialized nothing)
        keys |= {k.path[0] for k in (run.asset_selection or ())}
        stage = ("corpus" if "hum_corpus" in keys else "compound"
                 if "compound_instructions" in keys else "sources")
        out.append({
            "run_id": run.run_id, "job": run.job_name, "status": run.status.value,
            "partition": run.tags.get("dagster/partition", ""), "stage": stage,
            "start": record.start_time or record.create_timestamp.timestamp(),
            "end": record.end_time or time.time(), "pid": _run_pid(instance, run.run_id),
            "instructions": instructions, "corpus": corpus_meta,
        })
    return out


def step_seconds(home: Path, top: int = 15) -> list[tuple[str, int, float]]:
    """(step, how many, seconds) of the latest backfill's runs, most seconds first: each
    step's STEP_START to STEP_SUCCESS/FAILURE in the event log, summed over partitions
    (a compound step is named by its strategy: ``examples``, ``examples_checks``)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster_home")))
    backfill = instance.get_backfills(limit=1)[0]
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    seconds: dict[str, float] = {}
    count: dict[str, int] = {}
    ends = {"STEP_SUCCESS", "STEP_FAILURE"}
    for record in runs:
        started: dict[str, float] = {}
        for entry in instance.all_logs(record.dagster_run.run_id):
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ends and event.step_key in started:
                name = event.step_key.split("[")[0].removeprefix("compound_instructions__")
                seconds[name] = seconds.get(name, 0.0) + entry.timestamp - started[event.step_key]
                count[name] = count.get(name, 0) + 1
    ranked = sorted(seconds.items(), key=lambda kv: -kv[1])
    return [(name, count[name], value) for name, value in ranked[:top]]


def report(runs: list[dict], wall: float, sampler: RssSampler) -> None:
    print(f"\n{'stage':<10} {'runs':>5} {'failed':>6} {'span s':>8} {'run s':>8} "
          f"{'instructions':>13} {'instr/s':>9} {'peak RSS MB':>12}")
    by_pid = sampler.peak
    run_pids = set()
    total = 0
    for stage in ("sources", "compound", "corpus"):
        rs = [r for r in runs if r["stage"] == stage]
        if not rs:
            continue
        span = max(r["end"] for r in rs) - min(r["start"] for r in rs)
        busy = sum(r["end"] - r["start"] for r in rs)
        n = sum(r["instructions"] for r in rs)
        if stage == "corpus":
            n = sum(int(r["corpus"].get("instructions", 0) or 0) for r in rs)
        total += n if stage != "corpus" else 0
        pids = [r["pid"] for r in rs if r["pid"]]
        run_pids.update(pids)
        peak = max((by_pid.get(p, 0.0) for p in pids), default=0.0)
        failed = sum(r["status"] != "SUCCESS" for r in rs)
        rate = n / span if span else 0
        print(f"{stage:<10} {len(rs):>5} {failed:>6} {span:>8.1f} {busy:>8.1f} {n:>13,} "
              f"{rate:>9,.0f} {peak:>12,.0f}")
    print(f"{'total':<10} {len(runs):>5} {'':>6} {wall:>8.1f} {'':>8} {total:>13,} "
          f"{total / wall:>9,.0f}   (wall of hum run; instructions synthesized)")
    for r in runs:
        if r["stage"] == "corpus" and r["corpus"]:
            meta = r["corpus"]
            print(f"\ncorpus: {meta.get('instructions', 0):,} instructions; removed "
                  f"{meta.get('removed_by_reason')}")
            for key, value in sorted((meta.get("timings_s") or {}).items()):
                print(f"   {key:<48} {value:>8.1f}")
    others = {p: c for p, c in sampler.cmd.items() if p not in run_pids}
    roles = []
    for pid, cmd in others.items():
        role = ("daemon" if " daemon" in cmd else "code server" if "code_server" in cmd
                or "api grpc" in cmd else "hum run" if " run" in cmd and "cli.main" in cmd
                else cmd[:60])
        roles.append((sampler.peak.get(pid, 0.0), role))
    print("\npeak RSS of the other processes (MB): " + "; ".join(
        f"{role} {mb:,.0f}" for mb, role in sorted(roles, reverse=True)[:8]))
    biggest = max(sampler.peak.values(), default=0.0)
    print(f"largest peak RSS of any process: {biggest:,.0f} MB; cores {os.cpu_count()}")
    bad = [r for r in runs if r["status"] != "SUCCESS"]
    for r in bad[:10]:
        print(f"FAILED run {r['run_id'][:8]} {r['job']} [{r['partition']}]")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--mix-total",
        type=int,
        default=1_000_000,
        help="corpus size asked of the mix at --scale 1 (0: every usable row)",
    )
    parser.add_argument("--keep", help="a folder to keep sources, cache and instances in")
    parser.add_argument("--fill-only", action="store_true", help="stop after step 1")
    parser.add_argument("--measure-only", action="store_true",
                        help="with --keep of an earlier run: step 2 again, on a fresh instance "
                        "(its cache answers any --scale up to the one it was filled at)")
    args = parser.parse_args()
    if args.measure_only and not (args.keep and (Path(args.keep) / "llm_cache").is_dir()):
        parser.error("--measure-only needs --keep DIR of an earlier run")
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="hum-graph-bench-"))
    (tmp / "sources").mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    entries = generate(tmp / "sources", args.scale)
    print(f"{len(entries)} sources ({sum(e.get('records', 0) for e in entries):,} records in "
          f"the replicated ones) ready in {time.perf_counter() - t:.0f} s (not measured)",
          flush=True)
    if not args.measure_only:
        shutil.rmtree(tmp / "fill", ignore_errors=True)
        server, url = start_simulator()
        try:
            env = run_env(tmp, "fill", {"HUM_LLM_MODE": "live", "HUM_LLM_BASE_URL": url})
            code, wall, _ = hum_run(["--synthesis-only"], env, tmp / "fill.log")
        finally:
            server.kill()
        shards = list((tmp / "llm_cache" / "shards").glob("*.jsonl"))
        answers = sum(s.read_bytes().count(b"\n") for s in shards)
        print(f"1. fill: hum run --synthesis-only, live against the simulated model: exit "
              f"{code}, {wall:.0f} s, {answers:,} answers cached (not measured; log "
              f"{tmp / 'fill.log'})", flush=True)
        if code != 0:
            print((tmp / "fill.log").read_text(encoding="utf-8")[-3000:])
            raise SystemExit(1)
        if args.fill_only:
            return
    shutil.rmtree(tmp / "measured", ignore_errors=True)
    env = run_env(tmp, "measured", {"HUM_LLM_MODE": "replay"})
    total = round(args.mix_total * args.scale)
    code, wall, sampler = hum_run(
        ["--skip-eval", "--corpus-variants", "full", "--mix-total", str(total)],
        env, tmp / "measured.log",
    )
    print(f"2. measured: hum run --skip-eval --corpus-variants full --mix-total {total} in "
          f"replay mode: exit {code}, {wall:.1f} s (log {tmp / 'measured.log'})", flush=True)
    report(runs_report(Path(env["HUM_HOME"])), wall, sampler)
    print("\nsteps with the most seconds (summed over their partitions):")
    for name, n, value in step_seconds(Path(env["HUM_HOME"])):
        print(f"   {name:<48} {n:>4} x {value:>8.1f}")
    print(f"outputs in {tmp}")


if __name__ == "__main__":
    main()
