"""``hum convert`` as a team switching from IEPile runs it: whole process, wall time,
instructions per second, peak RSS of every process (workers included), and a check that
the output is the same bytes for any number of worker processes.

The input has the shape of the issue's (CoNLL-2003 train, 14,041 sentences, written as
IEPile raw NER lines): the 400 sentences of CrossNER politics and science train
(``../shared/data/crossner/*/train.txt``, read with the project's CoNLL reader) cycled
to 14,041 lines (1x), 140,410 (10x) and 702,050 (50x). ``--labels conll`` (default)
maps CrossNER's types onto CoNLL-2003's four (PER, LOC, ORG, MISC), so that, as in
the issue, each line gives one instruction at ``--split_num 6``; ``--labels crossner``
keeps the 19 types (3 instructions per line). Variant ``distinct`` (default) appends a
numbered token `` [<line>]`` to each text so that every line is a distinct record, as
in the issue; ``copies`` writes the sentences verbatim (all but 399 lines repeat an
earlier one) to check the drop-in behaviour on repeats.

    .venv/bin/python bench/convert_throughput.py                       # 1x/10x/50x, 1 and 2 processes, train and test
    .venv/bin/python bench/convert_throughput.py --scales 10 --modes train
    .venv/bin/python bench/convert_throughput.py --variant copies --scales 10 --dedup

Reference (the issue): IEPile's ``convert_func.py`` wrote 140,410 instructions in 6.1 s
(22,842/s) on a 2-core machine, ``--split train --split_num 6 --random_sort``.
Peak RSS is each process's VmHWM (read from /proc while it runs, every 20 ms, and the
tree's maximum from getrusage); CPU is user + system time of the whole tree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hum_dagster.paths import shared_data_dir  # noqa: E402

IEPILE_RATE = 22_842  # instructions per second: 140,410 in 6.1 s (the issue)
BASE_LINES = 14_041  # CoNLL-2003 train sentences
CONLL = {
    "person": "PER", "politician": "PER", "scientist": "PER",
    "location": "LOC", "country": "LOC",
    "organisation": "ORG", "politicalparty": "ORG", "university": "ORG",
}  # fmt: skip  (every other CrossNER type is MISC)


def base_records() -> list[tuple[str, list[tuple[str, str]]]]:
    from hum_dagster.readers import read_source
    from hum_dagster.readers.catalog import CatalogEntry

    records = []
    for domain in ("politics", "science"):
        path = shared_data_dir() / "crossner" / domain / "train.txt"
        if not path.is_file():
            raise SystemExit(f"{path} not found: the benchmark reads CrossNER train files")
        result = read_source(CatalogEntry(domain, "NER", "en", "conll", str(path)))
        for record in result.records:
            records.append(
                (record.text, [(e["text"], e["type"]) for e in record.gold["entities"]])
            )
    return records


def write_input(folder: Path, scale: int, variant: str, labels: str) -> tuple[Path, Path]:
    """The IEPile raw NER file of ``scale`` x 14,041 lines and its schema file."""
    records = base_records()
    lines = BASE_LINES * scale
    src = folder / f"{labels}-{variant}-{scale}x" / "train.json"
    src.parent.mkdir(parents=True, exist_ok=True)
    types: set[str] = set()
    with open(src, "w", encoding="utf-8") as handle:
        for i in range(lines):
            text, entities = records[i % len(records)]
            if variant == "distinct":
                text = f"{text} [{i}]"
            rows = []
            for mention, etype in entities:
                etype = CONLL.get(etype, "MISC") if labels == "conll" else etype
                types.add(etype)
                rows.append({"entity": mention, "entity_type": etype})
            handle.write(json.dumps({"text": text, "entity": rows}, ensure_ascii=False) + "\n")
    schema = src.parent / "schema.json"
    schema.write_text(json.dumps(sorted(types)) + "\n[]\n{}\n", encoding="utf-8")
    return src, schema


def _status(pid: int) -> tuple[int, float] | None:
    """(VmHWM in kB, CPU seconds) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            hwm = next((int(x.split()[1]) for x in handle if x.startswith("VmHWM:")), 0)
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return hwm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(x) for x in handle.read().split()]
    except OSError:
        return []


def measure(argv: list[str]) -> dict:
    """Run ``argv``; wall time, peak RSS per process (main first), CPU of the tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for pid in [proc.pid, *_children(proc.pid)]:
            found = _status(pid)
            if found is not None:
                peaks[pid] = max(peaks.get(pid, 0), found[0])
        time.sleep(0.02)
    wall = time.perf_counter() - started
    out, err = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    main = peaks.pop(proc.pid, 0)
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_main_mb": main / 1024,
        "rss_workers_mb": sorted((v / 1024 for v in peaks.values()), reverse=True),
        "rss_tree_max_mb": after.ru_maxrss / 1024,
        "stderr": err.decode().strip().splitlines(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["train", "test"], choices=["train", "test"])
    parser.add_argument("--variant", default="distinct", choices=["distinct", "copies"])
    parser.add_argument("--labels", default="conll", choices=["conll", "crossner"])
    parser.add_argument("--dedup", action="store_true", help="pass --dedup to hum convert")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (best kept)")
    parser.add_argument("--keep", help="folder for inputs and outputs (default: a temp folder)")
    args = parser.parse_args()

    # Byte-compile the package first, as `pip install` does (this environment may set
    # PYTHONDONTWRITEBYTECODE, and compiling on every start would be timed).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "hum_dagster")],
                   check=True, stdout=subprocess.DEVNULL)
    hum = str(ROOT / ".venv" / "bin" / "hum")
    if not os.path.exists(hum):
        hum = "hum"
    folder = Path(args.keep or tempfile.mkdtemp(prefix="hum-convert-bench-"))
    print(f"cores: {os.cpu_count()}, input: CrossNER politics+science train, labels "
          f"{args.labels}, variant {args.variant}; IEPile reference {IEPILE_RATE:,.0f} "
          "instructions/s (2 cores, the issue)")
    print(f"{'scale':>5} {'lines':>8} {'mode':>5} {'procs':>5} {'rows':>8} {'wall s':>7} "
          f"{'instr/s':>9} {'x IEPile':>8} {'CPU s':>6} {'RSS main MB':>11} "
          f"{'RSS workers MB':>15} {'same bytes':>10}")
    for scale in args.scales:
        src, schema = write_input(folder, scale, args.variant, args.labels)
        lines = BASE_LINES * scale
        for mode in args.modes:
            digests = {}
            for workers in args.workers:
                tgt = src.parent / f"out-{mode}-{workers}.json"
                argv = [hum, "convert", "--src_path", str(src), "--tgt_path", str(tgt),
                        "--schema_path", str(schema), "--language", "en", "--task", "NER",
                        "--split", mode, "--split_num", "6", "--random_sort",
                        "--workers", str(workers)]  # fmt: skip
                if args.dedup:
                    argv.append("--dedup")
                runs = [measure(argv) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["wall"])
                with open(tgt, "rb") as handle:
                    rows = 0
                    digest = hashlib.sha256()
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        rows += block.count(b"\n")
                        digest.update(block)
                digests[workers] = digest.hexdigest()
                same = "yes" if len(set(digests.values())) == 1 else "NO"
                rate = rows / best["wall"]
                workers_rss = "/".join(f"{v:.0f}" for v in best["rss_workers_mb"]) or "-"
                print(f"{scale:>4}x {lines:>8} {mode:>5} {workers:>5} {rows:>8} "
                      f"{best['wall']:>7.2f} {rate:>9,.0f} {rate / IEPILE_RATE:>8.1f} "
                      f"{best['cpu']:>6.2f} {best['rss_main_mb']:>11.0f} {workers_rss:>15} "
                      f"{same:>10}", flush=True)
                for line in best["stderr"]:
                    if "wrote" not in line:
                        print(f"      stderr: {line[:200]}")
                os.remove(tgt)
            if len(set(digests.values())) != 1:
                raise SystemExit(f"output differs across process counts at {scale}x {mode}")
        if not args.keep:
            for path in src.parent.iterdir():
                path.unlink()
            src.parent.rmdir()
    print("instr/s: output rows / wall time of the whole `hum convert` process (start-up, "
          "reading, validation, synthesis, writing); CPU: user+system of the process tree; "
          "RSS: VmHWM per process; same bytes: the output's SHA-256 matches across "
          "process counts")


if __name__ == "__main__":
    main()
