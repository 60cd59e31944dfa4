"""Format variants: the same answer rendered in many output formats.

A basic instruction answers in JSON. The format-variant strategy renders the same
answer as nested or flat JSON, a Python literal or list of tuples, YAML, plain-text
lines (``label: a, b``, Chinese-style ``标签：甲，乙``, ``(subject, relation, object)``
tuples, bullet lists), a markdown table or XML-style tags; MRC and TC get natural
forms (an option letter, the option text, ``B. text``, ``Answer: ...``, the label
word). Each style has several layouts (spacing, bullet markers, separators) and
several spellings of an empty result (``""``, ``NAN``, ``[]``, ``None``, ``null``,
``无``, ``-``); the instruction states the format (wording in
``assets/templates/formats.json``).

``hum_dagster.synthesis.parser.parse_output`` reads every rendering back into the
task's canonical structure (the basic JSON outputs, see ``outputs.py``).

Escaping, so that rendering and parsing round-trip:

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
render one answer (lists only through JSON/Python or option letters ``A, C``); an
extractive MRC answer that is itself a JSON/Python list or ``{"answer": ...}``
literal is read as that structure.
"""

from __future__ import annotations

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

from hum_dagster.paths import TEMPLATES_DIR
from hum_dagster.records import EE, EEA, EET, KGE, MRC, NER, OPENIE, RE, SPO, TC
from hum_dagster.store.jsonfile import read_json_object
from hum_dagster.synthesis.chunking import record_rng
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS
from hum_dagster.synthesis.outputs import NAN

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
    """What a renderer needs besides the answer: empty spelling id, layout, language
    and (MRC) the options."""

    empty: str = "NAN"
    layout: int = 0
    language: str = "en"
    options: tuple[str, ...] = ()


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
    if ctx.layout == 1:
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
    if ctx.layout == 1:
        return "[\n" + ",\n".join("  " + _encode(d) for d in dicts) + "\n]"
    return _encode(dicts)


def _render_tuples(task: str, value: Any, ctx: RenderContext) -> str:
    rows = flat_rows(task, _respell(task, value, _container, _PY_ARG.get(ctx.empty, NAN)))
    if not rows:
        return _whole_empty(ctx.empty)
    if ctx.layout == 1:
        return "[\n" + ",\n".join("    " + repr(row) for row in rows) + ",\n]"
    return repr(rows)


# Plain text ----------------------------------------------------------------

# (key colon, item separator, colon inside maps, separator inside maps/lists)
_KV_PUNCT = ((": ", ", ", ": ", ", "), (": ", "; ", ": ", ", "))
_KV_ZH_PUNCT = (("：", "，", "：", "，"), ("：", "、", "：", "，"), ("：", "；", "：", "，"))


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


def _kv(task: str, value: Any, ctx: RenderContext, punct: tuple[str, str, str, str]) -> str:
    key_colon, item_sep, colon, sep = punct
    token = EMPTY_SPELLINGS[ctx.empty]
    lines = []
    for label, v in value.items():
        items = _items(task, v, token, colon, sep) if v else []
        body = item_sep.join(items) if items else token
        key = tq_label(label)
        lines.append(key + key_colon + body if body else key + key_colon.rstrip())
    return "\n".join(lines)


def _render_kv_lines(task: str, value: Any, ctx: RenderContext) -> str:
    return _kv(task, value, ctx, _KV_PUNCT[ctx.layout % len(_KV_PUNCT)])


def _render_kv_lines_zh(task: str, value: Any, ctx: RenderContext) -> str:
    return _kv(task, value, ctx, _KV_ZH_PUNCT[ctx.layout % len(_KV_ZH_PUNCT)])


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
    else:
        cells = [_cell(c, token) for c in row]
    return "(" + ", ".join(cells) + ")"


def _render_tuple_lines(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    rows = flat_rows(task, value)
    if not rows:
        return token
    lines = [_tuple_text(task, row, token) for row in rows]
    if ctx.layout == 1:
        return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    return "\n".join(lines)


_BULLETS = ("- ", "* ", None)  # None: numbered


def _render_bullets(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    if task == OPENIE:
        lines = [_tuple_text(task, row, token) for row in flat_rows(task, value)]
        if not lines:
            return token
    else:
        lines = []
        for label, v in value.items():
            key = tq_label(label) + ":"
            if v:
                lines.extend(key + " " + item for item in _items(task, v, token, ": ", ", "))
            else:
                lines.append(key + " " + token if token else key)
    marker = _BULLETS[ctx.layout % len(_BULLETS)]
    if marker is None:
        return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    return "\n".join(marker + line for line in lines)


# Markdown table ----------------------------------------------------------


def _md_cell(text: str) -> str:
    # A value with a pipe is already quoted by tq; a quoted value may still hold one.
    return text.replace("|", "\\|") if "|" in text else text


def _render_markdown(task: str, value: Any, ctx: RenderContext) -> str:
    token = EMPTY_SPELLINGS[ctx.empty]
    fields = FLAT_FIELDS[task]
    names = _field_names(task, ctx.language)
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
        else:
            cells = [_cell(c, token) for c in row]
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
    if ctx.layout == 1:
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
    _yaml_lines(value, 0, 2 if ctx.layout == 0 else 0, out)
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
    if ctx.layout == 1:
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


def _render_answer_line(task: str, value: Any, ctx: RenderContext) -> str:
    key = "label_prefix" if task == TC else "answer_prefix"
    return load_format_wording().phrase(key, ctx.language) + _single_text(task, value)


# --------------------------------------------------------------------------- registry


Renderer = Callable[[str, Any, RenderContext], str]
_LABEL_EMPTIES = ("blank", "NAN", "[]", "None", "无", "-")


@dataclass(frozen=True, slots=True)
class FormatStyle:
    """One output format.

    ``empties`` are the empty spellings it supports and ``empty_scope`` where they
    appear: ``"label"`` (each label without answer is written, spelled), ``"whole"``
    (only answers are listed; an entirely empty answer is the spelling), or ``""``
    (MRC/TC: never empty). ``layouts`` counts the alternative outputs of the same
    content (spacing, separators, markers); ``languages`` the instruction languages
    it is used for.
    """

    id: str
    tasks: tuple[str, ...]
    render: Renderer
    empties: tuple[str, ...] = ()
    empty_scope: str = "label"
    layouts: int = 1
    languages: tuple[str, ...] = ("en", "zh")
    text_quoting: bool = False


def _style(*args: Any, **kwargs: Any) -> FormatStyle:
    return FormatStyle(*args, **kwargs)


FORMAT_STYLES: dict[str, FormatStyle] = {
    s.id: s
    for s in (
        _style("json", FORMAT_TASKS, _render_json, ("blank", "NAN", "[]", "null"), layouts=2),
        _style("json_flat", GROUPED_TASKS, _render_json_flat, _FLAT_JSON_WHOLE, "whole", 2),
        _style("python", FORMAT_TASKS, _render_python, ("blank", "NAN", "[]", "None")),
        _style(
            "tuples",
            STRUCTURED_TASKS,
            _render_tuples,
            ("blank", "NAN", "[]", "None", "无"),
            "whole",
            2,
        ),
        _style(
            "yaml",
            STRUCTURED_TASKS,
            _render_yaml,
            ("blank", "NAN", "[]", "None", "null", "无"),
            layouts=2,
        ),
        _style(
            "kv_lines",
            GROUPED_TASKS,
            _render_kv_lines,
            _LABEL_EMPTIES,
            layouts=2,
            text_quoting=True,
        ),
        _style(
            "kv_lines_zh",
            GROUPED_TASKS,
            _render_kv_lines_zh,
            _LABEL_EMPTIES,
            layouts=3,
            languages=("zh",),
            text_quoting=True,
        ),
        _style(
            "tuple_lines",
            STRUCTURED_TASKS,
            _render_tuple_lines,
            ("blank", "NAN", "None", "[]", "无", "-"),
            "whole",
            2,
            text_quoting=True,
        ),
        _style(
            "bullets",
            STRUCTURED_TASKS,
            _render_bullets,
            _LABEL_EMPTIES,
            layouts=3,
            text_quoting=True,
        ),
        _style(
            "markdown_table",
            STRUCTURED_TASKS,
            _render_markdown,
            ("blank", "NAN", "None", "无", "-"),
            layouts=2,
            text_quoting=True,
        ),
        _style("xml", STRUCTURED_TASKS, _render_xml, ("blank", "NAN", "None", "无"), layouts=2),
        _style("option_letter", (MRC,), _render_option_letter, empty_scope=""),
        _style("option_text", (MRC,), _render_text, empty_scope=""),
        _style("letter_text", (MRC,), _render_letter_text, empty_scope=""),
        _style("answer_text", (MRC,), _render_text, empty_scope=""),
        _style("answer_line", (MRC, TC), _render_answer_line, empty_scope=""),
        _style("label_word", (TC,), _render_text, empty_scope=""),
    )
}


def style_applies(style: FormatStyle, task: str, value: Any, options: Sequence[str]) -> bool:
    """Whether ``style`` can render this answer (MRC letter styles need options)."""
    if task not in style.tasks:
        return False
    if style.id == "markdown_table" and isinstance(value, dict) and any("|" in str(k) for k in value):
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


def render(
    style: str,
    task: str,
    value: Any,
    empty: str = "NAN",
    layout: int = 0,
    language: str = "en",
    options: Sequence[str] = (),
) -> str:
    """Render a canonical answer ``value`` of ``task`` in ``style``."""
    fmt = FORMAT_STYLES[style]
    if task not in fmt.tasks:
        raise ValueError(f"style {style!r} does not apply to task {task}")
    if fmt.empties and empty not in fmt.empties:
        raise ValueError(f"style {style!r} has no empty spelling {empty!r} (has {fmt.empties})")
    ctx = RenderContext(empty, layout % max(fmt.layouts, 1), language, tuple(options))
    return fmt.render(task, value, ctx)


# --------------------------------------------------------------------------- wording


class FormatWording:
    """The sentences that state a format (``assets/templates/formats.json``)."""

    def __init__(self, data: Mapping[str, Any], origin: str):
        self.data = data
        self.origin = origin
        canonical = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        self.version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        missing = [sid for sid in FORMAT_STYLES if sid not in data.get("styles", {})]
        if missing:
            raise ValueError(f"{origin}: no wording for format styles {missing}")

    def phrase(self, key: str, language: str) -> str:
        entry = self.data[key]
        return entry.get(language) or entry["en"]

    def style(self, style: str, language: str) -> str:
        entry = self.data["styles"][style]
        return entry.get(language) or entry["en"]

    def field(self, name: str, language: str) -> str:
        entry = self.data.get("fields", {}).get(name)
        if not entry:
            return name
        return entry.get(language) or entry.get("en") or name


@lru_cache(maxsize=8)
def load_format_wording(path: str | None = None) -> FormatWording:
    target = Path(path) if path else WORDING_PATH
    return FormatWording(read_json_object(target, "format wording file"), str(target))


def field_name(name: str, language: str) -> str:
    return load_format_wording().field(name, language)


@lru_cache(maxsize=64)
def _field_names(task: str, language: str) -> tuple[str, ...]:
    return tuple(field_name(f, language) for f in FLAT_FIELDS[task])


def _skeleton(task: str, language: str) -> Any:
    def ph(name: str) -> str:
        return "<" + field_name(name, language) + ">"

    if task in (NER, EET):
        return {ph(FLAT_FIELDS[task][1]): [ph(FLAT_FIELDS[task][0])] * 2}
    if task in (RE, SPO):
        label = ph(FLAT_FIELDS[task][1])
        return {label: [{"subject": ph("subject"), "object": ph("object")}]}
    if task == EE:
        return {
            ph("event_type"): [
                {"trigger": ph("trigger"), "arguments": {ph("role"): ph("argument")}}
            ]
        }
    if task == EEA:
        return {ph("event_type"): [{ph("role"): ph("argument")}]}
    if task == KGE:
        return {ph("entity_type"): {ph("entity"): {ph("attribute"): ph("value")}}}
    return [{"subject": ph("subject"), "predicate": ph("predicate"), "object": ph("object")}]


def format_sentence(
    style: str, task: str, language: str, empty: str, wording: FormatWording | None = None
) -> str:
    """The sentence appended to an instruction to state the format."""
    w = wording or load_format_wording()
    fmt = FORMAT_STYLES[style]
    body = w.style(style, language)
    if "{fields}" in body:
        sep = "、" if language == "zh" else ", "
        if style == "json_flat":  # the literal keys
            names = [f'"{f}"' for f in FLAT_FIELDS[task]]
        else:
            names = [w.field(f, language) for f in FLAT_FIELDS[task]]
        body = body.replace("{fields}", sep.join(names))
    if "{example}" in body:
        example = render(style, task, _skeleton(task, language), "NAN", 0, language)
        body = body.replace("{example}", example.split("\n")[0])
    parts = [w.phrase("lead", language), body]
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
            arg_token = "[]" if empty == "[]" else token
            if arg_token:
                parts.append(w.phrase("empty_argument", language).replace("{token}", arg_token))
            else:
                parts.append(w.phrase("empty_argument_blank", language))
    return "".join(parts)


# --------------------------------------------------------------------------- synthesis


@dataclass(frozen=True)
class FormatConfig:
    """How format variants are made.

    ``styles``: the style ids to draw from (None: every style). ``per_row``: how many
    variants each basic row gets (distinct styles, drawn per row; fewer when fewer
    styles apply). ``empties``: the empty spellings to draw from (each style uses
    those it supports). ``shuffle_labels``: probability that a variant lists the
    labels in a shuffled order instead of the schema order.
    """

    seed: int = 42
    styles: tuple[str, ...] | None = None
    per_row: int = 2
    empties: tuple[str, ...] = tuple(EMPTY_SPELLINGS)
    shuffle_labels: float = 0.3
    wording_path: str | None = None

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


def format_variant_rows(
    basic_rows: Iterable[Mapping[str, Any]],
    config: FormatConfig | None = None,
    report: Counter | None = None,
) -> Iterator[dict[str, Any]]:
    """Compound rows (``COMPOUND_COLUMNS``) rendering each basic row's answer in
    ``config.per_row`` formats. IG rows and rows that do not parse are skipped (and
    counted in ``report`` when given)."""
    config = config or FormatConfig()
    wording = load_format_wording(config.wording_path)
    stamp = f"{config.seed}|{wording.version}"
    style_ids = tuple(config.styles) if config.styles is not None else tuple(FORMAT_STYLES)
    allowed_empties = frozenset(config.empties)
    by_task: dict[tuple[str, str], list[FormatStyle]] = {}
    empties_of: dict[tuple[str, str], tuple[str, ...]] = {}
    sentences: dict[tuple[str, str, str, str], str] = {}
    counts = report if report is not None else Counter()

    for row in basic_rows:
        task = row.get("task")
        language = row.get("language") or "en"
        if task not in FORMAT_TASKS:
            counts["skipped: task without format variants"] += 1
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
            try:
                output = fmt.render(
                    task, answer, RenderContext(empty, layout, language, tuple(options))
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                counts[f"skipped: {fmt.id} cannot render the answer"] += 1
                continue
            skey = (fmt.id, task, language, empty)
            sentence = sentences.get(skey)
            if sentence is None:
                sentence = sentences[skey] = format_sentence(
                    fmt.id, task, language, empty or "blank", wording
                )
            new_wording = wording_text + (" " if language != "zh" else "") + sentence
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
            counts["rows_out"] += 1
            yield out


__all__ = [
    "EMPTY_SPELLINGS",
    "FLAT_FIELDS",
    "FORMAT_STYLES",
    "FORMAT_TASKS",
    "STRATEGY",
    "FormatConfig",
    "FormatStyle",
    "FormatWording",
    "RenderContext",
    "flat_rows",
    "format_sentence",
    "format_variant_rows",
    "is_empty_token",
    "load_format_wording",
    "render",
    "style_applies",
]


def check_roundtrip(row: Mapping[str, Any], base_output: str) -> list[str]:
    """Problems with a format-variant row: its output must parse back (with the row's
    schema) into exactly the structure of the basic output it renders."""
    from hum_dagster.synthesis.parser import parse_output

    try:
        schema = json.loads(row["schema"])
        expected = json.loads(base_output)
    except (TypeError, ValueError) as exc:
        return [f"schema or base output is not JSON: {exc}"]
    parsed = parse_output(row["task"], row["output"], schema)
    if not parsed.ok:
        return [f"{row['variant']}: output does not parse: {parsed.error}"]
    if parsed.value != expected:
        return [f"{row['variant']}: output parses to a different answer than its base instruction"]
    return []


def checked_format_rows(
    basic_rows: Iterable[Mapping[str, Any]], config: FormatConfig | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``format_variant_rows`` keeping only variants that parse back into their base
    answer (``check_roundtrip``); the others are dropped and counted by style, so no
    training row teaches a format the parser cannot read. Returns (rows, report)."""
    basic = list(basic_rows)
    base_output = {row["instruction_id"]: row["output"] for row in basic}
    skipped: Counter = Counter()
    kept: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    for row in format_variant_rows(basic, config, skipped):
        if check_roundtrip(row, base_output[row["base_instruction_id"]]):
            dropped[row["variant"]] += 1
        else:
            kept.append(row)
    report = {
        "rows_in": len(basic),
        "rows_out": len(kept),
        "skipped": dict(sorted(skipped.items())),
        "dropped_not_roundtrip": dict(sorted(dropped.items())),
        "by_variant": dict(sorted(Counter(r["variant"].split("/")[0] for r in kept).items())),
    }
    return kept, report
