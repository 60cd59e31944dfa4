"""Rows, digest and seconds of every compound strategy on stored basic partitions, to
compare two code versions on the same input (run it once from each checkout: the
digests must match where a change keeps the rows, the seconds say what it saved).

Reads ``basic_instructions/<partition>.parquet`` and ``schema_dictionary/<partition>.parquet``
from a storage folder (a kept ``bench/corpus_graph.py`` run, for example) and runs each
strategy's synthesiser offline (seed 42), in this process. The digest covers every row
(JSON with sorted keys) and the strategy's report; ``combined``'s report names the path of
its weights file, so two checkouts differ there unless their paths are the same.

    .venv/bin/python bench/synthesis_digest.py --storage DIR/fill/storage \\
        --partitions fewrel_part0 crossner_science_part0 --strategies description combined
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import polars as pl

    from hum_dagster.dictionary import SchemaDictionary
    from hum_dagster.synthesis.strategies import STRATEGIES

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--storage", required=True)
    parser.add_argument("--partitions", nargs="+", required=True)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    args = parser.parse_args()
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    total = 0.0
    for part in args.partitions:
        basic_path = Path(args.storage) / "basic_instructions" / f"{part}.parquet"
        if not basic_path.is_file():
            parser.error(f"no basic instructions for {part!r}: {basic_path}")
        basic = pl.read_parquet(basic_path)
        entries = pl.read_parquet(Path(args.storage) / "schema_dictionary" / f"{part}.parquet")
        dictionary = (
            SchemaDictionary.from_rows(entries.to_dicts()) if entries.height
            else SchemaDictionary(source=part, task=basic["task"][0], language=basic["language"][0])
        )
        rows = basic.to_dicts()
        for name in args.strategies:
            started = time.perf_counter()
            out = STRATEGIES[name].synthesise(rows, dictionary, 42, None)
            digest, n = hashlib.sha256(), 0
            for row in out.rows:
                digest.update(json.dumps(row, sort_keys=True, default=str).encode())
                n += 1
            digest.update(json.dumps(out.report(), sort_keys=True, default=str).encode())
            seconds = time.perf_counter() - started
            total += seconds
            print(f"{part:>26} {name:>24} {n:7,} rows  {digest.hexdigest()[:12]}  {seconds:6.2f} s",
                  flush=True)
    print(f"{'total':>26} {'':>24} {'':>12}  {'':>12}  {total:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
