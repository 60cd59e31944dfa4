"""Corpus statistics (a dict for metadata) and a Figure-4-style chart (PNG).

``corpus_stats(rows)`` counts rows by task, strategy, variant (the compound rows' format
or paraphrase kind), language, source, kind and split, and summarises token lengths
(``input_tokens`` / ``output_tokens`` columns; for rows within a byte-bound they hold
the byte length, an upper bound, see ``hum_dagster.corpus.tokens``; pass ``token_sample`` from
``sample_token_lengths`` for exact figures). ``chart_png(stats)`` draws task, strategy
and format distributions and the length histograms (``hum_dagster.plotting``: Agg, CJK glyphs);
``write_chart`` stores it through ``fsio`` (atomic, local or ``s3://``). No Dagster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from hum_dagster.plotting import new_figure, png_bytes
from hum_dagster.store import fsio

LENGTH_BINS = (0, 64, 128, 256, 384, 512, 768, 1024, 1500, 2048, 4096)


def _counts(rows: pl.DataFrame, column: str) -> dict[str, int]:
    if column not in rows.columns or not rows.height:
        return {}
    frame = (
        rows.group_by(pl.col(column).fill_null("(none)"))
        .len()
        .sort(["len", column], descending=[True, False])
    )
    return {str(k): int(v) for k, v in frame.iter_rows()}


def _lengths(values: np.ndarray) -> dict[str, Any]:
    if not len(values):
        return {}
    hist, _ = np.histogram(
        values, bins=[*LENGTH_BINS, max(LENGTH_BINS[-1] + 1, int(values.max()) + 1)]
    )
    return {
        "mean": round(float(values.mean()), 1),
        "p50": int(np.percentile(values, 50)),
        "p90": int(np.percentile(values, 90)),
        "p99": int(np.percentile(values, 99)),
        "max": int(values.max()),
        # [bucket, rows] pairs in numeric order (a JSON object would be shown sorted as
        # strings: "1024-1500" before "128-256")
        "histogram": [
            [f"{lo}-{hi}", int(c)]
            for lo, hi, c in zip(LENGTH_BINS, [*LENGTH_BINS[1:], "max"], hist, strict=True)
        ],
    }


def corpus_stats(rows: pl.DataFrame, token_sample: pl.DataFrame | None = None) -> dict[str, Any]:
    from hum_dagster.corpus.mix import kind_expr

    if "kind" not in rows.columns and "strategy" in rows.columns:
        rows = rows.with_columns(kind_expr().alias("kind"))
    stats: dict[str, Any] = {"rows": rows.height}
    for column in ("kind", "task", "strategy", "variant", "language", "source", "split"):
        stats[f"by_{column}"] = _counts(rows, column)
    lengths = token_sample if token_sample is not None else rows
    for column in ("input_tokens", "output_tokens"):
        if column in lengths.columns:
            stats[column] = _lengths(lengths[column].drop_nulls().to_numpy())
    if token_sample is not None:
        stats["token_lengths_from"] = f"exact counts on a sample of {token_sample.height:,} rows"
    return stats


def sample_token_lengths(
    source: Any, selection: pl.DataFrame, tokenizer: Any, size: int = 20_000
) -> pl.DataFrame:
    """Exact input/output token counts for the ``size`` selected rows of smallest rank
    (``source``: the instruction tables, as ``corpus.train_batches`` reads them)."""
    from hum_dagster.corpus.build import rows_by_position
    from hum_dagster.corpus.tokens import prompt_text

    chosen = selection.sort("rank").head(size)["_row"]
    frame = rows_by_position(source, chosen, ["instruction", "output", "system", "history"])
    prompts = [
        prompt_text(i, s, h)
        for i, s, h in zip(frame["instruction"], frame["system"], frame["history"], strict=True)
    ]
    return pl.DataFrame(
        {
            "input_tokens": tokenizer.count_exact(prompts),
            "output_tokens": tokenizer.count_exact(frame["output"].fill_null("").to_list()),
        }
    )


def _bar(ax, counts: dict[str, int], title: str, top: int = 14) -> None:
    items = list(counts.items())[:top]
    if len(counts) > top:
        items.append(("other", sum(v for _, v in list(counts.items())[top:])))
    total = sum(counts.values()) or 1
    labels = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(labels, values, color="#4C72B0")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v / total:.1%}", va="center", fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)


def _hist(ax, lengths: dict[str, Any], title: str) -> None:
    hist = lengths.get("histogram", [])
    ax.bar([bucket for bucket, _ in hist], [rows for _, rows in hist], color="#55A868")
    ax.set_title(
        f"{title} (p50 {lengths.get('p50', '-')}, p99 {lengths.get('p99', '-')})", fontsize=10
    )
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.tick_params(axis="y", labelsize=7)


def chart_png(stats: dict[str, Any], title: str = "Hum corpus") -> bytes:
    with new_figure((12, 8)) as fig:
        axes = fig.subplots(2, 3)
        _bar(axes[0][0], stats.get("by_task", {}), "Tasks")
        _bar(axes[0][1], stats.get("by_strategy", {}), "Strategies")
        variants = {k: v for k, v in stats.get("by_variant", {}).items() if k != "(none)"}
        _bar(axes[0][2], variants or {"(none)": 0}, "Formats / variants (compound)")
        _bar(axes[1][0], stats.get("by_language", {}), "Languages")
        _hist(axes[1][1], stats.get("input_tokens", {}), "Input tokens")
        _hist(axes[1][2], stats.get("output_tokens", {}), "Output tokens")
        fig.suptitle(f"{title}: {stats.get('rows', 0):,} instructions")
        fig.tight_layout()
        return png_bytes(fig)


def write_chart(path: str, stats: dict[str, Any], title: str = "Hum corpus") -> bytes:
    """Draws the chart, stores it at ``path`` (atomically) and returns the PNG bytes."""
    png = chart_png(stats, title)
    fsio.write_bytes_atomic(path, png)
    return png
