"""Text classification from CSV (``csv``) or JSON lines / JSON array (``jsonl``).

Options: ``text_column`` (default ``text``), ``label_column`` (default ``label``),
``labels: [...]`` (the allowed labels; a record with another label is quarantined;
without it the labels are mined from the data), ``filter: {column: value}`` (keep
only matching rows, e.g. IMDB's ``is_valid: false``) and, for CSV, ``delimiter``.
CSV fields may be quoted and span several lines; a record's origin is the line it
starts on. A quote that is never closed is detected (the field would swallow the
records after it): that row is quarantined and the lines after it are read again. The
header must not repeat a column. A JSON label must be a string (``["正面"]``, ``1``
and ``true`` are not labels); option ``label_map`` (e.g. ``{0: negative, 1: positive}``)
names non-string label values.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    Collector,
    base_name,
    gc_paused,
    iter_json_items,
    json_type,
    open_source,
    option_error,
    raw_json,
    str_list_option,
    str_option,
)
from hum_dagster.records import TC, LabelSchema, ReadResult, SourceError

_TRUE = frozenset({"true", "1", "yes", "y", "t"})


def _matcher(value: Any):
    """A predicate on a cell (string or JSON value) for a ``filter`` value."""
    if isinstance(value, bool):
        return lambda cell: (
            (cell if isinstance(cell, bool) else str(cell).strip().lower() in _TRUE) == value
        )
    if value is None:
        return lambda cell: cell is None or cell == ""
    wanted = str(value)
    return lambda cell: str(cell) == wanted


def _filters(entry) -> list[tuple[str, Any]]:
    spec = entry.option("filter") or {}
    if not isinstance(spec, dict):
        raise option_error(entry, "option 'filter' must be a mapping of column to value")
    return [(str(col), _matcher(val)) for col, val in spec.items()]


def _label_map(entry) -> list[tuple[Any, str]] | None:
    """Option ``label_map``: JSON label values that are not strings -> class names."""
    spec = entry.option("label_map")
    if spec is None:
        return None
    if not isinstance(spec, dict) or not spec:
        raise option_error(entry, "option 'label_map' must be a mapping of label value to name")
    out = []
    for key, name in spec.items():
        if not isinstance(name, str) or not name.strip():
            raise option_error(entry, f"option 'label_map': {key!r} must map to a label name")
        out.append((key, name))
    return out


def _json_label(value: Any, mapping: list[tuple[Any, str]] | None) -> tuple[str | None, str | None]:
    """(label, problem) for a JSON label value: a string, or a value ``label_map`` names."""
    if isinstance(value, str):
        return value.strip(), None
    if mapping is not None:
        for key, name in mapping:
            if type(key) is type(value) and key == value:
                return name, None
    if value is None:
        return None, "empty label"
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    hint = "" if mapping is None else " and not in option 'label_map'"
    return None, f"label must be a string, got {json_type(value)} {shown}{hint}"


class _Labels:
    def __init__(self, entry):
        self.allowed = str_list_option(entry, "labels")
        self._allowed = set(self.allowed) if self.allowed is not None else None
        self.found: set[str] = set()

    def check(self, label: str) -> str | None:
        if not label:
            return "empty label"
        if self._allowed is not None and label not in self._allowed:
            return f"unknown label {label!r}"
        return None

    def declared(self) -> LabelSchema | None:
        return LabelSchema(types=list(self.allowed)) if self.allowed else None

    def schema(self) -> LabelSchema:
        return LabelSchema(types=list(self.allowed) if self.allowed else sorted(self.found))


class _Lines:
    """The physical lines a ``csv.reader`` reads, remembering those of the current row;
    lines put back in ``pending`` are read again (to re-read after an unclosed quote)."""

    __slots__ = ("handle", "pending", "current")

    def __init__(self, handle):
        self.handle = handle
        self.pending: deque[str] = deque()
        self.current: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.pending.popleft() if self.pending else next(self.handle)
        self.current.append(line)
        return line


def _looks_like_row(line: str, delimiter: str, width: int, label_i: int, text_i: int,
                    known: set[str]) -> bool:  # fmt: skip
    """Whether one physical line reads as a complete record of this file on its own."""
    if line.count('"') % 2:
        return False
    try:
        fields = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return False
    if len(fields) != width or not fields[text_i].strip():
        return False
    label = fields[label_i].strip()
    return label in known if known else bool(label) and len(label) <= 40


@register("csv", tasks=(TC,))
@gc_paused
def read_csv(entry) -> ReadResult:
    path = entry.resolve()
    name = base_name(path)
    text_col = str_option(entry, "text_column", "text")
    label_col = str_option(entry, "label_column", "label")
    delimiter = str_option(entry, "delimiter", ",")
    if len(delimiter) != 1:
        raise option_error(entry, f"option 'delimiter' must be one character, got {delimiter!r}")
    filters = _filters(entry)
    labels = _Labels(entry)
    out = Collector(entry, declared=labels.declared())
    with open_source(path) as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(path, "empty CSV file, expected a header line") from None
        except csv.Error as exc:
            raise SourceError(path, f"invalid CSV header: {exc}", 1) from exc
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        if len(lines.current) > 1:
            raise SourceError(path, "the header line opens a quote it never closes", 1)
        repeated = next((c for i, c in enumerate(header) if c and c in header[:i]), None)
        if repeated is not None:
            raise SourceError(path, f"the header repeats the column {repeated!r}", 1)
        columns = {col: i for i, col in enumerate(header)}
        for col in (text_col, label_col, *(c for c, _ in filters)):
            if col not in columns:
                raise SourceError(path, f"no column {col!r}; the header has {header}", 1)
        text_i, label_i = columns[text_col], columns[label_col]
        filter_i = [(columns[c], match) for c, match in filters]
        width = len(header)
        known = set(labels.allowed or ())
        consumed = len(lines.current)  # physical lines read so far
        while True:
            lines.current = []
            start = consumed + 1
            origin = f"{name}:{start}"
            try:
                row = next(reader)
                error = None
            except StopIteration:
                break
            except csv.Error as exc:
                row, error = None, f"invalid CSV: {exc}"
            physical = lines.current
            consumed += len(physical)
            if error is None and len(physical) > 1:
                # A quoted field over several lines: legitimate, unless a quote was never
                # closed and the field swallowed the records after it.
                runaway = sum(line.count('"') for line in physical) % 2 == 1
                swallowed = next(
                    (
                        i
                        for i in range(1, len(physical))
                        if _looks_like_row(
                            physical[i], delimiter, width, label_i, text_i, known or labels.found
                        )
                    ),
                    None,
                )
                if swallowed is not None:
                    error = (
                        f"unclosed quote: the field opened on line {start} runs into line "
                        f"{start + swallowed}, which reads as a record of its own"
                    )
                elif runaway:
                    error = f"unclosed quote: the field opened on line {start} runs to the end of the file"
            if error is not None:
                # Quarantine the row of the first line; read the lines after it again.
                out.reject(origin, error, physical[0].rstrip("\r\n") if physical else "")
                lines.pending.extendleft(reversed(physical[1:]))
                consumed = start
                reader = csv.reader(lines, delimiter=delimiter)
                continue
            if not row:
                continue
            if len(row) != width:
                out.reject(origin, f"expected {width} columns, got {len(row)}", delimiter.join(row))
                continue
            if filter_i and not all(match(row[i]) for i, match in filter_i):
                continue
            label = row[label_i].strip()
            problem = labels.check(label)
            if problem is not None:
                out.reject(origin, problem, delimiter.join(row))
                continue
            if out.add(row[text_i], {"label": label}, origin, delimiter.join(row)) is not None:
                labels.found.add(label)
    return out.result(labels.schema(), [path])


@register("jsonl", tasks=(TC,))
@gc_paused
def read_jsonl(entry) -> ReadResult:
    path = entry.resolve()
    text_col = str_option(entry, "text_column", "text")
    label_col = str_option(entry, "label_column", "label")
    filters = _filters(entry)
    labels = _Labels(entry)
    mapping = _label_map(entry)
    out = Collector(entry, declared=labels.declared())
    for origin, raw, obj, error in iter_json_items(path):
        if error is not None:
            out.reject(origin, error, raw)
            continue
        if filters and not all(match(obj.get(col)) for col, match in filters):
            continue
        text = obj.get(text_col)
        if not isinstance(text, str):
            out.reject(origin, f"missing text field {text_col!r}", raw or raw_json(obj))
            continue
        label, problem = _json_label(obj.get(label_col), mapping)
        if problem is None:
            problem = labels.check(label)
        if problem is not None:
            out.reject(origin, problem, raw or raw_json(obj))
            continue
        if out.add(text, {"label": label}, origin, raw) is not None:
            labels.found.add(label)
    return out.result(labels.schema(), [path])
