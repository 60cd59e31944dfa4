"""Helpers shared by the readers: opening files, JSON handling, collecting records.

Every reader opens its files through :func:`open_source` (which turns a missing or
non-UTF-8 file into a ``SourceError`` naming the path and, where known, the line)
and gathers its output in a :class:`Collector` (which validates every record with
``readers.validate``, quarantines what breaks a rule, counts repeated records and
assembles the ``ReadResult``). JSON is parsed with duplicate keys detected: an object
that repeats a key is ambiguous, so its record is quarantined.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from hum_dagster.readers.validate import Declared, bad_char, label_problem, record_problem
from hum_dagster.records import (
    Duplicate,
    LabelSchema,
    Quarantined,
    ReadResult,
    Record,
    SourceError,
    make_record_id,
)
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


def _not_utf8_reason(path: str, exc: UnicodeDecodeError) -> str:
    try:
        head = fsio.read_bytes(path)[:4]
    except OSError:
        head = b""
    for bom, name in ((b"\xff\xfe", "UTF-16 little-endian"), (b"\xfe\xff", "UTF-16 big-endian")):
        if head.startswith(bom):
            return f"not UTF-8 text: {name} (byte-order mark {bom.hex(' ').upper()}); save it as UTF-8"
    return f"not UTF-8 text ({exc.reason})"


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
        raise SourceError(path, _not_utf8_reason(path, exc), _bad_utf8_line(path)) from exc
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


class _RepeatedKeys(dict):
    """A parsed JSON object whose text repeated a key (the last value won)."""

    __slots__ = ("repeated",)


_REPEATS = [0]  # objects with a repeated key parsed so far (a cheap "any?" flag)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    repeated = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    flagged = _RepeatedKeys(value)
    flagged.repeated = repeated
    _REPEATS[0] += 1
    return flagged


def json_error(exc: json.JSONDecodeError) -> str:
    """``invalid JSON: <what> at column <n>`` (the line goes into the error's own field)."""
    msg = exc.msg[: -len(" at")] if exc.msg.endswith(" at") else exc.msg
    return f"invalid JSON: {msg} at column {exc.colno}"


def parse_json(text: str) -> Any:
    """``json.loads`` that marks objects repeating a key (see :func:`repeated_key`)."""
    return json.loads(text, object_pairs_hook=_pairs_hook)


def repeated_key(value: Any) -> str | None:
    """The first key repeated in an object anywhere inside ``value``, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if type(item) is _RepeatedKeys:
                return item.repeated
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def own_repeated_key(value: Any) -> str | None:
    """The key this very object repeats (not its children), or None."""
    return value.repeated if type(value) is _RepeatedKeys else None


def repeated_key_reason(key: str) -> str:
    return f"JSON object repeats the key {key!r} (which value is meant is ambiguous)"


def _key_line(text: str, key: str, nth: int = 2) -> int | None:
    """The line of the ``nth`` ``"key":`` in ``text`` (2: where a repeat shows), or None."""
    pattern = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:")
    found = list(itertools.islice(pattern.finditer(text), nth))
    if len(found) < nth:
        return None
    return text.count("\n", 0, found[nth - 1].start()) + 1


def key_line(path: str, key: str) -> int | None:
    """The line of a JSON file where ``"key":`` first appears (for an error message)."""
    try:
        return _key_line(read_text(path), key, 1)
    except SourceError:
        return None


def load_json_records(path: str) -> tuple[Any, bool]:
    """A whole JSON file and whether any object inside repeats a key.

    Invalid JSON, or a repeated key in the top-level object, raises ``SourceError``
    with the line; a repeat deeper down is for the reader to quarantine per record
    (:func:`repeated_key`).
    """
    text = read_text(path)
    before = _REPEATS[0]
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        raise SourceError(path, json_error(exc), exc.lineno) from exc
    except RecursionError as exc:
        raise SourceError(path, "invalid JSON: nested too deeply") from exc
    if type(value) is _RepeatedKeys:
        raise SourceError(
            path,
            f"the top-level object repeats the key {value.repeated!r}",
            _key_line(text, value.repeated),
        )
    return value, _REPEATS[0] != before


def load_json_document(path: str) -> Any:
    """Parse a whole JSON file; invalid JSON or any repeated key raises ``SourceError``."""
    value, repeats = load_json_records(path)
    if repeats:
        key = repeated_key(value)
        raise SourceError(path, repeated_key_reason(key), _key_line(read_text(path), key))
    return value


def json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def iter_json_items(path: str) -> Iterator[tuple[str, str, Any, str | None]]:
    """Records of a JSON-lines file or of a JSON array file (first character ``[``).

    Yields ``(origin, raw, value, error)``: ``error`` is None when ``value`` is a JSON
    object, else a short reason (invalid JSON, not an object, a repeated key). Blank
    lines are skipped. A file holding one multi-line JSON object raises ``SourceError``.
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
            yield parse_json_line(path, name, lineno, line)


def parse_json_line(path: str, name: str, lineno: int, line: str) -> tuple[str, str, Any, str | None]:
    """One non-blank line of a JSON-lines file as ``iter_json_items`` yields it:
    ``(origin, raw, value, error)``. A line that opens a pretty-printed single JSON
    object raises ``SourceError`` (the file is not JSON lines)."""
    origin = f"{name}:{lineno}"
    before = _REPEATS[0]
    try:
        value = parse_json(line)
    except json.JSONDecodeError as exc:
        if _opens_object(line):
            _reject_single_object(path)
        return origin, line, None, json_error(exc)
    except RecursionError:
        return origin, line, None, "invalid JSON: nested too deeply"
    if not isinstance(value, dict):
        return origin, line, None, f"expected a JSON object, got {json_type(value)}"
    if _REPEATS[0] != before:
        return origin, line, None, repeated_key_reason(repeated_key(value))
    return origin, line, value, None


def _opens_object(line: str) -> bool:
    return line.strip() == "{"


def _reject_single_object(path: str) -> None:
    """Raise when the file is one pretty-printed JSON object instead of JSON lines."""
    try:
        value = json.loads(read_text(path))
    except (json.JSONDecodeError, RecursionError):
        return
    raise SourceError(
        path, f"expected JSON lines or a JSON array, got one JSON {json_type(value)}", 1
    )


def _iter_json_array(path: str, text: str) -> Iterator[tuple[str, str, Any, str | None]]:
    name = base_name(path)
    before = _REPEATS[0]
    try:
        items = parse_json(text)
    except json.JSONDecodeError as exc:
        raise SourceError(path, json_error(exc), exc.lineno) from exc
    except RecursionError as exc:
        raise SourceError(path, "invalid JSON: nested too deeply") from exc
    if not isinstance(items, list):
        raise SourceError(path, f"expected a JSON array, got {json_type(items)}")
    repeats = _REPEATS[0] != before
    for index, value in enumerate(items):
        origin = f"{name}#{index}"
        if not isinstance(value, dict):
            yield origin, _raw(value), None, f"expected a JSON object, got {json_type(value)}"
            continue
        key = repeated_key(value) if repeats else None
        if key is not None:
            yield origin, _raw(value), None, repeated_key_reason(key)
        else:
            yield origin, "", value, None


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
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise option_error(entry, f"option '{key}': {item!r} is not a non-empty string")
        problem = bad_char(item) or label_problem(item)
        if problem is not None:
            raise option_error(entry, f"option '{key}': {item!r} {problem}")
    return list(value)


def str_option(entry: Any, key: str, default: str) -> str:
    value = entry.option(key, default)
    if not isinstance(value, str) or not value:
        raise option_error(entry, f"option '{key}' must be a non-empty string")
    return value


DUPLICATE_POLICIES = ("keep", "drop")


def record_reason(
    task: str, text: Any, gold: Any, declared: Declared, unplaced: bool = False
) -> str | None:
    """Why ``Collector.add`` would quarantine this record, or None when it is sound."""
    if not isinstance(text, str) or not text or text.isspace():
        return "empty text"
    return record_problem(task, text, gold, declared, unplaced_entities=unplaced)


class Collector:
    """Builds the records of one source: every record is validated (``validate``), and
    repeats are counted and kept with their own ids (``duplicates: drop`` drops them).

    ``declared`` is the label schema the source declares (a schema file, a ``labels``
    option); labels outside it are quarantined. None: labels are mined from the data.
    """

    __slots__ = (
        "entry", "records", "quarantine", "duplicates", "_seen", "_source", "_task",
        "_lang", "_split", "_declared", "_unplaced", "_drop",
    )  # fmt: skip

    def __init__(self, entry: Any, declared: LabelSchema | None = None, unplaced: bool = False):
        self.entry = entry
        self.records: list[Record] = []
        self.quarantine: list[Quarantined] = []
        self.duplicates: list[Duplicate] = []
        self._seen: dict[str, list] = {}  # record id -> [first origin, repeats so far]
        self._source = entry.name
        self._task = entry.task
        self._lang = entry.language
        self._split = entry.split
        self._declared = Declared(declared)
        self._unplaced = unplaced
        policy = entry.option("duplicates", "keep")
        if policy not in DUPLICATE_POLICIES:
            raise option_error(
                entry, f"option 'duplicates' must be one of {list(DUPLICATE_POLICIES)}, got {policy!r}"
            )
        self._drop = policy == "drop"

    def add(
        self, text: str, gold: dict[str, Any], origin: str, raw: str | Callable[[], str] = ""
    ) -> Record | None:
        """Add a record; ``raw`` (or a function giving it) is kept only if it is rejected."""
        problem = record_reason(self._task, text, gold, self._declared, self._unplaced)
        if problem is not None:
            self.reject(origin, problem, raw() if callable(raw) else raw)
            return None
        record_id = make_record_id(self._source, text, gold)
        seen = self._seen.get(record_id)
        if seen is not None:
            seen[1] += 1
            self.duplicates.append(Duplicate(origin, seen[0], self._drop))
            if self._drop:
                return None
            record_id = make_record_id(self._source, text, gold, seen[1])
        else:
            self._seen[record_id] = [origin, 0]
        record = Record(
            source=self._source,
            task=self._task,
            language=self._lang,
            text=text,
            gold=gold,
            origin=origin,
            split=self._split,
            record_id=record_id,
        )
        self.records.append(record)
        return record

    def reject(self, origin: str, reason: str, raw: str = "") -> None:
        self.quarantine.append(Quarantined(self._source, origin, reason, raw))

    def result(self, schema: LabelSchema, files: list[str]) -> ReadResult:
        return ReadResult(
            records=self.records,
            quarantine=self.quarantine,
            schema=schema,
            files=files,
            duplicates=self.duplicates,
        )
