"""Local copies of remote model folders and files (``s3://`` and other fsspec URLs).

transformers, PEFT and vLLM load adapters and models from local folders. ``local_copy``
downloads a remote folder (or one file, e.g. a ``.gguf``) into a cache folder and
returns the local path; a local path is returned unchanged.

A copy is complete or absent: files go to a temporary folder beside the target, their
sizes are checked, a marker file (``.hum_fetched.json``) is written last and the folder
is renamed into place. A folder without the marker (left by something else) is never
used; it is replaced. The cache folder's name carries a digest of the URL and of every
remote file's size and ETag (or modification time), so a re-trained adapter uploaded
to the same URL gets a new copy instead of the stale one. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from hum_dagster.store import fsio

MARKER = ".hum_fetched.json"
CACHE_FOLDER = "model_cache"


def is_remote(path: str | os.PathLike[str] | None) -> bool:
    """True for a URL that is not a local file (``s3://...``, ``gs://...``)."""
    text = str(path or "")
    return "://" in text and not text.startswith("file://")


def default_cache_dir(storage_root: str | os.PathLike[str] | None = None) -> str:
    """``<storage root>/model_cache`` for local storage; with remote storage (or none)
    ``$HUM_HOME/model_cache`` (``HUM_HOME`` defaults to ``.hum``)."""
    root = str(storage_root or "")
    if root and not is_remote(root):
        return os.path.join(root, CACHE_FOLDER)
    return os.path.join(os.environ.get("HUM_HOME", ".hum"), CACHE_FOLDER)


def _remote_files(uri: str) -> tuple[Any, str, dict[str, dict[str, Any]], bool]:
    """(filesystem, path, {relative name: info}, is a single file)."""
    fs, path = fsio.filesystem(uri)
    path = path.rstrip("/")
    if fs.isfile(path):
        return fs, path, {posixpath.basename(path): fs.info(path)}, True
    found = fs.find(path, detail=True)
    files = {}
    for name, info in found.items():
        if info.get("type") == "directory" or name.endswith("/"):
            continue
        rel = name[len(path) :].lstrip("/") if name.startswith(path) else posixpath.basename(name)
        files[rel] = info
    if not files:
        raise FileNotFoundError(f"{uri}: no such file or folder (nothing to download)")
    return fs, path, files, False


def _version(uri: str, files: dict[str, dict[str, Any]]) -> str:
    parts = [uri]
    for rel in sorted(files):
        info = files[rel]
        stamp = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime")
        parts.append(f"{rel}|{info.get('size')}|{stamp}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=8).hexdigest()


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "model"


def local_copy(uri: str, cache_dir: str | os.PathLike[str]) -> str:
    """A local path for ``uri``: the path itself when local, else a complete copy in
    ``cache_dir`` (downloaded now unless an identical one is there)."""
    if not is_remote(uri):
        return str(uri)
    fs, path, files, single = _remote_files(uri)
    base = posixpath.basename(path)
    # a single file keeps its name, inside a folder named after its parent and itself
    label = f"{posixpath.basename(posixpath.dirname(path))}-{base}" if single else base
    target = Path(cache_dir) / f"{_safe_name(label)}-{_version(uri, files)}"
    result = str(target / base) if single else str(target)
    if (target / MARKER).is_file():
        return result
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # not made by us (no marker): never trust it
        shutil.rmtree(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        start = time.perf_counter()
        total = 0
        for rel, info in sorted(files.items()):
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path if single else f"{path}/{rel}", str(dest))
            size = dest.stat().st_size
            if info.get("size") is not None and size != int(info["size"]):
                raise OSError(f"{uri}: {rel} is {size} bytes, expected {info['size']}")
            total += size
        (tmp / MARKER).write_text(
            json.dumps(
                {
                    "uri": uri,
                    "files": len(files),
                    "bytes": total,
                    "seconds": round(time.perf_counter() - start, 3),
                }
            ),
            encoding="utf-8",
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER).is_file():  # someone else's half folder, not a copy
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def fetched_info(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of a copy made by ``local_copy`` (for a file: of its folder)."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    marker = folder / MARKER
    if not marker.is_file():
        return None
    return json.loads(marker.read_text(encoding="utf-8"))
