"""Mixing instructions to target proportions, and the paper's ablation corpora.

Quotas are per cell (kind basic/compound x task). The cell shares are fitted to both
targets at once (iterative proportional fitting from the product of the two): a cell
with no supply at all (compound IG, say) gets share 0 and the other cells of its row and
column absorb it, so the kind and task marginals still hold.

Two modes (``MixConfig.mode``):

- ``fill`` (the default) uses the data it is given. The task quotas are water-filled
  toward the task shares: each task gets ``min(available, its share)`` and the share a
  short task cannot fill goes to the tasks that still have rows, in proportion to their
  shares, until the total is reached; within a task the kinds are water-filled the same
  way toward the fitted cell shares. ``total=None`` means every usable row (the total is
  the rows available), so nothing is left out and the report shows how far the mix is
  from the target; ``total=N`` caps the tasks that have more than their share of N.
- ``strict`` keeps the shares exact: ``total=None`` is the largest total the supply
  allows at those shares (the binding cells are reported as what limited it, and the
  scarcest cell shrinks every task); ``total=N`` takes at most each quota (a short cell
  shrinks the corpus, reported as "EEA limited by supply: 40 available, 2,000 wanted").
  ``redistribute`` is the old name of ``fill`` with a total and is read as ``fill``.

Either way ``report["per_task"]`` says, per task, how many rows were available, wanted
(the task's share of the corpus total) and used, and what limited it ("all available",
"capped by the task's share of the total", "no rows", ...).

Within a cell the rows taken are those with the smallest ``rank`` (a seeded blake2b of
``instruction_id``, see ``rank_keys``): no global random state, the same rows for the same
ids in any input order. No Dagster imports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from hum_dagster.synthesis.strategies import in_families

KINDS = ("basic", "compound")
MIX_MODES = ("fill", "strict")
# the columns of ``report["per_task"]``
TASK_COLUMNS = (
    "task", "target_share", "available", "wanted", "used", "achieved_share", "limited_by"
)
PAPER_KIND_SHARES = {"basic": 0.55, "compound": 0.45}
PAPER_TASK_SHARES = {
    "NER": 0.23,
    "RE": 0.29,
    "SPO": 0.11,
    "EE": 0.05,
    "EET": 0.03,
    "EEA": 0.02,
    "OpenIE": 0.04,
    "KGE": 0.12,
    "MRC": 0.02,
    "TC": 0.01,
    "IG": 0.08,
}
# Table 3 of the paper: which compound strategies each ablation corpus leaves out (whole
# families of the strategy registry; guidelines include their paraphrases).
GUIDELINE_STRATEGIES = in_families(("guidelines", "paraphrase"))
VARIANTS: dict[str, tuple[str, ...]] = {
    "full": (),
    "no_guidelines": GUIDELINE_STRATEGIES,
    "no_preference_rules": in_families(("preference_rules",)),
    "no_format_variants": in_families(("format_variants",)),
}


COMPOUND_SOURCES = ("all", "combined")
COMBINED_ONLY = ("basic", "combined")  # the strategies mixed with compound="combined"


def eligible(pool: pl.DataFrame, config: MixConfig) -> pl.DataFrame:
    """The rows of ``pool`` the mix may choose: every row, or with ``compound="combined"``
    the basic rows and the combined strategy's rows only."""
    if config.compound == "all":
        return pool
    return pool.filter(pl.col("strategy").cast(pl.String).is_in(list(COMBINED_ONLY)))


@dataclass(frozen=True)
class MixConfig:
    kind_shares: Mapping[str, float] = field(default_factory=lambda: dict(PAPER_KIND_SHARES))
    task_shares: Mapping[str, float] = field(default_factory=lambda: dict(PAPER_TASK_SHARES))
    total: int | None = None  # None: fill: every usable row; strict: the largest exact mix
    mode: str = "fill"  # fill | strict (redistribute: the old name of fill)
    seed: int = 42
    # where compound rows come from: every compound asset ("all"), or only the combined
    # strategy's rows ("combined": one per record, strategies drawn at the paper's counts)
    compound: str = "all"

    def __post_init__(self) -> None:
        if self.mode == "redistribute":
            object.__setattr__(self, "mode", "fill")
        if self.mode not in MIX_MODES:
            raise ValueError(
                f"unknown mix mode {self.mode!r}; expected one of {', '.join(MIX_MODES)}"
            )
        for name, shares in (("kind_shares", self.kind_shares), ("task_shares", self.task_shares)):
            if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
                raise ValueError(f"{name} must be non-negative and sum to more than 0: {shares}")
        unknown = set(self.kind_shares) - set(KINDS)
        if unknown:
            raise ValueError(f"kind_shares: unknown kinds {sorted(unknown)}; expected {KINDS}")
        if self.total is not None and (isinstance(self.total, bool) or not isinstance(self.total, int)):
            raise ValueError(f"mix total must be a whole number of rows, got {self.total!r}")
        if self.total is not None and self.total < 0:
            raise ValueError(f"mix total must be >= 0, got {self.total}")
        if self.compound not in COMPOUND_SOURCES:
            raise ValueError(f"unknown compound source {self.compound!r}; expected one of "
                             f"{', '.join(COMPOUND_SOURCES)}")


@dataclass
class MixResult:
    rows: pl.DataFrame  # the chosen rows (all input columns), sorted by rank
    report: dict[str, Any]


def rank_keys(ids: list[str] | pl.Series, seed: int, stage: str = "mix") -> pl.Series:
    """A stable 63-bit key per id: blake2b(seed|stage|id). Same on every machine and
    polars version (polars' own hash is not promised to be)."""
    prefix = f"{seed}|{stage}|".encode()
    values = [
        int.from_bytes(hashlib.blake2b(prefix + i.encode(), digest_size=8).digest(), "big") >> 1
        for i in ids
    ]
    return pl.Series("rank", values, dtype=pl.Int64)


def kind_expr() -> pl.Expr:
    return (
        pl.when(pl.col("strategy") == "basic").then(pl.lit("basic")).otherwise(pl.lit("compound"))
    )


def _normalise(shares: Mapping[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items() if v > 0}


def fit_cell_shares(
    kind_shares: Mapping[str, float],
    task_shares: Mapping[str, float],
    supplied: set[tuple[str, str]],
    iterations: int = 200,
) -> dict[tuple[str, str], float]:
    """Cell shares with (as nearly as the supplied cells allow) the given marginals."""
    kinds = [k for k in KINDS if k in kind_shares]
    tasks = list(task_shares)
    ks = np.array([kind_shares[k] for k in kinds], dtype=float)
    ts = np.array([task_shares[t] for t in tasks], dtype=float)
    mask = np.array([[(k, t) in supplied for t in tasks] for k in kinds], dtype=float)
    m = np.outer(ks, ts) * mask
    for _ in range(iterations):
        rows = m.sum(axis=1)
        m *= np.divide(ks, rows, out=np.zeros_like(ks), where=rows > 0)[:, None]
        cols = m.sum(axis=0)
        m *= np.divide(ts, cols, out=np.zeros_like(ts), where=cols > 0)[None, :]
    m /= m.sum() or 1.0
    return {
        (k, t): float(m[i, j])
        for i, k in enumerate(kinds)
        for j, t in enumerate(tasks)
        if m[i, j] > 0
    }


def _round_quotas(shares: dict, total: int) -> dict:
    """Largest-remainder rounding: quotas that sum exactly to ``total``."""
    raw = {c: s * total for c, s in shares.items()}
    quotas = {c: int(v) for c, v in raw.items()}
    left = total - sum(quotas.values())
    for c in sorted(raw, key=lambda c: (-(raw[c] - quotas[c]), c))[: max(left, 0)]:
        quotas[c] += 1
    return quotas


def water_fill(weights: Mapping, caps: Mapping, total: int) -> dict:
    """Integer quotas, at most ``caps[c]`` each, summing to ``min(total, sum(caps))``: each
    key gets its share of what is left, a key that cannot take its share keeps what it
    has and the rest is shared again over the keys with room (a water level over the
    shares; largest-remainder rounding)."""
    quotas = {c: 0 for c in weights}
    target = min(total, sum(caps.get(c, 0) for c in weights if weights[c] > 0))
    while (missing := target - sum(quotas.values())) > 0:
        room = {c: w for c, w in weights.items() if w > 0 and caps.get(c, 0) > quotas[c]}
        for c, n in _round_quotas(_normalise(room), missing).items():
            quotas[c] += min(n, caps[c] - quotas[c])
    return quotas


def _targets(supply: dict[tuple[str, str], int], config: MixConfig):
    """(kind shares, task shares, notes): the configured shares without the kinds and
    tasks that have no supply (their share is spread over the others)."""
    kinds = dict(_normalise(config.kind_shares))
    task_supply = {
        t: sum(n for (k, tt), n in supply.items() if tt == t and k in kinds)
        for t in config.task_shares
    }
    no_supply = sorted(
        t for t, v in config.task_shares.items() if v > 0 and task_supply.get(t, 0) == 0
    )
    tasks = (
        _normalise({t: v for t, v in config.task_shares.items() if t not in no_supply})
        if len(no_supply) < sum(1 for v in config.task_shares.values() if v > 0)
        else {}
    )
    kind_supply = {k: sum(n for (kk, _), n in supply.items() if kk == k) for k in kinds}
    no_kind = sorted(k for k in kinds if kind_supply[k] == 0)
    kinds = (
        _normalise({k: v for k, v in kinds.items() if k not in no_kind})
        if len(no_kind) < len(kinds)
        else {}
    )
    notes = [
        f"{t}: no supply; its {config.task_shares[t] / sum(config.task_shares.values()):.1%} "
        "share spread over the other tasks"
        for t in no_supply
    ]
    notes += [f"{k}: no supply; its share spread over the other kind" for k in no_kind]
    return kinds, tasks, notes


def plan_quotas(supply: dict[tuple[str, str], int], config: MixConfig) -> tuple[dict, dict]:
    """Per-cell quotas and the report of how they were reached (``report["per_task"]``:
    available, wanted, used and what limited each task)."""
    kinds, tasks, notes = _targets(supply, config)
    supplied = {c for c, n in supply.items() if n > 0}
    shares = fit_cell_shares(kinds, tasks, supplied) if kinds and tasks else {}
    if config.mode == "strict":
        quotas, report = _plan_strict(supply, config, shares)
    else:
        quotas, report = _plan_fill(supply, config, shares)
    report["mode"] = config.mode
    report["shares"] = {f"{k}/{t}": round(s, 6) for (k, t), s in sorted(shares.items())}
    report["notes"] = notes + report.get("notes", [])
    report["per_task"] = task_table(supply, quotas, config, report)
    return quotas, report


def _plan_fill(supply: dict, config: MixConfig, shares: dict) -> tuple[dict, dict]:
    """Water-filling: tasks toward the task shares, then kinds within each task."""
    usable = {c: supply.get(c, 0) for c in shares}
    available = sum(usable.values())
    total = available if config.total is None else config.total
    weights: dict[str, float] = {}
    caps: dict[str, int] = {}
    for (k, t), s in shares.items():
        weights[t] = weights.get(t, 0.0) + s
        caps[t] = caps.get(t, 0) + usable[(k, t)]
    task_quotas = water_fill(weights, caps, total)
    quotas: dict[tuple[str, str], int] = {}
    for t, q in task_quotas.items():
        cells = {c: s for c, s in shares.items() if c[1] == t}
        quotas.update(water_fill(cells, usable, q))
    notes = []
    if config.total is not None and available < config.total:
        notes.append(
            f"total {config.total:,} not reached: the sources give {available:,} usable rows"
        )
    limited = [
        f"{t} capped by its share of the total: {task_quotas[t]:,} of {caps[t]:,} rows used"
        for t in sorted(task_quotas)
        if task_quotas[t] < caps[t]
    ]
    report = {
        "target_total": total,
        "available_total": available,
        "quotas": {f"{k}/{t}": n for (k, t), n in sorted(quotas.items())},
        "notes": notes,
        "limited": limited,
    }
    return quotas, report


def _plan_strict(supply: dict, config: MixConfig, shares: dict) -> tuple[dict, dict]:
    """The exact shares: the largest total the supply allows, or at most each quota."""
    if not shares:
        return {}, {"limited": ["no supply"], "max_total": 0, "target_total": 0, "binding": []}
    limited: list[str] = []
    max_total = min(int(supply.get(c, 0) / s) for c, s in shares.items())
    binding = sorted(c for c, s in shares.items() if int(supply.get(c, 0) / s) == max_total)
    total = max_total if config.total is None else config.total
    quotas = _round_quotas(shares, total)
    # Rounding can ask one row more than a binding cell has.
    for c in quotas:
        quotas[c] = min(quotas[c], supply.get(c, 0)) if config.total is None else quotas[c]
    if config.total is None:
        limited += [
            f"total limited by {k} {t}: {supply[(k, t)]:,} available at a {shares[(k, t)]:.2%} share "
            f"-> at most {max_total:,} rows"
            for k, t in binding
        ]
    wanted = dict(quotas)
    short = {c: q - supply.get(c, 0) for c, q in quotas.items() if q > supply.get(c, 0)}
    for c in sorted(short):
        limited.append(
            f"{c[0]} {c[1]} limited by supply: {supply.get(c, 0):,} available, {wanted[c]:,} wanted"
        )
        quotas[c] = supply.get(c, 0)
    report = {
        "target_total": total,
        "max_total": max_total,
        "binding": [f"{k}/{t}" for k, t in binding],
        "wanted": {f"{k}/{t}": n for (k, t), n in sorted(wanted.items())},
        "limited": limited,
    }
    return quotas, report


def task_table(
    supply: dict[tuple[str, str], int], quotas: dict, config: MixConfig, report: dict
) -> list[dict[str, Any]]:
    """One row per task (those with a share or with rows): its target share, the rows
    available (of the kinds in the mix), wanted (its share of the corpus total), used,
    the achieved share and what limited it."""
    kinds = {k for k, v in config.kind_shares.items() if v > 0}
    configured = {t: v / sum(config.task_shares.values()) for t, v in config.task_shares.items()}
    names = [t for t, v in configured.items() if v > 0]
    names += sorted({t for (_, t), n in supply.items() if n > 0 and t not in names})
    available = {
        t: sum(n for (k, tt), n in supply.items() if tt == t and k in kinds) for t in names
    }
    used = {t: sum(n for (_, tt), n in quotas.items() if tt == t) for t in names}
    corpus = sum(used.values())
    wanted = _round_quotas(
        {t: configured.get(t, 0.0) for t in names}, int(report.get("target_total") or 0)
    )
    binding = {c.split("/", 1)[1]: c.replace("/", " ") for c in report.get("binding", [])}
    short = {
        t: [k for (k, tt), q in report_cells(report, "wanted").items() if tt == t
            and q > supply.get((k, tt), 0)]
        for t in names
    }
    rows = []
    for t in names:
        a, u = available[t], used[t]
        if configured.get(t, 0.0) <= 0:
            why = "not in the task shares"
        elif a == 0:
            why = "no rows"
        elif u >= a:
            why = "all available"
            if config.mode == "strict" and t in binding and config.total is None:
                why += f"; sets the total ({binding[t]} is the scarcest cell)"
        elif config.mode == "strict" and config.total is None:
            shown = ", ".join(sorted(set(binding.values()))) or "?"
            why = f"capped to keep the exact proportions (the total is set by {shown})"
        else:
            why = "capped by the task's share of the total"
        if config.mode == "strict" and short.get(t):
            why += "; " + ", ".join(short[t]) + " rows short (strict does not refill)"
        rows.append({
            "task": t,
            "target_share": round(configured.get(t, 0.0), 4),
            "available": a,
            "wanted": wanted.get(t, 0),
            "used": u,
            "achieved_share": round(u / corpus, 4) if corpus else 0.0,
            "limited_by": why,
        })
    return rows


def format_task_table(rows: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    """``report["per_task"]`` as aligned text lines (what ``hum run`` prints)."""
    if not rows:
        return []
    lines = [
        f"{indent}{'task':<8} {'target':>7} {'available':>9} {'wanted':>8} {'used':>8} "
        f"{'achieved':>8}  limited by"
    ]
    for r in rows:
        lines.append(
            f"{indent}{r['task']:<8} {r['target_share']:>7.1%} {r['available']:>9,} "
            f"{r['wanted']:>8,} {r['used']:>8,} {r['achieved_share']:>8.1%}  {r['limited_by']}"
        )
    return lines


def report_cells(report: dict, key: str) -> dict[tuple[str, str], int]:
    """A ``kind/task`` keyed count of the report as ``{(kind, task): n}``."""
    return {tuple(c.split("/", 1)): n for c, n in report.get(key, {}).items()}  # type: ignore[misc]


def mix(pool: pl.DataFrame, config: MixConfig) -> MixResult:
    """The rows of ``pool`` chosen by the quotas (``pool`` needs ``instruction_id``,
    ``strategy``, ``task``; a ``rank`` column is added when absent)."""
    pool = eligible(pool, config)
    if "rank" not in pool.columns:
        pool = pool.with_columns(rank_keys(pool["instruction_id"], config.seed))
    pool = pool.with_columns(kind_expr().alias("kind"))
    supply = {(k, t): n for k, t, n in pool.group_by("kind", "task").len().iter_rows()}

    def choose(quotas: dict) -> pl.DataFrame:
        quota_frame = pl.DataFrame(
            {
                "kind": [c[0] for c in quotas],
                "task": [c[1] for c in quotas],
                "_quota": [quotas[c] for c in quotas],
            },
            schema={"kind": pl.String, "task": pl.String, "_quota": pl.Int64},
        ).cast({"task": pool.schema["task"]})  # the lean frame's task is categorical
        # The choice is made on a narrow frame of positions (rank order, then each row's
        # place in its cell); the pool itself is copied once, for the chosen rows.
        order = pool.select(pl.arg_sort_by("rank", "instruction_id").alias("_i"))["_i"]
        picked = (
            pool.select("kind", "task")[order]
            .with_columns(order, pl.int_range(pl.len()).over("kind", "task").alias("_pos"))
            .join(quota_frame, on=["kind", "task"], how="inner", maintain_order="left")
            .filter(pl.col("_pos") < pl.col("_quota"))["_i"]
        )
        return pool[picked.to_numpy()]

    return mix_chosen(supply, choose, config)


def mix_chosen(
    supply: dict[tuple[str, str], int],
    choose: Callable[[dict], pl.DataFrame],
    config: MixConfig,
) -> MixResult:
    """The mix given the pool's ``supply`` per (kind, task) and ``choose``, which returns
    the pool rows within their cell's quota by rank (in rank order): in memory
    (``mix``) or out of core (``keystore.KeyStore.chosen``)."""
    quotas, report = plan_quotas(supply, config)
    chosen = choose(quotas)
    report.update(achieved_mix(chosen, supply))
    return MixResult(chosen, report)


def as_full_variant(full: MixResult) -> MixResult:
    """``full`` with the report of the ``full`` corpus variant (nothing left out)."""
    full.report["variant"] = {"name": "full", "removed": 0, "replaced_by_base": 0}
    full.report["achieved"] = {"full": _shares(full.rows)}
    return full


def achieved_mix(rows: pl.DataFrame, supply: dict | None = None) -> dict[str, Any]:
    n = rows.height
    if "kind" not in rows.columns:
        rows = rows.with_columns(kind_expr().alias("kind"))
    by_kind = dict(rows.group_by("kind").len().sort("kind").iter_rows())
    by_task = dict(rows.group_by("task").len().sort("task").iter_rows())
    out: dict[str, Any] = {
        "total": n,
        "achieved_kind": {k: round(v / n, 4) for k, v in by_kind.items()} if n else {},
        "achieved_task": {k: round(v / n, 4) for k, v in by_task.items()} if n else {},
        "counts": {
            f"{k}/{t}": c
            for k, t, c in rows.group_by("kind", "task").len().sort("kind", "task").iter_rows()
        },
    }
    if supply is not None:
        out["supply"] = {f"{k}/{t}": c for (k, t), c in sorted(supply.items())}
    return out


def _shares(rows: pl.DataFrame) -> dict[str, Any]:
    return _shares_of(achieved_mix(rows))


def _shares_of(mixed: dict[str, Any]) -> dict[str, Any]:
    return {"total": mixed["total"], "kind": mixed["achieved_kind"], "task": mixed["achieved_task"]}


def carries_any(rows: pl.DataFrame, strategies: tuple[str, ...]) -> pl.Series:
    """Per row: whether it carries any of ``strategies``, as its ``strategy`` or as one of
    the ``+``-joined parts of its ``strategies`` (a combined row)."""
    names = pl.Series(list(strategies), dtype=pl.String)
    expr = pl.col("strategy").cast(pl.String).is_in(names.implode())
    if "strategies" in rows.columns:
        parts = pl.col("strategies").cast(pl.String).str.split("+")
        expr = expr | parts.list.eval(pl.element().is_in(names.implode())).list.any().fill_null(False)
    return rows.select(expr.alias("drop"))["drop"]


def build_variant(all_rows: pl.DataFrame, variant_name: str, config: MixConfig) -> MixResult:
    """An ablation corpus of Table 3: ``full`` with the compound rows of the left-out
    strategies replaced by rows of the same task (basic rows first), never a row twice,
    and the task mix exactly that of ``full``.

    ``full`` is ``mix(all_rows)`` (``all_rows``: the cleaned pool, every candidate row).
    Each removed compound row becomes, in this order of preference: its base instruction
    (``base_instruction_id``) when that basic row is in the pool and not yet in the
    corpus; else an unused basic row of the same task and source; else one of the same
    task (smallest rank first); else, when the task has no unused basic row left (strict
    mode's binding task; ``fill`` mode, where ``full`` holds every basic row), an unused
    compound row of the same task that carries none of the left-out strategies
    (``replaced_by_kept_strategy``); else nothing (``not_replaced``). A row is never
    replaced by a row of another task, nor by a second copy of a row: a model trained on
    the ablation would learn repeats as weight. Where rows were not replaced, every task is
    cut to the same fraction of its rows in ``full`` (the
    smallest any task reached; rows of highest rank go), so the task mix stays that of
    ``full`` and the corpus is smaller (``scaled_to``). The report gives the mix of
    ``full`` and of the variant side by side (``achieved``) and how each removed row was
    replaced.
    """
    if variant_name not in VARIANTS:
        raise ValueError(
            f"unknown corpus variant {variant_name!r}; expected one of {sorted(VARIANTS)}"
        )
    all_rows = eligible(all_rows, config)
    full = mix(all_rows, config)
    dropped_strategies = VARIANTS[variant_name]
    if not dropped_strategies:
        return as_full_variant(full)
    corpus = full.rows
    drop = carries_any(corpus, dropped_strategies)
    removed = corpus.filter(drop).sort("rank", "instruction_id")
    kept = corpus.filter(~drop)
    pool = (
        all_rows
        if "rank" in all_rows.columns
        else all_rows.with_columns(rank_keys(all_rows["instruction_id"], config.seed))
    )
    basics = (
        pool.filter(pl.col("strategy") == "basic")
        .with_columns(pl.lit("basic").alias("kind"))
        .sort("rank", "instruction_id")
    )
    ids = basics["instruction_id"].to_list()
    by_id = {i: n for n, i in enumerate(ids)}
    used = np.zeros(basics.height, dtype=bool)
    in_corpus = set(kept.filter(pl.col("strategy") == "basic")["instruction_id"].to_list())
    for i in in_corpus:
        n = by_id.get(i)
        if n is not None:
            used[n] = True
    tasks = basics["task"].cast(pl.String).to_list()
    sources = basics["source"].cast(pl.String).to_list()
    by_task: dict[str, list[int]] = {}
    by_task_source: dict[tuple[str, str], list[int]] = {}
    for n, (task, source) in enumerate(zip(tasks, sources, strict=True)):
        by_task.setdefault(task, []).append(n)
        by_task_source.setdefault((task, source), []).append(n)
    cursors: dict[Any, int] = {}

    def next_unused(key: Any, positions: list[int]) -> int | None:
        i = cursors.get(key, 0)
        while i < len(positions) and used[positions[i]]:
            i += 1
        cursors[key] = i
        return positions[i] if i < len(positions) else None

    picks: list[int] = []
    counts = {"base": 0, "same_source": 0, "same_task": 0, "kept_strategy": 0, "not_replaced": 0}
    others = _UnusedRows(pool, corpus, dropped_strategies)
    other_picks: list[int] = []
    base_ids = (
        removed["base_instruction_id"].to_list()
        if "base_instruction_id" in removed.columns
        else [None] * removed.height
    )
    for base, task, source in zip(
        base_ids,
        removed["task"].cast(pl.String).to_list(),
        removed["source"].cast(pl.String).to_list(),
        strict=True,
    ):
        n = by_id.get(base) if base is not None else None
        how = "base"
        if n is None or used[n]:
            n = next_unused((task, source), by_task_source.get((task, source), []))
            how = "same_source"
            if n is None:
                n = next_unused(task, by_task.get(task, []))
                how = "same_task"
        if n is None:  # no unused basic row of this task left: a kept strategy's row
            other = others.next(task)
            if other is None:
                counts["not_replaced"] += 1
            else:
                counts["kept_strategy"] += 1
                other_picks.append(other)
            continue
        used[n] = True
        counts[how] += 1
        picks.append(n)
    replacements = basics[picks] if picks else basics.head(0)
    rows = pl.concat(
        [kept, replacements.select(kept.columns), others.rows(other_picks).select(kept.columns)],
        how="vertical_relaxed",
    ).sort("rank", "instruction_id")
    rows, scaled_to = _keep_task_mix(rows, full.rows)
    report = dict(full.report)
    mixed = achieved_mix(rows)
    report.update(mixed)
    side = {"full": _shares(full.rows), variant_name: _shares_of(mixed)}
    report["achieved"] = side
    report["variant"] = {
        "name": variant_name,
        "left_out_strategies": list(dropped_strategies),
        "removed": removed.height,
        "replaced_by_base": counts["base"],
        "replaced_by_same_source": counts["same_source"],
        "replaced_by_same_task": counts["same_task"],
        "replaced_by_kept_strategy": counts["kept_strategy"],
        "not_replaced": counts["not_replaced"],
        "scaled_to": scaled_to,
        "rows": rows.height,
        "rows_in_full": full.rows.height,
        # how far any task's share is from its share in full (rounding when scaled)
        "task_share_max_difference": _share_difference(side["full"], side[variant_name]),
    }
    return MixResult(rows, report)


def _keep_task_mix(rows: pl.DataFrame, full: pl.DataFrame) -> tuple[pl.DataFrame, float]:
    """``rows`` cut, per task, to the same fraction of that task's rows in ``full`` (the
    smallest fraction any task has), lowest ranks kept: the task mix of ``full`` on fewer
    rows. The fraction is 1.0 when every task has its rows of ``full``."""
    wanted = dict(full.group_by("task").len().iter_rows())
    have = dict(rows.group_by("task").len().iter_rows())
    fractions = [have.get(task, 0) / n for task, n in wanted.items() if n]
    scaled_to = min(fractions, default=1.0)
    if scaled_to >= 1.0:
        return rows, 1.0
    quota = {task: int(round(n * scaled_to)) for task, n in wanted.items()}
    position = pl.int_range(pl.len()).over("task")
    cut = (
        rows.sort("rank", "instruction_id")
        .with_columns(pl.col("task").cast(pl.String).replace_strict(quota, default=0).alias("_quota"))
        .filter(position < pl.col("_quota"))
        .drop("_quota")
    )
    return cut, round(scaled_to, 6)


def _share_difference(full: dict[str, Any], variant: dict[str, Any]) -> float:
    a, b = variant["task"], full["task"]
    return round(max((abs(a.get(t, 0.0) - b.get(t, 0.0)) for t in set(a) | set(b)), default=0.0), 4)


class _UnusedRows:
    """Compound rows of the pool that are not in ``corpus`` and carry none of the
    ``dropped`` strategies, by task in rank order: what replaces a left-out row whose
    task has no unused basic row."""

    def __init__(self, pool: pl.DataFrame, corpus: pl.DataFrame, dropped: tuple[str, ...]):
        frame = pool.filter(
            (pl.col("strategy") != "basic")
            & ~carries_any(pool, dropped)
            & ~pl.col("instruction_id").is_in(corpus["instruction_id"].implode())
        ).sort("rank", "instruction_id")
        self.frame = frame.with_columns(kind_expr().alias("kind"))
        self.by_task: dict[str, list[int]] = {}
        for n, task in enumerate(self.frame["task"].cast(pl.String).to_list()):
            self.by_task.setdefault(task, []).append(n)
        self.cursor: dict[str, int] = {}

    def next(self, task: str) -> int | None:
        positions = self.by_task.get(task, [])
        i = self.cursor.get(task, 0)
        if i >= len(positions):
            return None
        self.cursor[task] = i + 1
        return positions[i]

    def rows(self, picks: list[int]) -> pl.DataFrame:
        return self.frame[picks] if picks else self.frame.head(0)
