"""Summaries of records and instructions for people: label counts and Markdown samples."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import polars as pl

from hum_dagster.records import EE, IG, KGE, MRC, NER, OPENIE, RE, SPO, TC


def labels_of(task: str, gold: dict) -> list[str]:
    """The label occurrences in one record's gold structure."""
    if task == NER:
        return [e["type"] for e in gold.get("entities", [])]
    if task in (RE, SPO, KGE):
        return [r["relation"] for r in gold.get("relations", [])]
    if task == EE:
        return [e["event_type"] for e in gold.get("events", [])]
    if task == TC:
        return [gold["label"]]
    if task == OPENIE:
        return ["triple"] * len(gold.get("triples", []))
    if task == MRC:
        return ["multiple-choice" if gold.get("options") else "extractive"]
    if task == IG:
        return ["conversation"]
    return []


def label_counts(records: pl.DataFrame) -> dict[str, int]:
    """Occurrences per label over a raw-records frame (columns task, gold)."""
    counts: Counter[str] = Counter()
    for task, gold in records.select("task", "gold").iter_rows():
        counts.update(labels_of(task, json.loads(gold)))
    return dict(counts.most_common())


def markdown_table(rows: Iterable[dict], columns: list[str], width: int = 160) -> str:
    """A small Markdown table; cells are truncated and pipes escaped."""

    def cell(value) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def count_table(counts: dict[str, int], key: str = "label") -> str:
    rows = [{key: k, "count": v} for k, v in counts.items()]
    return markdown_table(rows, [key, "count"])
