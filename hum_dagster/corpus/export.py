"""Corpus export for trainers: LlamaFactory alpaca JSONL, OpenAI chat JSONL and ``dataset_info.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from hum_dagster.jsontext import json_bytes
from hum_dagster.store import fsio

DATASET_PREFIX = "hum"


@dataclass(frozen=True)
class ExportResult:
    directory: str
    files: dict[str, str]  # split -> path
    rows: dict[str, int]  # split -> row count
    table_parts: list[str] = field(default_factory=list)  # with ``table_dir``: rank order


def alpaca_row(row: dict) -> dict:
    """One LlamaFactory alpaca record: instruction, input, output (+ system, history)."""
    record = {"instruction": row["instruction"], "input": "", "output": row["output"]}
    if row.get("system"):
        record["system"] = row["system"]
    if row.get("history"):
        record["history"] = json.loads(row["history"])
    return record


# --------------------------------------------------------------------------- streaming export

FORMATS = ("alpaca", "openai")


def openai_row(row: dict) -> dict:
    """One OpenAI chat fine-tuning record: system, earlier turns, the instruction, the answer."""
    messages = []
    if row.get("system"):
        messages.append({"role": "system", "content": row["system"]})
    for turn in json.loads(row["history"]) if row.get("history") else []:
        user, assistant = (list(turn) + ["", ""])[:2]
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})
    messages.append({"role": "user", "content": row["instruction"]})
    messages.append({"role": "assistant", "content": row["output"]})
    return {"messages": messages}


_ROW_MAKERS = {"alpaca": alpaca_row, "openai": openai_row}
# Rows turned into JSON lines at a time (a few MB of text)
LINE_ROWS = 1_000
# Rows per row group of a kept part: the writer holds a row group's pages, so a whole
# bucket as one group took another 100-130 MB (measured on 25k-row buckets)
PART_ROW_GROUP = 2_000


def _dataset_info(formats: tuple[str, ...]) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for split in ("train", "validation"):
        if "alpaca" in formats:
            info[f"{DATASET_PREFIX}_{split}"] = {
                "file_name": f"{DATASET_PREFIX}_{split}.jsonl",
                "formatting": "alpaca",
                "columns": {
                    "prompt": "instruction",
                    "query": "input",
                    "response": "output",
                    "system": "system",
                    "history": "history",
                },
            }
        if "openai" in formats:
            info[f"{DATASET_PREFIX}_{split}_openai"] = {
                "file_name": f"{DATASET_PREFIX}_{split}.openai.jsonl",
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": {
                    "role_tag": "role",
                    "content_tag": "content",
                    "user_tag": "user",
                    "assistant_tag": "assistant",
                    "system_tag": "system",
                },
            }
    return info


def _sorted(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """``frame.sort(by)``, a column at a time: the bucket is held once plus one sorted
    column, not twice."""
    order = frame.select(pl.arg_sort_by(by)).to_series()
    for name in frame.columns:
        frame = frame.with_columns(frame[name].gather(order))
    return frame


def export_corpus(
    source: Any,
    selection: pl.DataFrame,
    directory: str,
    formats: tuple[str, ...] = FORMATS,
    bucket_rows: int = 25_000,
    batch_rows: int = 10_000,
    workdir: str | None = None,
    table_dir: str | None = None,
) -> ExportResult:
    """Stream the selected rows to ``hum_<split>.jsonl`` (alpaca) and
    ``hum_<split>.openai.jsonl`` (OpenAI chat), plus ``dataset_info.json`` (last).

    ``source`` is what ``corpus.train_batches`` reads (the instruction tables);
    ``selection`` the chosen ``_row`` with ``rank`` and ``split``. Files come out in rank
    order whatever the input order: one pass spills the selected rows into rank-range
    buckets (local Parquet), then each bucket is sorted and written. At most one bucket
    of text is in memory (compound rows with their schema and provenance run to 10 kB,
    so a bucket of 25k rows is about 250 MB); every file appears atomically (local or ``s3://``).

    With ``table_dir``, every sorted bucket is also kept there as
    ``part-<n>.parquet`` (every instruction column plus ``rank`` and ``split``):
    scanned in name order they are the corpus table in rank order
    (``ExportResult.table_parts``); the caller removes the folder.
    """
    import contextlib
    import os
    import shutil
    import tempfile

    import numpy as np

    from hum_dagster.corpus.build import release_freed, train_batches
    from hum_dagster.synthesis.columns import COMPOUND_COLUMNS

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; expected {FORMATS}")
    sel = selection.select("_row", "rank", "split").sort("rank", "_row")
    n = sel.height
    buckets = max(1, -(-n // bucket_rows))
    bounds = [sel["rank"][min(n - 1, (i * n) // buckets)] for i in range(1, buckets)] if n else []
    edges = np.asarray(bounds, dtype=np.int64)
    sel = sel.with_columns(
        pl.Series(
            "_bucket", np.searchsorted(edges, sel["rank"].to_numpy(), side="right"), dtype=pl.Int64
        ),
        pl.col("_row").cast(pl.UInt32),
    ).sort("_row")
    # a batch holds consecutive rows: it is joined with the selection's rows in its range
    positions = sel["_row"].to_numpy()
    tmp = tempfile.mkdtemp(prefix="hum-export-", dir=workdir)
    files: dict[str, str] = {}
    parts: list[str] = []
    counts = {"train": 0, "validation": 0}
    text_cols = ["instruction", "output", "system", "history"]
    cols = list(COMPOUND_COLUMNS) if table_dir else text_cols
    try:
        for part, batch in enumerate(train_batches(source, cols, batch_rows)):
            lo, hi = np.searchsorted(positions, [batch["_row"][0], batch["_row"][-1] + 1])
            if hi == lo:
                continue
            chosen = batch.join(sel.slice(lo, hi - lo), on="_row", how="inner")
            for (bucket,), frame in chosen.partition_by("_bucket", as_dict=True).items():
                folder = os.path.join(tmp, f"b{bucket:05d}")
                os.makedirs(folder, exist_ok=True)
                frame.write_parquet(
                    os.path.join(folder, f"{part:06d}.parquet"), compression_level=1
                )
        release_freed()
        if table_dir:
            os.makedirs(table_dir, exist_ok=True)
        with contextlib.ExitStack() as stack:
            handles = {}
            for fmt in formats:
                for split in ("train", "validation"):
                    suffix = ".jsonl" if fmt == "alpaca" else ".openai.jsonl"
                    path = fsio.join(directory, f"{DATASET_PREFIX}_{split}{suffix}")
                    files[f"{fmt}:{split}" if fmt != "alpaca" else split] = path
                    handles[(fmt, split)] = stack.enter_context(fsio.atomic_writer(path))
            for bucket in sorted(os.listdir(tmp)):
                frame = _sorted(pl.read_parquet(os.path.join(tmp, bucket)), ["rank", "_row"])
                if table_dir:
                    kept = os.path.join(table_dir, f"part-{len(parts):05d}.parquet")
                    frame.select(*COMPOUND_COLUMNS, "rank", "split").write_parquet(
                        kept, compression_level=1, row_group_size=PART_ROW_GROUP
                    )
                    parts.append(kept)
                # JSON lines a slice at a time: a bucket's lines are never all held
                for offset in range(0, frame.height, LINE_ROWS):
                    piece = frame.slice(offset, LINE_ROWS)
                    for (split,), chunk in piece.partition_by("split", as_dict=True).items():
                        counts[split] += chunk.height
                        rows = chunk.select(text_cols).to_dicts()
                        for fmt in formats:
                            maker = _ROW_MAKERS[fmt]
                            handles[(fmt, split)].write(
                                b"".join(json_bytes(maker(r)) + b"\n" for r in rows)
                            )
                del frame
                shutil.rmtree(os.path.join(tmp, bucket))
        fsio.write_bytes_atomic(
            fsio.join(directory, "dataset_info.json"),
            json.dumps(_dataset_info(tuple(formats)), ensure_ascii=False, indent=2).encode("utf-8"),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(directory, files, counts, parts)
