"""Seconds of the synthesis checks over stored partitions, two ways, with the same
Problems asserted for both:

- per check: what one step per check name did until stop 23 (read the table, build the
  basic rows' index where the check needs it, run that check's validators on every row);
- one pass: what the one ``multi_asset_check`` step per asset does now
  (``synthesis.strategies.check_rows``: one read, and the passes that several checks share,
  the label and own-input checks' parse, run once per row).

Dagster's own per-step cost (events, the IO manager's load) is not in either figure.

    .venv/bin/python bench/asset_checks.py STORAGE_ROOT            # every strategy
    .venv/bin/python bench/asset_checks.py STORAGE_ROOT examples   # some of them

STORAGE_ROOT is a `hum run` storage folder (``HUM_STORAGE_ROOT``), e.g. the measured
instance of ``bench/corpus_graph.py --keep DIR`` (``DIR/measured/storage``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hum_dagster.synthesis.strategies import (  # noqa: E402
    BASIC_VALIDATORS,
    STRATEGIES,
    ValidationContext,
    check_rows,
)


def rows_of(path: Path):
    for batch in pl.scan_parquet(path).collect_batches(chunk_size=20_000):
        yield from batch.iter_rows(named=True)


def base_rows(path: Path) -> dict:
    return {r["instruction_id"]: r for r in pl.read_parquet(path).iter_rows(named=True)}


def per_check(path: Path, base_path: Path, validators) -> dict:
    groups: dict[str, list] = {}
    for v in validators:
        groups.setdefault(v.check, []).append(v)
    found = {}
    for check, group in groups.items():
        base = base_rows(base_path) if any(v.needs_base for v in group) else {}
        context = ValidationContext(base_rows=base)
        found[check] = [p for row in rows_of(path) for v in group for p in v.function(row, context)]
    return found


def one_pass(path: Path, base_path: Path, validators) -> dict:
    base = base_rows(base_path) if any(v.needs_base for v in validators) else {}
    return check_rows(rows_of(path), validators, ValidationContext(base_rows=base))


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = Path(sys.argv[1])
    only = set(sys.argv[2:])
    assets = [("basic", BASIC_VALIDATORS, root / "basic_instructions")] + [
        (name, spec.validators, root / "compound_instructions" / name)
        for name, spec in STRATEGIES.items()
    ]
    totals = [0.0, 0.0]
    print(f"{'asset':<26} {'partitions':>10} {'rows':>9} {'per check s':>12} {'one pass s':>11}")
    for name, validators, folder in assets:
        if only and name not in only:
            continue
        files = sorted(folder.glob("*.parquet"))
        seconds = [0.0, 0.0]
        rows = 0
        for path in files:
            base_path = root / "basic_instructions" / path.name
            rows += pl.scan_parquet(path).select(pl.len()).collect().item()
            t = time.perf_counter()
            old = per_check(path, base_path, validators)
            seconds[0] += time.perf_counter() - t
            t = time.perf_counter()
            new = one_pass(path, base_path, validators)
            seconds[1] += time.perf_counter() - t
            if old != new:
                sys.exit(f"{name}[{path.stem}]: the two ways found different problems")
        totals = [a + b for a, b in zip(totals, seconds, strict=True)]
        print(f"{name:<26} {len(files):>10} {rows:>9,} {seconds[0]:>12.1f} {seconds[1]:>11.1f}",
              flush=True)
    print(f"{'total':<26} {'':>10} {'':>9} {totals[0]:>12.1f} {totals[1]:>11.1f}")


if __name__ == "__main__":
    main()
