"""Nothing of a record's own answer in the guideline part of its compound instructions.

A compound instruction is its basic instruction plus what a strategy added: label
descriptions, positive and negative examples, typical values, an output skeleton,
annotation rules, a stated output format. A model trained on a row whose additions
quote its own answer learns to copy from the guidelines instead of reading the input.

**The guideline part** of a compound row is every string value in its instruction JSON
except

- the ``"input"`` (the text itself),
- the ``"instruction"`` wording (basic wording plus the strategy's fixed sentence or
  stated format, template text that holds no record data; the format check verifies a
  stated format word for word),
- label names: string schema items and the name fields of object items
  (``label``, ``predicate``, ``subject_type``, ``object_type``, ``event_type``,
  ``entity_type``, ``role``, ``attribute``, and the role or attribute name lists
  ``arguments``/``attributes``), and EEA's ``trigger`` list, which the basic
  instruction already carries,
- the ``"format"`` style id of a format variant.

Dict keys are not part of it (they are field names, labels and placeholders). What is
left: descriptions, example texts and answers, reasons, typical values, rules, the
values of the output skeleton.

**A record's gold spans** are the strings its basic outputs answer (entity mentions,
subjects and objects, triggers and arguments, KGE entity names and attribute values,
extractive MRC answers; not ``NAN``, not class labels or option texts, which the
schema lists anyway), collected over every basic row of the record.

**Appears** means: the span occurs in a guideline string, case-sensitively; a span
that starts or ends with an ASCII letter or digit must not touch another ASCII letter
or digit there (``"US"`` does not appear in ``"USA"``). Spans of one character are
not looked for (a single letter or character turns up in any wording).

``check_own_answers(rows, basic_rows)`` returns one ``Problem`` per leaking row under
the check name ``OWN_ANSWER_CHECK``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from hum_dagster.records import EE, EEA, EET, KGE, MRC, NER, OPENIE, RE, SPO, Problem
from hum_dagster.synthesis.outputs import NAN

OWN_ANSWER_CHECK = "no_own_answer_in_guidelines"
MIN_SPAN_CHARS = 2
# Fields of object schema items that name labels (not guideline content).
NAME_FIELDS = frozenset(
    {
        "label",
        "predicate",
        "subject_type",
        "object_type",
        "event_type",
        "entity_type",
        "role",
        "attribute",
    }
)
NAME_LISTS = frozenset({"arguments", "attributes", "attribute"})
SKIPPED_KEYS = frozenset({"instruction", "input", "format"})


# --------------------------------------------------------------------------- gold spans


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def output_spans(task: str, output: Any) -> set[str]:
    """The gold spans a basic output (parsed JSON) answers."""
    spans: set[str] = set()
    if task in (NER, EET) and isinstance(output, dict):
        for values in output.values():
            spans.update(_strings(values))
    elif task in (RE, SPO) and isinstance(output, dict):
        for pairs in output.values():
            for pair in pairs if isinstance(pairs, list) else ():
                if isinstance(pair, dict):
                    spans.update(_strings(pair.get("subject")))
                    spans.update(_strings(pair.get("object")))
    elif task in (EE, EEA) and isinstance(output, dict):
        for events in output.values():
            for event in events if isinstance(events, list) else ():
                if not isinstance(event, dict):
                    continue
                if task == EE:
                    spans.update(_strings(event.get("trigger")))
                    args = event.get("arguments") or {}
                else:
                    args = event
                for value in args.values() if isinstance(args, dict) else ():
                    spans.update(_strings(value))
    elif task == KGE and isinstance(output, dict):
        for entities in output.values():
            for name, attrs in entities.items() if isinstance(entities, dict) else ():
                spans.add(name)
                for value in attrs.values() if isinstance(attrs, dict) else ():
                    spans.update(_strings(value))
    elif task == OPENIE and isinstance(output, list):
        for triple in output:
            if isinstance(triple, dict):
                spans.update(_strings(triple.get("subject")))
                spans.update(_strings(triple.get("object")))
                spans.update(_strings(triple.get("extra")))
    elif task == MRC and isinstance(output, dict):
        spans.update(_strings(output.get("answer")))
    return {s for s in spans if len(s.strip()) >= MIN_SPAN_CHARS and s != NAN}


def record_spans(basic_rows: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """record id -> the gold spans of all its basic rows (MRC: only extractive answers)."""
    found: dict[str, set[str]] = {}
    for row in basic_rows:
        task = row.get("task")
        try:
            output = json.loads(row.get("output") or "null")
        except (TypeError, ValueError):
            continue
        if task == MRC:
            try:
                if json.loads(row.get("schema") or "[]"):
                    continue  # multiple choice: the answer is one of the listed options
            except ValueError:
                continue
        spans = output_spans(task, output)
        if spans:
            found.setdefault(row["record_id"], set()).update(spans)
    return {k: frozenset(v) for k, v in found.items()}


# --------------------------------------------------------------------------- matching


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def span_appears(span: str, text: str) -> bool:
    """Whether ``span`` occurs in ``text`` (ASCII word boundaries respected)."""
    if len(span) < MIN_SPAN_CHARS or span not in text:
        return False
    check_start = _is_word_char(span[0])
    check_end = _is_word_char(span[-1])
    if not (check_start or check_end):
        return True
    start = text.find(span)
    while start >= 0:
        end = start + len(span)
        ok_start = not check_start or start == 0 or not _is_word_char(text[start - 1])
        ok_end = not check_end or end == len(text) or not _is_word_char(text[end])
        if ok_start and ok_end:
            return True
        start = text.find(span, start + 1)
    return False


def leaked_spans(spans: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The spans that appear in any of ``texts``, sorted."""
    texts = [t for t in texts if t]
    if not texts:
        return []
    joined = "\u0000".join(texts)  # no span holds a NUL, so no match crosses two texts
    return sorted(s for s in spans if span_appears(s, joined))


# --------------------------------------------------------------------------- guideline part


def _item_strings(item: Any) -> Iterator[str]:
    if not isinstance(item, dict):
        return
    for key, value in item.items():
        if key in NAME_FIELDS or key == "trigger":
            continue
        if key in NAME_LISTS and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):  # {"role"|"attribute": name, "description": ...}
                    yield from _item_strings(sub)
            continue
        yield from _values(value)


def _values(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _values(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _values(v)


def string_values(value: Any) -> list[str]:
    """Every string value inside ``value`` (lists, tuples and dict values, not keys)."""
    return list(_values(value))


def label_names(schema: Any) -> list[str]:
    """Every label name a schema shows (item labels, their name fields, role lists)."""
    names: list[str] = []
    for item in schema if isinstance(schema, list) else ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key in NAME_FIELDS and isinstance(value, str):
                    names.append(value)
                elif key in NAME_LISTS and isinstance(value, list):
                    for sub in value:
                        if isinstance(sub, str):
                            names.append(sub)
                        elif isinstance(sub, dict):
                            names.extend(
                                v for k, v in sub.items() if k in NAME_FIELDS and isinstance(v, str)
                            )
    return names


def guideline_strings(instruction: Mapping[str, Any]) -> list[str]:
    """The guideline part of a parsed compound instruction (see the module docstring)."""
    out: list[str] = []
    for key, value in instruction.items():
        if key in SKIPPED_KEYS:
            continue
        if key == "schema":
            for item in value if isinstance(value, list) else ():
                out.extend(_item_strings(item))
        else:
            out.extend(_values(value))
    return out


def instruction_leaks(instruction: Mapping[str, Any], spans: Iterable[str]) -> list[str]:
    """The gold ``spans`` that appear in the guideline part of a parsed instruction,
    leaving out those a label name of its schema already shows (an event type
    ``组织关系-裁员`` shows its trigger ``裁员``; a masked label shows nothing)."""
    names = label_names(instruction.get("schema"))
    return [
        s
        for s in leaked_spans(spans, guideline_strings(instruction))
        if not any(s in name for name in names)
    ]


# --------------------------------------------------------------------------- the check


def check_own_answers(
    rows: Iterable[Mapping[str, Any]],
    basic_rows: Iterable[Mapping[str, Any]] | Mapping[str, frozenset[str]],
) -> list[Problem]:
    """One ``Problem`` (check ``OWN_ANSWER_CHECK``) per compound row whose guideline part
    contains a gold span of its own record. ``basic_rows``: the source's basic rows, or
    ``record_spans`` of them computed once."""
    spans_of = basic_rows if isinstance(basic_rows, Mapping) else record_spans(basic_rows)
    problems: list[Problem] = []
    for row in rows:
        spans = spans_of.get(row.get("record_id") or "")
        if not spans:
            continue
        try:
            instruction = json.loads(row["instruction"])
        except (TypeError, ValueError, KeyError):
            continue  # an instruction that does not parse is the label check's to report
        if not isinstance(instruction, dict):
            continue
        leaked = instruction_leaks(instruction, spans)
        if leaked:
            shown = ", ".join(repr(s) for s in leaked[:5])
            more = f" and {len(leaked) - 5} more" if len(leaked) > 5 else ""
            problems.append(
                Problem(
                    OWN_ANSWER_CHECK,
                    str(row.get("instruction_id")),
                    f"{row.get('strategy')}: the guidelines quote the record's own answer "
                    f"{shown}{more}",
                )
            )
    return problems


__all__ = [
    "OWN_ANSWER_CHECK",
    "check_own_answers",
    "guideline_strings",
    "instruction_leaks",
    "label_names",
    "leaked_spans",
    "output_spans",
    "record_spans",
    "span_appears",
    "string_values",
]
