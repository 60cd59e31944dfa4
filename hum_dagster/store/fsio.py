"""Storage-agnostic file access: local paths and ``s3://`` URIs through fsspec/s3fs."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # fsspec is imported where a file is opened (it costs ~70 ms to import)
    import fsspec


def filesystem(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``path`` and the path as that filesystem names it."""
    import fsspec

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


@contextmanager
def atomic_writer(path: str) -> Iterator[IO[bytes]]:
    """A binary file handle whose content appears at ``path`` only if the block succeeds.

    Local: a sibling temp file, fsynced, then renamed over ``path``. Remote: a local
    temp file uploaded as one object when the block ends (an object store shows an
    object only once its upload completes). On error nothing appears at ``path``.
    """
    fs, p = filesystem(path)
    local = _is_local_fs(fs)
    if local:
        os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        tmp = f"{p}.tmp-{uuid.uuid4().hex}"
    else:
        fd, tmp = tempfile.mkstemp(prefix="hum-upload-")
        os.close(fd)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if local:
            os.replace(tmp, p)
        else:
            fs.put_file(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write so that readers see either the old file or the whole new one, never a part.

    Local: write a sibling temp file, fsync, rename. Object stores: a single PUT is
    atomic (an object becomes visible only when its upload completes).
    """
    with atomic_writer(path) as handle:
        handle.write(data)


_LOCAL_COPIES: dict[str, str] = {}


def local_copy(path: str) -> str:
    """``path`` itself when local; else a copy in this process's temp folder (downloaded
    once, under a temp name then renamed, and removed when the process exits), so that
    readers that want a local file (Parquet scans) can stream it."""
    fs, p = filesystem(path)
    if _is_local_fs(fs):
        return p
    copy = _LOCAL_COPIES.get(path)
    if copy and os.path.exists(copy):
        return copy
    folder = _copies_dir()
    copy = os.path.join(folder, f"{uuid.uuid4().hex}-{os.path.basename(p)}")
    fs.get_file(p, copy + ".part")
    os.replace(copy + ".part", copy)
    _LOCAL_COPIES[path] = copy
    return copy


_COPIES_DIR: list[str] = []


def _copies_dir() -> str:
    if not _COPIES_DIR:
        folder = tempfile.mkdtemp(prefix="hum-copies-")
        atexit.register(shutil.rmtree, folder, True)
        _COPIES_DIR.append(folder)
    return _COPIES_DIR[0]


@contextmanager
def exclusive(lock_path: str | os.PathLike[str]):
    """One process at a time past this point, among those locking ``lock_path`` (a local
    file, created if need be; ``flock``, released when the holder exits, even killed)."""
    import fcntl

    os.makedirs(os.path.dirname(str(lock_path)) or ".", exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
