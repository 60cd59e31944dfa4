"""The strategy mix of a corpus's compound rows, overlaps included, against the paper's.

The paper counts, among 1,261,658 compound instructions, 1,152,470 with guidelines,
34,770 with preference rules and 108,091 with format variants; a row may carry several.
``strategy_mix(rows)`` counts the same three families over the compound rows of a
corpus (``guidelines`` covers the guideline and paraphrase families of the strategy
registry; a combined row counts once for each family among its ``strategies``), the
rows per family set (the overlaps), and puts next to each the paper's count scaled to
the corpus's number of compound rows. No Dagster imports.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from hum_dagster.synthesis.strategies import BASIC, STRATEGIES

PAPER_COMPOUND = 1_261_658
PAPER_COUNTS = {"guidelines": 1_152_470, "format_variants": 108_091, "preference_rules": 34_770}
PAPER_FAMILIES = tuple(PAPER_COUNTS)
# Registry family -> the paper's family.
_PAPER_FAMILY = {
    "guidelines": "guidelines",
    "paraphrase": "guidelines",
    "format_variants": "format_variants",
    "preference_rules": "preference_rules",
}


def paper_family(strategy: str) -> str | None:
    """The paper's family of one registry strategy (None for ``combined`` itself)."""
    spec = STRATEGIES.get(strategy)
    return _PAPER_FAMILY.get(spec.family) if spec is not None else None


def family_set(parts: str) -> str:
    """``"description+examples+format_variants"`` -> ``"format_variants+guidelines"``."""
    fams = {paper_family(p) for p in parts.split("+") if p}
    return "+".join(sorted(f for f in fams if f)) or "unknown"


def strategy_mix(rows: pl.DataFrame) -> dict[str, Any]:
    """Counts and shares of compound rows per paper family and per family set, with the
    paper's counts scaled to the same number of compound rows. ``rows`` needs
    ``strategy``; ``strategies`` (the parts of combined rows) where present."""
    strategy = pl.col("strategy").cast(pl.String)
    parts = (
        pl.coalesce(pl.col("strategies").cast(pl.String), strategy)
        if "strategies" in rows.columns
        else strategy
    )
    compound = rows.filter(strategy != BASIC).select(parts.alias("parts"))
    by_parts = dict(compound.group_by("parts").len().iter_rows())
    n = compound.height
    sets: Counter[str] = Counter()
    for value, count in by_parts.items():
        sets[family_set(value or "")] += count
    carried = {f: sum(c for s, c in sets.items() if f in s.split("+")) for f in PAPER_FAMILIES}
    scale = n / PAPER_COMPOUND
    return {
        "compound_rows": n,
        "families": {
            f: {
                "rows": carried[f],
                "share": round(carried[f] / n, 4) if n else 0.0,
                "paper_share": round(PAPER_COUNTS[f] / PAPER_COMPOUND, 4),
                "paper_scaled": round(PAPER_COUNTS[f] * scale),
            }
            for f in PAPER_FAMILIES
        },
        "family_sets": {
            s: {"rows": c, "share": round(c / n, 4) if n else 0.0} for s, c in sorted(sets.items())
        },
        "rows_with_several_families": sum(c for s, c in sets.items() if "+" in s),
        "overlap": sum(carried.values()) - n if n else 0,
        "paper_overlap_scaled": round(
            (sum(PAPER_COUNTS.values()) - PAPER_COMPOUND) * scale
        ),
        "by_strategies": dict(sorted(by_parts.items(), key=lambda kv: (-kv[1], kv[0] or ""))),
    }


__all__ = ["PAPER_COUNTS", "PAPER_COMPOUND", "family_set", "paper_family", "strategy_mix"]
