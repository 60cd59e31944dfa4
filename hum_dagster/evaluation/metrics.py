"""Scores for zero-shot evaluation, compatible with IEPile's scorer.

Extraction tasks are scored by micro precision, recall and F1 over exact tuples, as
IEPile's ``ie2instruction/eval_func.py`` does:

- NER ``(entity type, entity)``; RE ``(subject, relation, object)``;
- EE trigger ``(event type, trigger)`` (from EET or EE outputs) and argument
  ``(event type, role, argument)`` (from EEA or EE outputs; ``"NAN"`` and empty
  arguments are ignored).

The predictions of a record's chunks are merged by (source, record id) before scoring:
the union of the chunks' tuples against the gold of the record (its ``label``). Tuples
are sets: a tuple predicted twice, in one chunk or in two, counts once (IEPile's
``--match_mode set``; its default ``normal`` mode counts a duplicate as a false
positive). An output that does not parse gives no prediction and is counted in
``parse_failures``; a row with no generation at all is counted in ``missing``.

Every F1 result is given twice: ``strict`` (exact strings, as published figures) and
``normalised`` (case-folded, punctuation stripped, white space collapsed, so that
FewRel's lower-cased names match a model's capitalised ones). P, R, F1 and accuracy
are percentages, as IEPile prints them.

MRC and TC are scored by accuracy: the answer (``{"answer": ...}`` / ``{"label": ...}``,
or the raw text when the output is not JSON, unless ``raw_text_fallback=False``) is
resolved to one option by its letter (A, B, C, ...), its text, or, failing those, the
one option / label word it contains. ``strict`` accuracy only accepts the exact option
text or letter.

Parsing: ``parse_prediction(task, text, schema)`` uses
``hum_dagster.synthesis.parser.parse_output`` (every output format) when it can be
imported, else JSON only (code fences stripped, first balanced JSON value). No Dagster.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.llm.extract import ExtractError, extract_json
from hum_dagster.records import EE, EEA, EET, MRC, NER, RE, TC
from hum_dagster.synthesis.outputs import NAN

F1_TASKS = (NER, RE, EE, EET, EEA)
CHOICE_TASKS = (MRC, TC)
EMPTY_ANSWERS = frozenset({"", NAN, "nan", "none", "null", "[]"})


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Parsed:
    """Same fields as ``hum_dagster.synthesis.parser.Parsed``."""

    value: Any
    style: str
    ok: bool
    error: str | None = None


def parse_json_prediction(task: str, text: str | None, schema: Any = None) -> Parsed:
    """JSON-only parsing: the whole text, a fenced block, or the first balanced value.

    Extraction tasks need a JSON object; MRC and TC accept any JSON value."""
    if text is None:
        return Parsed(None, "none", False, "no output")
    try:
        value = extract_json(text)
    except ExtractError as exc:
        return Parsed(None, "json", False, str(exc))
    if task in F1_TASKS and not isinstance(value, dict):
        return Parsed(None, "json", False, f"{task} output must be a JSON object")
    return Parsed(value, "json", True, None)


def _external_parser():
    try:
        from hum_dagster.synthesis.parser import parse_output  # type: ignore[import-not-found]
    except ImportError:
        return None
    return parse_output


def parser_name() -> str:
    """Which parser ``parse_prediction`` uses (recorded in score metadata)."""
    return "hum_dagster.synthesis.parser.parse_output" if _external_parser() else "json"


def parse_prediction(task: str, text: str | None, schema: Any = None) -> Parsed:
    """The parsed value of a model output for ``task`` (``schema``: the chunk's items)."""
    parse_output = _external_parser()
    if parse_output is None or text is None:
        return parse_json_prediction(task, text, schema)
    try:
        result = parse_output(task, text, schema)
    except Exception as exc:  # a parser bug must not take the whole scoring down
        return Parsed(None, "error", False, f"{type(exc).__name__}: {exc}")
    ok = bool(getattr(result, "ok", False))
    value = getattr(result, "value", None) if ok else None
    unknown = getattr(result, "unknown", None)
    if ok and unknown and isinstance(value, dict) and isinstance(unknown, dict):
        # Labels outside the chunk's schema still count (as false positives), as in
        # IEPile's scorer, which reads every key of the output.
        value = {**unknown, **value}
    return Parsed(
        value,
        str(getattr(result, "style", "")),
        ok,
        getattr(result, "error", None),
    )


# --------------------------------------------------------------------------- normalising


_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case-fold, drop punctuation (Unicode category P*), collapse white space."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def normalise_tuples(tuples: Iterable[tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {tuple(normalise_text(part) for part in t) for t in tuples}


# --------------------------------------------------------------------------- tuples


def _strings(value: Any) -> list[str]:
    """A value or list of values, as strings; empty/NAN values dropped."""
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str) and v.strip() and v.strip() not in EMPTY_ANSWERS:
            out.append(v.strip())
    return out


def _trigger_tuples(value: Mapping[str, Any]) -> set[tuple[str, ...]]:
    out = set()
    for etype, triggers in value.items():
        for trigger in _strings(triggers):
            out.add((str(etype), trigger))
    return out


def _argument_tuples(etype: str, arguments: Any) -> set[tuple[str, ...]]:
    out = set()
    if isinstance(arguments, dict):
        for role, argument in arguments.items():
            for arg in _strings(argument):
                out.add((str(etype), str(role), arg))
    return out


def predicted_tuples(task: str, value: Any) -> dict[str, set[tuple[str, ...]]]:
    """Tuples in a parsed output, by kind: ``{"ner"}``, ``{"re"}``, ``{"trigger"}``,
    ``{"argument"}`` or both for EE. Malformed parts are skipped, as IEPile does."""
    if not isinstance(value, dict):
        return {}
    if task == NER:
        return {"ner": _trigger_tuples(value)}
    if task == EET:
        return {"trigger": _trigger_tuples(value)}
    if task == RE:
        out = set()
        for relation, pairs in value.items():
            for pair in pairs if isinstance(pairs, list) else [pairs]:
                if not isinstance(pair, dict):
                    continue
                head, tail = pair.get("subject"), pair.get("object")
                if isinstance(head, str) and isinstance(tail, str) and head and tail:
                    out.add((head.strip(), str(relation), tail.strip()))
        return {"re": out}
    if task == EEA:
        out = set()
        for etype, events in value.items():
            for event in events if isinstance(events, list) else [events]:
                out |= _argument_tuples(etype, event)
        return {"argument": out}
    if task == EE:
        triggers, arguments = set(), set()
        for etype, events in value.items():
            for event in events if isinstance(events, list) else [events]:
                if not isinstance(event, dict):
                    continue
                for trigger in _strings(event.get("trigger")):
                    triggers.add((str(etype), trigger))
                arguments |= _argument_tuples(etype, event.get("arguments"))
        return {"trigger": triggers, "argument": arguments}
    raise ValueError(f"no tuple scoring for task {task!r}")


def gold_tuples(task: str, gold: Mapping[str, Any]) -> dict[str, set[tuple[str, ...]]]:
    """The record's gold (canonical ``Record.gold``) as tuples of the kinds of ``task``."""
    if task == NER:
        return {"ner": {(e["type"], e["text"]) for e in gold.get("entities", ()) if e.get("text")}}
    if task == RE:
        return {
            "re": {
                (r["head"], r["relation"], r["tail"])
                for r in gold.get("relations", ())
                if r.get("head") and r.get("tail")
            }
        }
    if task in (EE, EET, EEA):
        triggers, arguments = set(), set()
        for event in gold.get("events", ()):
            etype = event["event_type"]
            trigger = event.get("trigger") or ""
            if trigger and trigger != NAN:
                triggers.add((etype, trigger))
            for arg in event.get("arguments") or ():
                value = arg.get("argument") or ""
                if value and value != NAN:
                    arguments.add((etype, arg["role"], value))
        if task == EET:
            return {"trigger": triggers}
        if task == EEA:
            return {"argument": arguments}
        return {"trigger": triggers, "argument": arguments}
    raise ValueError(f"no tuple scoring for task {task!r}")


# --------------------------------------------------------------------------- counters


def _pct(a: float, b: float) -> float:
    return 100.0 * a / b if b else 0.0


@dataclass
class F1Counter:
    tp: int = 0
    gold: int = 0
    pred: int = 0

    def add(self, gold: set, pred: set) -> None:
        self.tp += len(gold & pred)
        self.gold += len(gold)
        self.pred += len(pred)

    def result(self) -> dict[str, float]:
        p, r = _pct(self.tp, self.pred), _pct(self.tp, self.gold)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"tp": self.tp, "gold": self.gold, "pred": self.pred, "P": p, "R": r, "F1": f1}


METRIC_OF_KIND = {
    "ner": "ner_f1",
    "re": "re_f1",
    "trigger": "trigger_f1",
    "argument": "argument_f1",
}


@dataclass
class _RecordState:
    gold: dict[str, set]
    pred: dict[str, set] = field(default_factory=dict)


def _group(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], list[Mapping]]:
    groups: dict[tuple[str, str, str], list[Mapping]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["source"], row["record_id"]), []).append(row)
    return groups


def _schema_of(row: Mapping[str, Any]) -> Any:
    try:
        return json.loads(row.get("schema") or "[]")
    except ValueError:
        return None


def _gold_of(row: Mapping[str, Any]) -> dict[str, Any]:
    label = row.get("label")
    if label is None:
        raise ValueError(
            f"row {row.get('instruction_id')!r} has no gold 'label': evaluation needs test-mode rows"
        )
    return json.loads(label) if isinstance(label, str) else dict(label)


def score_f1(
    rows: Sequence[Mapping[str, Any]], outputs: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Micro P/R/F1 per metric (``ner_f1``, ``re_f1``, ``trigger_f1``, ``argument_f1``)
    over extraction rows; ``outputs`` maps instruction id to the generated text."""
    strict: dict[str, F1Counter] = {}
    loose: dict[str, F1Counter] = {}
    stats: dict[str, dict[str, int]] = {}
    for (task, _source, _record_id), group in _group(rows).items():
        if task not in F1_TASKS:
            continue
        gold = gold_tuples(task, _gold_of(group[0]))
        pred: dict[str, set] = {kind: set() for kind in gold}
        failures = missing = 0
        for row in group:
            text = outputs.get(row["instruction_id"])
            if text is None:
                missing += 1
                continue
            parsed = parse_prediction(task, text, _schema_of(row))
            if not parsed.ok:
                failures += 1
                continue
            for kind, tuples in predicted_tuples(task, parsed.value).items():
                pred.setdefault(kind, set()).update(tuples)
        for kind, gold_set in gold.items():
            metric = METRIC_OF_KIND[kind]
            s = stats.setdefault(
                metric, {"records": 0, "chunks": 0, "parse_failures": 0, "missing": 0}
            )
            s["records"] += 1
            s["chunks"] += len(group)
            s["parse_failures"] += failures
            s["missing"] += missing
            strict.setdefault(metric, F1Counter()).add(gold_set, pred.get(kind, set()))
            loose.setdefault(metric, F1Counter()).add(
                normalise_tuples(gold_set), normalise_tuples(pred.get(kind, set()))
            )
    return {
        metric: {
            **stats[metric],
            "strict": strict[metric].result(),
            "normalised": loose[metric].result(),
        }
        for metric in sorted(strict)
    }


# --------------------------------------------------------------------------- MRC / TC

_LETTER = re.compile(
    r"^(?:(?:the\s+)?answer(?:\s+is)?|option|choice|答案(?:是|为)?|选项?|选择)?\s*[:：]?\s*"
    r"[\(（\[]?([A-Za-z])[\)）\]]?\s*[.。:：、)]?\s*$",
    re.IGNORECASE,
)
_LEADING_LETTER = re.compile(r"^[\(（\[]?([A-Za-z])[\)）\].。:：、]\s*(.+)$")


def _answer_value(value: Any, task: str) -> str | None:
    key = "answer" if task == MRC else "label"
    if isinstance(value, dict):
        if key in value:
            value = value[key]
        elif len(value) == 1:
            value = next(iter(value.values()))
        else:
            return None
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value.strip() if isinstance(value, str) else None


def resolve_choice(answer: str, options: Sequence[str], *, strict: bool = False) -> int | None:
    """The index of the option ``answer`` names, or None.

    Tried in order: the exact option text; a letter (``B``, ``(B)``, ``Answer: B``,
    ``答案是B``); then (unless ``strict``) the normalised option text, ``B. <text>``, and
    the one option whose normalised text occurs in the answer (as a whole word for
    Latin-script options)."""
    answer = answer.strip()
    if answer in options:
        return list(options).index(answer)
    match = _LETTER.match(answer)
    if match:
        index = ord(match.group(1).upper()) - ord("A")
        if 0 <= index < len(options):
            return index
    if strict:
        return None
    norm_options = [normalise_text(o) for o in options]
    norm = normalise_text(answer)
    if norm in norm_options:
        return norm_options.index(norm)
    lead = _LEADING_LETTER.match(answer)
    if lead:
        index = ord(lead.group(1).upper()) - ord("A")
        if 0 <= index < len(options) and normalise_text(lead.group(2)) == norm_options[index]:
            return index
    found = []
    for i, option in enumerate(norm_options):
        if not option:
            continue
        if option.isascii():
            if re.search(rf"(?<!\w){re.escape(option)}(?!\w)", norm):
                found.append(i)
        elif option in norm:
            found.append(i)
    if len(found) > 1:  # drop options contained in another found option ("good" in "not good")
        found = [
            i
            for i in found
            if not any(j != i and norm_options[i] in norm_options[j] for j in found)
        ]
    return found[0] if len(found) == 1 else None


def score_choice(
    rows: Sequence[Mapping[str, Any]],
    outputs: Mapping[str, str | None],
    *,
    raw_text_fallback: bool = True,
) -> dict[str, dict[str, Any]]:
    """Accuracy per task (``accuracy`` for MRC and TC rows, keyed ``"MRC"``/``"TC"``)."""
    results: dict[str, dict[str, Any]] = {}
    for (task, _source, _record_id), group in _group(rows).items():
        if task not in CHOICE_TASKS:
            continue
        gold = _gold_of(group[0])
        row = group[0]
        if task == MRC:
            options = list(gold.get("options") or [])
            answers = set(gold.get("answers") or [])
        else:
            options = list(_schema_labels(row))
            answers = {gold["label"]}
        r = results.setdefault(
            task,
            {
                "records": 0,
                "correct": 0,
                "correct_strict": 0,
                "parse_failures": 0,
                "missing": 0,
                "unresolved": 0,
                "from_raw_text": 0,
            },
        )
        r["records"] += 1
        text = outputs.get(row["instruction_id"])
        if text is None:
            r["missing"] += 1
            continue
        parsed = parse_prediction(task, text, options)
        answer = _answer_value(parsed.value, task) if parsed.ok else None
        if not parsed.ok:
            r["parse_failures"] += 1
            if raw_text_fallback:
                answer = text.strip()
                r["from_raw_text"] += 1
        if answer is None:
            r["unresolved"] += 1
            continue
        if options:
            index = resolve_choice(answer, options)
            strict_index = resolve_choice(answer, options, strict=True)
            chosen = options[index] if index is not None else None
            chosen_strict = options[strict_index] if strict_index is not None else None
        else:  # extractive MRC: exact or normalised answer text
            chosen = (
                answer if normalise_text(answer) in {normalise_text(a) for a in answers} else None
            )
            chosen_strict = answer if answer in answers else None
            if chosen is not None:
                chosen = next(a for a in answers if normalise_text(a) == normalise_text(answer))
        if chosen is None:
            r["unresolved"] += 1
        if chosen is not None and chosen in answers:
            r["correct"] += 1
        if chosen_strict is not None and chosen_strict in answers:
            r["correct_strict"] += 1
    for r in results.values():
        r["accuracy"] = _pct(r["correct"], r["records"])
        r["accuracy_strict"] = _pct(r["correct_strict"], r["records"])
    return results


def _schema_labels(row: Mapping[str, Any]) -> list[str]:
    """TC labels of a row's schema: plain strings, or ``{"label": ...}`` items (style C)."""
    labels = []
    for item in _schema_of(row) or []:
        if isinstance(item, str):
            labels.append(item)
        elif isinstance(item, dict) and isinstance(item.get("label"), str):
            labels.append(item["label"])
    return labels


# --------------------------------------------------------------------------- everything


def score_rows(
    rows: Sequence[Mapping[str, Any]],
    outputs: Mapping[str, str | None],
    *,
    raw_text_fallback: bool = True,
) -> dict[str, Any]:
    """All metrics the rows call for: ``{"ner_f1": {...}, "accuracy": {...}, ...,
    "parser": <which parser>}``. MRC and TC share the key ``accuracy``."""
    result: dict[str, Any] = dict(score_f1(rows, outputs))
    choice = score_choice(rows, outputs, raw_text_fallback=raw_text_fallback)
    if len(choice) == 1:
        result["accuracy"] = next(iter(choice.values()))
    else:
        for task, r in choice.items():
            result[f"accuracy_{task.lower()}"] = r
    result["parser"] = parser_name()
    return result


def headline(scores: Mapping[str, Any]) -> dict[str, float]:
    """One number per metric (strict F1 or accuracy), for tables."""
    out = {}
    for metric, value in scores.items():
        if not isinstance(value, dict):
            continue
        if "strict" in value:
            out[metric] = value["strict"]["F1"]
        elif "accuracy" in value:
            out[metric] = value["accuracy"]
    return out
