"""Corpus export for trainers: LlamaFactory alpaca JSONL plus ``dataset_info.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from hum_dagster import fsio

DATASET_PREFIX = "hum"


@dataclass(frozen=True)
class ExportResult:
    directory: str
    files: dict[str, str]  # split -> path
    rows: dict[str, int]  # split -> row count


def alpaca_row(row: dict) -> dict:
    """One LlamaFactory alpaca record: instruction, input, output (+ system, history)."""
    record = {"instruction": row["instruction"], "input": "", "output": row["output"]}
    if row.get("system"):
        record["system"] = row["system"]
    if row.get("history"):
        record["history"] = json.loads(row["history"])
    return record


def export_alpaca(corpus: pl.DataFrame, directory: str) -> ExportResult:
    """Write ``hum_<split>.jsonl`` per split and a ``dataset_info.json`` naming them.

    Every file is written atomically, and ``dataset_info.json`` last, so a reader that
    finds it finds complete data files.
    """
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    info: dict[str, dict] = {}
    for split in ("train", "validation"):
        part = corpus.filter(pl.col("split") == split)
        name = f"{DATASET_PREFIX}_{split}.jsonl"
        path = fsio.join(directory, name)
        with fsio.atomic_writer(path) as handle:
            for row in part.select("instruction", "output", "system", "history").iter_rows(named=True):
                handle.write(json.dumps(alpaca_row(row), ensure_ascii=False).encode("utf-8"))
                handle.write(b"\n")
        files[split] = path
        rows[split] = part.height
        info[f"{DATASET_PREFIX}_{split}"] = {
            "file_name": name,
            "formatting": "alpaca",
            "columns": {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "system": "system",
                "history": "history",
            },
        }
    fsio.write_bytes_atomic(
        fsio.join(directory, "dataset_info.json"),
        json.dumps(info, ensure_ascii=False, indent=2).encode("utf-8"),
    )
    return ExportResult(directory, files, rows)
