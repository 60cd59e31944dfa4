"""Validation where records are read: the same rules for every reader.

Every reader hands each record it builds to :func:`record_problem` (through
``Collector.add``); a record with a problem goes to quarantine with its origin and
the reason, never into instructions. The rules, per source task (shapes in
``records.GOLD_SHAPES``):

- **types**: every field has its declared JSON type: strings are strings (a label is
  never a list, number or boolean), offsets are integers (never booleans), lists are
  lists; no field is missing and none is added;
- **text**: every string (text, spans, labels, turns) is free of C0 control characters
  other than tab, newline and carriage return, of DEL and of lone surrogates (escapes
  that are not Unicode); the text is not empty;
- **spans occur in the text at the stated place**: an NER entity with an offset is the
  text at that offset; RE/SPO/KGE heads and tails, EE triggers and arguments, and
  extractive MRC answers occur in the text; multiple-choice answers are one of the
  options;
- **labels are clean names**: no control character at all (C1 included), no invisible
  format character (zero-width space, BOM, direction marks), no line separator, no
  leading or trailing space;
- **labels belong to the declared schema** when the source declares one (a schema
  file, a ``labels`` option): entity, event and class types, relations, event roles,
  KGE attributes, SPO ``head_type_relation_tail_type`` triples; SPO types never contain
  IEPile's ``_`` separator;
- **conversations** (IG) start with optional system turns, then alternate user and
  assistant turns starting with the user and ending with the assistant; the record
  text is the last user turn.

No Dagster imports; no state: the functions are pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hum_dagster.records import EE, IG, KGE, MRC, NER, OPENIE, RE, SPO, TC, LabelSchema

# C0 control characters except tab, newline and carriage return, DEL, and lone
# surrogates (what a JSON "\ud800" escape decodes to: not encodable as UTF-8). C1
# characters (U+0080-U+009F) are allowed: real datasets carry them as cp1252 remnants
# (31 of the 1,000 IMDB reviews hold U+0085, U+0096 or U+0097).
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BAD_LABEL_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")
OPENIE_ROLES = ("time", "location", "context")
_TRIPLE_KEYS = frozenset({"subject", "predicate", "object", "extra", *OPENIE_ROLES})


class Invalid(ValueError):
    """A rule a record breaks; the message is the quarantine reason."""


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def bad_char(value: str) -> str | None:
    """A description of the first forbidden character in ``value``, or None."""
    found = _BAD_CHAR.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate (not Unicode)" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"{kind} U+{ord(char):04X} at offset {found.start()}"


def _string(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string, got {json_type(value)}")
    if not empty and not value.strip():
        raise Invalid(f"{what} is empty")
    problem = bad_char(value)
    if problem is not None:
        raise Invalid(f"{what} contains {problem}")
    return value


def label_problem(value: str) -> str | None:
    """Why a label (a type, relation, role or class name) is not a clean name, or None.

    Labels are names the model learns to write: beyond the text rules they hold no C1
    control, no invisible format character (zero-width spaces and joiners, direction
    marks, a byte-order mark), no line/paragraph separator and no leading or trailing
    space.
    """
    found = _BAD_LABEL_CHAR.search(value)
    if found is not None:
        return f"contains the control character U+{ord(found.group()):04X}"
    if value != value.strip():
        return "has leading or trailing space"
    return None


def _label(value: Any, what: str) -> str:
    value = _string(value, what)
    problem = label_problem(value)
    if problem is not None:
        raise Invalid(f"{what} {value!r} {problem}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(f"{what} must be a list, got {json_type(value)}")
    return value


def _object(value: Any, what: str, keys: frozenset[str], optional: frozenset[str] = frozenset()):
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be an object, got {json_type(value)}")
    if len(value) == len(keys) and value.keys() >= keys:  # the common case, exactly the keys
        return value
    missing = keys - value.keys()
    if missing:
        raise Invalid(f"{what} has no {', '.join(sorted(missing))}")
    extra = value.keys() - keys - optional
    if extra:
        raise Invalid(f"{what} has unexpected keys {sorted(extra)}")
    return value


def _occurs(span: str, text: str, what: str) -> None:
    if span not in text:
        raise Invalid(f"{what} {span!r} does not occur in the text")


def _member(value: str, allowed: Any, what: str) -> None:
    if allowed is not None and value not in allowed:
        raise Invalid(f"{what} {value!r} is not in the schema")


class Declared:
    """The labels a source declares (schema file, ``labels`` option), as sets."""

    __slots__ = ("types", "roles", "type_roles")

    def __init__(self, schema: LabelSchema | None):
        schema = schema or LabelSchema()
        self.types = frozenset(schema.types) if schema.types else None
        self.roles = frozenset(schema.roles) if schema.roles else None
        self.type_roles = (
            {k: frozenset(v) for k, v in schema.type_roles.items()} if schema.type_roles else None
        )


_NO_SCHEMA = Declared(None)
_ENTITY = frozenset({"text", "type", "start"})
_REL = frozenset({"head", "relation", "tail"})
_SPO = frozenset({"head", "head_type", "relation", "tail", "tail_type"})
_EVENT = frozenset({"event_type", "trigger", "arguments"})
_ARG = frozenset({"role", "argument"})
_TURN = frozenset({"role", "content"})


def _ner(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"entities"}))
    for i, ent in enumerate(_list(gold["entities"], "entities")):
        what = f"entity {i + 1}"
        _object(ent, what, _ENTITY)
        mention = _string(ent["text"], f"{what} text")
        _member(_label(ent["type"], f"{what} type"), schema.types, "entity type")
        start = ent["start"]
        if start is None:
            if not unplaced:
                raise Invalid(f"entity {mention!r} has no offset in the text")
            continue
        if isinstance(start, bool) or not isinstance(start, int):
            raise Invalid(f"entity {mention!r} offset must be an integer, got {json_type(start)}")
        if start < 0 or text[start : start + len(mention)] != mention:
            raise Invalid(f"entity {mention!r} is not in the text at offset {start}")


def _relations(text: str, gold: dict, schema: Declared, keys: frozenset[str], roles) -> None:
    for i, rel in enumerate(_list(gold["relations"], "relations")):
        what = f"relation {i + 1}"
        _object(rel, what, keys)
        head = _string(rel["head"], f"{what} head")
        tail = _string(rel["tail"], f"{what} tail")
        relation = _label(rel["relation"], f"{what} relation")
        _occurs(head, text, "head")
        _occurs(tail, text, "tail")
        _member(relation, roles, "relation")
        if keys is _SPO:
            head_type = _label(rel["head_type"], f"{what} head_type")
            tail_type = _label(rel["tail_type"], f"{what} tail_type")
            for name, value in (("head_type", head_type), ("tail_type", tail_type)):
                if "_" in value:
                    raise Invalid(f"{name} {value!r} contains '_', IEPile's SPO separator")
            spo = f"{head_type}_{relation}_{tail_type}"
            _member(spo, schema.types, "SPO type")


def _re(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"relations"}))
    _relations(text, gold, schema, _REL, schema.roles)


def _spo(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"relations"}))
    _relations(text, gold, schema, _SPO, schema.roles)


def _kge(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"entity_type", "relations"}))
    entity_type = _label(gold["entity_type"], "entity_type")
    roles = schema.roles
    if schema.type_roles is not None:
        if entity_type not in schema.type_roles:
            raise Invalid(f"entity type {entity_type!r} is not in the schema")
        roles = schema.type_roles[entity_type]
    _relations(text, gold, schema, _REL, roles)


def _ee(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"events"}))
    # Synthesis asks EE/EEA about the type-to-roles map's event types and EET about the
    # type list: an event type must be in each the schema gives.
    type_map = schema.type_roles.keys() if schema.type_roles is not None else None
    for i, event in enumerate(_list(gold["events"], "events")):
        what = f"event {i + 1}"
        _object(event, what, _EVENT)
        etype = _label(event["event_type"], f"{what} event_type")
        _member(etype, schema.types, "event type")
        _member(etype, type_map, "event type")
        trigger = _string(event["trigger"], f"{what} trigger")
        _occurs(trigger, text, "trigger")
        roles = schema.roles
        if schema.type_roles is not None and etype in schema.type_roles:
            roles = schema.type_roles[etype]
        for j, arg in enumerate(_list(event["arguments"], f"{what} arguments")):
            arg_what = f"{what} argument {j + 1}"
            _object(arg, arg_what, _ARG)
            role = _label(arg["role"], f"{arg_what} role")
            if roles is not None and role not in roles:
                raise Invalid(f"role {role!r} is not in the schema for event type {etype!r}")
            _occurs(_string(arg["argument"], f"{arg_what} argument"), text, "argument")


def _mrc(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"question", "options", "answers"}))
    _string(gold["question"], "question")
    options = _list(gold["options"], "options")
    for i, option in enumerate(options):
        _string(option, f"option {i + 1}")
    answers = _list(gold["answers"], "answers")
    for i, answer in enumerate(answers):
        _string(answer, f"answer {i + 1}")
        if options:
            if answer not in options:
                raise Invalid(f"answer {answer!r} is not one of the options")
        else:
            _occurs(answer, text, "answer")
    if options and not answers:
        raise Invalid("a multiple-choice question without an answer")


def _tc(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"label"}))
    _member(_label(gold["label"], "label"), schema.types, "label")


def _openie(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"triples"}))
    triples = _list(gold["triples"], "triples")
    if not triples:
        raise Invalid("no triples")
    for i, triple in enumerate(triples):
        what = f"triple {i + 1}"
        _object(triple, what, frozenset({"subject", "predicate", "object", "extra"}),
                frozenset(OPENIE_ROLES))
        _string(triple["subject"], f"{what} subject")
        _string(triple["predicate"], f"{what} predicate")
        _string(triple["object"], f"{what} object", empty=True)  # a triple may have no object
        for j, extra in enumerate(_list(triple["extra"], f"{what} extra")):
            _string(extra, f"{what} extra argument {j + 1}")
        for role in OPENIE_ROLES:
            if role in triple:
                _string(triple[role], f"{what} {role}")


def _ig(text: str, gold: dict, schema: Declared, unplaced: bool) -> None:
    _object(gold, "gold", frozenset({"conversation"}))
    turns = _list(gold["conversation"], "conversation")
    expected = "user"
    started = False
    for i, turn in enumerate(turns):
        what = f"turn {i + 1}"
        _object(turn, what, _TURN)
        role = turn["role"]
        _string(turn["content"], f"{what} ({role}) content")
        if role == "system":
            if started:
                raise Invalid(f"{what} is a system turn inside the conversation")
            continue
        if role not in ("user", "assistant"):
            raise Invalid(f"{what} has unknown role {role!r}")
        started = True
        if role != expected:
            previous = "two user turns" if role == "user" else "an assistant turn without a user turn"
            raise Invalid(f"{what}: {previous} in a row; turns must alternate user, assistant")
        expected = "assistant" if role == "user" else "user"
    if not started:
        raise Invalid("conversation has no user turn")
    if expected != "user":
        raise Invalid("conversation does not end with an assistant turn")
    last_user = next(t["content"] for t in reversed(turns) if t["role"] == "user")
    if text != last_user:
        raise Invalid("record text is not the last user turn")


_RULES: dict[str, Callable[[str, dict, Declared, bool], None]] = {
    NER: _ner,
    RE: _re,
    SPO: _spo,
    EE: _ee,
    KGE: _kge,
    MRC: _mrc,
    TC: _tc,
    OPENIE: _openie,
    IG: _ig,
}


def record_problem(
    task: str,
    text: Any,
    gold: Any,
    schema: Declared | LabelSchema | None = None,
    *,
    unplaced_entities: bool = False,
) -> str | None:
    """The first rule a record breaks, as a quarantine reason; None when it is sound.

    ``schema`` is what the source declares (None: labels are mined, any label goes);
    ``unplaced_entities`` allows NER entities without an offset (``start: null``).
    """
    if not isinstance(schema, Declared):
        schema = _NO_SCHEMA if schema is None else Declared(schema)
    rule = _RULES.get(task)
    if rule is None:
        return f"unknown task {task!r}"
    try:
        _string(text, "text")
        rule(text, gold, schema, unplaced_entities)
    except Invalid as exc:
        return str(exc)
    return None
