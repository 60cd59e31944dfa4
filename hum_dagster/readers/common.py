"""Helpers shared by the readers: opening files, JSON handling, collecting records.

Every reader opens its files through :func:`open_source` (which turns a missing or
non-UTF-8 file into a ``SourceError`` naming the path and, where known, the line)
and gathers its output in a :class:`Collector` (which builds records, quarantines
empty texts and exact duplicates, and assembles the ``ReadResult``).
"""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from hum_dagster.records import LabelSchema, Quarantined, ReadResult, Record, SourceError
from hum_dagster.store import fsio

BOM = "\ufeff"


def gc_paused(func):
    """Run a reader with the cyclic garbage collector paused.

    Readers allocate millions of small, acyclic objects; generational collections
    triggered by those allocations cost about 40% of the reading time and free
    nothing. Reference counting still frees everything as usual.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        if was_enabled:
            gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


def base_name(path: str) -> str:
    """The file name used in record origins: stable across machines and storage."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _bad_utf8_line(path: str) -> int | None:
    """The 1-based line holding the first byte that is not UTF-8, or None."""
    try:
        data = fsio.read_bytes(path)
    except OSError:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return None


@contextmanager
def open_source(path: str) -> Iterator[IO[str]]:
    """Open a UTF-8 text file (local or remote); unreadable files raise ``SourceError``."""
    try:
        with fsio.open_text(path) as handle:
            yield handle
    except FileNotFoundError as exc:
        raise SourceError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise SourceError(path, "is a directory, expected a file") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(path, f"not UTF-8 text ({exc.reason})", _bad_utf8_line(path)) from exc
    except PermissionError as exc:
        raise SourceError(path, "permission denied") from exc


def iter_lines(handle: IO[str]) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line ending); a leading BOM is dropped."""
    for lineno, line in enumerate(handle, 1):
        if lineno == 1 and line.startswith(BOM):
            line = line[1:]
        yield lineno, line.rstrip("\r\n")


def read_text(path: str) -> str:
    with open_source(path) as handle:
        text = handle.read()
    return text[1:] if text.startswith(BOM) else text


def load_json_document(path: str) -> Any:
    """Parse a whole JSON file; invalid JSON raises ``SourceError`` with the line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(path, f"invalid JSON: {exc.msg}", exc.lineno) from exc


def json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def iter_json_items(path: str) -> Iterator[tuple[str, str, Any, str | None]]:
    """Records of a JSON-lines file or of a JSON array file (first character ``[``).

    Yields ``(origin, raw, value, error)``: ``error`` is None when ``value`` is a JSON
    object, else a short reason (invalid JSON, not an object). Blank lines are skipped.
    A file holding one multi-line JSON object raises ``SourceError``.
    """
    name = base_name(path)
    with open_source(path) as handle:
        first = True
        for lineno, line in iter_lines(handle):
            if not line.strip():
                continue
            if first:
                first = False
                if line.lstrip().startswith("["):
                    # A JSON array: the rest of the file belongs to it.
                    rest = handle.read()
                    yield from _iter_json_array(path, (lineno - 1) * "\n" + line + "\n" + rest)
                    return
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                if _opens_object(line):
                    _reject_single_object(path)
                yield (
                    f"{name}:{lineno}",
                    line,
                    None,
                    f"invalid JSON: {exc.msg} at column {exc.colno}",
                )
                continue
            if isinstance(value, dict):
                yield f"{name}:{lineno}", line, value, None
            else:
                yield (
                    f"{name}:{lineno}",
                    line,
                    None,
                    f"expected a JSON object, got {json_type(value)}",
                )


def _opens_object(line: str) -> bool:
    return line.strip() == "{"


def _reject_single_object(path: str) -> None:
    """Raise when the file is one pretty-printed JSON object instead of JSON lines."""
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError:
        return
    raise SourceError(
        path, f"expected JSON lines or a JSON array, got one JSON {json_type(value)}", 1
    )


def _iter_json_array(path: str, text: str) -> Iterator[tuple[str, str, Any, str | None]]:
    name = base_name(path)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(path, f"invalid JSON: {exc.msg}", exc.lineno) from exc
    if not isinstance(items, list):
        raise SourceError(path, f"expected a JSON array, got {json_type(items)}")
    for index, value in enumerate(items):
        origin = f"{name}#{index}"
        if isinstance(value, dict):
            yield origin, "", value, None
        else:
            yield origin, _raw(value), None, f"expected a JSON object, got {json_type(value)}"


def _raw(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= Quarantined.RAW_LIMIT else text[: Quarantined.RAW_LIMIT]


def raw_json(value: Any) -> str:
    """A JSON rendering of an offending value, short enough for ``Quarantined.raw``."""
    return _raw(value)


def option_error(entry: Any, reason: str) -> SourceError:
    return SourceError(entry.resolve(), f"source '{entry.name}': {reason}")


def str_list_option(entry: Any, key: str) -> list[str] | None:
    """An optional list-of-strings option (e.g. ``labels``); wrong types raise SourceError."""
    value = entry.option(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise option_error(entry, f"option '{key}' must be a non-empty list")
    return [str(v) for v in value]


def str_option(entry: Any, key: str, default: str) -> str:
    value = entry.option(key, default)
    if not isinstance(value, str) or not value:
        raise option_error(entry, f"option '{key}' must be a non-empty string")
    return value


class Collector:
    """Builds the records of one source; quarantines empty texts and exact duplicates."""

    __slots__ = ("entry", "records", "quarantine", "_seen", "_source", "_task", "_lang", "_split")

    def __init__(self, entry: Any):
        self.entry = entry
        self.records: list[Record] = []
        self.quarantine: list[Quarantined] = []
        self._seen: dict[str, str] = {}
        self._source = entry.name
        self._task = entry.task
        self._lang = entry.language
        self._split = entry.split

    def add(
        self, text: str, gold: dict[str, Any], origin: str, raw: str | Callable[[], str] = ""
    ) -> Record | None:
        """Add a record; ``raw`` (or a function giving it) is kept only if it is rejected."""
        if not text or text.isspace():
            self.reject(origin, "empty text", raw() if callable(raw) else raw)
            return None
        record = Record(
            source=self._source,
            task=self._task,
            language=self._lang,
            text=text,
            gold=gold,
            origin=origin,
            split=self._split,
        )
        first = self._seen.get(record.record_id)
        if first is not None:
            self.reject(origin, f"duplicate of {first}", raw() if callable(raw) else raw)
            return None
        self._seen[record.record_id] = origin
        self.records.append(record)
        return record

    def reject(self, origin: str, reason: str, raw: str = "") -> None:
        self.quarantine.append(Quarantined(self._source, origin, reason, raw))

    def result(self, schema: LabelSchema, files: list[str]) -> ReadResult:
        return ReadResult(
            records=self.records, quarantine=self.quarantine, schema=schema, files=files
        )
