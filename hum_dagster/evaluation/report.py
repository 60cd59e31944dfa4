"""The comparison report: the Hum paper's Table 1 layout (models x benchmarks x B/C)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

STYLES = ("B", "C")


def result_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per (model, benchmark, style, metric): the report's data."""
    rows = []
    for r in results:
        for metric, value in sorted(r["headline"].items()):
            rows.append(
                {"model": r["model"], "benchmark": r["benchmark"], "style": r["style"],
                 "metric": metric, "value": float(value)}
            )
    return rows


def table_one(rows: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, dict[str, float]]]:
    """A Markdown table: one line per model, a column per benchmark metric and style,
    and the average over the columns a model has; also the averages by model."""
    columns = sorted({(r["benchmark"], r["metric"], r["style"]) for r in rows})
    models = sorted({r["model"] for r in rows})
    cell = {(r["model"], r["benchmark"], r["metric"], r["style"]): r["value"] for r in rows}
    header = ["model", *(f"{b} {m} ({s})" for b, m, s in columns), "avg B", "avg C", "avg"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    averages: dict[str, dict[str, float]] = {}
    for model in models:
        values = [cell.get((model, b, m, s)) for b, m, s in columns]
        by_style = {
            style: [v for (b, m, s), v in zip(columns, values, strict=True) if s == style and v is not None]
            for style in STYLES
        }
        present = [v for v in values if v is not None]
        avg = {
            "B": _mean(by_style["B"]),
            "C": _mean(by_style["C"]),
            "all": _mean(present),
        }
        averages[model] = {k: v for k, v in avg.items() if v is not None}
        shown = ["–" if v is None else f"{v:.2f}" for v in values]
        shown += ["–" if avg[k] is None else f"{avg[k]:.2f}" for k in ("B", "C", "all")]
        lines.append("| " + " | ".join([model, *shown]) + " |")
    return "\n".join(lines), averages


def below_base(
    rows: Sequence[Mapping[str, Any]], bases: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Cells where a fine-tuned model scores below its base model (``bases``: model ->
    base model) on the same benchmark, metric and style."""
    cell = {(r["model"], r["benchmark"], r["metric"], r["style"]): r["value"] for r in rows}
    worse = []
    for (model, bench, metric, style), value in sorted(cell.items()):
        base = bases.get(model)
        if base is None:
            continue
        base_value = cell.get((base, bench, metric, style))
        if base_value is not None and value < base_value:
            worse.append({"model": model, "base": base, "benchmark": bench, "metric": metric,
                          "style": style, "value": value, "base_value": base_value})
    return worse


def chart_png(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Grouped bars: a group per benchmark metric and style, a bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = sorted({(r["benchmark"], r["metric"], r["style"]) for r in rows})
    models = sorted({r["model"] for r in rows})
    cell = {(r["model"], r["benchmark"], r["metric"], r["style"]): r["value"] for r in rows}
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(columns) + 2), 4))
    for i, model in enumerate(models):
        xs = [c + i * width for c in range(len(columns))]
        ax.bar(xs, [cell.get((model, *col), 0.0) for col in columns], width, label=model)
    ax.set_xticks([c + 0.4 - width / 2 for c in range(len(columns))])
    ax.set_xticklabels([f"{b}\n{m} ({s})" for b, m, s in columns], fontsize=7)
    ax.set_ylabel("score (F1 or accuracy, %)")
    ax.set_title("Zero-shot NLU: basic (B) and compound (C) instructions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
