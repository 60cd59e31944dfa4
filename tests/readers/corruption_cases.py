"""Corruptions of the shipped sample sources, and the oracle that judges each outcome.

A case copies one shipped sample source (with its schema or pid2name file) into a
temporary folder, corrupts the data file one way (``CORRUPTIONS``), reads it with the
catalog entry's own options and sorts the result into one of three outcomes:

- ``error``: a ``SourceError`` whose one-line message names the corrupted file;
- ``quarantine``: the source was read, and at least one record was quarantined (by the
  reader or by basic synthesis) with its origin and a reason;
- ``accepted``: every record came through.

In the last two, every record that came through must pass the oracle below (written
apart from ``readers.validate``: spans at their place, labels of the *uncorrupted*
schema, JSON types, conversations) and every basic instruction made from them, in
train and test mode, must pass ``validate_basic_row`` (outputs parse with their own
labels, spans occur in the input). Any other exception fails the case.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import CatalogEntry, load_catalog
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.readers.iepile import read_iepile_schema
from hum_dagster.records import SourceError, canonical_json
from hum_dagster.synthesis.basic import (
    BasicConfig,
    SynthesisReport,
    synthesize_basic,
    validate_basic_row,
)

SAMPLE_ENTRIES: dict[str, CatalogEntry] = {
    e.name: e for e in load_catalog(ASSETS_DIR / "catalog.yaml")
}
CONFIGS = {mode: BasicConfig(mode=mode) for mode in ("train", "test")}
JSON_FORMATS = ("iepile", "fewrel", "c3", "squad", "jsonl", "alpaca", "sharegpt")
LINE_DELIMITERS = {"conll": "\t", "carb": "\t", "csv": ","}
_C0 = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

CONTROL_CHARS = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85",
                 "\u2028", "\ufeff", "\r", "\t"]  # fmt: skip
INVALID_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
ENCODINGS = ["latin-1", "cp1252", "gb18030", "utf-16", "utf-16-be", "utf-8-sig", "shift_jis"]
STRUCTURAL = ['"', "{", "}", "[", "]", ",", ":", "\t", " ", "\\", "\n", "'"]
VALUE_POOL: list[Any] = [None, True, False, 0, 1, -1, 1.0, 2.5, "", " ", "false", "true", "0",
                         [], {}, ["x"], {"x": 1}, "未知", "unknown", "PER", "\u3000",
                         "a\x07b", "\ud800"]  # fmt: skip
LABEL_POOL = ["未知类型", "unknown", "Person", "person ", "B-person", "人物_x", "x_y_z",
              "PER", "negative", "正面", "", "O"]  # fmt: skip
LABEL_KEYS = {"entity_type", "event_type", "role", "relation", "head_type", "tail_type",
              "label", "from", "answer"}  # fmt: skip
TAG_POOL = ["B-person", "I-person", "E-person", "S-person", "O", "X-person", "B-", "b-person",
            "I-location", "B-unknown", "B-人物", "M-地点", "E-组织机构", "S-地点", "I", "-"]  # fmt: skip
FIELD_POOL = ["", " ", "T:", "L: ", "C: he said", "X: y", "T: in 1902", "neutral", "Positive",
              "positive", '"', '"quoted', "a,b", "\t"]  # fmt: skip


# --------------------------------------------------------------------------- corruptions


def _lines(text: str) -> list[str]:
    return text.split("\n")


def truncate(data: bytes, draw) -> tuple[bytes, str]:
    at = draw("cut", 0, max(len(data) - 1, 0))
    return data[:at], f"cut at byte {at}"


def drop_line(data: bytes, draw) -> tuple[bytes, str]:
    lines = _lines(data.decode("utf-8"))
    i = draw("line", 0, len(lines) - 1)
    del lines[i]
    return "\n".join(lines).encode("utf-8"), f"line {i + 1} removed"


def duplicate_line(data: bytes, draw) -> tuple[bytes, str]:
    lines = _lines(data.decode("utf-8"))
    i, j = draw("line", 0, len(lines) - 1), draw("to", 0, len(lines))
    lines.insert(j, lines[i])
    return "\n".join(lines).encode("utf-8"), f"line {i + 1} repeated before line {j + 1}"


def swap_lines(data: bytes, draw) -> tuple[bytes, str]:
    lines = _lines(data.decode("utf-8"))
    i, j = draw("line", 0, len(lines) - 1), draw("other", 0, len(lines) - 1)
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines).encode("utf-8"), f"lines {i + 1} and {j + 1} swapped"


def control_char(data: bytes, draw) -> tuple[bytes, str]:
    text = data.decode("utf-8")
    char = CONTROL_CHARS[draw("char", 0, len(CONTROL_CHARS) - 1)]
    at = draw("at", 0, len(text))
    return (text[:at] + char + text[at:]).encode("utf-8"), f"U+{ord(char):04X} at {at}"


def invalid_bytes(data: bytes, draw) -> tuple[bytes, str]:
    bad = INVALID_BYTES[draw("bytes", 0, len(INVALID_BYTES) - 1)]
    at = draw("at", 0, len(data))
    return data[:at] + bad + data[at:], f"{bad!r} at byte {at}"


def encoding(data: bytes, draw) -> tuple[bytes, str]:
    name = ENCODINGS[draw("encoding", 0, len(ENCODINGS) - 1)]
    return data.decode("utf-8").encode(name, errors="replace"), f"saved as {name}"


def line_endings(data: bytes, draw) -> tuple[bytes, str]:
    rng = draw("random")
    parts = data.decode("utf-8").split("\n")
    out = parts[0]
    for part in parts[1:]:
        out += rng.choice(["\n", "\r\n", "\r", "\n\r"]) + part
    return out.encode("utf-8"), "mixed line endings"


def char_edit(data: bytes, draw) -> tuple[bytes, str]:
    text = data.decode("utf-8")
    at = draw("at", 0, max(len(text) - 1, 0))
    if draw("delete", 0, 1) and text:
        return (text[:at] + text[at + 1 :]).encode("utf-8"), f"character {at} {text[at]!r} deleted"
    char = STRUCTURAL[draw("char", 0, len(STRUCTURAL) - 1)]
    return (text[:at] + char + text[at:]).encode("utf-8"), f"{char!r} inserted at {at}"


def blank_lines(data: bytes, draw) -> tuple[bytes, str]:
    lines = _lines(data.decode("utf-8"))
    at = draw("at", 0, len(lines))
    blank = ["", " ", "\t", "   \t "][draw("blank", 0, 3)]
    lines.insert(at, blank)
    return "\n".join(lines).encode("utf-8"), f"blank line {blank!r} before line {at + 1}"


def bom(data: bytes, draw) -> tuple[bytes, str]:
    at = 0 if draw("start", 0, 1) else draw("at", 0, len(data))
    return data[:at] + b"\xef\xbb\xbf" + data[at:], f"BOM at byte {at}"


# ----------------------------------------------------------------- JSON-structure edits


def _records(text: str, fmt: str) -> tuple[list[Any], bool]:
    """(records, one-per-line?) of a JSON sample."""
    if fmt in ("iepile", "jsonl", "sharegpt"):
        return [json.loads(line) for line in text.splitlines() if line.strip()], True
    return [json.loads(text)], False


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*prefix, i)))
    return out


def _get(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    _get(value, path[:-1])[path[-1]] = new
    return value


def _json(value: Any, **kwargs) -> str:
    """JSON text that is always UTF-8 encodable (a lone surrogate stays an escape)."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, **kwargs)
    return text


def _dump(value: Any, repeat: tuple[int, str, Any] | None = None) -> str:
    """JSON text; ``repeat`` = (id of a dict, key, value) writes that key a second time."""
    if isinstance(value, dict):
        parts = [f"{json.dumps(k, ensure_ascii=False)}: {_dump(v, repeat)}" for k, v in value.items()]
        if repeat is not None and id(value) == repeat[0]:
            parts.append(f"{json.dumps(repeat[1], ensure_ascii=False)}: {_dump(repeat[2])}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v, repeat) for v in value) + "]"
    return _json(value)


def _texts(value: Any) -> list[str]:
    return [v for p in _paths(value) if isinstance(v := _get(value, p), str) and len(v) > 3]


def json_edit(data: bytes, draw, fmt: str) -> tuple[bytes, str]:
    records, per_line = _records(data.decode("utf-8"), fmt)
    r = draw("record", 0, len(records) - 1)
    record = records[r]
    paths = _paths(record)
    path = paths[draw("path", 0, len(paths) - 1)]
    old = _get(record, path)
    kind = ["value", "delete_key", "add_key", "repeat_key", "span_shift", "label", "number",
            "list"][draw("edit", 0, 7)]  # fmt: skip
    repeat = None
    if kind == "value":
        record = _set(record, path, VALUE_POOL[draw("value", 0, len(VALUE_POOL) - 1)])
    elif kind in ("delete_key", "add_key", "repeat_key"):
        dicts = [p for p in paths if isinstance(_get(record, p), dict) and _get(record, p)]
        if not dicts:
            return data, "no object to edit"
        target = _get(record, dicts[draw("dict", 0, len(dicts) - 1)])
        keys = list(target)
        key = keys[draw("key", 0, len(keys) - 1)]
        if kind == "delete_key":
            del target[key]
        elif kind == "add_key":
            target[["extra", "text", "start", "label", "notes"][draw("new", 0, 4)]] = "x"
        else:
            repeat = (id(target), key, VALUE_POOL[draw("value", 0, len(VALUE_POOL) - 1)])
        path = (key,)
    elif kind == "span_shift":
        strings = _texts(record)
        if isinstance(old, str) and strings:
            source = strings[draw("from", 0, len(strings) - 1)]
            start = draw("start", 0, len(source) - 1)
            length = draw("length", 1, 8)
            record = _set(record, path, source[start : start + length])
        elif isinstance(old, str):
            record = _set(record, path, old[::-1])
    elif kind == "label":
        label_paths = [p for p in paths if p and p[-1] in LABEL_KEYS]
        if label_paths:
            path = label_paths[draw("label_path", 0, len(label_paths) - 1)]
            record = _set(record, path, LABEL_POOL[draw("label", 0, len(LABEL_POOL) - 1)])
    elif kind == "number":
        numbers = [p for p in paths if type(_get(record, p)) is int]
        if numbers:
            path = numbers[draw("number", 0, len(numbers) - 1)]
            value = _get(record, path)
            record = _set(record, path, [value - 1, value + 1, value + 100, -value - 1,
                                         float(value), bool(value), str(value)][draw("op", 0, 6)])
    else:
        lists = [p for p in paths if isinstance(_get(record, p), list) and _get(record, p)]
        if lists:
            path = lists[draw("list", 0, len(lists) - 1)]
            items = _get(record, path)
            op = draw("op", 0, 4)
            new = [items[::-1], [], items + items[:1], items[1:], [items]][op]
            record = _set(record, path, new)
    records[r] = record
    if per_line:
        text = "".join(_dump(x, repeat) + "\n" for x in records)
    else:
        text = _dump(records[0], repeat) if repeat else _json(records[0], indent=1)
    return text.encode("utf-8"), f"record {r}: {kind} at {list(path)}"


def field_edit(data: bytes, draw, fmt: str) -> tuple[bytes, str]:
    delimiter = LINE_DELIMITERS[fmt]
    lines = _lines(data.decode("utf-8"))
    candidates = [i for i, line in enumerate(lines) if line.strip()]
    i = candidates[draw("line", 0, len(candidates) - 1)]
    fields = lines[i].split(delimiter)
    f = draw("field", 0, len(fields) - 1)
    op = draw("op", 0, 5)
    pool = TAG_POOL if fmt == "conll" else FIELD_POOL
    if op == 0:
        fields[f] = ""
    elif op == 1:
        fields[f] = pool[draw("value", 0, len(pool) - 1)]
    elif op == 2:
        del fields[f]
    elif op == 3:
        fields.insert(f, fields[f])
    elif op == 4:
        fields.append("")
    else:
        fields[f] = fields[f][::-1]
    lines[i] = delimiter.join(fields)
    return "\n".join(lines).encode("utf-8"), f"line {i + 1} field {f + 1}: op {op}"


TEXT_CORRUPTIONS = {
    "truncate": truncate,
    "drop_line": drop_line,
    "duplicate_line": duplicate_line,
    "swap_lines": swap_lines,
    "control_char": control_char,
    "invalid_bytes": invalid_bytes,
    "encoding": encoding,
    "line_endings": line_endings,
    "char_edit": char_edit,
    "blank_lines": blank_lines,
    "bom": bom,
}


def corruptions_for(fmt: str) -> list[str]:
    names = list(TEXT_CORRUPTIONS)
    if fmt in JSON_FORMATS:
        names += ["json_edit"] * 4  # the structural edits are the richest: drawn more often
    if fmt in LINE_DELIMITERS:
        names += ["field_edit"] * 3
    return names


def corrupt(name: str, data: bytes, draw, fmt: str) -> tuple[bytes, str]:
    if name == "json_edit":
        return json_edit(data, draw, fmt)
    if name == "field_edit":
        return field_edit(data, draw, fmt)
    return TEXT_CORRUPTIONS[name](data, draw)


# --------------------------------------------------------------------------- the oracle


@dataclass
class Outcome:
    kind: str  # "error" | "quarantine" | "accepted"
    detail: str = ""
    records: int = 0
    quarantined: int = 0
    rows: int = 0
    error_has_line: bool = False
    reasons: list[str] = field(default_factory=list)


def copy_source(name: str, folder: Path) -> tuple[CatalogEntry, Path]:
    """The sample source ``name`` copied into ``folder``: (its entry there, data file)."""
    entry = SAMPLE_ENTRIES[name]
    main = Path(entry.resolve())
    shutil.copy(main, folder / main.name)
    options = dict(entry.options)
    for key in ("schema", "pid2name"):
        if key in options:
            side = Path(entry.resolve(options[key]))
            shutil.copy(side, folder / side.name)
            options[key] = str(folder / side.name)
    copied = CatalogEntry(name=entry.name, task=entry.task, language=entry.language,
                          format=entry.format, location=str(folder / main.name),
                          split=entry.split, options=options)  # fmt: skip
    return copied, folder / main.name


def side_files(entry: CatalogEntry) -> list[tuple[Path, str]]:
    """The schema or pid2name file of a copied entry, each with the format to corrupt it
    as (a schema file is JSON lines like IEPile data; pid2name one JSON object)."""
    out = []
    if "schema" in entry.options:
        out.append((Path(entry.options["schema"]), "iepile"))
    if "pid2name" in entry.options:
        out.append((Path(entry.options["pid2name"]), "fewrel"))
    return out


def _declared(entry: CatalogEntry) -> dict[str, Any]:
    """The labels the source declares: the catalog's ``labels`` and the schema or
    pid2name file as it is now (the sample's own unless the case corrupted that file)."""
    out: dict[str, Any] = {}
    if "labels" in entry.options:
        out["labels"] = set(entry.options["labels"])
    if "schema" in entry.options:
        schema = read_iepile_schema(entry.options["schema"])
        out.update(types=set(schema.types), roles=set(schema.roles),
                   type_roles={k: set(v) for k, v in schema.type_roles.items()})  # fmt: skip
    if "pid2name" in entry.options:
        names = load_pid2name(entry.options["pid2name"])
        out["relations"] = {name for name, _ in names.values()}
    return out


_LABEL_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")


def _name(value: str, what: str) -> None:
    _clean(value, what)
    assert not _LABEL_CHAR.search(value) and value == value.strip(), f"{what} {value!r}"


def _clean(value: str, what: str) -> None:
    assert isinstance(value, str), f"{what} is not a string: {value!r}"
    assert not _C0.search(value), f"{what} holds a control character: {value!r}"


def check_record(record, declared: dict[str, Any]) -> None:
    """Independent of readers.validate: what a record fit for training must be."""
    text, gold, task = record.text, record.gold, record.task
    _clean(text, "text")
    assert text.strip(), "empty text"
    canonical_json(gold).encode("utf-8")  # storable
    if task == "NER":
        assert set(gold) == {"entities"}
        for ent in gold["entities"]:
            assert type(ent["start"]) is int and ent["start"] >= 0, ent
            assert text[ent["start"] : ent["start"] + len(ent["text"])] == ent["text"], ent
            assert ent["text"].strip(), ent
            _name(ent["type"], "entity type")
            if "labels" in declared:
                assert ent["type"] in declared["labels"], ent
            if "types" in declared and declared["types"]:
                assert ent["type"] in declared["types"], ent
    elif task in ("RE", "SPO", "KGE"):
        for rel in gold["relations"]:
            for key in ("head", "tail", "relation"):
                _clean(rel[key], key)
                assert rel[key].strip(), rel
            _name(rel["relation"], "relation")
            assert rel["head"] in text and rel["tail"] in text, rel
            if declared.get("roles"):
                assert rel["relation"] in declared["roles"], rel
            if "relations" in declared:
                assert rel["relation"] in declared["relations"], rel
            if task == "SPO" and declared.get("types"):
                spo = f"{rel['head_type']}_{rel['relation']}_{rel['tail_type']}"
                assert spo in declared["types"], rel
        if task == "KGE" and declared.get("type_roles"):
            assert gold["entity_type"] in declared["type_roles"]
    elif task == "EE":
        for event in gold["events"]:
            assert event["trigger"] and event["trigger"] in text, event
            if declared.get("type_roles"):
                assert event["event_type"] in declared["type_roles"], event
            for arg in event["arguments"]:
                assert arg["argument"] and arg["argument"] in text, arg
                if declared.get("type_roles"):
                    assert arg["role"] in declared["type_roles"][event["event_type"]], arg
    elif task == "MRC":
        _clean(gold["question"], "question")
        assert all(isinstance(o, str) for o in gold["options"])
        for answer in gold["answers"]:
            assert isinstance(answer, str) and answer
            assert answer in (gold["options"] or text), answer
    elif task == "TC":
        label = gold["label"]
        assert isinstance(label, str) and label.strip(), gold
        _name(label, "label")
        if "labels" in declared:
            assert label in declared["labels"], gold
    elif task == "OpenIE":
        assert gold["triples"]
        for triple in gold["triples"]:
            assert triple["subject"].strip() and triple["predicate"].strip(), triple
            values = [triple["subject"], triple["predicate"], triple["object"], *triple["extra"]]
            assert not [v for v in values if v[:2] in ("T:", "L:", "C:")], triple
    elif task == "IG":
        roles = [t["role"] for t in gold["conversation"] if t["role"] != "system"]
        assert roles and roles[0] == "user" and roles[-1] == "assistant", roles
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), roles
        for turn in gold["conversation"]:
            _clean(turn["content"], "turn")
            assert turn["content"].strip()


def check_schema_labels(row: dict[str, Any]) -> None:
    """Every label an instruction asks about (its schema, negatives included) is a clean
    name; MRC options are text."""
    schema = json.loads(row["schema"])
    strings = [v for p in _paths(schema) if isinstance(v := _get(schema, p), str)]
    keys = [k for p in _paths(schema) for k in ([p[-1]] if p and isinstance(p[-1], str) else [])]
    for value in strings:
        (_clean if row["task"] == "MRC" else _name)(value, f"{row['task']} schema label")
    for key in keys:
        _name(key, "schema key")


def judge(entry: CatalogEntry, data_file: Path) -> Outcome:
    """Read the (corrupted) source and check everything it produced."""
    try:
        result = read_source(entry)
    except SourceError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert exc.reason.strip(), message
        assert str(data_file.parent) in exc.location, message  # names the file
        return Outcome("error", message, error_has_line=exc.line is not None)
    prefix = data_file.name
    for q in result.quarantine:
        assert q.reason.strip() and "\n" not in q.reason, q
        assert q.origin.startswith(prefix + ":") or q.origin.startswith(prefix + "#"), q
    declared = _declared(entry)
    for record in result.records:
        check_record(record, declared)
    rows = 0
    reasons = [q.reason for q in result.quarantine]
    skipped = 0
    for mode, config in CONFIGS.items():
        report = SynthesisReport()
        for row in synthesize_basic(result.records, result.schema, config, report=report):
            problems = validate_basic_row(row)
            assert problems == [], (problems, row)
            check_schema_labels(row)
            rows += 1
        for q in report.quarantined:
            assert q.reason.strip() and "\n" not in q.reason, q
            reasons.append(f"{mode} synthesis: {q.reason}")
        skipped += len(report.quarantined)
    kind = "quarantine" if result.quarantine or skipped else "accepted"
    return Outcome(kind, records=len(result.records), quarantined=len(result.quarantine) + skipped,
                   rows=rows, reasons=reasons)  # fmt: skip


COUNTS: Counter = Counter()
REASONS: Counter = Counter()


def record_outcome(outcome: Outcome) -> None:
    COUNTS["cases"] += 1
    COUNTS[outcome.kind] += 1
    if outcome.kind == "error" and outcome.error_has_line:
        COUNTS["error_with_line"] += 1
    COUNTS["records_accepted"] += outcome.records
    COUNTS["records_quarantined"] += outcome.quarantined
    COUNTS["rows_checked"] += outcome.rows
    for reason in outcome.reasons:
        REASONS[re.sub(r"'[^']*'|\d+", "_", reason)[:60]] += 1


def summary() -> str:
    c = COUNTS
    return (
        f"corruption suite: {c['cases']} cases: {c['error']} clear errors "
        f"({c['error_with_line']} naming the line), {c['quarantine']} with quarantined "
        f"records, {c['accepted']} accepted; {c['records_quarantined']} records quarantined, "
        f"{c['records_accepted']} records accepted, {c['rows_checked']} instructions checked, "
        f"0 breaking a rule"
    )
