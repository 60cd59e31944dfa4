"""IEPile raw JSON-lines data (NER, RE, SPO, EE, KGE) and IEPile's schema files.

Line shapes, by the entry's task:

- NER: ``{"text", "entity": [{"entity", "entity_type"}]}``
- RE:  ``{"text", "relation": [{"head", "relation", "tail"}]}``
- SPO: as RE, each relation also with ``head_type`` and ``tail_type``
- EE:  ``{"text", "event": [{"event_trigger", "event_type", "arguments": [{"argument", "role"}]}]}``
- KGE: as RE; the entity type is the first key of the schema's type-to-roles map
  (or option ``entity_type``)

The text is kept exactly as written and records stay in file order. Identical
entities (text, type) and identical relations are de-duplicated, first occurrence
wins, as IEPile does. An entity that does not occur in the text is quarantined
(option ``missing_spans: keep``, for dev/test splits only, keeps it with ``start: null``
so that a benchmark is scored on its full gold). Every record then passes the shared
rules of ``readers.validate`` (heads, tails, triggers and arguments occur in the text;
labels belong to the schema file when there is one).

Option ``schema``: IEPile's three-line schema file (types, roles, type-to-roles),
relative to the catalog. With it, labels outside the schema are quarantined (an SPO
``head_type``/``tail_type`` pair outside the schema's ``type_relation_type`` list
included); without it, the schema is mined from the data.
"""

from __future__ import annotations

import json
from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    Collector,
    gc_paused,
    iter_json_items,
    iter_lines,
    json_type,
    open_source,
    option_error,
    parse_json,
    raw_json,
    repeated_key,
    repeated_key_reason,
)
from hum_dagster.readers.validate import bad_char, label_problem
from hum_dagster.records import EE, KGE, NER, RE, SPO, LabelSchema, ReadResult, SourceError

TASKS = (NER, RE, SPO, EE, KGE)
_RE_KEYS = ("head", "relation", "tail")
_SPO_KEYS = ("head", "head_type", "relation", "tail", "tail_type")


def read_iepile_schema(path: str) -> LabelSchema:
    """Read IEPile's schema file: a JSON list of types, a list of roles, a type-to-roles map.

    Missing trailing lines mean empty; anything else raises ``SourceError`` naming
    the file and the line.
    """
    values: list[tuple[int, Any]] = []
    with open_source(path) as handle:
        for lineno, line in iter_lines(handle):
            if not line.strip():
                continue
            if len(values) == 3:
                raise SourceError(path, "schema has more than three JSON lines", lineno)
            try:
                value = parse_json(line)
            except json.JSONDecodeError as exc:
                raise SourceError(path, f"invalid JSON in schema: {exc.msg}", lineno) from exc
            except RecursionError as exc:
                raise SourceError(path, "invalid JSON in schema: nested too deeply", lineno) from exc
            key = repeated_key(value)
            if key is not None:
                raise SourceError(path, f"schema {repeated_key_reason(key)}", lineno)
            values.append((lineno, value))
    if not values:
        raise SourceError(path, "empty schema file")
    what = ("types", "roles", "type-to-roles map")
    for index, (lineno, value) in enumerate(values):
        if index < 2:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SourceError(
                    path, f"schema {what[index]} must be a JSON list of strings", lineno
                )
        elif not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
        ):
            raise SourceError(path, f"schema {what[index]} must be a JSON object of lists", lineno)
    for lineno, value in values:
        labels = [*value, *(x for v in value.values() for x in v)] if isinstance(value, dict) else value
        for label in labels:
            if not label.strip():
                raise SourceError(path, f"schema label {label!r} is empty", lineno)
            problem = bad_char(label)
            if problem is not None:
                raise SourceError(path, f"schema label {label!r} contains {problem}", lineno)
            problem = label_problem(label)
            if problem is not None:
                raise SourceError(path, f"schema label {label!r} {problem}", lineno)
    padded = [v for _, v in values] + [[], [], {}][len(values) :]
    return LabelSchema(
        types=list(padded[0]),
        roles=list(padded[1]),
        type_roles={str(k): list(v) for k, v in padded[2].items()},
    )


def _text_list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise _Bad(f"missing field '{key}'" if value is None else f"field '{key}' must be a list")
    return value


class RecordRejected(ValueError):
    """A per-record problem; the message is the quarantine reason."""


_Bad = RecordRejected


def _field(item: Any, key: str, what: str) -> str:
    if not isinstance(item, dict):
        raise _Bad(f"{what} must be a JSON object, got {json_type(item)}")
    value = item.get(key)
    if not isinstance(value, str):
        raise _Bad(
            f"{what} without '{key}'" if value is None else f"{what} '{key}' is not a string"
        )
    return value


def _ner_gold(
    text: str, obj: dict[str, Any], keep_missing: bool, types: set[str] | None
) -> dict[str, Any]:
    entities = []
    seen: set[tuple[str, str]] = set()
    for item in _text_list(obj, "entity"):
        mention = _field(item, "entity", "entity")
        etype = _field(item, "entity_type", "entity")
        if (mention, etype) in seen:
            continue
        seen.add((mention, etype))
        if types is not None and etype not in types:
            raise _Bad(f"unknown entity type {etype!r}")
        start = text.find(mention) if mention else -1
        if start < 0:
            if not keep_missing:
                raise _Bad(f"entity {mention!r} not found in text")
            entities.append({"text": mention, "type": etype, "start": None})
        else:
            entities.append({"text": mention, "type": etype, "start": start})
    return {"entities": entities}


def _relations(obj: dict[str, Any], with_types: bool, roles: set[str] | None) -> list[dict]:
    keys = _SPO_KEYS if with_types else _RE_KEYS
    out: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for item in _text_list(obj, "relation"):
        values = tuple(_field(item, key, "relation") for key in keys)
        if values in seen:
            continue
        seen.add(values)
        rel = dict(zip(keys, values, strict=True))
        if roles is not None and rel["relation"] not in roles:
            raise _Bad(f"unknown relation {rel['relation']!r}")
        out.append(rel)
    return out


def _events(
    obj: dict[str, Any], types: set[str] | None, type_roles: dict[str, list[str]] | None
) -> list[dict[str, Any]]:
    events = []
    for item in _text_list(obj, "event"):
        trigger = _field(item, "event_trigger", "event")
        etype = _field(item, "event_type", "event")
        if types is not None and etype not in types:
            raise _Bad(f"unknown event type {etype!r}")
        raw_args = item.get("arguments")
        if raw_args is None:
            raw_args = []
        elif not isinstance(raw_args, list):
            raise _Bad(f"event 'arguments' must be a list, got {json_type(raw_args)}")
        allowed = type_roles.get(etype) if type_roles else None
        arguments = []
        for arg in raw_args:
            role = _field(arg, "role", "argument")
            value = _field(arg, "argument", "argument")
            if allowed is not None and role not in allowed:
                raise _Bad(f"unknown role {role!r} for event type {etype!r}")
            arguments.append({"role": role, "argument": value})
        events.append({"event_type": etype, "trigger": trigger, "arguments": arguments})
    return events


class IepileSource:
    """What ``read_iepile`` knows before the first record: the task, the schema file (if
    any), the options; ``gold`` turns one parsed JSON object into the record's text and
    gold exactly as the reader does (``hum convert`` calls it line by line in its
    workers)."""

    __slots__ = (
        "task", "schema", "files", "keep_missing", "entity_type", "types", "roles",
        "type_roles",
    )  # fmt: skip

    def __init__(self, entry):
        task = entry.task
        if task not in TASKS:
            raise option_error(entry, f"format 'iepile' reads tasks {list(TASKS)}, not {task!r}")
        self.task = task
        path = entry.resolve()
        self.files = [path]
        schema: LabelSchema | None = None
        schema_option = entry.option("schema")
        if schema_option is not None:
            if not isinstance(schema_option, str) or not schema_option:
                raise option_error(entry, "option 'schema' must be a path")
            schema_path = entry.resolve(schema_option)
            schema = read_iepile_schema(schema_path)
            self.files.append(schema_path)
            if task == SPO:
                _check_spo_schema(schema, schema_path)
        self.schema = schema
        missing_spans = entry.option("missing_spans", "quarantine")
        if missing_spans not in ("quarantine", "keep"):
            raise option_error(entry, "option 'missing_spans' must be 'quarantine' or 'keep'")
        self.keep_missing = keep_missing = missing_spans == "keep"
        if keep_missing and entry.split == "train":
            raise option_error(
                entry,
                "option 'missing_spans: keep' is for dev/test splits only: a training row must "
                "never name a span that is not in its input",
            )
        entity_type = entry.option("entity_type")
        if task == KGE and entity_type is None:
            if schema is None or not schema.type_roles:
                raise option_error(
                    entry,
                    "KGE needs option 'schema' with a type-to-roles line or option 'entity_type'",
                )
            entity_type = next(iter(schema.type_roles))
        if task == KGE and (not isinstance(entity_type, str) or not entity_type):
            raise option_error(entry, "option 'entity_type' must be a non-empty string")
        self.entity_type = entity_type
        self.types = set(schema.types) if schema is not None and schema.types else None
        self.roles = set(schema.roles) if schema is not None and schema.roles else None
        self.type_roles = schema.type_roles if schema is not None and schema.type_roles else None

    def gold(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The text and gold of one JSON object; ``RecordRejected`` with the reason."""
        text = obj.get("text")
        if not isinstance(text, str):
            raise RecordRejected(
                "missing field 'text'" if text is None else "field 'text' is not a string"
            )
        task = self.task
        if task == NER:
            gold = _ner_gold(text, obj, self.keep_missing, self.types)
        elif task == RE:
            gold = {"relations": _relations(obj, False, self.roles)}
        elif task == SPO:
            gold = {"relations": _relations(obj, True, self.roles)}
        elif task == EE:
            gold = {"events": _events(obj, self.types, self.type_roles)}
        else:
            gold = {
                "entity_type": self.entity_type,
                "relations": _relations(obj, False, self.roles),
            }
        return text, gold

    def mined_schema(self, types: set[str], roles: dict[str, set[str]]) -> LabelSchema:
        return _mined_schema(self.task, types, roles, self.entity_type)


def _check_spo_schema(schema: LabelSchema, schema_path: str) -> None:
    bad = next((t for t in schema.types if len(t.split("_")) < 3), None)
    if bad is not None:
        raise SourceError(
            schema_path, f"SPO schema type {bad!r} is not head_type_relation_tail_type", 1
        )
    for spo in schema.types:
        parts = spo.split("_")
        for part in (parts[0], "_".join(parts[1:-1]), parts[-1]):
            problem = "is empty" if not part else label_problem(part)
            if problem is not None:
                raise SourceError(
                    schema_path, f"SPO schema type {spo!r}: the part {part!r} {problem}", 1
                )


@register("iepile", tasks=TASKS)
@gc_paused
def read_iepile(entry) -> ReadResult:
    source = IepileSource(entry)
    schema = source.schema
    out = Collector(entry, declared=schema, unplaced=source.keep_missing)
    mined_types: set[str] = set()
    mined_roles: dict[str, set[str]] = {}
    for origin, raw, obj, error in iter_json_items(source.files[0]):
        if error is not None:
            out.reject(origin, error, raw)
            continue
        try:
            text, gold = source.gold(obj)
        except RecordRejected as exc:
            out.reject(origin, str(exc), raw or raw_json(obj))
            continue
        if out.add(text, gold, origin, raw) is None or schema is not None:
            continue
        mine_labels(source.task, gold, mined_types, mined_roles)

    if schema is None:
        schema = source.mined_schema(mined_types, mined_roles)
    return out.result(schema, source.files)


def mine_labels(task: str, gold: dict[str, Any], types: set[str], roles: dict[str, set[str]]) -> None:
    if task == NER:
        for entity in gold["entities"]:
            types.add(entity["type"])
    elif task == EE:
        for event in gold["events"]:
            bucket = roles.setdefault(event["event_type"], set())
            for arg in event["arguments"]:
                bucket.add(arg["role"])
    else:
        bucket = roles.setdefault("", set())
        for rel in gold["relations"]:
            bucket.add(rel["relation"])
            if task == SPO:
                types.add(f"{rel['head_type']}_{rel['relation']}_{rel['tail_type']}")


def _mined_schema(
    task: str, types: set[str], roles: dict[str, set[str]], entity_type: str | None
) -> LabelSchema:
    if task == NER:
        return LabelSchema(types=sorted(types))
    if task == EE:
        all_roles = sorted(set().union(*roles.values())) if roles else []
        return LabelSchema(
            types=sorted(roles),
            roles=all_roles,
            type_roles={k: sorted(v) for k, v in sorted(roles.items())},
        )
    relations = sorted(roles.get("", set()))
    if task == SPO:
        return LabelSchema(types=sorted(types), roles=relations)
    if task == KGE:
        return LabelSchema(
            types=[str(entity_type)], roles=relations, type_roles={str(entity_type): relations}
        )
    return LabelSchema(roles=relations)
