"""Format variants: the same answer rendered in many output formats, each stated once.

A basic instruction answers in JSON. The format-variant strategy renders the same
answer as nested or flat JSON, a Python literal or list of tuples, YAML, plain-text
lines (``label: a, b``, Chinese-style ``标签：甲，乙``, ``(subject, relation, object)``
tuples, bullet or numbered lists), a markdown table or XML-style tags; MRC and TC get
natural forms (an option letter, the option text, ``B. text``, ``Answer: ...``, the
label word). Every style has several layouts (spacing, bullet markers, separators)
and several spellings of an empty result (``""``, ``NAN``, ``[]``, ``None``,
``null``, ``无``, ``-``).

**One specification per style.** ``FORMAT_STYLES`` (below) pairs each style with its
renderer and its strict reader; ``assets/templates/formats.json`` holds, per style and
layout, the renderer's settings (indent, marker, separators) next to the sentence the
instruction states for that layout, in English and Chinese. The instruction of a
format variant is the basic task sentence followed by that statement
(``format_sentence``), which takes the place of the basic JSON reply sentence: the
reply format is stated once. The statement ends with the style's own rendering of a
skeleton answer in the same layout and empty spelling, so what it shows is what the
output does.

**Strict reading.** ``read_strict`` reads an output exactly as its statement asked:
the style's grammar, then a re-rendering that must give back the very same text (a
numbered list where a ``- `` list was stated, ``Label:`` where ``Answer:`` was
stated, a ``；`` where ``，`` was stated, an extra space: each is an error).
``check_format_rows`` is the error check on every format row (``FORMAT_CHECK``): the
instruction states the row's own layout, and the output reads back strictly into its
basic answer. The tolerant ``synthesis.parser`` (for model generations) is not used.

Escaping, so that rendering and reading round-trip:

- JSON, Python, tuples: the language's own string escaping.
- YAML: a string that YAML would not read back as the same plain scalar is written
  double-quoted with JSON escapes.
- Plain-text styles and markdown cells: a value that is empty, equals an empty
  spelling, has leading or trailing whitespace, starts with a quote, bullet or bracket
  character, or contains a separator (``,;:()[]{}|``, their Chinese forms, ``、``, a
  line break or a tab) is written double-quoted with JSON escapes.
- XML: ``& < > " '`` as character references. Leading and trailing whitespace of a
  value is not preserved in XML.

Restrictions that hold for every style: a value (span, label, role) that equals an
empty spelling once stripped and case-folded (``""``, ``nan``, ``none``, ``null``,
``[]``, ``{}``, ``无``, ``-``, ``n/a``, ...) is read as empty; a multi-valued argument
is a list of at least two values (a single value is a string, as in the basic
outputs); styles that list only non-empty answers (``json_flat``, ``tuples``,
``tuple_lines``) need the instruction's schema to restore empty labels. EEA events
with no roles and KGE entities with no attributes are only kept by the structured
styles (JSON, Python, YAML) and by ``kv_lines``; an EE event with neither trigger
nor argument reads as no event in the flat and text styles. MRC/TC natural forms
render one answer (lists only through JSON/Python or option letters ``A, C``).
"""

from __future__ import annotations

import ast
import hashlib
import html
import json
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from hum_dagster.paths import TEMPLATES_DIR
from hum_dagster.records import EE, EEA, EET, KGE, MRC, NER, OPENIE, RE, SPO, TC, Problem
from hum_dagster.store.jsonfile import read_json_object
from hum_dagster.synthesis.chunking import record_rng
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS
from hum_dagster.synthesis.outputs import NAN, output_key
from hum_dagster.synthesis.templates import Templates, join_parts, load_templates

STRATEGY = "format_variants"
GROUPED_TASKS = (NER, EET, RE, SPO, EE, EEA, KGE)
STRUCTURED_TASKS = (*GROUPED_TASKS, OPENIE)
CHOICE_TASKS = (MRC, TC)
FORMAT_TASKS = (*STRUCTURED_TASKS, *CHOICE_TASKS)
WORDING_PATH = TEMPLATES_DIR / "formats.json"

# Empty-result spellings: id -> the text written (``blank`` is the empty string).
EMPTY_SPELLINGS: dict[str, str] = {
    "blank": "",
    "NAN": "NAN",
    "[]": "[]",
    "None": "None",
    "null": "null",
    "无": "无",
    "-": "-",
}
ZH_ONLY_EMPTIES = frozenset({"无"})
# What the parser reads as "nothing" (after strip, trailing ./。 removed, casefold).
EMPTY_WORDS = frozenset(
    {"", "nan", "none", "null", "nil", "[]", "{}", "()", "无", "空", "没有", "-", "--", "—", "n/a"}
)

# Flat answers: one tuple per answer, in this field order, per task.
FLAT_FIELDS: dict[str, tuple[str, ...]] = {
    NER: ("entity", "type"),
    EET: ("trigger", "event_type"),
    RE: ("subject", "relation", "object"),
    SPO: ("subject", "predicate", "object"),
    EE: ("event_type", "trigger", "arguments"),
    EEA: ("event_type", "arguments"),
    KGE: ("entity_type", "entity", "attributes"),
    OPENIE: ("subject", "predicate", "object", "extra"),
}
# Position of the label (the output key) in a flat tuple.
LABEL_INDEX: dict[str, int] = {NER: 1, EET: 1, RE: 1, SPO: 1, EE: 0, EEA: 0, KGE: 0}
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_empty_token(text: str) -> bool:
    """True when ``text`` spells "nothing" (``NAN``, ``None``, ``[]``, ``无``, ...)."""
    return text.strip().rstrip(".。").casefold() in EMPTY_WORDS or not text.strip()


# --------------------------------------------------------------------------- quoting

_JQ_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _esc(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def jq(text: str) -> str:
    """JSON double-quoted string, also safe inside YAML (no raw C1/line separators)."""
    out = json.dumps(text, ensure_ascii=False)
    if _JQ_ESCAPE.search(out):
        out = _JQ_ESCAPE.sub(_esc, out)
    return out


_TEXT_UNSAFE = re.compile(
    r"[,;:()\[\]{}|\\\n\r\t\x0b\x0c\x1c-\x1f\x85\u2028\u2029，；：（）【】、]"
    r"|^[\s\"'“‘`「\-*+•#>]|\s$|^\d+[.)、]"
)


_TQ_CACHE: dict[str, str] = {}


def tq_label(text: str) -> str:
    """``tq`` for labels and roles, which repeat: cached."""
    found = _TQ_CACHE.get(text)
    if found is None:
        if len(_TQ_CACHE) > 50_000:
            _TQ_CACHE.clear()
        found = _TQ_CACHE[text] = tq(text)
    return found


def tq(text: str) -> str:
    """A value for the plain-text styles: as is when safe, else JSON double-quoted."""
    if _TEXT_UNSAFE.search(text):
        return jq(text)
    # Safe text has no surrounding whitespace; empty words are at most 4 characters.
    if (len(text) <= 4 or text[-1] in ".。") and is_empty_token(text):
        return jq(text)
    return text


_YAML_UNSAFE = re.compile(
    r"^[\s\-?:,\[\]{}#&*!|>'\"%@`~=.+0-9]|[:#,\[\]{}]|\s$|[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]"
)
_YAML_WORDS = frozenset(
    [
        "y",
        "n",
        "yes",
        "no",
        "on",
        "off",
        "true",
        "false",
        "null",
        "~",
        "nan",
        "inf",
        ".nan",
        ".inf",
        "<<",
    ]
)


def yq(text: str) -> str:
    """A YAML scalar that ``yaml.safe_load`` reads back as exactly ``text``."""
    if _YAML_UNSAFE.search(text) or text.casefold() in _YAML_WORDS or is_empty_token(text):
        return jq(text)
    return text


def _x(text: str) -> str:
    return html.escape(text, quote=True)


# --------------------------------------------------------------------------- flat rows


def flat_rows(task: str, value: Any) -> list[tuple[Any, ...]]:
    """The answers of a canonical value as flat tuples (``FLAT_FIELDS`` order).

    OpenIE tuples are ``(subject, predicate, object, *extra)``; empty labels give no
    tuple.
    """
    rows: list[tuple[Any, ...]] = []
    if task in (NER, EET):
        for label, spans in value.items():
            rows.extend((span, label) for span in spans)
    elif task in (RE, SPO):
        for label, pairs in value.items():
            rows.extend((p["subject"], label, p["object"]) for p in pairs)
    elif task == EE:
        for label, events in value.items():
            rows.extend((label, ev["trigger"], ev["arguments"]) for ev in events)
    elif task == EEA:
        for label, events in value.items():
            rows.extend((label, ev) for ev in events)
    elif task == KGE:
        for label, entities in value.items():
            rows.extend((label, ent, attrs) for ent, attrs in entities.items())
    elif task == OPENIE:
        for t in value:
            rows.append((t["subject"], t["predicate"], t["object"], *(t.get("extra") or ())))
    else:
        raise ValueError(f"task {task} has no flat form")
    return rows


def empty_labels(task: str, value: Any) -> list[str]:
    if task == OPENIE or not isinstance(value, dict):
        return []
    return [label for label, v in value.items() if not v]


def _is_nan(x: Any) -> bool:
    return type(x) is str and x == NAN


def _respell(task: str, value: Any, label_empty: Any, arg_empty: Any) -> Any:
    """A copy with empty labels as ``label_empty`` (a callable of the task, or a value)
    and NAN arguments as ``arg_empty``."""
    if task == OPENIE or not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for label, v in value.items():
        if not v:
            out[label] = label_empty(task) if callable(label_empty) else label_empty
        elif task == EE and not _is_nan(arg_empty):
            out[label] = [
                {
                    "trigger": ev["trigger"],
                    "arguments": {
                        r: (arg_empty if a == NAN else a) for r, a in ev["arguments"].items()
                    },
                }
                for ev in v
            ]
        elif task == EEA and not _is_nan(arg_empty):
            out[label] = [{r: (arg_empty if a == NAN else a) for r, a in ev.items()} for ev in v]
        else:
            out[label] = v
    return out


def _container(task: str) -> Any:
    return {} if task == KGE else []


# --------------------------------------------------------------------------- renderers


class RenderContext(NamedTuple):
    """What a renderer (and a strict reader) needs besides the answer: empty spelling
    id, layout number, language, (MRC) the options, and the layout's settings from the
    style's specification (``assets/templates/formats.json``)."""

    empty: str = "NAN"
    layout: int = 0
    language: str = "en"
    options: tuple[str, ...] = ()
    params: Mapping[str, Any] = {}


def _whole_empty(empty: str) -> str:
    return EMPTY_SPELLINGS[empty]


# JSON / Python -------------------------------------------------------------

_encode = json.JSONEncoder(ensure_ascii=False).encode
_encode_indent = json.JSONEncoder(ensure_ascii=False, indent=2).encode

_JSON_EMPTY = {"blank": "", "NAN": NAN, "[]": _container, "null": None}
_JSON_ARG = {"blank": "", "NAN": NAN, "[]": [], "null": None}
_PY_EMPTY = {"blank": "", "NAN": NAN, "[]": _container, "None": None}
_PY_ARG = {"blank": "", "NAN": NAN, "[]": [], "None": None}


def _render_json(task: str, value: Any, ctx: RenderContext) -> str:
    if task == OPENIE and not value:
        return _whole_empty(ctx.empty)
    if task in GROUPED_TASKS:
        value = _respell(task, value, _JSON_EMPTY[ctx.empty], _JSON_ARG[ctx.empty])
    if ctx.params.get("indent"):
        return _encode_indent(value)
    return _encode(value)


def _render_python(task: str, value: Any, ctx: RenderContext) -> str:
    if task == OPENIE and not value:
        return _whole_empty(ctx.empty)
    if task in GROUPED_TASKS:
        value = _respell(task, value, _PY_EMPTY[ctx.empty], _PY_ARG[ctx.empty])
    return repr(value)


_FLAT_JSON_WHOLE = ("blank", "NAN", "[]", "null", "None", "无")


def _render_json_flat(task: str, value: Any, ctx: RenderContext) -> str:
    rows = flat_rows(task, _respell(task, value, _container, _JSON_ARG.get(ctx.empty, NAN)))
    if not rows:
        return _whole_empty(ctx.empty)
    fields = FLAT_FIELDS[task]
    dicts = [dict(zip(fields, row, strict=True)) for row in rows]
    if ctx.params.get("one_per_line"):
        return "[\n" + ",\n".join("  " + _encode(d) for d in dicts) + "\n]"
    return _encode(dicts)


def _render_tuples(task: str, value: Any, ctx: RenderContext) -> str:
    rows = flat_rows(task, _respell(task, value, _container, _PY_ARG.get(ctx.empty, NAN)))
    if not rows:
        return _whole_empty(ctx.empty)
    if ctx.params.get("one_per_line"):
        return "[\n" + ",\n".join("    " + repr(row) for row in rows) + ",\n]"
    return repr(rows)


# Plain text ----------------------------------------------------------------


def _text_list(values: Sequence[str], sep: str) -> str:
    return "[" + sep.join(tq(v) for v in values) + "]"


def _argmap(args: Mapping[str, Any], token: str, colon: str, sep: str) -> str:
    parts = []
    for role, v in args.items():
        if v == NAN:
            text = token
        elif isinstance(v, list):
            text = _text_list(v, sep)
        else:
            text = tq(v)
        key = tq_label(role)
        parts.append(key + colon + text if text else key + colon.rstrip())
    return "{" + sep.join(parts) + "}"


def _trigger(trigger: str, token: str) -> str:
    return token if trigger == NAN else tq(trigger)


def _items(task: str, label_value: Any, token: str, colon: str, sep: str) -> list[str]:
    """The answers under one label, each as text (kv_lines, bullets)."""
    if task in (NER, EET):
        return [tq(s) for s in label_value]
    if task in (RE, SPO):
        return ["(" + tq(p["subject"]) + sep + tq(p["object"]) + ")" for p in label_value]
    if task == EE:
        out = []
        for ev in label_value:
            trig = _trigger(ev["trigger"], token)
            args = _argmap(ev["arguments"], token, colon, sep)
            out.append(trig + " " + args if trig else args)
        return out
    if task == EEA:
        return [_argmap(ev, token, colon, sep) for ev in label_value]
    if task == KGE:
        return [
            tq(ent) + " " + _argmap(attrs, token, colon, sep) for ent, attrs in label_value.items()
        ]
    raise ValueError(task)


def _kv_punct(ctx: RenderContext) -> tuple[str, str, str, str]:
    p = ctx.params
    return p["key_colon"], p["item_sep"], p["colon"], p["sep"]


def _render_kv(task: str, value: Any, ctx: RenderContext) -> str:
    key_colon, item_sep, colon, sep = _kv_punct(ctx)
    token = EMPTY_SPELLINGS[ctx.empty]
    lines = []
    for label, v in value.items():
        items = _items(task, v, token, colon, sep) if v else []
        body = item_sep.join(items) if items else token
        key = tq_label(label)
        lines.append(key + key_colon + body if body else key + key_colon.rstrip())
    return "\n".join(lines)


def _cell(value: Any, token: str, sep: str = ", ") -> str:
    if isinstance(value, dict):
        return _argmap(value, token, ": ", sep)
    if isinstance(value, list):
        return sep.join(tq(v) for v in value)
    return tq(value)


def _tuple_text(task: str, row: tuple[Any, ...], token: str) -> str:
    if task in (NER, EET):
        return "(" + tq(row[0]) + ", " + tq_label(row[1]) + ")"
    if task in (RE, SPO):
        return "(" + tq(row[0]) + ", " + tq_label(row[1]) + ", " + tq(row[2]) + ")"
    if task == EE:
        cells = [tq_label(row[0]), _trigger(row[1], token), _cell(row[2], token)]
    elif task == EEA:
        cells = [tq_label(row[0]), _cell(row[1], token)]
    elif task == KGE:
        cells = [tq_label(row[0]), tq(row[1]), _cell(row[2], token)]
    else:  # OpenIE
        cells = [tq(c) for c in row]
    return "(" + ", ".join(cells) + ")"


def _numbered(lines: list[str]) -> list[str]:
    return [f"{i}. {line}" for i, line in enumerate(lines, 1)]


def _render_tuple_lines(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    rows = flat_rows(task, value)
    if not rows:
        return token
    lines = [_tuple_text(task, row, token) for row in rows]
    return "\n".join(_numbered(lines) if ctx.params.get("numbered") else lines)


def _bullet_lines(task: str, value: Any, token: str) -> list[str]:
    if task == OPENIE:
        return [_tuple_text(task, row, token) for row in flat_rows(task, value)]
    lines = []
    for label, v in value.items():
        key = tq_label(label) + ":"
        if v:
            lines.extend(key + " " + item for item in _items(task, v, token, ": ", ", "))
        else:
            lines.append(key + " " + token if token else key)
    return lines


def _render_bullets(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    lines = _bullet_lines(task, value, token)
    if task == OPENIE and not lines:
        return token
    marker = ctx.params.get("marker")
    if marker is None:
        return "\n".join(_numbered(lines))
    return "\n".join(marker + line for line in lines)


# Markdown table ----------------------------------------------------------


def _md_cell(text: str) -> str:
    # A value with a pipe is already quoted by tq; a quoted value may still hold one.
    return text.replace("|", "\\|") if "|" in text else text


def _markdown_cells(task: str, value: Any, token: str) -> list[list[str]]:
    fields = FLAT_FIELDS[task]
    rows: list[list[str]] = []
    for row in flat_rows(task, value):
        if task == OPENIE:
            cells = [tq(row[0]), tq(row[1]), tq(row[2]), _cell(list(row[3:]), token)]
        elif task == EE:
            cells = [tq_label(row[0]), _trigger(row[1], token), _cell(row[2], token)]
        elif task in (NER, EET):
            cells = [tq(row[0]), tq_label(row[1])]
        elif task in (RE, SPO):
            cells = [tq(row[0]), tq_label(row[1]), tq(row[2])]
        elif task == EEA:
            cells = [tq_label(row[0]), _cell(row[1], token)]
        else:  # KGE
            cells = [tq_label(row[0]), tq(row[1]), _cell(row[2], token)]
        rows.append(cells)
    if task == OPENIE:
        if not rows and token:
            rows.append([token] * len(fields))
    else:
        label_at = LABEL_INDEX[task]
        for label in empty_labels(task, value):
            cells = [token] * len(fields)
            cells[label_at] = tq_label(label)
            rows.append(cells)
    return rows


def _render_markdown(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    names = _field_names(task, ctx.language)
    rows = _markdown_cells(task, value, token)
    if not ctx.params.get("padded", True):
        lines = ["|" + "|".join(names) + "|", "|" + "|".join(":--" for _ in names) + "|"]
        lines.extend("|" + "|".join(_md_cell(c) for c in cells) + "|" for cells in rows)
    else:
        lines = ["| " + " | ".join(names) + " |", "| " + " | ".join("---" for _ in names) + " |"]
        lines.extend("| " + " | ".join(_md_cell(c) for c in cells) + " |" for cells in rows)
    return "\n".join(lines)


# YAML ---------------------------------------------------------------------


class _Raw(str):
    """A YAML token written as is (an empty spelling)."""

    __slots__ = ()


_YAML_EMPTY = {
    "blank": _Raw(""),
    "NAN": _Raw("NAN"),
    "null": _Raw("null"),
    "None": _Raw("None"),
    "无": _Raw("无"),
}


def _yaml_scalar(v: Any) -> str:
    return v if isinstance(v, _Raw) else yq(v)


def _yaml_lines(v: Any, pad: int, seq_pad: int, out: list[str]) -> None:
    """Emit ``v`` (a non-empty dict or list) at indentation ``pad``."""
    sp = " " * pad
    if isinstance(v, dict):
        for k, x in v.items():
            key = sp + yq(k) + ":"
            if isinstance(x, str):
                s = _yaml_scalar(x)
                out.append(key + " " + s if s else key)
            elif not x:
                out.append(key + (" {}" if isinstance(x, dict) else " []"))
            else:
                out.append(key)
                _yaml_lines(x, pad + (seq_pad if isinstance(x, list) else 2), seq_pad, out)
        return
    for x in v:
        if isinstance(x, str):
            out.append(sp + "- " + _yaml_scalar(x))
        elif not x:
            out.append(sp + "- " + ("{}" if isinstance(x, dict) else "[]"))
        elif isinstance(x, dict):
            start = len(out)
            _yaml_lines(x, pad + 2, seq_pad, out)
            out[start] = sp + "- " + out[start][pad + 2 :]
        else:
            out.append(sp + "-")
            _yaml_lines(x, pad + 2, seq_pad, out)


def _render_yaml(task: str, value: Any, ctx: RenderContext) -> str:
    if task == OPENIE and not value:
        return _whole_empty(ctx.empty)
    if task in GROUPED_TASKS:
        empty = _container if ctx.empty == "[]" else _YAML_EMPTY[ctx.empty]
        arg = [] if ctx.empty == "[]" else _YAML_EMPTY[ctx.empty]
        value = _respell(task, value, empty, arg)
        if not value:
            return "{}"
    out: list[str] = []
    _yaml_lines(value, 0, int(ctx.params.get("seq_indent", 2)), out)
    return "\n".join(out)


# XML ----------------------------------------------------------------------

_XML_TAG = {
    NER: "entity",
    EET: "event",
    RE: "relation",
    SPO: "relation",
    EE: "event",
    EEA: "event",
    KGE: "entity",
}


def _xml_args(args: Mapping[str, Any], token: str, tag: str, attr: str) -> str:
    parts = []
    for role, v in args.items():
        open_ = f'<{tag} {attr}="{_x(role)}"'
        if v == NAN:
            parts.append(f"{open_}>{_x(token)}</{tag}>" if token else open_ + "/>")
        else:
            for one in v if isinstance(v, list) else (v,):
                parts.append(f"{open_}>{_x(one)}</{tag}>")
    return "".join(parts)


def _render_xml(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    lines: list[str] = []
    if task == OPENIE:
        for t in value:
            extra = "".join(f"<extra>{_x(e)}</extra>" for e in t.get("extra") or ())
            lines.append(
                f"<triple><subject>{_x(t['subject'])}</subject>"
                f"<predicate>{_x(t['predicate'])}</predicate>"
                f"<object>{_x(t['object'])}</object>{extra}</triple>"
            )
        if not lines:
            return token
    else:
        tag = _XML_TAG[task]
        for label, v in value.items():
            open_ = f'<{tag} type="{_x(label)}"'
            if not v:
                lines.append(f"{open_}>{_x(token)}</{tag}>" if token else open_ + "/>")
            elif task in (NER, EET):
                lines.extend(f"{open_}>{_x(s)}</{tag}>" for s in v)
            elif task in (RE, SPO):
                lines.extend(
                    f"{open_}><subject>{_x(p['subject'])}</subject>"
                    f"<object>{_x(p['object'])}</object></{tag}>"
                    for p in v
                )
            elif task == EE:
                for ev in v:
                    trig = ev["trigger"]
                    trig_text = token if trig == NAN else trig
                    trig_xml = f"<trigger>{_x(trig_text)}</trigger>" if trig_text else "<trigger/>"
                    args = _xml_args(ev["arguments"], token, "argument", "role")
                    lines.append(f"{open_}>{trig_xml}{args}</{tag}>")
            elif task == EEA:
                for ev in v:
                    lines.append(f"{open_}>{_xml_args(ev, token, 'argument', 'role')}</{tag}>")
            else:  # KGE
                for ent, attrs in v.items():
                    body = _xml_args(attrs, token, "attribute", "name")
                    lines.append(f'{open_} name="{_x(ent)}">{body}</{tag}>')
    if ctx.params.get("wrapped"):
        return "<answer>\n" + "\n".join(lines) + "\n</answer>"
    return "\n".join(lines)


# MRC / TC -----------------------------------------------------------------


def _answers(value: Any) -> list[str]:
    answer = value.get("answer") if isinstance(value, dict) else None
    if isinstance(answer, list):
        return [a for a in answer if isinstance(a, str)]
    return [answer] if isinstance(answer, str) else []


def _letters(value: Any, options: Sequence[str]) -> list[str] | None:
    answers = _answers(value)
    if not answers or not options or len(options) > len(OPTION_LETTERS):
        return None
    letters = []
    for a in answers:
        if a not in options:
            return None
        letters.append(OPTION_LETTERS[list(options).index(a)])
    return letters


def _render_option_letter(task: str, value: Any, ctx: RenderContext) -> str:
    letters = _letters(value, ctx.options)
    if letters is None:
        raise ValueError("option_letter needs answers among the options")
    return ", ".join(letters)


def _render_letter_text(task: str, value: Any, ctx: RenderContext) -> str:
    letters = _letters(value, ctx.options)
    if letters is None or len(letters) != 1:
        raise ValueError("letter_text needs one answer among the options")
    return f"{letters[0]}. {_answers(value)[0]}"


def _single_text(task: str, value: Any) -> str:
    if task == TC:
        return value["label"]
    answers = _answers(value)
    if len(answers) != 1:
        raise ValueError("a natural-text answer needs exactly one answer")
    return answers[0]


def _render_text(task: str, value: Any, ctx: RenderContext) -> str:
    return _single_text(task, value)


def _answer_prefix(task: str, ctx: RenderContext) -> str:
    forms = ctx.params["prefix"][TC if task == TC else MRC]
    return forms.get(ctx.language) or forms["en"]


def _render_answer_line(task: str, value: Any, ctx: RenderContext) -> str:
    return _answer_prefix(task, ctx) + _single_text(task, value)


# --------------------------------------------------------------------------- strict readers
#
# Each reader parses its style's grammar into the canonical value; ``read_strict`` then
# renders that value again with the same layout and empty spelling and requires the
# very same text, so a reader accepts exactly what its renderer writes.


class StrictFormatError(ValueError):
    """An output that is not written as its stated format asks."""


_DECODE_STRING = json.JSONDecoder().raw_decode


class _Cursor:
    """A position in one line of a plain-text answer."""

    __slots__ = ("s", "i")

    def __init__(self, s: str):
        self.s = s
        self.i = 0

    def done(self) -> bool:
        return self.i >= len(self.s)

    def at(self, lit: str) -> bool:
        return self.s.startswith(lit, self.i)

    def expect(self, lit: str) -> None:
        if not self.at(lit):
            got = self.s[self.i : self.i + len(lit) + 8] or "the end of the line"
            raise StrictFormatError(f"expected {lit!r} at {got!r}")
        self.i += len(lit)

    def scalar(self, stops: Sequence[str]) -> tuple[str, bool]:
        """A JSON double-quoted string, or bare text up to the first of ``stops`` (or
        the end); returns (text, quoted)."""
        if self.at('"'):
            try:
                value, end = _DECODE_STRING(self.s, self.i)
            except ValueError as exc:
                raise StrictFormatError(f"bad quoted value: {exc}") from None
            if not isinstance(value, str):
                raise StrictFormatError("a quoted value must be a string")
            self.i = end
            return value, True
        end = len(self.s)
        for stop in stops:
            j = self.s.find(stop, self.i)
            if 0 <= j < end:
                end = j
        value = self.s[self.i : end]
        self.i = end
        return value, False


def _bare_empty(value: str, quoted: bool, token: str) -> bool:
    return not quoted and value == token


def _read_argmap(cur: _Cursor, token: str, colon: str, sep: str) -> dict[str, Any]:
    cur.expect("{")
    args: dict[str, Any] = {}
    key_stop = colon.rstrip() or colon
    while not cur.at("}"):
        if args:
            cur.expect(sep)
        role, _ = cur.scalar([key_stop, "}"])
        if cur.at(colon):
            cur.expect(colon)
        else:
            cur.expect(key_stop)
        if cur.at("["):
            cur.expect("[")
            values = []
            while not cur.at("]"):
                if values:
                    cur.expect(sep)
                v, _ = cur.scalar([sep, "]"])
                values.append(v)
            cur.expect("]")
            if not values and token != "[]":
                raise StrictFormatError(f"an empty list for role {role!r}")
            args[role] = values if values else NAN  # "[]" is the spelling of "not mentioned"
        else:
            v, quoted = cur.scalar([sep, "}"])
            args[role] = NAN if _bare_empty(v, quoted, token) else v
        if cur.done():
            raise StrictFormatError("unclosed {")
    cur.expect("}")
    return args


def _read_item(task: str, cur: _Cursor, token: str, colon: str, sep: str, stop: str) -> Any:
    """One answer as ``_items`` writes it."""
    if task in (NER, EET):
        value, _ = cur.scalar([stop] if stop else [])
        return value
    if task in (RE, SPO):
        cur.expect("(")
        s, _ = cur.scalar([sep, ")"])
        cur.expect(sep)
        o, _ = cur.scalar([")"])
        cur.expect(")")
        return {"subject": s, "object": o}
    if task == EE:
        trigger = NAN
        if not cur.at("{"):
            t, quoted = cur.scalar([" {"])
            trigger = NAN if _bare_empty(t, quoted, token) else t
            cur.expect(" ")
        return {"trigger": trigger, "arguments": _read_argmap(cur, token, colon, sep)}
    if task == EEA:
        return _read_argmap(cur, token, colon, sep)
    if task == KGE:
        entity, _ = cur.scalar([" {"])
        cur.expect(" ")
        return (entity, _read_argmap(cur, token, colon, sep))
    raise StrictFormatError(f"no item grammar for {task}")


def _add(task: str, value: dict[str, Any], label: str, item: Any) -> None:
    if task == KGE:
        entity, attrs = item
        value.setdefault(label, {})[entity] = attrs
    else:
        value.setdefault(label, []).append(item)


def _with_keys(task: str, value: dict[str, Any], keys: Sequence[str] | None) -> dict[str, Any]:
    for key in keys or ():
        value.setdefault(key, _container(task))
    return value


def _lines(text: str) -> list[str]:
    return text.split("\n") if text else []


def _read_kv(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    key_colon, item_sep, colon, sep = _kv_punct(ctx)
    token = EMPTY_SPELLINGS[ctx.empty]
    value: dict[str, Any] = {}
    for line in _lines(text):
        cur = _Cursor(line)
        label, _ = cur.scalar([key_colon.rstrip()])
        if label in value:
            raise StrictFormatError(f"label {label!r} has more than one line")
        if cur.at(key_colon):
            cur.expect(key_colon)
        else:
            cur.expect(key_colon.rstrip())
        value[label] = _container(task)
        if cur.done() or (cur.s[cur.i :] == token):
            continue
        while True:
            _add(task, value, label, _read_item(task, cur, token, colon, sep, item_sep))
            if cur.done():
                break
            cur.expect(item_sep)
    return value


def _read_flat_cells(task: str, cur: _Cursor, token: str) -> tuple[Any, ...]:
    """The cells of one ``_tuple_text`` after its "("."""
    if task in (NER, EET):
        a, _ = cur.scalar([", "])
        cur.expect(", ")
        b, _ = cur.scalar([")"])
        return (a, b)
    if task in (RE, SPO):
        a, _ = cur.scalar([", "])
        cur.expect(", ")
        b, _ = cur.scalar([", "])
        cur.expect(", ")
        c, _ = cur.scalar([")"])
        return (a, b, c)
    if task == EE:
        label, _ = cur.scalar([", "])
        cur.expect(", ")
        t, quoted = cur.scalar([", "])
        cur.expect(", ")
        return (
            label,
            NAN if _bare_empty(t, quoted, token) else t,
            _read_argmap(cur, token, ": ", ", "),
        )
    if task == EEA:
        label, _ = cur.scalar([", "])
        cur.expect(", ")
        return (label, _read_argmap(cur, token, ": ", ", "))
    if task == KGE:
        label, _ = cur.scalar([", "])
        cur.expect(", ")
        entity, _ = cur.scalar([", "])
        cur.expect(", ")
        return (label, entity, _read_argmap(cur, token, ": ", ", "))
    cells = []  # OpenIE
    while True:
        v, _ = cur.scalar([", ", ")"])
        cells.append(v)
        if cur.at(")"):
            return tuple(cells)
        cur.expect(", ")


def _read_tuple_text(task: str, line: str, token: str) -> tuple[Any, ...]:
    cur = _Cursor(line)
    cur.expect("(")
    row = _read_flat_cells(task, cur, token)
    cur.expect(")")
    if not cur.done():
        raise StrictFormatError(f"text after the tuple: {line[cur.i :][:20]!r}")
    return row


def _ungroup(task: str, rows: Iterable[Sequence[Any]], keys: Sequence[str] | None) -> Any:
    """Flat tuples (``FLAT_FIELDS`` order) back into the grouped value."""
    if task == OPENIE:
        triples = []
        for row in rows:
            if len(row) < 3:
                raise StrictFormatError(f"an OpenIE tuple needs 3 fields, got {len(row)}")
            t = {"subject": row[0], "predicate": row[1], "object": row[2]}
            if len(row) > 3:
                t["extra"] = list(row[3:])
            triples.append(t)
        return triples
    n = len(FLAT_FIELDS[task])
    value: dict[str, Any] = {}
    for row in rows:
        if len(row) != n:
            raise StrictFormatError(f"a {task} tuple has {n} fields, got {len(row)}")
        if task in (NER, EET):
            _add(task, value, row[1], row[0])
        elif task in (RE, SPO):
            _add(task, value, row[1], {"subject": row[0], "object": row[2]})
        elif task == EE:
            _add(task, value, row[0], {"trigger": row[1], "arguments": row[2]})
        elif task == EEA:
            _add(task, value, row[0], row[1])
        else:
            _add(task, value, row[0], (row[1], row[2]))
    return _with_keys(task, value, keys)


def _number_off(lines: list[str]) -> list[str]:
    out = []
    for i, line in enumerate(lines, 1):
        prefix = f"{i}. "
        if not line.startswith(prefix):
            raise StrictFormatError(f"line {i} should start with {prefix!r}: {line[:30]!r}")
        out.append(line[len(prefix) :])
    return out


def _read_tuple_lines(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    token = EMPTY_SPELLINGS[ctx.empty]
    if text == token:
        return _ungroup(task, [], keys)
    lines = _lines(text)
    if ctx.params.get("numbered"):
        lines = _number_off(lines)
    return _ungroup(task, [_read_tuple_text(task, line, token) for line in lines], keys)


def _read_bullets(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    token = EMPTY_SPELLINGS[ctx.empty]
    if task == OPENIE and text == token:
        return []
    lines = _lines(text)
    marker = ctx.params.get("marker")
    if marker is None:
        lines = _number_off(lines)
    else:
        for line in lines:
            if not line.startswith(marker):
                raise StrictFormatError(f"line should start with {marker!r}: {line[:30]!r}")
        lines = [line[len(marker) :] for line in lines]
    if task == OPENIE:
        return _ungroup(task, [_read_tuple_text(task, line, token) for line in lines], keys)
    value: dict[str, Any] = {}
    for line in lines:
        cur = _Cursor(line)
        label, _ = cur.scalar([":"])
        cur.expect(":")
        rest = line[cur.i :]
        if rest in ("", " " + token):
            value.setdefault(label, _container(task))
            continue
        cur.expect(" ")
        value.setdefault(label, _container(task))
        _add(task, value, label, _read_item(task, cur, token, ": ", ", ", ""))
        if not cur.done():
            raise StrictFormatError(f"text after the answer: {line[cur.i :][:20]!r}")
    return value


_PIPE = re.compile(r"(?<!\\)\|")


def _md_row(line: str, padded: bool) -> list[str]:
    if not (line.startswith("|") and line.endswith("|")) or len(line) < 2:
        raise StrictFormatError(f"a table row starts and ends with '|': {line[:30]!r}")
    cells = _PIPE.split(line[1:-1])
    if padded:
        for c in cells:
            if not (c.startswith(" ") and c.endswith(" ")) or len(c) < 2:
                raise StrictFormatError(f"cells are padded with one space: {line[:40]!r}")
        cells = [c[1:-1] for c in cells]
    return [c.replace("\\|", "|") for c in cells]


def _md_scalar(cell: str) -> tuple[str, bool]:
    cur = _Cursor(cell)
    value, quoted = cur.scalar([])
    if not cur.done():
        raise StrictFormatError(f"text after a quoted cell: {cell[:30]!r}")
    return value, quoted


def _md_argmap(cell: str, token: str) -> dict[str, Any]:
    cur = _Cursor(cell)
    args = _read_argmap(cur, token, ": ", ", ")
    if not cur.done():
        raise StrictFormatError(f"text after the arguments: {cell[:30]!r}")
    return args


def _read_markdown(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    token = EMPTY_SPELLINGS[ctx.empty]
    padded = bool(ctx.params.get("padded", True))
    lines = _lines(text)
    if len(lines) < 2:
        raise StrictFormatError("a table needs a header row and a separator row")
    n = len(FLAT_FIELDS[task])
    rows = []
    empty_labels_found: list[str] = []
    for line in lines[2:]:
        cells = _md_row(line, padded)
        if len(cells) != n:
            raise StrictFormatError(f"a row has {len(cells)} cells, the table {n} columns")
        if task == OPENIE:
            if all(c == token for c in cells) and token:
                continue
            extra = [] if cells[3] == "" else _Cursor(cells[3])
            values = [_md_scalar(c)[0] for c in cells[:3]]
            if extra != []:
                cur = extra
                while True:
                    v, _ = cur.scalar([", "])
                    values.append(v)
                    if cur.done():
                        break
                    cur.expect(", ")
            rows.append(tuple(values))
            continue
        label_at = LABEL_INDEX[task]
        others = [c for i, c in enumerate(cells) if i != label_at]
        if all(c == token for c in others):
            empty_labels_found.append(_md_scalar(cells[label_at])[0])
            continue
        if task in (NER, EET):
            rows.append((_md_scalar(cells[0])[0], _md_scalar(cells[1])[0]))
        elif task in (RE, SPO):
            rows.append(tuple(_md_scalar(c)[0] for c in cells))
        elif task == EE:
            t, quoted = _md_scalar(cells[1])
            rows.append(
                (
                    _md_scalar(cells[0])[0],
                    NAN if _bare_empty(t, quoted, token) else t,
                    _md_argmap(cells[2], token),
                )
            )
        elif task == EEA:
            rows.append((_md_scalar(cells[0])[0], _md_argmap(cells[1], token)))
        else:
            rows.append(
                (_md_scalar(cells[0])[0], _md_scalar(cells[1])[0], _md_argmap(cells[2], token))
            )
    value = _ungroup(task, rows, None)
    if task != OPENIE:
        for label in empty_labels_found:
            value.setdefault(label, _container(task))
    return value


_XML_OPEN = re.compile(r'<(entity|event|relation) type="([^"]*)"(?: name="([^"]*)")?(/>|>)')
_XML_PART = re.compile(
    r'<(subject|object|predicate|trigger|extra|argument|attribute)(?: (?:role|name)="([^"]*)")?(/>|>([^<]*)</\1>)'
)


def _xml_parts(body: str) -> list[tuple[str, str | None, str | None]]:
    """(tag, role or name, text or None for an empty element) of consecutive children."""
    out = []
    i = 0
    while i < len(body):
        m = _XML_PART.match(body, i)
        if m is None:
            raise StrictFormatError(f"unexpected XML at {body[i : i + 30]!r}")
        role = html.unescape(m.group(2)) if m.group(2) is not None else None
        text = html.unescape(m.group(4)) if m.group(3) != "/>" else None
        out.append((m.group(1), role, text))
        i = m.end()
    return out


def _xml_argmap(parts: list[tuple[str, str | None, str | None]], token: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for _, role, text in parts:
        role = role or ""
        if text is None or (text == token and token):
            args[role] = NAN
        elif role in args:
            prev = args[role]
            args[role] = (prev if isinstance(prev, list) else [prev]) + [text]
        else:
            args[role] = text
    return args


def _read_xml(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    token = EMPTY_SPELLINGS[ctx.empty]
    if task == OPENIE and text == token:
        return []  # "if there is no answer at all, reply <token>", unwrapped
    if ctx.params.get("wrapped"):
        if not (text.startswith("<answer>\n") and text.endswith("\n</answer>")):
            raise StrictFormatError("the answer must be wrapped in one <answer> element")
        text = text[len("<answer>\n") : -len("\n</answer>")]
    if task == OPENIE:
        if text == token:
            return []
        triples = []
        for line in _lines(text):
            if not (line.startswith("<triple>") and line.endswith("</triple>")):
                raise StrictFormatError(f"expected a <triple> element: {line[:30]!r}")
            parts = _xml_parts(line[len("<triple>") : -len("</triple>")])
            by_tag: dict[str, list[str]] = {}
            for tag, _, t in parts:
                by_tag.setdefault(tag, []).append(t or "")
            t = {
                "subject": (by_tag.get("subject") or [""])[0],
                "predicate": (by_tag.get("predicate") or [""])[0],
                "object": (by_tag.get("object") or [""])[0],
            }
            if by_tag.get("extra"):
                t["extra"] = by_tag["extra"]
            triples.append(t)
        return triples
    tag = _XML_TAG[task]
    value: dict[str, Any] = {}
    for line in _lines(text):
        m = _XML_OPEN.match(line)
        if m is None or m.group(1) != tag:
            raise StrictFormatError(f"expected a <{tag}> element: {line[:30]!r}")
        label = html.unescape(m.group(2))
        value.setdefault(label, _container(task))
        if m.group(4) == "/>":
            if m.end() != len(line):
                raise StrictFormatError(f"text after the element: {line[:30]!r}")
            continue
        close = f"</{tag}>"
        if not line.endswith(close):
            raise StrictFormatError(f"the element must end with {close}: {line[-30:]!r}")
        body = line[m.end() : -len(close)]
        if token and body == _x(token):  # a label without answer, spelled
            continue
        if task in (NER, EET):
            if "<" in body:
                raise StrictFormatError(f"unexpected markup in {line[:30]!r}")
            span = html.unescape(body)
            if not (span == token and token):
                _add(task, value, label, span)
            continue
        parts = _xml_parts(body)
        if task in (RE, SPO):
            if [p[0] for p in parts] != ["subject", "object"]:
                raise StrictFormatError(f"a relation holds <subject> then <object>: {line[:40]!r}")
            _add(task, value, label, {"subject": parts[0][2] or "", "object": parts[1][2] or ""})
        elif task == EE:
            if not parts or parts[0][0] != "trigger":
                raise StrictFormatError(f"an event starts with <trigger>: {line[:40]!r}")
            t = parts[0][2]
            trigger = NAN if t is None or (t == token and token) else t
            _add(
                task, value, label, {"trigger": trigger, "arguments": _xml_argmap(parts[1:], token)}
            )
        elif task == EEA:
            _add(task, value, label, _xml_argmap(parts, token))
        else:
            name = m.group(3)
            if name is None:
                raise StrictFormatError(f"a KGE entity needs a name: {line[:40]!r}")
            _add(task, value, label, (html.unescape(name), _xml_argmap(parts, token)))
    return value


def _unspell(task: str, data: Any, label_empty: Any, arg_empty: Any) -> Any:
    """A parsed JSON/Python/YAML value with its spelled empties back to canonical ones."""
    if task not in GROUPED_TASKS:
        return data
    if not isinstance(data, dict):
        raise StrictFormatError(f"a {task} answer is an object keyed by label")
    empty = label_empty(task) if callable(label_empty) else label_empty
    out: dict[str, Any] = {}
    for label, v in data.items():
        if not isinstance(label, str):
            raise StrictFormatError(f"label {label!r} is not a string")
        if v == empty and type(v) is type(empty):
            out[label] = _container(task)
        elif task in (EE, EEA) and isinstance(v, list):
            events = []
            for ev in v:
                if not isinstance(ev, dict):
                    raise StrictFormatError(f"an event of {label!r} is not an object")
                args = ev.get("arguments") if task == EE else ev
                if not isinstance(args, dict):
                    raise StrictFormatError(f"the arguments of {label!r} are not an object")
                args = {
                    r: (NAN if a == arg_empty and type(a) is type(arg_empty) else a)
                    for r, a in args.items()
                }
                events.append(
                    {"trigger": ev.get("trigger"), "arguments": args} if task == EE else args
                )
            out[label] = events
        else:
            out[label] = v
    return out


def _read_json(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if task == OPENIE and text == EMPTY_SPELLINGS[ctx.empty]:
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StrictFormatError(f"not JSON: {exc}") from None
    return _unspell(task, data, _JSON_EMPTY.get(ctx.empty), _JSON_ARG.get(ctx.empty))


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise StrictFormatError(f"not a Python literal: {exc}") from None


def _read_python(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if task == OPENIE and text == EMPTY_SPELLINGS[ctx.empty]:
        return []
    return _unspell(task, _literal(text), _PY_EMPTY.get(ctx.empty), _PY_ARG.get(ctx.empty))


def _flat_unspell(task: str, row: Sequence[Any], arg_empty: Any) -> tuple[Any, ...]:
    row = list(row)
    if task in (EE, EEA):
        at = 2 if task == EE else 1
        if at < len(row) and isinstance(row[at], dict):
            row[at] = {
                r: (NAN if a == arg_empty and type(a) is type(arg_empty) else a)
                for r, a in row[at].items()
            }
    return tuple(row)


def _read_json_flat(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if text == EMPTY_SPELLINGS[ctx.empty]:
        return _ungroup(task, [], keys)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StrictFormatError(f"not JSON: {exc}") from None
    fields = list(FLAT_FIELDS[task])
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and list(d) == fields for d in data
    ):
        raise StrictFormatError(f"a flat list of objects with the keys {fields}")
    arg = _JSON_ARG.get(ctx.empty, NAN)
    rows = [_flat_unspell(task, [d[f] for f in fields], arg) for d in data]
    if task == OPENIE:
        rows = [(*r[:3], *(r[3] or ())) for r in rows]
    return _ungroup(task, rows, keys)


def _read_tuples(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if text == EMPTY_SPELLINGS[ctx.empty]:
        return _ungroup(task, [], keys)
    data = _literal(text)
    if not isinstance(data, list) or not all(isinstance(r, tuple) for r in data):
        raise StrictFormatError("a Python list of tuples")
    arg = _PY_ARG.get(ctx.empty, NAN)
    return _ungroup(task, [_flat_unspell(task, r, arg) for r in data], keys)


_YAML_TOKEN_VALUE = {"blank": None, "NAN": "NAN", "null": None, "None": "None", "无": "无"}


def _read_yaml(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if task == OPENIE and text == EMPTY_SPELLINGS[ctx.empty]:
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StrictFormatError(f"not YAML: {str(exc).splitlines()[0]}") from None
    if task in GROUPED_TASKS and data is None:
        data = {}
    if ctx.empty == "[]":
        return _unspell(task, data, _container, [])
    token = _YAML_TOKEN_VALUE.get(ctx.empty)
    return _unspell(task, data, token, token)


def _read_choice_letters(
    task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None
) -> Any:
    options = list(ctx.options)
    picked = []
    for letter in text.split(", "):
        if len(letter) != 1 or letter not in OPTION_LETTERS[: len(options)]:
            raise StrictFormatError(f"{letter!r} is not the letter of an option")
        picked.append(options[OPTION_LETTERS.index(letter)])
    return {"answer": picked[0] if len(picked) == 1 else picked}


def _read_option_text(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if text not in ctx.options:
        raise StrictFormatError("the answer is not the text of an option")
    return {"answer": text}


def _read_letter_text(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    m = re.fullmatch(r"([A-Z])\. (.*)", text, re.S)
    if m is None:
        raise StrictFormatError("expected '<letter>. <option text>'")
    options = list(ctx.options)
    index = OPTION_LETTERS.index(m.group(1))
    if index >= len(options) or options[index] != m.group(2):
        raise StrictFormatError("the letter and the text are not the same option")
    return {"answer": m.group(2)}


def _choice_value(task: str, answer: str, keys: Sequence[str] | None) -> Any:
    if task == TC:
        if keys is not None and answer not in keys:
            raise StrictFormatError(f"{answer!r} is not one of the schema's labels")
        return {"label": answer}
    return {"answer": answer}


def _read_text(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    if not text:
        raise StrictFormatError("the answer is empty")
    return _choice_value(task, text, keys)


def _read_answer_line(task: str, text: str, ctx: RenderContext, keys: Sequence[str] | None) -> Any:
    prefix = _answer_prefix(task, ctx)
    if not text.startswith(prefix):
        raise StrictFormatError(f"the line must start with {prefix!r}: {text[:20]!r}")
    return _choice_value(task, text[len(prefix) :], keys)


# --------------------------------------------------------------------------- registry


Renderer = Callable[[str, Any, RenderContext], str]
Reader = Callable[[str, str, RenderContext, "Sequence[str] | None"], Any]
_LABEL_EMPTIES = ("blank", "NAN", "[]", "None", "无", "-")


@dataclass(frozen=True, slots=True)
class FormatStyle:
    """One output format: its renderer and its strict reader (the wording and the
    layouts' settings are in ``assets/templates/formats.json``, one entry per layout).

    ``empties`` are the empty spellings it supports and ``empty_scope`` where they
    appear: ``"label"`` (each label without answer is written, spelled), ``"whole"``
    (only answers are listed; an entirely empty answer is the spelling), or ``""``
    (MRC/TC: never empty). ``layouts`` counts its layouts (the specification must
    have that many); ``languages`` the instruction languages it is used for.
    """

    id: str
    tasks: tuple[str, ...]
    render: Renderer
    read: Reader
    empties: tuple[str, ...] = ()
    empty_scope: str = "label"
    layouts: int = 1
    languages: tuple[str, ...] = ("en", "zh")
    text_quoting: bool = False


FORMAT_STYLES: dict[str, FormatStyle] = {
    s.id: s
    for s in (
        FormatStyle(
            "json",
            FORMAT_TASKS,
            _render_json,
            _read_json,
            ("blank", "NAN", "[]", "null"),
            layouts=2,
        ),
        FormatStyle(
            "json_flat",
            GROUPED_TASKS,
            _render_json_flat,
            _read_json_flat,
            _FLAT_JSON_WHOLE,
            "whole",
            2,
        ),
        FormatStyle(
            "python", FORMAT_TASKS, _render_python, _read_python, ("blank", "NAN", "[]", "None")
        ),
        FormatStyle(
            "tuples",
            STRUCTURED_TASKS,
            _render_tuples,
            _read_tuples,
            ("blank", "NAN", "[]", "None", "无"),
            "whole",
            2,
        ),
        FormatStyle(
            "yaml",
            STRUCTURED_TASKS,
            _render_yaml,
            _read_yaml,
            ("blank", "NAN", "[]", "None", "null", "无"),
            layouts=2,
        ),
        FormatStyle(
            "kv_lines",
            GROUPED_TASKS,
            _render_kv,
            _read_kv,
            _LABEL_EMPTIES,
            layouts=2,
            text_quoting=True,
        ),
        FormatStyle(
            "kv_lines_zh",
            GROUPED_TASKS,
            _render_kv,
            _read_kv,
            _LABEL_EMPTIES,
            layouts=3,
            languages=("zh",),
            text_quoting=True,
        ),
        FormatStyle(
            "tuple_lines",
            STRUCTURED_TASKS,
            _render_tuple_lines,
            _read_tuple_lines,
            ("blank", "NAN", "None", "[]", "无", "-"),
            "whole",
            2,
            text_quoting=True,
        ),
        FormatStyle(
            "bullets",
            STRUCTURED_TASKS,
            _render_bullets,
            _read_bullets,
            _LABEL_EMPTIES,
            layouts=3,
            text_quoting=True,
        ),
        FormatStyle(
            "markdown_table",
            STRUCTURED_TASKS,
            _render_markdown,
            _read_markdown,
            ("blank", "NAN", "None", "无", "-"),
            layouts=2,
            text_quoting=True,
        ),
        FormatStyle(
            "xml",
            STRUCTURED_TASKS,
            _render_xml,
            _read_xml,
            ("blank", "NAN", "None", "无"),
            layouts=2,
        ),
        FormatStyle(
            "option_letter", (MRC,), _render_option_letter, _read_choice_letters, empty_scope=""
        ),
        FormatStyle("option_text", (MRC,), _render_text, _read_option_text, empty_scope=""),
        FormatStyle("letter_text", (MRC,), _render_letter_text, _read_letter_text, empty_scope=""),
        FormatStyle("answer_text", (MRC,), _render_text, _read_text, empty_scope=""),
        FormatStyle(
            "answer_line", (MRC, TC), _render_answer_line, _read_answer_line, empty_scope=""
        ),
        FormatStyle("label_word", (TC,), _render_text, _read_text, empty_scope=""),
    )
}


def style_applies(style: FormatStyle, task: str, value: Any, options: Sequence[str]) -> bool:
    """Whether ``style`` can render this answer (MRC letter styles need options)."""
    if task not in style.tasks:
        return False
    if (
        style.id == "markdown_table"
        and isinstance(value, dict)
        and any("|" in str(k) for k in value)
    ):
        return False  # a label holding a pipe cannot head a table row unambiguously
    if task == MRC:
        sid = style.id
        if sid in ("option_letter", "letter_text", "option_text"):
            letters = _letters(value, options)
            if letters is None:
                return False
            return sid == "option_letter" or len(letters) == 1
        if sid == "answer_text":
            return not options and len(_answers(value)) == 1
        if sid == "answer_line":
            return len(_answers(value)) == 1
    return True


def _context(
    style: str,
    empty: str,
    layout: int,
    language: str,
    options: Sequence[str],
    wording: FormatWording | None,
) -> RenderContext:
    fmt = FORMAT_STYLES[style]
    if fmt.empties and empty not in fmt.empties:
        raise ValueError(f"style {style!r} has no empty spelling {empty!r} (has {fmt.empties})")
    w = wording or load_format_wording()
    layout = layout % max(fmt.layouts, 1)
    return RenderContext(empty, layout, language, tuple(options), w.params(style, layout))


def render(
    style: str,
    task: str,
    value: Any,
    empty: str = "NAN",
    layout: int = 0,
    language: str = "en",
    options: Sequence[str] = (),
    wording: FormatWording | None = None,
) -> str:
    """Render a canonical answer ``value`` of ``task`` in ``style`` (and ``layout``)."""
    fmt = FORMAT_STYLES[style]
    if task not in fmt.tasks:
        raise ValueError(f"style {style!r} does not apply to task {task}")
    return fmt.render(task, value, _context(style, empty, layout, language, options, wording))


def schema_keys(task: str, schema: Sequence[Any] | None) -> list[str] | None:
    """The output keys a schema asks for, in schema order (None without a schema)."""
    if schema is None:
        return None
    if task == TC:
        return [s for s in schema if isinstance(s, str)]
    if task not in GROUPED_TASKS:
        return None
    keys: list[str] = []
    for item in schema:
        key = output_key(task, item)
        if key not in keys:
            keys.append(key)
    return keys


def _first_difference(text: str, expected: str) -> str:
    a, b = text.split("\n"), expected.split("\n")
    for i, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return f"line {i} is {x[:60]!r} where the stated format writes {y[:60]!r}"
    if len(a) != len(b):
        return f"{len(a)} lines where the stated format writes {len(b)}"
    return "the text differs from the stated format"


def read_strict(
    style: str,
    task: str,
    text: str,
    empty: str = "NAN",
    layout: int = 0,
    language: str = "en",
    options: Sequence[str] = (),
    schema: Sequence[Any] | None = None,
    wording: FormatWording | None = None,
) -> Any:
    """The canonical answer in ``text``, read exactly as ``style`` (with this layout and
    empty spelling) writes it; ``StrictFormatError`` says where it departs. With
    ``schema``, every schema label must be answered and no other."""
    fmt = FORMAT_STYLES[style]
    if task not in fmt.tasks:
        raise ValueError(f"style {style!r} does not apply to task {task}")
    if not isinstance(text, str):
        raise StrictFormatError(f"the output is not text but {type(text).__name__}")
    ctx = _context(style, empty, layout, language, options, wording)
    keys = schema_keys(task, schema)
    value = fmt.read(task, text, ctx, keys)
    try:
        again = fmt.render(task, value, ctx)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StrictFormatError(f"the answer does not have the task's structure: {exc}") from None
    if again != text:
        raise StrictFormatError(_first_difference(text, again))
    if keys is not None and task in GROUPED_TASKS and set(value) != set(keys):
        missing = [k for k in keys if k not in value]
        extra = [k for k in value if k not in keys]
        raise StrictFormatError(
            f"labels differ from the schema: missing {missing}, not in the schema {extra}"
        )
    return value


# --------------------------------------------------------------------------- wording


class FormatWording:
    """The specification file (``assets/templates/formats.json``): per style, per
    layout, the renderer's settings and the sentence the instruction states."""

    def __init__(self, data: Mapping[str, Any], origin: str):
        self.data = data
        self.origin = origin
        canonical = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        self.version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        styles = data.get("styles", {})
        problems = []
        for sid, fmt in FORMAT_STYLES.items():
            layouts = (styles.get(sid) or {}).get("layouts")
            if not isinstance(layouts, list) or len(layouts) != fmt.layouts:
                problems.append(f"{sid}: needs {fmt.layouts} layouts")
                continue
            for i, lay in enumerate(layouts):
                if not all(isinstance(lay.get(lang), str) and lay[lang] for lang in ("en", "zh")):
                    problems.append(f"{sid} layout {i}: needs an 'en' and a 'zh' sentence")
        if problems:
            raise ValueError(f"{origin}: format specification incomplete: {problems}")

    def phrase(self, key: str, language: str) -> str:
        entry = self.data[key]
        return entry.get(language) or entry["en"]

    def layout(self, style: str, layout: int) -> Mapping[str, Any]:
        return self.data["styles"][style]["layouts"][layout]

    def params(self, style: str, layout: int) -> dict[str, Any]:
        """The renderer's settings of one layout (everything but the sentences)."""
        return {k: v for k, v in self.layout(style, layout).items() if k not in ("en", "zh")}

    def style(self, style: str, language: str, layout: int = 0) -> str:
        lay = self.layout(style, layout)
        return lay.get(language) or lay["en"]

    def field(self, name: str, language: str) -> str:
        entry = self.data.get("fields", {}).get(name)
        if not entry:
            return name
        return entry.get(language) or entry.get("en") or name

    def keyed(self, group: str, table: str, language: str) -> str:
        entry = self.data[table][group]
        return entry.get(language) or entry["en"]


@lru_cache(maxsize=8)
def load_format_wording(path: str | None = None) -> FormatWording:
    target = Path(path) if path else WORDING_PATH
    return FormatWording(read_json_object(target, "format wording file"), str(target))


def field_name(name: str, language: str) -> str:
    return load_format_wording().field(name, language)


@lru_cache(maxsize=64)
def _field_names(task: str, language: str) -> tuple[str, ...]:
    return tuple(field_name(f, language) for f in FLAT_FIELDS[task])


def _skeleton(task: str, language: str, style: str) -> Any:
    """An answer with placeholders for every field, rendered into the statement."""
    if style == "xml":  # angle brackets would be escaped inside XML

        def ph(name: str) -> str:
            return "[" + field_name(name, language) + "]"
    else:

        def ph(name: str) -> str:
            return "<" + field_name(name, language) + ">"

    if task in (NER, EET):
        return {ph(FLAT_FIELDS[task][1]): [ph(FLAT_FIELDS[task][0])] * 2}
    if task in (RE, SPO):
        label = ph(FLAT_FIELDS[task][1])
        return {label: [{"subject": ph("subject"), "object": ph("object")}]}
    # Two roles (attributes) so that the example shows how they are separated.
    if task == EE:
        args = {ph("role"): ph("argument"), ph("other_role"): ph("argument")}
        return {ph("event_type"): [{"trigger": ph("trigger"), "arguments": args}]}
    if task == EEA:
        return {ph("event_type"): [{ph("role"): ph("argument"), ph("other_role"): ph("argument")}]}
    if task == KGE:
        attrs = {ph("attribute"): ph("value"), ph("other_attribute"): ph("value")}
        return {ph("entity_type"): {ph("entity"): attrs}}
    if task == MRC:
        return {"answer": ph("answer") if language == "en" else "<答案>"}
    if task == TC:
        return {"label": ph("label")}
    return [{"subject": ph("subject"), "predicate": ph("predicate"), "object": ph("object")}]


def argument_spelling(style: str, empty: str) -> str:
    """How ``style`` writes an event argument role that is not mentioned, with the empty
    spelling ``empty`` (what the renderer does; the statement says the same)."""
    if empty == "[]":
        return "[]"
    if style == "json_flat" and empty not in _JSON_ARG:
        return NAN
    if style == "tuples" and empty not in _PY_ARG:
        return NAN
    return EMPTY_SPELLINGS[empty]


def format_sentence(
    style: str,
    task: str,
    language: str,
    empty: str,
    wording: FormatWording | None = None,
    layout: int = 0,
) -> str:
    """What the instruction states about the reply format, for one style and layout:
    the layout's sentence, the quoting and empty-answer rules, and the style's own
    rendering of a skeleton answer. It replaces the basic JSON reply sentence."""
    w = wording or load_format_wording()
    fmt = FORMAT_STYLES[style]
    layout = layout % max(fmt.layouts, 1)
    zh = language == "zh"
    body = w.style(style, language, layout)
    if "{fields}" in body:
        sep = "、" if zh else ", "
        fields = FLAT_FIELDS[task]
        if task == OPENIE and style != "markdown_table":
            fields = fields[:3]  # further arguments follow the object (stated below)
        if style == "json_flat":  # the literal keys
            names = [f'"{f}"' for f in fields]
        else:
            names = [w.field(f, language) for f in fields]
        body = body.replace("{fields}", sep.join(names))
    if "{keys}" in body:
        group = task if task in (OPENIE, MRC, TC) else "grouped"
        body = body.replace("{keys}", w.keyed(group, "keys", language))
    if "{prefix}" in body:
        forms = w.params(style, layout)["prefix"][TC if task == TC else MRC]
        body = body.replace("{prefix}", forms.get(language) or forms["en"])
    if "{what}" in body:
        body = body.replace("{what}", w.keyed(TC if task == TC else MRC, "what", language))
    parts = [body]
    if task == OPENIE:
        where = {"markdown_table": "column", "xml": "xml", "json": "keyed", "python": "keyed",
                 "yaml": "keyed"}.get(style, "after")
        parts.append(w.keyed(where, "openie_extra", language))
    if task == MRC and style in ("json", "python"):
        parts.append(w.phrase("mrc_answers", language))
    if fmt.text_quoting:
        parts.append(w.phrase("quoting", language))
    if fmt.empty_scope and task in STRUCTURED_TASKS:
        token = EMPTY_SPELLINGS[empty]
        if (
            empty == "[]"
            and task == KGE
            and fmt.empty_scope == "label"
            and style in ("json", "python", "yaml")
        ):
            token = "{}"
        scope = "empty_whole" if (fmt.empty_scope == "whole" or task == OPENIE) else "empty_label"
        if token:
            parts.append(w.phrase(scope, language).replace("{token}", token))
        else:
            parts.append(w.phrase(scope + "_blank", language))
        if task in (EE, EEA):
            arg_token = argument_spelling(style, empty)
            if arg_token:
                parts.append(w.phrase("empty_argument", language).replace("{token}", arg_token))
            else:
                parts.append(w.phrase("empty_argument_blank", language))
    if task in STRUCTURED_TASKS or style in ("json", "python"):
        example = render(
            style,
            task,
            _skeleton(task, language, style),
            empty if fmt.empties else "NAN",
            layout,
            language,
            (),
            w,
        )
        lead = w.phrase("shape", language)
        parts.append(lead + ("\n" if "\n" in example else ("" if zh else " ")) + example)
    return "".join(parts).strip()


# --------------------------------------------------------------------------- synthesis


@dataclass(frozen=True)
class FormatConfig:
    """How format variants are made.

    ``styles``: the style ids to draw from (None: every style). ``per_row``: how many
    variants each basic row gets (distinct styles, drawn per row; fewer when fewer
    styles apply). ``empties``: the empty spellings to draw from (each style uses
    those it supports). ``shuffle_labels``: probability that a variant lists the
    labels in a shuffled order instead of the schema order. ``templates``: the basic
    wording the rows were made with (its task sentence is kept, its JSON reply
    sentence replaced); None: the built-in wording.
    """

    seed: int = 42
    styles: tuple[str, ...] | None = None
    per_row: int = 2
    empties: tuple[str, ...] = tuple(EMPTY_SPELLINGS)
    shuffle_labels: float = 0.3
    wording_path: str | None = None
    templates: Templates | None = None

    def __post_init__(self) -> None:
        if self.styles is not None:
            unknown = [s for s in self.styles if s not in FORMAT_STYLES]
            if unknown:
                raise ValueError(f"unknown format styles {unknown}; known: {sorted(FORMAT_STYLES)}")
        unknown = [e for e in self.empties if e not in EMPTY_SPELLINGS]
        if unknown:
            raise ValueError(f"unknown empty spellings {unknown}; known: {list(EMPTY_SPELLINGS)}")
        if self.per_row < 1:
            raise ValueError(f"per_row must be >= 1, got {self.per_row}")
        if not 0.0 <= self.shuffle_labels <= 1.0:
            raise ValueError(f"shuffle_labels must lie in [0, 1], got {self.shuffle_labels}")


def _instruction_id(base_id: str, stamp: str, variant: str, layout: int) -> str:
    key = f"{base_id}|{STRATEGY}|{variant}|{layout}|{stamp}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


_PREFIX = '{"instruction": '
_DECODER = json.JSONDecoder()
_row_values = operator.itemgetter(*INSTRUCTION_COLUMNS)
SKIP_NO_REPLY_SENTENCE = "skipped: basic wording has no separate reply sentence"


def format_wording(
    task_text: str,
    style: str,
    task: str,
    language: str,
    empty: str,
    layout: int,
    wording: FormatWording | None = None,
) -> str:
    """The whole instruction wording of a format variant: the basic task sentence, then
    the statement of the format."""
    return join_parts(
        task_text, format_sentence(style, task, language, empty, wording, layout), language
    )


def format_variant_rows(
    basic_rows: Iterable[Mapping[str, Any]],
    config: FormatConfig | None = None,
    report: Counter | None = None,
) -> Iterator[dict[str, Any]]:
    """Compound rows (``COMPOUND_COLUMNS``) rendering each basic row's answer in
    ``config.per_row`` formats. IG rows, rows that do not parse and rows whose wording
    has no separate reply sentence are skipped (and counted in ``report`` when given)."""
    config = config or FormatConfig()
    wording = load_format_wording(config.wording_path)
    templates = config.templates or load_templates()
    stamp = f"{config.seed}|{wording.version}"
    style_ids = tuple(config.styles) if config.styles is not None else tuple(FORMAT_STYLES)
    allowed_empties = frozenset(config.empties)
    by_task: dict[tuple[str, str], list[FormatStyle]] = {}
    empties_of: dict[tuple[str, str], tuple[str, ...]] = {}
    sentences: dict[tuple[str, str, str, str, int], str] = {}
    counts = report if report is not None else Counter()

    for row in basic_rows:
        task = row.get("task")
        language = row.get("language") or "en"
        if task not in FORMAT_TASKS:
            counts["skipped: task without format variants"] += 1
            continue
        if row.get("mode") == "test":
            counts["skipped: test-mode row (evaluation only)"] += 1
            continue
        try:
            value = json.loads(row["output"])
            basic_instruction = row["instruction"]
            inst = None
            if basic_instruction.startswith(_PREFIX):
                # Only the wording is needed: decode the first string, not the input.
                wording_text, end = _DECODER.raw_decode(basic_instruction, len(_PREFIX))
                splice = basic_instruction.endswith("}") and isinstance(wording_text, str)
            else:
                splice = False
            if not splice:
                inst = json.loads(basic_instruction)
                wording_text = inst["instruction"]
        except (TypeError, ValueError, KeyError):
            counts["skipped: row does not parse"] += 1
            continue
        task_text = templates.task_part(task, language, wording_text)
        if task_text is None:
            counts[SKIP_NO_REPLY_SENTENCE] += 1
            continue
        options: list[str] = []
        if task == MRC:
            try:
                options = [o for o in json.loads(row.get("schema") or "[]") if isinstance(o, str)]
            except ValueError:
                options = []
        key = (task, language)
        styles = by_task.get(key)
        if styles is None:
            styles = by_task[key] = [
                FORMAT_STYLES[s]
                for s in style_ids
                if task in FORMAT_STYLES[s].tasks and language in FORMAT_STYLES[s].languages
            ]
        candidates = styles
        if task == MRC:
            candidates = [s for s in styles if style_applies(s, task, value, options)]
        if not candidates:
            counts["skipped: no applicable style"] += 1
            continue
        base_id = row["instruction_id"]
        rng = record_rng(config.seed, base_id, "format")
        if config.per_row == 1:
            chosen = [candidates[rng.randrange(len(candidates))]]
        elif config.per_row < len(candidates):
            chosen = rng.sample(candidates, config.per_row)
        else:
            chosen = candidates
        grouped = task in GROUPED_TASKS and isinstance(value, dict)
        rest = basic_instruction[end:-1] if splice else ""
        for fmt in chosen:
            ekey = (fmt.id, language)
            empties = empties_of.get(ekey)
            if empties is None:
                empties = empties_of[ekey] = tuple(
                    e
                    for e in fmt.empties
                    if e in allowed_empties and (language == "zh" or e not in ZH_ONLY_EMPTIES)
                )
            if task in CHOICE_TASKS:
                empties = ()
            elif fmt.empties and not empties:
                counts[f"skipped: no empty spelling for {fmt.id}"] += 1
                continue
            empty = rng.choice(empties) if empties else ""
            layout = rng.randrange(fmt.layouts) if fmt.layouts > 1 else 0
            shuffled = False
            answer = value
            if grouped and len(value) > 1 and rng.random() < config.shuffle_labels:
                labels = list(value)
                rng.shuffle(labels)
                answer = {label: value[label] for label in labels}
                shuffled = True
            ctx = RenderContext(
                empty or "blank", layout, language, tuple(options), wording.params(fmt.id, layout)
            )
            try:
                output = fmt.render(task, answer, ctx)
            except (KeyError, TypeError, ValueError, AttributeError):
                counts[f"skipped: {fmt.id} cannot render the answer"] += 1
                continue
            skey = (fmt.id, task, language, empty, layout)
            sentence = sentences.get(skey)
            if sentence is None:
                sentence = sentences[skey] = format_sentence(
                    fmt.id, task, language, empty or "blank", wording, layout
                )
            new_wording = join_parts(task_text, sentence, language)
            fmt_json = '"' + fmt.id + '"'
            if splice:
                instruction = (
                    _PREFIX + _encode(new_wording) + rest + ', "format": ' + fmt_json + "}"
                )
            else:
                inst2 = {**inst, "instruction": new_wording, "format": fmt.id}
                instruction = json.dumps(inst2, ensure_ascii=False)
            variant = f"{fmt.id}/{empty}" if empty else fmt.id
            try:
                out = dict(zip(INSTRUCTION_COLUMNS, _row_values(row), strict=True))
            except KeyError:
                out = {col: row.get(col) for col in INSTRUCTION_COLUMNS}
            out["instruction_id"] = _instruction_id(base_id, stamp, variant, layout)
            out["strategy"] = STRATEGY
            out["template"] = f"{row.get('template')}+format:{fmt.id}.{language}@{wording.version}"
            out["instruction"] = instruction
            out["output"] = output
            out["base_instruction_id"] = base_id
            out["variant"] = variant
            out["provenance"] = (
                '{"base":'
                + _encode(base_id)
                + ',"empty":'
                + (_encode(empty) if empty else "null")
                + ',"layout":'
                + str(layout)
                + ',"shuffled":'
                + ("true" if shuffled else "false")
                + ',"style":'
                + fmt_json
                + "}"
            )
            out["strategies"] = STRATEGY
            counts["rows_out"] += 1
            yield out


# --------------------------------------------------------------------------- the check

FORMAT_CHECK = "outputs_follow_stated_format"


def format_row_problems(
    row: Mapping[str, Any],
    base: Mapping[str, Any],
    templates: Templates | None = None,
    wording: FormatWording | None = None,
) -> list[str]:
    """What is wrong with one format-variant row (empty when sound): its instruction
    must state its own style, layout and empty spelling in place of the basic reply
    sentence, and its output must read back strictly, as stated, into the basic
    answer of ``base`` (the row's base instruction)."""
    templates = templates or load_templates()
    try:
        prov = json.loads(row.get("provenance") or "")
        style, layout = prov["style"], int(prov["layout"])
        empty = prov["empty"] or "blank"
        inst = json.loads(row["instruction"])
        base_wording = json.loads(base["instruction"])["instruction"]
        expected = json.loads(base["output"])
        schema = inst["schema"]
    except (TypeError, ValueError, KeyError) as exc:
        return [f"row, provenance or base row does not parse: {exc}"]
    task, language = row.get("task"), row.get("language") or "en"
    fmt = FORMAT_STYLES.get(style)
    if fmt is None or task not in fmt.tasks:
        return [f"{style!r} is not a format style for {task}"]
    problems = []
    if inst.get("format") != style:
        problems.append(
            f"{row.get('variant')}: the instruction names format {inst.get('format')!r}, "
            f"its output is {style!r}"
        )
    task_text = templates.task_part(task, language, base_wording)
    if task_text is None:
        problems.append("the base wording has no reply sentence a format could replace")
    else:
        stated = format_wording(task_text, style, task, language, empty, layout, wording)
        if inst.get("instruction") != stated:
            problems.append(
                f"{row.get('variant')}: the instruction does not state layout {layout} of "
                f"{style} (with its empty spelling) in place of the JSON reply sentence"
            )
    options = [o for o in schema if isinstance(o, str)] if task == MRC else ()
    try:
        value = read_strict(
            style,
            task,
            row.get("output"),
            empty,
            layout,
            language,
            options,
            schema if task != MRC else None,
            wording,
        )
    except StrictFormatError as exc:
        problems.append(f"{row.get('variant')} layout {layout}: {exc}")
        return problems
    if value != expected:
        problems.append(
            f"{row.get('variant')}: the output reads back to another answer than its base"
        )
    return problems


def check_format_rows(
    rows: Iterable[Mapping[str, Any]],
    base_rows: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
    templates: Templates | None = None,
) -> list[Problem]:
    """The ``outputs_follow_stated_format`` check: one ``Problem`` per format-variant row
    whose instruction or output departs from its stated format (see
    ``format_row_problems``). ``base_rows``: the basic rows (or a mapping by id)."""
    by_id = (
        base_rows if isinstance(base_rows, Mapping) else {r["instruction_id"]: r for r in base_rows}
    )
    problems = []
    for row in rows:
        if row.get("strategy") != STRATEGY:
            continue
        base = by_id.get(row.get("base_instruction_id"))
        found = (
            ["its base instruction is not among the basic rows"]
            if base is None
            else format_row_problems(row, base, templates)
        )
        problems.extend(Problem(FORMAT_CHECK, str(row.get("instruction_id")), p) for p in found)
    return problems


def checked_format_rows(
    basic_rows: Iterable[Mapping[str, Any]], config: FormatConfig | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``format_variant_rows`` keeping only rows that pass ``format_row_problems`` (the
    others are dropped and counted by variant, so no training row teaches a format it
    does not follow). Returns (rows, report)."""
    config = config or FormatConfig()
    basic = list(basic_rows)
    by_id = {row["instruction_id"]: row for row in basic}
    skipped: Counter = Counter()
    kept: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    wording = load_format_wording(config.wording_path)
    for row in format_variant_rows(basic, config, skipped):
        if format_row_problems(row, by_id[row["base_instruction_id"]], config.templates, wording):
            dropped[row["variant"]] += 1
        else:
            kept.append(row)
    report = {
        "rows_in": len(basic),
        "rows_out": len(kept),
        "skipped": dict(sorted(skipped.items())),
        "dropped_not_as_stated": dict(sorted(dropped.items())),
        "by_variant": dict(sorted(Counter(r["variant"].split("/")[0] for r in kept).items())),
    }
    return kept, report


__all__ = [
    "EMPTY_SPELLINGS",
    "FLAT_FIELDS",
    "FORMAT_CHECK",
    "FORMAT_STYLES",
    "FORMAT_TASKS",
    "STRATEGY",
    "FormatConfig",
    "FormatStyle",
    "FormatWording",
    "RenderContext",
    "StrictFormatError",
    "check_format_rows",
    "checked_format_rows",
    "flat_rows",
    "format_row_problems",
    "format_sentence",
    "format_variant_rows",
    "format_wording",
    "is_empty_token",
    "load_format_wording",
    "read_strict",
    "render",
    "schema_keys",
    "style_applies",
]
