"""The comparison report: the Hum paper's Table 1 layout, its chart, the base comparison.

Table 1 (``table_one``): a line per model; a column per benchmark metric and style, in
the paper's order (CrossNER, FewRel, CCF Law trigger then argument, C3, IMDB, then any
other family), B before C; then the average over the model's B columns and over its C
columns. Under each model's line a line with the parse-failure rate of every score
(and of the averages); above the models a line with the records each column was scored
on, so a reader can see it is the standard set in full. Every line has the header's
cell count.

``chart_png``: grouped bars on a 0-100 axis, each bar labelled with its value;
``chart_markdown`` embeds a PNG as Markdown (a base64 ``data:`` image) for the Dagster
UI. ``comparison_problems``: the ``finetuned_not_below_base`` findings as
``records.Problem`` rows: a fine-tuned score below its base model's, or no signal
(both 0, or too many unparsable generations to tell). No Dagster.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from hum_dagster.records import Problem

STYLES = ("B", "C")
FAMILY_ORDER = ("CrossNER", "FewRel", "CCF Law", "C3", "IMDB")
METRIC_ORDER = ("ner_f1", "re_f1", "trigger_f1", "argument_f1", "accuracy", "accuracy_mrc",
                "accuracy_tc")
METRIC_LABEL = {"ner_f1": "F1", "re_f1": "F1", "trigger_f1": "Trigger F1",
                "argument_f1": "Argument F1", "accuracy": "Acc", "accuracy_mrc": "Acc",
                "accuracy_tc": "Acc"}
BELOW_BASE_CHECK = "finetuned_not_below_base"
NO_SIGNAL_FAILURE_RATE = 0.5


def result_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per (model, benchmark, style, metric): the report's data.

    Each result: ``model``, ``benchmark``, ``style``, ``headline`` (metric -> score),
    and optionally ``family``, ``failure_rates`` (metric -> 0-1), ``records`` (metric
    -> count), ``mode``."""
    rows = []
    for r in results:
        failures = r.get("failure_rates") or {}
        records = r.get("records") or {}
        for metric, value in sorted(r["headline"].items()):
            rows.append({
                "model": r["model"], "benchmark": r["benchmark"],
                "family": r.get("family") or r["benchmark"], "style": r["style"],
                "metric": metric, "value": float(value),
                "parse_failure_rate": float(failures.get(metric, 0.0)),
                "records": int(records.get(metric, 0)), "mode": r.get("mode", ""),
            })
    return rows


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(family, benchmark, metric, style) in the paper's order."""
    keys = {(r.get("family") or r["benchmark"], r["benchmark"], r["metric"], r["style"]) for r in rows}

    def order(key: tuple[str, str, str, str]) -> tuple:
        family, bench, metric, style = key
        fam = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
        met = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
        sty = STYLES.index(style) if style in STYLES else len(STYLES)
        return (fam, family, bench, met, metric, sty, style)

    return sorted(keys, key=order)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.0f}%"


def table_one(
    rows: Sequence[Mapping[str, Any]], mode: str = ""
) -> tuple[str, dict[str, dict[str, float]]]:
    """The Markdown table (a caption line, a blank line, the table) and the averages by
    model: ``{model: {"B": .., "C": .., "parse_failure_rate_B": .., ...}}``."""
    columns = _columns(rows)
    models = sorted({r["model"] for r in rows})
    cell = {(r["model"], r["benchmark"], r["metric"], r["style"]): r for r in rows}
    header = ["model", *(f"{b} {METRIC_LABEL.get(m, m)} ({s})" for _, b, m, s in columns),
              "Avg B", "Avg C"]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    counts = []
    for _, b, m, s in columns:
        found = sorted({cell[(mod, b, m, s)]["records"] for mod in models if (mod, b, m, s) in cell})
        counts.append("/".join(str(n) for n in found) if found else "–")
    lines.append("| " + " | ".join(["records", *counts, "", ""]) + " |")
    averages: dict[str, dict[str, float]] = {}
    for model in models:
        got = [cell.get((model, b, m, s)) for _, b, m, s in columns]
        avg: dict[str, float] = {}
        for style in STYLES:
            mine = [g for g, (*_, s) in zip(got, columns, strict=True) if g is not None and s == style]
            score = _mean([g["value"] for g in mine])
            rate = _mean([g["parse_failure_rate"] for g in mine])
            if score is not None and rate is not None:
                avg[style] = score
                avg[f"parse_failure_rate_{style}"] = rate
        averages[model] = avg
        scores = ["–" if g is None else f"{g['value']:.2f}" for g in got]
        scores += [f"{avg[s]:.2f}" if s in avg else "–" for s in STYLES]
        rates = [_pct(None if g is None else g["parse_failure_rate"]) for g in got]
        rates += [_pct(avg.get(f"parse_failure_rate_{s}")) for s in STYLES]
        lines.append("| " + " | ".join([_cell(model), *scores]) + " |")
        lines.append("| " + " | ".join(["↳ parse failures", *rates]) + " |")
    caption = (
        f"Zero-shot scores (F1 or accuracy, %), scoring mode `{mode or 'iepile'}`; under each "
        "model, the share of its generations that could not be read; `records`: records "
        "scored per column."
    )
    return caption + "\n\n" + "\n".join(lines), averages


def parse_markdown_table(markdown: str) -> list[list[str]]:
    """The cells of the (first) Markdown table in ``markdown``, one list per line,
    the separator line included; escaped pipes stay inside their cell."""
    table = []
    for line in markdown.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if table:
                break
            continue
        cells, current, i = [], "", 1
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line) and line[i + 1] == "|":
                current += "|"
                i += 2
                continue
            if ch == "|":
                cells.append(current.strip())
                current = ""
            else:
                current += ch
            i += 1
        table.append(cells)
    return table


# --------------------------------------------------------------------------- comparison


def comparison_problems(
    rows: Sequence[Mapping[str, Any]],
    bases: Mapping[str, str],
    *,
    failure_threshold: float = NO_SIGNAL_FAILURE_RATE,
    check: str = BELOW_BASE_CHECK,
) -> list[Problem]:
    """Cells where a fine-tuned model (``bases``: model -> base model) scores below its
    base model on the same benchmark, metric and style, or where the comparison has no
    signal: both scores 0, or either side's parse-failure rate above
    ``failure_threshold``. No fine-tuned model beside its base at all is a problem too."""
    cell = {(r["model"], r["benchmark"], r["metric"], r["style"]): r for r in rows}
    problems: list[Problem] = []
    compared = 0
    for (model, bench, metric, style), tuned in sorted(cell.items()):
        base = bases.get(model)
        if base is None:
            continue
        other = cell.get((base, bench, metric, style))
        if other is None:
            continue
        compared += 1
        where = f"{model} vs {base}: {bench} {metric} ({style})"
        worst = max(tuned["parse_failure_rate"], other["parse_failure_rate"])
        if tuned["value"] == 0 and other["value"] == 0:
            problems.append(Problem(check, where, "no signal: both score 0"))
        elif worst > failure_threshold:
            problems.append(Problem(
                check, where,
                f"no signal: {100 * worst:.0f}% of generations unparsable "
                f"(threshold {100 * failure_threshold:.0f}%)",
            ))
        elif tuned["value"] < other["value"]:
            problems.append(Problem(
                check, where, f"below base: {tuned['value']:.2f} < {other['value']:.2f}"
            ))
    if not compared:
        problems.append(Problem(check, "report", "no signal: no fine-tuned model is in the "
                                "report beside its base model"))
    return problems


def below_base(rows: Sequence[Mapping[str, Any]], bases: Mapping[str, str]) -> list[Problem]:
    """Only the cells where a fine-tuned model scores below its base model."""
    return [p for p in comparison_problems(rows, bases, failure_threshold=1.0)
            if p.reason.startswith("below base")]


# --------------------------------------------------------------------------- chart


def chart_figure(rows: Sequence[Mapping[str, Any]], title: str = ""):
    """Grouped bars (a group per benchmark metric and style, a bar per model) on a
    0-100 axis, each bar labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = _columns(rows)
    models = sorted({r["model"] for r in rows})
    cell = {(r["model"], r["benchmark"], r["metric"], r["style"]): r["value"] for r in rows}
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(columns) + 2), 4.5))
    for i, model in enumerate(models):
        xs = [c + i * width for c in range(len(columns))]
        values = [cell.get((model, b, m, s)) for _, b, m, s in columns]
        bars = ax.bar(xs, [0.0 if v is None else v for v in values], width, label=model)
        # a model without that score gets no bar and a dash, never a 0 that reads as one
        ax.bar_label(bars, labels=["–" if v is None else f"{v:.1f}" for v in values],
                     fontsize=7, padding=2)
    ax.set_xticks([c + 0.4 - width / 2 for c in range(len(columns))])
    ax.set_xticklabels([f"{b}\n{METRIC_LABEL.get(m, m)} ({s})" for _, b, m, s in columns], fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (F1 or accuracy, %)")
    ax.set_title(title or "Zero-shot NLU: basic (B) and compound (C) instructions")
    if models:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def chart_png(rows: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    import matplotlib.pyplot as plt

    fig = chart_figure(rows, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def chart_markdown(png: bytes, alt: str = "Table 1 chart") -> str:
    """Markdown showing ``png`` inline (the Dagster UI renders ``data:`` images)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
