"""Storage-agnostic file access: local paths and ``s3://`` URIs through fsspec/s3fs."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import fsspec


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``path`` and the path as that filesystem names it."""
    fs, _, paths = fsspec.get_fs_token_paths(path)
    return fs, paths[0]


def join(root: str, *parts: str) -> str:
    root = root.rstrip("/")
    return "/".join([root, *[p.strip("/") for p in parts]])


def exists(path: str) -> bool:
    fs, p = filesystem(path)
    return fs.exists(p)


@contextmanager
def open_text(path: str) -> Iterator[IO[str]]:
    """Open a UTF-8 text file, local or remote; a missing file raises FileNotFoundError."""
    fs, p = filesystem(path)
    with fs.open(p, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield text


def read_bytes(path: str) -> bytes:
    fs, p = filesystem(path)
    with fs.open(p, "rb") as handle:
        return handle.read()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write so that readers see either the old file or the whole new one, never a part.

    Local: write a sibling temp file, fsync, rename. Object stores: a single PUT is
    atomic (an object becomes visible only when its upload completes).
    """
    fs, p = filesystem(path)
    if fs.protocol in ("file", ("file", "local")) or "file" in fs.protocol:
        os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        tmp = f"{p}.tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:
        fs.pipe_file(p, data)
