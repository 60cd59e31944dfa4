"""Throughput of format variants (rendered compound rows per second) and of the parser.

    .venv/bin/python bench/formats_throughput.py [n_records]

Builds NER basic instructions from synthetic records (CrossNER-like: 6 labels per
chunk, 2-4 entities per sentence), then times ``format_variant_rows`` over them,
per style and for the default mix, and ``parse_output`` over the rendered outputs.
"""

from __future__ import annotations

import json
import random
import sys
import time

from hum_dagster.records import LabelSchema, Record
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.formats import FORMAT_STYLES, FormatConfig, format_variant_rows
from hum_dagster.synthesis.parser import parse_output

TYPES = [
    "person",
    "organisation",
    "location",
    "country",
    "politician",
    "election",
    "political party",
    "event",
    "misc",
    "city",
    "award",
    "band",
]
WORDS = [
    "the",
    "of",
    "and",
    "a",
    "in",
    "to",
    "was",
    "for",
    "on",
    "by",
    "with",
    "he",
    "it",
    "as",
    "at",
    "from",
    "his",
    "an",
    "were",
    "are",
    "which",
]


def _records(n: int) -> list[Record]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(25)]
        entities = []
        for _ in range(rng.randint(2, 4)):
            name = f"Name{rng.randint(0, 10_000)} Surname{i}"
            pos = len(" ".join(words)) + 1
            words.append(name)
            entities.append({"text": name, "type": rng.choice(TYPES), "start": pos})
        out.append(Record("bench", "NER", "en", " ".join(words), {"entities": entities}, f"b:{i}"))
    return out


def _best(basic: list[dict], config: FormatConfig, repeat: int = 3) -> tuple[int, float]:
    """Rows made and the best wall time of ``repeat`` runs (other load on the machine
    only ever slows a run down)."""
    best = float("inf")
    n_rows = 0
    for _ in range(repeat):
        t = time.perf_counter()
        n_rows = sum(1 for _ in format_variant_rows(basic, config))
        best = min(best, time.perf_counter() - t)
    return n_rows, best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    basic = list(synthesize_basic(_records(n), LabelSchema(types=TYPES), BasicConfig(neg_rate=0.5)))
    print(f"{len(basic)} NER basic rows")
    for label, config in [
        ("default mix, 1 per row", FormatConfig(per_row=1)),
        ("default mix, 2 per row", FormatConfig(per_row=2)),
    ]:
        n_rows, dt = _best(basic, config)
        print(f"{label:28s} {n_rows:>8} rows  {n_rows / dt:>10,.0f} rows/s")
    for sid, fmt in FORMAT_STYLES.items():
        if "NER" not in fmt.tasks or "en" not in fmt.languages:
            continue
        n_rows, dt = _best(basic, FormatConfig(styles=(sid,), per_row=1))
        print(f"  {sid:26s} {n_rows:>8} rows  {n_rows / dt:>10,.0f} rows/s")
    rows = list(format_variant_rows(basic[:5000], FormatConfig(per_row=2)))
    t = time.perf_counter()
    for row in rows:
        parse_output("NER", row["output"], json.loads(row["schema"]))
    dt = time.perf_counter() - t
    print(f"parse_output                 {len(rows):>8} rows  {len(rows) / dt:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
