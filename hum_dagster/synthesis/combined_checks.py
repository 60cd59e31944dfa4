"""The checks of combined compound rows: each row passes those of its parts.

``combined_label_problems`` (outputs parse with the instruction's own labels, read back
from the stated format first where a format variant is a part), ``combined_format_problems``
(the wording states the guideline sentences of its parts, then the format; the output
reads back strictly into the base answer), ``combined_own_answer_problems`` and
``strategies_problems`` (each part the ``strategies`` column lists shows in the
instruction). ``synthesis.strategies`` wraps them as validators; ``synthesis.combined``
runs them on every row before it is kept. No Dagster imports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hum_dagster.synthesis.combined_weights import (
    FORMATS,
    PART_ORDER,
    PREFERENCES,
    merge_order,
)
from hum_dagster.synthesis.formats import (
    StrictFormatError,
    format_row_problems,
    format_sentence,
    format_wording,
    read_strict,
)
from hum_dagster.synthesis.guidelines import (
    GUIDELINE_STRATEGIES,
    basic_item,
    load_guideline_wording,
    validate_compound_row,
)
from hum_dagster.synthesis.own_answers import check_own_answers
from hum_dagster.synthesis.templates import join_parts, load_templates


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _inst(row: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(row["instruction"])


def _sep(language: str) -> str:
    return "" if language == "zh" else " "


# --------------------------------------------------------------------------- checks


def row_parts(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The strategies a row carries (``strategies``, else its ``strategy``)."""
    value = row.get("strategies") or row.get("strategy") or ""
    return tuple(p for p in value.split("+") if p)


def _format_of(row: Mapping[str, Any]) -> tuple[str, str, int]:
    prov = json.loads(row.get("provenance") or "")
    return prov["style"], prov["empty"] or "blank", int(prov["layout"])


def _read_back(row: Mapping[str, Any]) -> Any:
    """The answer a format row's output reads back to (StrictFormatError, ValueError)."""
    style, empty, layout = _format_of(row)
    inst = _inst(row)
    task = row["task"]
    items = [basic_item(task, it) for it in inst["schema"]]
    options = [o for o in items if isinstance(o, str)] if task == "MRC" else ()
    return read_strict(style, task, row.get("output"), empty, layout,
                       row.get("language") or "en", options, items if task != "MRC" else None)


def _as_json_row(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A format row with its output read back as JSON (None when it does not read:
    the format check reports that)."""
    if FORMATS not in row_parts(row):
        return row
    try:
        value = _read_back(row)
        inst = _inst(row)
    except (StrictFormatError, ValueError, KeyError, TypeError):
        return None
    inst.pop("format", None)
    return {**row, "instruction": _dumps(inst), "output": _dumps(value)}


def combined_label_problems(row: Mapping[str, Any], own_input: list[str] | None = None) -> list[str]:
    """``validate_compound_row`` on the row, its output read back first where a format
    variant is part of it. Rows carrying only a format variant are the format check's."""
    if row_parts(row) == (FORMATS,):
        return []
    readable = _as_json_row(row)
    if readable is None:
        return []
    return validate_compound_row(readable, own_input=own_input)


def combined_format_problems(row: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """Where a format variant is part of the row: the wording is the basic task sentence,
    the guideline sentences of its parts in order, then the statement of its own style,
    layout and empty spelling; the output reads back strictly into the base answer."""
    parts = row_parts(row)
    if FORMATS not in parts:
        return []
    task, language = row.get("task"), row.get("language") or "en"
    try:
        style, empty, layout = _format_of(row)
        inst = _inst(row)
        base_wording = _inst(base)["instruction"]
        items = [basic_item(task, it) for it in inst["schema"]]
    except (TypeError, ValueError, KeyError) as exc:
        return [f"row, provenance or base row does not parse: {exc}"]
    templates = load_templates()
    task_text = templates.task_part(task, language, base_wording)
    if task_text is None:
        return ["the base wording has no reply sentence a format could replace"]
    wording = load_guideline_wording()
    gparts = merge_order(p for p in parts if p in GUIDELINE_STRATEGIES)
    sentences = [s for s in (wording.sentence(p, language, task) for p in gparts) if s]
    problems = []
    try:
        stated = format_sentence(style, task, language, empty, None, layout)
    except (KeyError, ValueError) as exc:
        return [f"format {style!r} layout {layout} cannot be stated: {exc}"]
    expected = join_parts(_sep(language).join([task_text, *sentences]), stated, language)
    if inst.get("instruction") != expected:
        problems.append(
            f"{row.get('variant')}: the instruction is not the task sentence, the guideline "
            f"sentences of {'+'.join(parts)} and the statement of layout {layout} of {style}"
        )
    plain = {**inst, "instruction": format_wording(task_text, style, task, language, empty, layout),
             "schema": items}
    problems.extend(format_row_problems({**row, "instruction": _dumps(plain)}, base, templates))
    return problems


def combined_own_answer_problems(row: Mapping[str, Any], spans: Mapping[str, frozenset[str]]):
    return check_own_answers([row], spans)


def strategies_problems(row: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> list[str]:
    """The row shows each strategy its ``strategies`` names (a description, examples, a
    stated format, a rule...), and names only registry parts."""
    parts = row_parts(row)
    unknown = [p for p in parts if p not in PART_ORDER]
    if unknown or not parts:
        return [f"strategies {row.get('strategies')!r}: unknown parts {unknown}"]
    try:
        inst = _inst(row)
        items = inst["schema"]
    except (TypeError, ValueError, KeyError) as exc:
        return [f"instruction does not parse: {exc}"]
    dicts = [it for it in items if isinstance(it, dict)]

    def any_key(*keys: str) -> bool:
        return any(k in it for it in dicts for k in keys)

    shown = {
        "description": any_key("description"),
        "description_variants": any_key("description"),
        "examples": any_key("positive examples", "negative examples"),
        "representative_examples": any_key("examples"),
        "output_format": "output_format" in inst,
        "label_masking": "LABEL_" in _dumps(items),
        "label_variants": base is None or _inst(base)["schema"] != items,
        FORMATS: "format" in inst,
        PREFERENCES: bool(inst.get("rules")),
    }
    return [f"{row.get('strategies')}: lists {p} but the instruction shows none"
            for p in parts if not shown[p]]


__all__ = [
    "combined_format_problems",
    "combined_label_problems",
    "combined_own_answer_problems",
    "row_parts",
    "strategies_problems",
]
