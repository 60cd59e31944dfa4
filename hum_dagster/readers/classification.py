"""Text classification from CSV (``csv``) or JSON lines / JSON array (``jsonl``).

Options: ``text_column`` (default ``text``), ``label_column`` (default ``label``),
``labels: [...]`` (the allowed labels; a record with another label is quarantined;
without it the labels are mined from the data), ``filter: {column: value}`` (keep
only matching rows, e.g. IMDB's ``is_valid: false``) and, for CSV, ``delimiter``.
CSV fields may be quoted and span several lines; a record's origin is the line it
starts on.
"""

from __future__ import annotations

import csv
from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    Collector,
    base_name,
    gc_paused,
    iter_json_items,
    open_source,
    option_error,
    raw_json,
    str_list_option,
    str_option,
)
from hum_dagster.records import LabelSchema, ReadResult, SourceError

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


def _label_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


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

    def schema(self) -> LabelSchema:
        return LabelSchema(types=list(self.allowed) if self.allowed else sorted(self.found))


@register("csv")
@gc_paused
def read_csv(entry) -> ReadResult:
    path = entry.resolve()
    name = base_name(path)
    text_col = str_option(entry, "text_column", "text")
    label_col = str_option(entry, "label_column", "label")
    delimiter = str_option(entry, "delimiter", ",")
    filters = _filters(entry)
    labels = _Labels(entry)
    out = Collector(entry)
    with open_source(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(path, "empty CSV file, expected a header line") from None
        except csv.Error as exc:
            raise SourceError(path, f"invalid CSV header: {exc}", 1) from exc
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        columns = {col: i for i, col in enumerate(header)}
        for col in (text_col, label_col, *(c for c, _ in filters)):
            if col not in columns:
                raise SourceError(path, f"no column {col!r}; the header has {header}", 1)
        text_i, label_i = columns[text_col], columns[label_col]
        filter_i = [(columns[c], match) for c, match in filters]
        width = len(header)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise SourceError(path, f"invalid CSV: {exc}", start) from exc
            if not row:
                continue
            origin = f"{name}:{start}"
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


@register("jsonl")
@gc_paused
def read_jsonl(entry) -> ReadResult:
    path = entry.resolve()
    text_col = str_option(entry, "text_column", "text")
    label_col = str_option(entry, "label_column", "label")
    filters = _filters(entry)
    labels = _Labels(entry)
    out = Collector(entry)
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
        label = _label_text(obj.get(label_col))
        problem = labels.check(label)
        if problem is not None:
            out.reject(origin, problem, raw or raw_json(obj))
            continue
        if out.add(text, {"label": label}, origin, raw) is not None:
            labels.found.add(label)
    return out.result(labels.schema(), [path])
