"""Training outputs on local disk or ``s3://``, and checkpoints for resumption.

Layout under an output directory::

    adapter/                 the LoRA adapter (adapter_config.json, adapter_model.safetensors, tokenizer)
    merged/                  merged full weights (optional)
    checkpoints/checkpoint-N/ remote copies of trainer checkpoints (only for remote outputs)
    training_record.json     written last: its presence marks the run complete

Training writes into a local folder; :func:`publish_dir` copies each file atomically
(a temp file renamed, or one object upload), and the record is written after every
other file, so nothing half-written is ever read as complete. A new run removes an old
record first. No Dagster imports.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hum_dagster.store import fsio

RECORD = "training_record.json"
CHECKPOINT_MARKER = "hum_checkpoint_complete"


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def dir_size(path: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def publish_dir(local: str | Path, dest: str) -> list[str]:
    """Copy every file of ``local`` under ``dest`` (each file atomically)."""
    local = Path(local)
    written = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        target = fsio.join(dest, path.relative_to(local).as_posix())
        with open(path, "rb") as source, fsio.atomic_writer(target) as handle:
            shutil.copyfileobj(source, handle, 1 << 22)
        written.append(target)
    return written


def write_record(output_dir: str, record: dict[str, Any]) -> str:
    path = fsio.join(output_dir, RECORD)
    fsio.write_bytes_atomic(path, json.dumps(record, indent=2, sort_keys=True).encode("utf-8"))
    return path


def read_record(output_dir: str) -> dict[str, Any] | None:
    path = fsio.join(output_dir, RECORD)
    try:
        return json.loads(fsio.read_bytes(path))
    except FileNotFoundError:
        return None


def invalidate_record(output_dir: str) -> None:
    """Remove a previous run's record: from now on the output is not complete."""
    fs, p = fsio.filesystem(fsio.join(output_dir, RECORD))
    if fs.exists(p):
        fs.rm(p)


def upload_checkpoint(local_checkpoint: str | Path, output_dir: str) -> str:
    """Copy a trainer checkpoint to ``<output_dir>/checkpoints/<name>/``, marker last."""
    local_checkpoint = Path(local_checkpoint)
    dest = fsio.join(output_dir, "checkpoints", local_checkpoint.name)
    publish_dir(local_checkpoint, dest)
    fsio.write_bytes_atomic(fsio.join(dest, CHECKPOINT_MARKER), b"{}")
    return dest


def _step(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def fetch_latest_checkpoint(output_dir: str, local_dir: str | Path) -> str | None:
    """Download the newest complete remote checkpoint into ``local_dir``; its local path."""
    fs, root = fsio.filesystem(fsio.join(output_dir, "checkpoints"))
    if not fs.exists(root):
        return None
    candidates = sorted(
        (p for p in fs.ls(root, detail=False) if _step(p.rstrip("/").rsplit("/", 1)[-1]) >= 0),
        key=lambda p: _step(p.rstrip("/").rsplit("/", 1)[-1]),
        reverse=True,
    )
    for remote in candidates:
        if not fs.exists(f"{remote.rstrip('/')}/{CHECKPOINT_MARKER}"):
            continue  # an upload cut short: not a checkpoint
        name = remote.rstrip("/").rsplit("/", 1)[-1]
        target = Path(local_dir) / name
        tmp = Path(local_dir) / f".{name}.download"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        fs.get(remote.rstrip("/") + "/", str(tmp), recursive=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        return str(target)
    return None


def materialize_model_dir(path: str, cache_dir: str | Path) -> str:
    """A local folder for a model: ``path`` itself, or a download of an ``s3://`` folder."""
    if not is_remote(path):
        return path
    fs, root = fsio.filesystem(path)
    target = Path(cache_dir) / root.strip("/").replace("/", "__")
    if (target / CHECKPOINT_MARKER).is_file():
        return str(target)
    tmp = target.with_name(f".{target.name}.download")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fs.get(root.rstrip("/") + "/", str(tmp), recursive=True)
    (tmp / CHECKPOINT_MARKER).write_text("{}", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return str(target)
