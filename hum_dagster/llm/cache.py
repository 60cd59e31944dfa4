"""The persistent response cache: append-only, content-addressed JSONL shards.

Layout under the cache root (a folder or an ``s3://`` prefix)::

    shards/<utc-stamp>-<uuid>.jsonl     answers, one JSON object a line, never rewritten
    failures/<utc-stamp>-<uuid>.jsonl   failures, for inspection only: never served

Each writer (one ``ResponseCache`` object, so one per process) buffers new entries and
writes them, every ``flush_every`` entries and at ``flush()``, as a *new* shard through
``fsio.atomic_writer``: a shard appears whole or not at all, and no two writers ever
write the same file, so any number of processes on any number of machines can share one
root. Readers list and load every shard into an in-memory index ``key -> entries``.
Shards are read in name order (their names start with a UTC time stamp) and lines in
file order, so when two writers stored the same key the first entry wins, the same way
on every machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from hum_dagster.store import fsio

log = logging.getLogger(__name__)

KEY_VERSION = 1
SHARDS = "shards"
FAILURES = "failures"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(
    *,
    model: str,
    messages: Iterable[dict[str, str]],
    params: dict[str, Any],
    json_schema: dict[str, Any] | None,
    template: str,
    template_version: str,
    sample_index: int,
    expect_json: bool = True,
) -> str:
    """sha256 of the canonical JSON of everything that shapes the answer.

    The base URL and the API key are not part of it: the same model behind another
    endpoint gives the same answers, and the key must never reach the cache.
    """
    payload = {
        "v": KEY_VERSION,
        "model": model,
        "messages": [dict(m) for m in messages],
        "params": {k: v for k, v in sorted(params.items()) if v is not None},
        "json_schema": json_schema,
        "template": template,
        "template_version": template_version,
        "sample_index": sample_index,
    }
    if not expect_json:  # free-text answers live under their own keys
        payload["text"] = True
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def shard_name() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    return f"{stamp}-{uuid.uuid4().hex}.jsonl"


class ResponseCache:
    """Answers by cache key. ``get`` serves only stored answers, never failures."""

    def __init__(self, root: str, *, flush_every: int = 200) -> None:
        self.root = root.rstrip("/")
        self.flush_every = flush_every
        self._index: dict[str, list[dict[str, Any]]] = {}
        self._loaded: set[str] = set()  # shard names already in the index
        self._searched: set[str] = set()  # keys ``refresh(wanted)`` has looked for
        self._pending: list[dict[str, Any]] = []
        self._pending_failures: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._ready = False

    # -- reading ----------------------------------------------------------------------

    def refresh(self, wanted: Iterable[str] | None = None) -> int:
        """Load shards that appeared since the last look; returns how many were new.

        With ``wanted`` (the keys a run is about to ask for), only the entries under
        those keys are kept: every shard is scanned, but a line is decoded whole only when
        its key is wanted, so a process holds its own answers, not the whole cache (at the
        paper's scale it holds hundreds of thousands of answers of about 1.6 kB)."""
        if wanted is not None:
            return self._refresh_keys(wanted)
        fs, shard_dir = fsio.filesystem(fsio.join(self.root, SHARDS))
        names = _shard_names(fs, shard_dir)
        with self._lock:
            new = [n for n in names if n not in self._loaded]
        if not new:
            self._ready = True
            return 0
        paths = [f"{shard_dir}/{n}" for n in new]
        try:
            blobs = fs.cat(paths, on_error="return")
        except FileNotFoundError:
            blobs = {}
        with self._lock:
            for name, path in zip(new, paths, strict=True):
                blob = blobs.get(path)
                if not isinstance(blob, bytes):
                    continue  # compacted away since the listing: its entries are elsewhere
                self._loaded.add(name)
                self._absorb(name, blob)
            # a late shard may sort before ones already loaded: keep first-wins by name
            if any(n < max(self._loaded) for n in new):
                for entries in self._index.values():
                    entries.sort(key=_entry_order)
            self._ready = True
        return len(new)

    def _refresh_keys(self, wanted: Iterable[str]) -> int:
        """``refresh(wanted)``: scan the shards not loaded whole for the keys not looked
        for yet; returns the number of shards scanned."""
        with self._lock:
            need = set(wanted) - self._searched
        if not need:
            return 0
        fs, shard_dir = fsio.filesystem(fsio.join(self.root, SHARDS))
        scanned = 0
        for name in _shard_names(fs, shard_dir):
            with self._lock:
                if name in self._loaded:
                    continue
            try:
                blob = fs.cat_file(f"{shard_dir}/{name}")
            except FileNotFoundError:
                continue  # compacted away since the listing: its entries are elsewhere
            scanned += 1
            with self._lock:
                self._absorb(name, blob, need)
        with self._lock:
            for key in need:
                if len(self._index.get(key, ())) > 1:
                    self._index[key].sort(key=_entry_order)
            self._searched |= need
        return scanned

    def _absorb(self, name: str, blob: bytes, only: set[str] | None = None) -> None:
        """Index the lines of shard ``name`` (with ``only``: those under these keys)."""
        lines = blob.decode("utf-8").splitlines()
        numbered = [(n, line) for n, line in enumerate(lines) if line.strip()]
        if only is not None:
            try:  # each line's key alone (msgspec skips the rest of the line)
                keys = [k.key for k in _KEYS.decode_lines(blob)]
            except msgspec.DecodeError:
                keys = []  # a bad line: decode every line
            if len(keys) == len(numbered):
                numbered = [nl for nl, k in zip(numbered, keys, strict=True) if k in only]
        for n, line in numbered:
            try:
                entry = json.loads(line)
            except ValueError:
                log.warning("cache shard %s line %d is not JSON: skipped", name, n + 1)
                continue
            if only is not None and entry.get("key") not in only:
                continue
            entry["_shard"], entry["_line"] = name, n
            self._index.setdefault(entry["key"], []).append(entry)

    def get(
        self, key: str, validate: Callable[[Any], str | None] | None = None, expect_json: bool = True
    ) -> dict | None:
        """The first stored entry under ``key`` that ``validate`` accepts, else None.

        The validator sees the parsed JSON, or the raw text when ``expect_json`` is False.
        """
        if not self._ready and key not in self._searched:
            self.refresh()
        with self._lock:
            entries = list(self._index.get(key, ()))
        for entry in entries:
            value = entry.get("parsed") if expect_json else entry.get("content")
            if validate is None or _accepts(validate, value):
                return entry
        return None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        if not self._ready:
            self.refresh()
        with self._lock:
            return len(self._index)

    def __iter__(self) -> Iterator[str]:
        """The stored keys, sorted."""
        if not self._ready:
            self.refresh()
        with self._lock:
            return iter(sorted(self._index))

    # -- writing ----------------------------------------------------------------------

    def put(self, entry: dict[str, Any]) -> None:
        """Add an answer (a dict with at least ``key``, ``content``, ``parsed``)."""
        if "key" not in entry:
            raise ValueError("a cache entry needs its key")
        entry = {k: v for k, v in entry.items() if not k.startswith("_")}
        with self._lock:
            self._pending.append(entry)
            local = dict(entry, _shard="~pending", _line=len(self._pending))
            self._index.setdefault(entry["key"], []).append(local)
            due = len(self._pending) >= self.flush_every
        if due:
            self.flush()

    def record_failure(self, failure: dict[str, Any]) -> None:
        """Keep a failure for inspection (``failures()``); it is never served by ``get``."""
        with self._lock:
            self._pending_failures.append(failure)

    def flush(self) -> None:
        """Write buffered entries and failures as new shards (atomically)."""
        with self._lock:
            entries, self._pending = self._pending, []
            failures, self._pending_failures = self._pending_failures, []
            if entries:
                name = shard_name()
                _write_lines(fsio.join(self.root, SHARDS, name), entries)
                self._loaded.add(name)
                for e in entries:  # the pending copies now live in a named shard
                    for indexed in self._index.get(e["key"], ()):
                        if indexed.get("_shard") == "~pending" and _same(indexed, e):
                            indexed["_shard"] = name
            if failures:
                _write_lines(fsio.join(self.root, FAILURES, shard_name()), failures)

    def failures(self) -> list[dict[str, Any]]:
        """Every recorded failure under this root (for inspection), oldest shard first."""
        return _read_all(fsio.join(self.root, FAILURES))

    def compact(self) -> int:
        """Merge every shard into one; returns the number of shards replaced.

        Safe beside live writers: the merged shard is written (atomically) before the
        shards it replaces are deleted, and it sorts where the oldest of them did.
        """
        self.flush()
        fs, shard_dir = fsio.filesystem(fsio.join(self.root, SHARDS))
        fs.invalidate_cache(shard_dir)
        try:
            names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(shard_dir, detail=False))
        except FileNotFoundError:
            return 0
        names = [n for n in names if n.endswith(".jsonl")]
        if len(names) < 2:
            return 0
        blobs = fs.cat([f"{shard_dir}/{n}" for n in names])
        seen: set[tuple[str, str]] = set()
        merged: list[dict[str, Any]] = []
        for name in names:
            for line in blobs[f"{shard_dir}/{name}"].decode("utf-8").splitlines():
                if not line.strip():
                    continue
                entry = json.loads(line)
                ident = (entry["key"], canonical_json(entry.get("content")))
                if ident not in seen:
                    seen.add(ident)
                    merged.append(entry)
        target = f"{names[0][:-6]}-c{uuid.uuid4().hex[:8]}.jsonl"
        _write_lines(fsio.join(self.root, SHARDS, target), merged)
        for name in names:
            fs.rm(f"{shard_dir}/{name}")
        with self._lock:
            self._index.clear()
            self._loaded.clear()
            self._searched.clear()
            self._ready = False
        return len(names)


class _Key(msgspec.Struct):
    key: str


_KEYS = msgspec.json.Decoder(_Key)  # a line's key without decoding the rest of it


def _entry_order(entry: dict[str, Any]) -> tuple[str, int]:
    return entry.get("_shard", ""), entry.get("_line", 0)


def _shard_names(fs: Any, shard_dir: str) -> list[str]:
    """The shard file names under ``shard_dir``, sorted (first-wins order)."""
    fs.invalidate_cache(shard_dir)
    try:
        return sorted(
            p.rsplit("/", 1)[-1] for p in fs.ls(shard_dir, detail=False) if p.endswith(".jsonl")
        )
    except FileNotFoundError:
        return []


def _accepts(validate: Callable[[Any], str | None], parsed: Any) -> bool:
    try:
        return validate(parsed) is None
    except Exception:  # a validator that raises rejects
        return False


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("content") == b.get("content") and a.get("answered_at") == b.get("answered_at")


def _write_lines(path: str, records: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    with fsio.atomic_writer(path) as handle:
        handle.write(data.encode("utf-8"))


def _read_all(folder: str) -> list[dict[str, Any]]:
    fs, path = fsio.filesystem(folder)
    fs.invalidate_cache(path)
    try:
        names = sorted(p for p in fs.ls(path, detail=False) if p.endswith(".jsonl"))
    except FileNotFoundError:
        return []
    out: list[dict[str, Any]] = []
    for name in names:
        with fs.open(name, "rb") as handle:
            out.extend(
                json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line
            )
    return out
