"""One parser for every output format: ``parse_output(task, text, schema)``.

It reads any rendering of ``hum_dagster.synthesis.formats`` (nested or flat JSON,
Python literals and tuples, YAML, ``label: a, b`` lines in ASCII or Chinese
punctuation, ``(subject, relation, object)`` lines, bullet lists, markdown tables,
XML-style tags; for MRC and TC option letters, option texts, ``B. text``,
``Answer: ...`` and label words) back into the task's canonical structure, the same
as the basic JSON outputs (see ``outputs.py``).

It is meant for scoring model generations, so it is tolerant: prose around the
answer, code fences, odd whitespace, single quotes, trailing commas, unquoted keys,
Chinese punctuation (``：，；“”``), Python ``None``/``True``, labels in another letter
case, and truncated output (what was read is kept). It never raises: an unreadable
text gives ``ok=False`` with the reason and an empty answer (every schema label
present, empty).

With ``schema`` (the instruction's schema items) every schema label appears in the
result (empty when not answered), EE/EEA roles that are not mentioned are ``"NAN"``,
and labels outside the schema are moved to ``Parsed.unknown``.
"""

from __future__ import annotations

import ast
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.records import EE, EEA, EET, KGE, MRC, NER, OPENIE, RE, SPO, TC
from hum_dagster.synthesis.formats import (
    FLAT_FIELDS,
    GROUPED_TASKS,
    LABEL_INDEX,
    OPTION_LETTERS,
    is_empty_token,
    load_format_wording,
)
from hum_dagster.synthesis.outputs import NAN

MAX_CHARS = 200_000  # longer texts are cut (and reported) before parsing


@dataclass(frozen=True, slots=True)
class Parsed:
    """The result of reading one model output.

    ``value``: the canonical structure (always usable, even when ``ok`` is False);
    ``style``: the format it was read as (a ``FORMAT_STYLES`` id, ``"empty"``, or
    ``"unknown"``); ``ok``: the text was read completely; ``error``: why not;
    ``warnings``: what was tolerated or skipped; ``unknown``: answers under labels
    that are not in the schema (only when a schema was given).
    """

    value: Any
    style: str
    ok: bool
    error: str | None = None
    warnings: tuple[str, ...] = ()
    unknown: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- relaxed values

_SEPS = ",;，；、"
_MAP_SEPS = ",;，；"
_CLOSERS = "])}）】"
_OPEN = {"[": "]", "(": ")", "{": "}", "（": "）", "【": "】"}
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "`": "`"}
_COLONS = ":："
_WS = " \t\r\n\u3000"


class _Flow:
    """A forgiving reader of JSON-, Python- and YAML-flow-like values.

    Unquoted words are strings (up to a separator or bracket), brackets may be left
    open at the end (``truncated`` is set), separators may repeat or trail, and
    Chinese punctuation counts as its ASCII form.
    """

    __slots__ = ("s", "n", "truncated")

    def __init__(self, text: str):
        self.s = text
        self.n = len(text)
        self.truncated = False

    def ws(self, i: int) -> int:
        s, n = self.s, self.n
        while i < n and s[i] in _WS:
            i += 1
        return i

    def quoted(self, i: int) -> tuple[str, int]:
        s, n = self.s, self.n
        q = s[i]
        close = _QUOTES[q]
        j = i + 1
        escapes = q in "\"'"
        while j < n:
            c = s[j]
            if escapes and c == "\\":
                j += 2
                continue
            if c == close:
                break
            j += 1
        if j >= n:
            self.truncated = True
            return s[i + 1 :], n
        segment = s[i : j + 1]
        if q == '"':
            try:
                return json.loads(segment, strict=False), j + 1
            except ValueError:
                pass
        if q in "\"'":
            try:
                value = ast.literal_eval(segment)
                if isinstance(value, str):
                    return value, j + 1
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
        inner = s[i + 1 : j]
        if escapes:
            inner = inner.replace("\\" + q, q).replace("\\\\", "\\")
        return inner, j + 1

    def value(self, i: int, stops: str) -> tuple[Any, int]:
        i = self.ws(i)
        if i >= self.n:
            return "", i
        c = self.s[i]
        if c in _QUOTES:
            return self.quoted(i)
        if c == "{":
            return self.mapping(i)
        if c in _OPEN:
            return self.seq(i)
        s, n = self.s, self.n
        j = i
        while j < n and s[j] not in stops:
            j += 1
        return s[i:j].strip(), j

    def item(self, i: int, stops: str) -> tuple[Any, int]:
        """Juxtaposed values up to a separator: ``trigger {role: x}`` -> [trigger, {...}]."""
        parts: list[Any] = []
        plain_stops = stops + "{"
        while True:
            i = self.ws(i)
            if i >= self.n or self.s[i] in stops:
                break
            v, j = self.value(i, plain_stops)
            if j <= i:
                j = i + 1
            parts.append(v)
            i = j
        if not parts:
            return "", i
        if len(parts) == 1:
            return parts[0], i
        if all(isinstance(p, str) for p in parts):
            return " ".join(p for p in parts if p), i
        return parts, i

    def seq(self, i: int) -> tuple[list[Any], int]:
        close = _OPEN[self.s[i]]
        out: list[Any] = []
        i += 1
        stops = _SEPS + _CLOSERS
        while True:
            i = self.ws(i)
            if i >= self.n:
                self.truncated = True
                break
            c = self.s[i]
            if c == close:
                i += 1
                break
            if c in _SEPS:
                i += 1
                continue
            if c in _CLOSERS:  # a stray closer of another kind
                i += 1
                continue
            v, i = self.item(i, stops)
            out.append(v)
        return out, i

    def mapping(self, i: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        i += 1
        s = self.s
        value_stops = _MAP_SEPS + _CLOSERS
        while True:
            i = self.ws(i)
            if i >= self.n:
                self.truncated = True
                break
            c = s[i]
            if c == "}":
                i += 1
                break
            if c in _MAP_SEPS or c in _CLOSERS:
                i += 1
                continue
            if c in _QUOTES:
                key, i = self.quoted(i)
            else:
                j = i
                while j < self.n and s[j] not in _COLONS and s[j] not in value_stops:
                    j += 1
                key, i = s[i:j].strip(), j
            i = self.ws(i)
            if i < self.n and s[i] in _COLONS:
                v, i = self.item(i + 1, value_stops)
            else:
                v = ""
            key = _text(key)
            if key in out:  # a repeated key collects its values
                prev = out[key]
                out[key] = (prev if isinstance(prev, list) else [prev]) + (
                    v if isinstance(v, list) else [v]
                )
            else:
                out[key] = v
        return out, i

    def items(self, i: int) -> list[Any]:
        """Top-level items of a line value, separated by , ; ， ； 、."""
        out: list[Any] = []
        stops = _SEPS + _CLOSERS
        while True:
            i = self.ws(i)
            if i >= self.n:
                break
            c = self.s[i]
            if c in _SEPS or c in _CLOSERS:
                i += 1
                continue
            v, j = self.item(i, stops)
            if j <= i:
                j = i + 1
            out.append(v)
            i = j
        return out


def _text(x: Any) -> str:
    if isinstance(x, str):
        return x
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float) and x.is_integer():
        return str(int(x)) if abs(x) < 1e15 else repr(x)
    if isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, (list, tuple)):
        return ", ".join(_text(y) for y in x)
    return str(x)


# --------------------------------------------------------------------------- coercion helpers


def _norm(key: str) -> str:
    return re.sub(r"[\s_\-]+", " ", key.strip().strip("*`\"'“”_").strip()).strip().casefold()


def _field_aliases() -> dict[str, tuple[str, ...]]:
    base = {
        "entity": ("entity", "text", "span", "mention", "name", "实体", "实体名", "entity name"),
        "type": ("type", "label", "entity type", "category", "类型", "实体类型", "标签"),
        "trigger": ("trigger", "trigger word", "触发词"),
        "event_type": ("event type", "type", "label", "event", "事件类型", "类型"),
        "subject": ("subject", "head", "sub", "arg1", "主体", "头实体", "主语"),
        "relation": ("relation", "predicate", "type", "label", "relation type", "关系", "谓词"),
        "predicate": ("predicate", "relation", "pred", "谓词", "关系"),
        "object": ("object", "tail", "obj", "arg2", "客体", "尾实体", "宾语"),
        "extra": ("extra", "extras", "other arguments", "其他论元"),
        "arguments": ("arguments", "args", "argument", "roles", "论元"),
        "entity_type": ("entity type", "type", "label", "实体类型", "类型"),
        "attributes": ("attributes", "attribute", "attrs", "属性"),
    }
    try:
        wording = load_format_wording()
        for name in base:
            extra = tuple(wording.field(name, lang) for lang in ("en", "zh"))
            base[name] = tuple(dict.fromkeys((*base[name], *extra)))
    except ValueError:
        pass
    return {name: tuple(_norm(a) for a in aliases) for name, aliases in base.items()}


_ALIASES = _field_aliases()


def _field_of(task: str, key: str) -> str | None:
    k = _norm(key)
    for name in FLAT_FIELDS[task]:
        if k in _ALIASES[name]:
            return name
    return None


def _get(d: dict[str, Any], name: str) -> Any:
    aliases = _ALIASES[name]
    for k, v in d.items():
        if _norm(str(k)) in aliases:
            return v
    return None


def _strings(x: Any) -> list[str]:
    """Non-empty strings in ``x`` (a string, a list of them, a span-like dict)."""
    if x is None:
        return []
    if isinstance(x, str):
        return [] if is_empty_token(x) else [x]
    if isinstance(x, (list, tuple)):
        out: list[str] = []
        for y in x:
            out.extend(_strings(y))
        return out
    if isinstance(x, dict):
        for name in ("entity", "trigger"):
            v = _get(x, name)
            if v is not None:
                return _strings(v)
        out = []
        for y in x.values():
            if isinstance(y, str):
                out.extend(_strings(y))
        return out
    return _strings(_text(x))


def _one(x: Any) -> str:
    found = _strings(x)
    return found[0] if found else ""


def _arg_value(x: Any) -> str | list[str]:
    values = list(dict.fromkeys(_strings(x)))
    if not values:
        return NAN
    return values[0] if len(values) == 1 else values


def _as_mapping(x: Any) -> dict[str, Any] | None:
    if isinstance(x, dict):
        return x
    if isinstance(x, (list, tuple)):
        merged: dict[str, Any] = {}
        found = False
        for y in x:
            if isinstance(y, dict):
                merged.update(y)
                found = True
        return merged if found else None
    return None


def _schema_info(task: str, schema: Sequence[Any] | None) -> tuple[list[str], dict[str, list[str]]]:
    keys: list[str] = []
    roles: dict[str, list[str]] = {}
    for item in schema or ():
        if isinstance(item, str):
            key, item_roles = item, None
        elif isinstance(item, dict):
            if task == SPO:
                key = item.get("predicate") or item.get("label")
            else:
                key = (
                    item.get("event_type")
                    or item.get("entity_type")
                    or item.get("label")
                    or item.get("type")
                    or item.get("predicate")
                )
            item_roles = item.get("arguments") if task in (EE, EEA) else None
        else:
            continue
        if not isinstance(key, str) or not key:
            continue
        if key not in keys:
            keys.append(key)
        if item_roles:
            names = []
            for r in item_roles:
                if isinstance(r, dict):
                    r = r.get("role") or r.get("name") or r.get("label")
                if isinstance(r, str):
                    names.append(r)
            roles.setdefault(key, [])
            roles[key].extend(n for n in names if n not in roles[key])
    return keys, roles


# --------------------------------------------------------------------------- accumulation


class _Acc:
    """Answers gathered by one reading: label -> raw entries (or OpenIE triples)."""

    __slots__ = (
        "task",
        "groups",
        "triples",
        "warnings",
        "truncated",
        "style",
        "schema_keys",
        "penalty",
    )

    def __init__(self, task: str, style: str, schema_keys: set[str]):
        self.task = task
        self.style = style
        self.groups: dict[str, list[Any]] = {}
        self.triples: list[Any] = []
        self.warnings: list[str] = []
        self.truncated = False
        self.schema_keys = schema_keys
        self.penalty = 0  # signs that the text is not in this reader's format

    def label(self, key: Any) -> list[Any]:
        return self.groups.setdefault(_text(key).strip(), [])

    # Nested structures (JSON, Python, YAML) -------------------------------

    def structure(self, data: Any) -> None:
        task = self.task
        if task == OPENIE:
            if isinstance(data, dict):
                if _get(data, "subject") is not None or _get(data, "predicate") is not None:
                    data = [data]
                else:
                    lists = [v for v in data.values() if isinstance(v, list)]
                    data = lists[0] if lists else []
            if isinstance(data, (list, tuple)):
                self.triples.extend(data)
            elif not (isinstance(data, str) and is_empty_token(data)) and data is not None:
                self.warnings.append("OpenIE answer is not a list of triples")
            return
        if isinstance(data, dict):
            if self._looks_flat(data):
                self.flat_dict(data)
            else:
                for k, v in data.items():
                    self.nested(k, v)
        elif isinstance(data, (list, tuple)):
            for e in data:
                if isinstance(e, dict):
                    if self._looks_flat(e):
                        self.flat_dict(e)
                    else:
                        for k, v in e.items():
                            self.nested(k, v)
                elif isinstance(e, (list, tuple)):
                    self.flat_seq(list(e))
                elif not (isinstance(e, str) and is_empty_token(e)):
                    self.warnings.append(f"skipped an answer without a label: {_text(e)[:40]!r}")
        elif data is not None and not (isinstance(data, str) and is_empty_token(data)):
            self.warnings.append(f"{task} answer is not an object or a list")

    def _looks_flat(self, d: dict[str, Any]) -> bool:
        task = self.task
        label_field = FLAT_FIELDS[task][LABEL_INDEX[task]]
        named = {}
        for k, v in d.items():
            name = _field_of(task, str(k))
            if name is not None:
                named.setdefault(name, v)
        if label_field not in named or len(named) < 2:
            return False
        # In a flat record the label is one word; a schema label that happens to be
        # called "type" holds a list (nested form).
        label = named[label_field]
        return isinstance(label, str) and not is_empty_token(label)

    def nested(self, key: Any, v: Any) -> None:
        entries = self.label(key)
        if v is None or (isinstance(v, str) and is_empty_token(v)):
            return
        if self.task == KGE:
            if isinstance(v, dict):
                entries.extend([ent, attrs] for ent, attrs in v.items())
            elif isinstance(v, (list, tuple)):
                for e in v:
                    if isinstance(e, dict):
                        name = _get(e, "entity")
                        if name is not None:
                            attrs = _get(e, "attributes")
                            if attrs is None:
                                attrs = {
                                    k: x for k, x in e.items() if _field_of(KGE, str(k)) is None
                                }
                            entries.append([name, attrs])
                        else:
                            entries.extend([ent, attrs] for ent, attrs in e.items())
                    else:
                        entries.append(e)
            else:
                entries.append([v, {}])
            return
        if isinstance(v, (list, tuple)):
            entries.extend(v)
        else:
            entries.append(v)

    # Flat rows (json_flat, tuples, tuple lines, tables, XML) --------------

    def flat_dict(self, d: dict[str, Any]) -> None:
        task = self.task
        values: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for k, v in d.items():
            name = _field_of(task, str(k))
            if name is not None and name not in values:
                values[name] = v
            else:
                rest[str(k)] = v
        if task in (EE, EEA, KGE):
            name = "attributes" if task == KGE else "arguments"
            if name not in values:
                values[name] = rest
        self.flat_seq([values.get(f) for f in FLAT_FIELDS[task]])

    def flat_seq(self, seq: list[Any]) -> None:
        task = self.task
        if task == OPENIE:
            self.triples.append(seq)
            return
        fields = FLAT_FIELDS[task]
        if len(seq) < len(fields):
            if task in (EE, EEA, KGE) and len(seq) == len(fields) - 1:
                seq = [*seq, {}]
            else:
                self.warnings.append(f"skipped a short {task} tuple {seq!r:.60}")
                return
        at = LABEL_INDEX[task]
        if task in (NER, EET):
            # (type, entity) instead of (entity, type): tell by the schema.
            a, b = _text(seq[0]), _text(seq[1])
            if a in self.schema_keys and b not in self.schema_keys:
                seq = [seq[1], seq[0], *seq[2:]]
        label = seq[at]
        entries = self.label(label)
        others = [c for idx, c in enumerate(seq) if idx != at]
        if all(_blank(c) for c in others):
            return  # an empty label, spelled out
        if task in (NER, EET):
            entries.append(seq[0])
        elif task in (RE, SPO):
            entries.append([seq[0], seq[2]])
        elif task == EE:
            entries.append([seq[1], seq[2] if len(seq) > 2 else {}])
        elif task == EEA:
            entries.append(seq[1] if isinstance(seq[1], dict) else _as_mapping(seq[1:]) or {})
        else:
            entries.append([seq[1], seq[2] if len(seq) > 2 else {}])


def _blank(x: Any) -> bool:
    if x is None:
        return True
    if isinstance(x, str):
        return is_empty_token(x)
    if isinstance(x, (list, tuple, dict)):
        return all(_blank(y) for y in (x.values() if isinstance(x, dict) else x))
    return False


# --------------------------------------------------------------------------- finishing


def _match_key(key: str, keys: list[str], normed: dict[str, str]) -> str | None:
    if key in normed.values():
        return key
    return normed.get(_norm(key))


def _pair(e: Any) -> dict[str, str] | None:
    if isinstance(e, dict):
        s, o = _one(_get(e, "subject")), _one(_get(e, "object"))
    elif isinstance(e, (list, tuple)) and len(e) >= 2:
        s, o = _one(e[0]), _one(e[-1])
    else:
        return None
    if not s or not o:
        return None
    return {"subject": s, "object": o}


def _args(x: Any, roles: list[str], fill: bool) -> dict[str, Any]:
    mapping = _as_mapping(x) or {}
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        value = _arg_value(v)
        if value == NAN and not fill:
            continue
        out[_text(k).strip()] = value
    if fill:
        for role in roles:
            out.setdefault(role, NAN)
    return out


_TRIGGER_KEYS = ("trigger", "event_type")


def _event(e: Any, roles: list[str]) -> dict[str, Any] | None:
    trigger: Any = NAN
    args: Any = {}
    if isinstance(e, dict):
        a = _get(e, "arguments")
        if isinstance(e.get("arguments"), dict) and set(e) <= {"trigger", "arguments"}:
            trigger, args = e.get("trigger", NAN), e["arguments"]
        elif isinstance(a, dict) and not any(k in roles for k in e):
            trigger, args = _get(e, "trigger"), a
        else:  # a flat event: its roles beside the trigger (or no trigger at all)
            trigger, args = NAN, {}
            for k, v in e.items():
                name = _norm(str(k))
                if k in roles:
                    args[k] = v
                elif name in _ALIASES["trigger"]:
                    trigger = v
                elif name not in _ALIASES["event_type"]:
                    args[k] = v
    elif isinstance(e, (list, tuple)):
        strs = [y for y in e if not isinstance(y, dict)]
        trigger = strs[0] if strs else NAN
        args = _as_mapping(e) or {}
    elif isinstance(e, str):
        if is_empty_token(e):
            return None
        trigger = e
    else:
        return None
    return {"trigger": _one(trigger) or NAN, "arguments": _args(args, roles, True)}


def _triple(e: Any) -> dict[str, Any] | None:
    if isinstance(e, dict):
        s, p, o = (_get(e, n) for n in ("subject", "predicate", "object"))
        extra = _strings(_get(e, "extra"))
    elif isinstance(e, (list, tuple)) and len(e) >= 3:
        s, p, o = e[0], e[1], e[2]
        extra = _strings(list(e[3:]))
    else:
        return None
    s, p, o = _one(s), _one(p), _one(o)
    if not (s or p or o):
        return None
    triple: dict[str, Any] = {"subject": s, "predicate": p, "object": o}
    if extra:
        triple["extra"] = extra
    return triple


def _finish(
    acc: _Acc, keys: list[str], roles: dict[str, list[str]]
) -> tuple[Any, dict[str, Any], int, int]:
    """(value, unknown labels, answers, labels mentioned)."""
    task = acc.task
    if task == OPENIE:
        triples = []
        for e in acc.triples:
            t = _triple(e)
            if t is None:
                if not _blank(e):
                    acc.warnings.append(f"skipped a malformed triple {e!r:.60}")
                continue
            if t not in triples:
                triples.append(t)
        return triples, {}, len(triples), len(triples)
    normed = {_norm(k): k for k in keys}
    out: dict[str, Any] = {k: ({} if task == KGE else []) for k in keys}
    unknown: dict[str, Any] = {}
    answers = 0
    mentioned = 0
    for raw_key, entries in acc.groups.items():
        key = _match_key(raw_key, keys, normed) if keys else raw_key
        target = out
        if key is None:
            if not entries:
                continue  # a prose line such as "Here is the answer:"
            key = raw_key
            target = unknown
        else:
            mentioned += 1
        known = target is out
        bucket = target.setdefault(key, {} if task == KGE else [])
        label_roles = roles.get(key, [])
        for e in entries:
            if task in (NER, EET):
                for s in _strings(e):
                    if s not in bucket:
                        bucket.append(s)
                        answers += known
            elif task in (RE, SPO):
                pair = _pair(e)
                if pair is None:
                    if not _blank(e):
                        acc.warnings.append(
                            f"{key!r}: skipped {e!r:.60}, not a subject/object pair"
                        )
                elif pair not in bucket:
                    bucket.append(pair)
                    answers += known
            elif task == EE:
                if _blank(e) and not isinstance(e, dict):
                    continue
                ev = _event(e, label_roles)
                if ev is not None:
                    bucket.append(ev)
                    answers += known
            elif task == EEA:
                mapping = _as_mapping(e)
                if mapping is None:
                    if not _blank(e):
                        acc.warnings.append(f"{key!r}: skipped {e!r:.60}, not a role mapping")
                    continue
                bucket.append(_args(mapping, label_roles, True))
                answers += known
            else:  # KGE
                if isinstance(e, (list, tuple)) and e:
                    name = _one(e[0])
                    attrs = _args(e[1] if len(e) > 1 else {}, [], False)
                elif isinstance(e, str):
                    name, attrs = _one(e), {}
                else:
                    name, attrs = "", {}
                if not name:
                    if not _blank(e):
                        acc.warnings.append(f"{key!r}: skipped {e!r:.60}, not an entity")
                    continue
                bucket.setdefault(name, {}).update(attrs)
                answers += known
    if unknown:
        acc.warnings.append(f"labels not in the schema: {sorted(unknown)}")
    return out, unknown, answers, mentioned


# --------------------------------------------------------------------------- readers

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_LINE_START = re.compile(r"^[ \t]*[\[{]", re.M)
_INLINE_START = re.compile(r"[\[{][ \t]*[\[{(\"'“]|\{[ \t]*[^\s{}:,]+[ \t]*[:：]")
_NO_ANSWER = re.compile(
    r"^(?:there\s+(?:are|is)\s+no\b|no\s+\w+(?:\s+\w+)?\s+(?:were\s+|was\s+)?(?:found|mentioned|present|detected)"
    r"|nothing\s+(?:found|to\s+extract)|(?:文中|输入中)?(?:没有|不存在|未发现|无)(?:任何)?\S{0,12}$)",
    re.I,
)


def _json_block(task: str, text: str, acc_factory) -> _Acc | None:
    """JSON or a Python literal at the start of the text or of a line."""
    if text[:1] in "[{":
        return _jsonish(task, text, 0, acc_factory)
    m = _LINE_START.search(text)
    if m is None:
        return None
    return _jsonish(task, text, m.end() - 1, acc_factory)


def _json_inline(task: str, text: str, acc_factory) -> _Acc | None:
    """JSON inside a line of prose ("The entities are {...}.")."""
    if text[:1] in "[{" or _LINE_START.search(text):
        return None
    m = _INLINE_START.search(text)
    if m is None:
        return None
    acc = _jsonish(task, text, m.start(), acc_factory)
    if acc is not None:
        acc.penalty = 1  # a bracket inside a line of text may belong to a line format
    return acc


def _jsonish(task: str, text: str, start: int, acc_factory) -> _Acc | None:
    sub = text[start:]
    style = "json"
    truncated = False
    try:
        data, _ = json.JSONDecoder(strict=False).raw_decode(sub)
    except ValueError:
        flow = _Flow(sub)
        data, end = flow.value(0, "")
        truncated = flow.truncated
        try:
            literal = ast.literal_eval(sub[:end].strip())
            data, style = literal, "python"
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            style = "python" if "'" in sub[:end] and '"' not in sub[:end] else "json"
    if isinstance(data, (list, tuple)) and data:
        if all(isinstance(e, tuple) for e in data):
            style = "tuples"
        elif task in GROUPED_TASKS and all(isinstance(e, dict) for e in data):
            style = "json_flat"
    if isinstance(data, str) and not is_empty_token(data):
        return None
    acc = acc_factory(style)
    acc.truncated = truncated
    acc.structure(data)
    return acc


_YAML_SIGNS = re.compile(r"[:：][ \t]*$|^[ \t]+\S|^[ \t]*-[ \t]|^\s*\{\}\s*$", re.M)


def _yaml(task: str, text: str, acc_factory) -> _Acc | None:
    try:
        import yaml  # PyYAML: a project dependency (the catalog)
    except ImportError:  # pragma: no cover
        return None
    if not _YAML_SIGNS.search(text):
        return None  # one "key: value" per line: the line reader reads it the same
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    except Exception:  # yaml raises many error types on free text
        return None
    if not isinstance(data, (dict, list)):
        return None
    acc = acc_factory("yaml")
    acc.structure(_yaml_clean(data))
    return acc


def _yaml_clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {_text(k): _yaml_clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_yaml_clean(v) for v in x]
    if x is None or isinstance(x, str):
        return x
    return _text(x)


_WRAPPED = re.compile(r"^(\*\*|__|\*|`)(.+)\1$")


def _unwrap(key: str) -> str:
    """``**person**`` -> ``person`` (markdown emphasis around a key)."""
    m = _WRAPPED.match(key)
    return m.group(2).strip() if m else key


_BULLET = re.compile(r"^(?:[-*+•·]|\d{1,3}[.)、])[ \t]+")


def _lines(task: str, text: str, acc_factory) -> _Acc | None:
    acc = acc_factory("kv_lines")
    tuples = kv = bullets = 0
    zh = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if raw[:1] in " \t":
            acc.penalty += 1  # indented lines belong to YAML, not to flat lines
        m = _BULLET.match(line)
        if m:
            line = line[m.end() :]
        if not line:
            continue
        if line[0] in "(（" and (task == OPENIE or task in FLAT_FIELDS):
            flow = _Flow(line)
            seq, _ = flow.seq(0)
            if len(seq) >= 2:
                acc.truncated = acc.truncated or flow.truncated
                acc.flat_seq(seq)
                tuples += 1
                bullets += bool(m)
                continue
        if task == OPENIE:
            continue
        flow = _Flow(line)
        if line[0] in _QUOTES:
            key, i = flow.quoted(0)
            i = flow.ws(i)
            if i >= len(line) or line[i] not in _COLONS:
                continue
        else:
            positions = [p for p in (line.find(":"), line.find("：")) if p >= 0]
            if not positions:
                continue
            i = min(positions)
            key = line[:i].strip()
            if key not in acc.schema_keys:
                key = _unwrap(key)
            if not key or len(key) > 120:
                continue
        zh = zh or line[i] == "："
        entries = acc.label(key)
        entries.extend(flow.items(i + 1))
        acc.truncated = acc.truncated or flow.truncated
        kv += 1
        bullets += bool(m)
    if not (tuples or kv):
        return None
    if tuples >= kv:
        acc.style = "bullets" if task == OPENIE and bullets == tuples else "tuple_lines"
    elif bullets == kv + tuples:
        acc.style = "bullets"
    else:
        acc.style = "kv_lines_zh" if zh else "kv_lines"
    return acc


def _split_cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    cells: list[str] = []
    i, n = 0, len(s)
    while i < n:
        j = i
        while j < n and s[j] in " \t":
            j += 1
        if j < n and s[j] == '"':  # a quoted cell: its pipes do not split
            k = j + 1
            while k < n and s[k] != '"':
                k += 2 if s[k] == "\\" else 1
            j = k + 1
        while j < n and s[j] != "|":
            j += 2 if s[j] == "\\" else 1
        cells.append(s[i:j].strip().replace("\\|", "|"))
        i = j + 1
    return cells


_SEP_CELL = re.compile(r"^:?-{2,}:?$")


def _cell_scalar(cell: str) -> str:
    if cell[:1] in _QUOTES:
        flow = _Flow(cell)
        value, end = flow.quoted(0)
        if flow.ws(end) >= len(cell):
            return value
    return cell


def _cell_value(name: str, cell: str) -> Any:
    if name in ("arguments", "attributes"):
        flow = _Flow(cell)
        if cell.startswith("{"):
            return flow.mapping(0)[0]
        return _Flow("{" + cell + "}").mapping(0)[0]
    if name == "extra":
        return _Flow(cell).items(0)
    return _cell_scalar(cell)


def _markdown(task: str, text: str, acc_factory) -> _Acc | None:
    rows = [_split_cells(line) for line in text.splitlines() if line.strip().startswith("|")]
    if len(rows) < 2:
        return None
    fields = FLAT_FIELDS[task]
    header: list[str | None] | None = None
    body = rows
    for idx, cells in enumerate(rows):
        if cells and all(_SEP_CELL.match(c.replace(" ", "")) for c in cells if c):
            if idx > 0:
                names = [_field_of(task, c) for c in rows[idx - 1]]
                if sum(n is not None for n in names) >= 2:
                    header = names
            body = rows[idx + 1 :]
            break
    if header is None:
        header = list(fields)
    acc = acc_factory("markdown_table")
    for cells in body:
        values: dict[str, Any] = {}
        for name, cell in zip(header, cells, strict=False):
            if name is not None and name not in values:
                values[name] = _cell_value(name, cell)
        if task == OPENIE:
            extra = values.get("extra") or []
            acc.flat_seq(
                [
                    values.get("subject", ""),
                    values.get("predicate", ""),
                    values.get("object", ""),
                    *extra,
                ]
            )
        else:
            acc.flat_seq([values.get(f, "") for f in fields])
    return acc


_XML_EL = re.compile(r"<(entity|event|relation|triple)\b([^>]*?)(/>|>(.*?)</\1\s*>)", re.S)
_XML_ATTR = re.compile(r"([\w-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_XML_CHILD = re.compile(
    r"<(subject|object|predicate|trigger|extra|argument|attribute)\b([^>]*?)(/>|>(.*?)</\1\s*>)",
    re.S,
)


def _xml_text(x: str | None) -> str:
    return html.unescape(x).strip() if x else ""


def _xml(task: str, text: str, acc_factory) -> _Acc | None:
    acc = acc_factory("xml")
    found = False
    for m in _XML_EL.finditer(text):
        attrs = {a: html.unescape(v1 or v2) for a, v1, v2 in _XML_ATTR.findall(m.group(2))}
        inner = m.group(4)
        children = list(_XML_CHILD.finditer(inner or ""))
        found = True
        if task == OPENIE:
            parts: dict[str, list[str]] = {}
            for c in children:
                parts.setdefault(c.group(1), []).append(_xml_text(c.group(4)))
            acc.triples.append(
                [
                    (parts.get("subject") or [""])[0],
                    (parts.get("predicate") or [""])[0],
                    (parts.get("object") or [""])[0],
                    *parts.get("extra", []),
                ]
            )
            continue
        label = attrs.get("type") or attrs.get("label") or ""
        entries = acc.label(label)
        if task in (NER, EET):
            value = _xml_text(inner)
            if value and not is_empty_token(value):
                entries.append(value)
        elif task in (RE, SPO):
            parts = {c.group(1): _xml_text(c.group(4)) for c in children}
            if "subject" in parts or "object" in parts:
                entries.append([parts.get("subject", ""), parts.get("object", "")])
        elif task in (EE, EEA, KGE):
            args: dict[str, Any] = {}
            trigger = None
            for c in children:
                if c.group(1) == "trigger":
                    trigger = _xml_text(c.group(4))
                elif c.group(1) in ("argument", "attribute"):
                    cattrs = {
                        a: html.unescape(v1 or v2) for a, v1, v2 in _XML_ATTR.findall(c.group(2))
                    }
                    role = cattrs.get("role") or cattrs.get("name") or ""
                    value = _xml_text(c.group(4))
                    prev = args.get(role)
                    if prev is None:
                        args[role] = value
                    else:
                        args[role] = (prev if isinstance(prev, list) else [prev]) + [value]
            if task == KGE:
                name = attrs.get("name")
                if name is not None:
                    entries.append([name, args])
            elif task == EE:
                if trigger is not None or args:
                    entries.append([trigger or NAN, args])
            elif args:
                entries.append(args)
    return acc if found else None


# --------------------------------------------------------------------------- MRC / TC

_ANSWER_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?(?:correct\s+|final\s+|predicted\s+)?"
    r"(?:answer|label|category|class|sentiment|option|choice|prediction|output)"
    r"(?:\s+is)?\s*[:：]?|(?:正确|最终)?(?:答案|类别|标签|选项|分类|情感)(?:是|为)?\s*[:：]?)\s*",
    re.I,
)
_LETTER = re.compile(r"^[(\[（]?([A-Z])[)\]）]?[.。]?$")
_LETTERS = re.compile(r"^([A-Z])(?:\s*(?:[,，、/&]|and|和)\s*([A-Z]))+$")
_LETTER_TEXT = re.compile(r"^[(\[（]?([A-Z])[)\]）]?\s*[.．、:：)]\s*(.+)$", re.S)


def _fold(s: str) -> str:
    return " ".join(s.split()).casefold()


def _resolve(raw: str, choices: list[str], letters: bool) -> tuple[Any, str | None, str | None]:
    """(answer, how, problem) for one raw answer against options or labels."""
    s = raw.strip()
    if not choices:
        return s, None, None if s else "empty answer"
    if s in choices:
        return s, "text", None
    stripped = s.strip("\"'“”‘’`*").strip().rstrip("。.").strip()
    folded = {_fold(c): c for c in choices}
    for cand in (s, stripped):
        if _fold(cand) in folded:
            return folded[_fold(cand)], "text", None
    if letters and len(choices) <= len(OPTION_LETTERS):
        m = _LETTER.match(stripped) or _LETTER.match(s)
        if m and OPTION_LETTERS.index(m.group(1)) < len(choices):
            return choices[OPTION_LETTERS.index(m.group(1))], "letter", None
        if _LETTERS.match(stripped):
            picked = [
                choices[OPTION_LETTERS.index(x)]
                for x in re.findall(r"[A-Z]", stripped)
                if OPTION_LETTERS.index(x) < len(choices)
            ]
            if picked:
                return picked, "letter", None
        m = _LETTER_TEXT.match(s)
        if m and OPTION_LETTERS.index(m.group(1)) < len(choices):
            return choices[OPTION_LETTERS.index(m.group(1))], "letter_text", None
    contained = [c for c in choices if c and _fold(c) in _fold(s)]
    if contained:
        best = max(contained, key=len)
        return best, "contained", None
    return s, None, "answer is none of the options" if letters else "answer is none of the labels"


def _choice_json(text: str, key: str) -> tuple[Any, str] | None:
    """The answer inside {"answer": ...} / {'label': ...} / ["..."], with its style."""
    m = re.search(r"[\[{]", text)
    if m is None:
        return None
    sub = text[m.start() :]
    strict = True
    try:
        data, _ = json.JSONDecoder(strict=False).raw_decode(sub)
        style = "json"
    except ValueError:
        flow = _Flow(sub)
        data, end = flow.value(0, "")
        if flow.truncated:
            return None
        style = "python"
        try:
            data = ast.literal_eval(sub[:end].strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            strict = False
    keys = (key, "answer", "label", "答案", "类别", "标签", "option", "choice", "prediction")
    if isinstance(data, dict):
        for k, v in data.items():
            if _norm(str(k)) in keys:
                return v, style
        return None
    # A bare list only when it is well-formed ("[:]" is more likely an answer text).
    if strict and isinstance(data, list) and data and all(isinstance(x, str) for x in data):
        return data, style
    return None


def _parse_choice(task: str, text: str, schema: Sequence[Any] | None) -> Parsed:
    key = "answer" if task == MRC else "label"
    choices = [c for c in schema or () if isinstance(c, str)]
    letters = task == MRC
    if choices and text in choices:
        return Parsed({key: text}, "option_text" if letters else "label_word", True)
    candidates: list[tuple[Any, str | None]] = []
    found = _choice_json(text, key)
    if found is not None:
        candidates.append(found)
    m = _ANSWER_PREFIX.match(text)
    if m and m.group().strip():
        candidates.append((text[m.end() :], "answer_line"))
    candidates.append((text, None))
    first_line = text.split("\n", 1)[0].strip()
    if first_line != text:
        m = _ANSWER_PREFIX.match(first_line)
        candidates.append((first_line[m.end() :] if m and m.group().strip() else first_line, None))
    failure: Parsed | None = None
    for raw, style in candidates:
        warnings: list[str] = []
        if isinstance(raw, list):
            values: list[Any] = []
            problem = None
            for r in raw:
                value, _, problem_r = _resolve(_text(r), choices, letters)
                problem = problem or problem_r
                values.extend(value if isinstance(value, list) else [value])
            value = values[0] if len(values) == 1 else values
            how = "text"
        else:
            value, how, problem = _resolve(_text(raw), choices, letters)
        if style is None:
            if how == "letter":
                style = "option_letter"
            elif how == "letter_text":
                style = "letter_text"
            elif task == TC:
                style = "label_word"
            else:
                style = "option_text" if choices else "answer_text"
        if how == "contained":
            warnings.append(f"{key} found inside a longer text")
        parsed = Parsed({key: value}, style, problem is None, problem, tuple(warnings))
        if problem is None:
            return parsed
        failure = failure or parsed
    assert failure is not None
    return failure


# --------------------------------------------------------------------------- entry point


def _empty_value(task: str, keys: list[str], roles: dict[str, list[str]]) -> Any:
    if task == OPENIE:
        return []
    if task == MRC:
        return {"answer": ""}
    if task == TC:
        return {"label": ""}
    return {k: ({} if task == KGE else []) for k in keys}


def _strip_fences(text: str) -> tuple[str, str]:
    m = _FENCE.search(text)
    if m is None:
        return text.strip(), ""
    return m.group(2).strip(), m.group(1).lower()


def parse_output(task: str, text: str, schema: list | None = None) -> Parsed:
    """Read a model's answer ``text`` for ``task`` into the task's canonical structure.

    Never raises: whatever goes wrong gives ``ok=False``, the reason in ``error`` and
    an empty (schema-filled) value.
    """
    try:
        return _parse(task, text, schema)
    except Exception as exc:  # the evaluation must go on whatever a model wrote
        try:
            keys, roles = _schema_info(task, schema if isinstance(schema, list) else None)
            empty = _empty_value(task, keys, roles)
        except Exception:
            empty = None
        return Parsed(empty, "unknown", False, f"parser error: {type(exc).__name__}: {exc}")


def _parse(task: str, text: Any, schema: list | None) -> Parsed:
    if task not in (*GROUPED_TASKS, OPENIE, MRC, TC):
        raise ValueError(f"no parser for task {task!r}")
    keys, roles = _schema_info(task, schema)
    empty = _empty_value(task, keys, roles)
    if not isinstance(text, str):
        return Parsed(empty, "unknown", False, f"output is not text but {type(text).__name__}")
    warnings: list[str] = []
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
        warnings.append(f"output cut to {MAX_CHARS} characters")
    body, lang = _strip_fences(text)
    if task in (MRC, TC):
        if not body:
            return Parsed(empty, "empty", False, "empty answer")
        parsed = _parse_choice(task, body, schema)
        if warnings:
            parsed = Parsed(
                parsed.value, parsed.style, parsed.ok, parsed.error, (*warnings, *parsed.warnings)
            )
        return parsed
    if is_empty_token(body) or _NO_ANSWER.match(body):
        return Parsed(empty, "empty", True, None, tuple(warnings))

    schema_keys = set(keys)

    def factory(style: str) -> _Acc:
        return _Acc(task, style, schema_keys)

    order = (_xml, _markdown, _json_block, _lines, _yaml, _json_inline)
    if lang in ("json", "json5", "python", "py"):
        readers = [_json_block, _json_inline]
    elif lang in ("yaml", "yml"):
        readers = [_yaml, _lines]
    elif lang in ("xml", "html"):
        readers = [_xml]
    elif lang in ("markdown", "md"):
        readers = [_markdown, _lines]
    else:
        readers = []
    readers += [r for r in order if r not in readers]
    if body[:1] in "[{":
        readers.remove(_json_block)
        readers.insert(0, _json_block)

    best: tuple[tuple[int, int, int, int], _Acc, Any, dict[str, Any]] | None = None
    for rank, reader in enumerate(readers):
        if reader is _xml and "<" not in body:
            continue
        if reader is _markdown and body.count("|") < 2:
            continue
        if reader is _json_inline and best is not None and best[0][0] > 0:
            continue  # JSON inside prose only when nothing else found answers
        acc = reader(task, body, factory)
        if acc is None:
            continue
        value, unknown, answers, mentioned = _finish(acc, keys, roles)
        score = (answers - acc.penalty, mentioned, -len(unknown), -rank)
        if best is None or score > best[0]:
            best = (score, acc, value, unknown)
        if (
            reader is _json_block
            and body[:1] in "[{"
            and (answers or mentioned)
            and not acc.truncated
        ):
            break
    if best is None:
        return Parsed(
            empty,
            "unknown",
            False,
            f"no {task} answer found in the output",
            tuple(warnings),
        )
    _, acc, value, unknown = best
    warnings.extend(acc.warnings)
    if acc.truncated:
        return Parsed(
            value,
            acc.style,
            False,
            "unbalanced brackets or quotes (truncated output?); kept what was read",
            tuple(warnings),
            unknown,
        )
    return Parsed(value, acc.style, True, None, tuple(warnings), unknown)


__all__ = ["Parsed", "parse_output"]
