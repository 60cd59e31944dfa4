"""Scores for zero-shot evaluation, in three modes that say what they count.

Extraction tasks (NER, RE, EE, EET, EEA) are scored by micro precision, recall and F1
over tuples; MRC and TC by accuracy. The predictions of a record's chunks are merged
by (task, source, record id): the union of the chunks' tuples against the record's gold
(its ``label``). Every mode reports, per metric, ``P``, ``R``, ``F1`` (or
``accuracy``), ``tp``/``gold``/``pred`` (or ``correct``), ``parse_failures`` (chunks
whose output the mode could not read), ``parse_failure_rate`` (failures / chunks, in
[0, 1]); ``records``, ``chunks`` and ``missing`` (chunks with no generation at all)
are given once per metric. P, R, F1 and accuracy are percentages.

Modes
    ``iepile``
        IEPile's ``eval_func.py --match_mode set``, exactly (``evaluation.iepile``
        states its rules): ``json.loads`` of the whole output and nothing else, IEPile's
        per-task reading and gold, sets per record, P and R rounded to two decimals and
        F1 computed from the rounded values. Comparable with figures published with
        IEPile's scorer. Tuples: NER ``(entity, type)``, RE ``(subject, relation,
        object)``, EET ``(trigger, event type)``, EEA/EE events ``(type, trigger)`` and
        arguments ``(type, argument, role)``. IEPile has no MRC/TC scorer: there the
        ``iepile`` figures are the ``strict`` ones.
    ``strict``
        The answer is found in the output tolerantly (a JSON object anywhere in the
        text: prose or code fences around it are fine; other formats through the
        project's parser), then matched with exact strings: no case folding, no
        whitespace stripping, no label-name mapping. ``{"Person": ["Ann"]}`` for the
        label ``person`` and ``" Ann "`` for ``Ann`` score 0. In a non-JSON answer a
        tuple whose strings do not all occur in the output as written (a label the
        parser mapped to the schema's) is a prediction that matches nothing.
    ``lenient``
        The tolerant reading of every output format the corpus teaches
        (``hum_dagster.synthesis.parser.parse_output`` with the instruction's schema,
        label names matched case-insensitively; labels outside the schema kept as false
        positives), then every tuple element normalised on both sides (NFKC,
        case-folded, punctuation dropped, white space collapsed), so FewRel's
        lower-cased names match a model's capitalised ones.

Failures and empties (all modes)
    - An empty or blank generation (the OpenAI generator returns ``""`` for a failed
      request) is a parse failure, never a valid empty answer.
    - A chunk with no generation is counted in ``missing`` (not a parse failure); it
      predicts nothing.
    - Predicted values dropped as "no answer": only ``""``, ``"NAN"`` (and JSON
      ``null``) inside a JSON answer; gold ``""`` and ``"NAN"`` arguments/triggers are
      dropped likewise (``iepile`` keeps gold as IEPile does). Spans that look like
      empty words (``None``, ``-``, ``n/a``, ``无``, ``没有``) are matched like any
      span. (The project's text formats spell an empty label with such words, so in a
      non-JSON answer they read as empty, as those formats define.)

MRC and TC
    The answer is the value of ``{"answer": ...}`` / ``{"label": ...}`` in a JSON
    output, else the whole output. ``strict`` (and ``iepile``) accept only the exact
    option text (MRC) or label (TC). ``lenient`` also accepts the normalised text, an
    option letter (``B``, ``(B)``, ``Answer: B``, ``答案是B``), ``B. <option>``, and an
    answer that contains exactly one option. An answer that names several options
    (``positive or negative``, ``很满意还是很无奈``, ``A, C``) or negates the one it names
    (``not positive``, ``不是很满意``) is wrong in every mode (``ambiguous``).

No Dagster.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hum_dagster.evaluation import iepile
from hum_dagster.llm.extract import ExtractError, extract_json
from hum_dagster.records import EE, EEA, EET, MRC, NER, RE, TC

F1_TASKS = (NER, RE, EE, EET, EEA)
CHOICE_TASKS = (MRC, TC)
MODES = ("iepile", "strict", "lenient")
DEFAULT_MODE = "iepile"
NAN = "NAN"
METRIC_OF_KIND = {
    "ner": "ner_f1",
    "re": "re_f1",
    "trigger": "trigger_f1",
    "argument": "argument_f1",
}
KINDS_OF_TASK = {NER: ("ner",), RE: ("re",), EET: ("trigger",), EEA: ("argument",),
                 EE: ("trigger", "argument")}


# --------------------------------------------------------------------------- normalising


_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFKC, case-fold, punctuation (Unicode P*) to spaces, white space collapsed."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def normalise_tuples(tuples: Iterable[tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {tuple(normalise_text(part) for part in t) for t in tuples}


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Reading:
    """What one mode read from one output: tuples by kind, or a failure and why."""

    ok: bool
    tuples: dict[str, set[tuple[str, ...]]]
    style: str = ""
    error: str | None = None


def _failed(error: str, style: str = "") -> Reading:
    return Reading(False, {}, style, error)


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _dropped(value: Any, lenient: bool) -> bool:
    """The "no answer" spellings of a JSON answer: ``""``, ``"NAN"``, ``null``."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    if lenient:
        return not value.strip() or value.strip().casefold() == "nan"
    return value == "" or value == NAN


def _values(value: Any, lenient: bool) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str) and not _dropped(v, lenient):
            out.append(v)
    return out


_SUBJECT = ("subject",)
_OBJECT = ("object",)
_LENIENT_SUBJECT = ("subject", "head", "sub", "主体", "头实体")
_LENIENT_OBJECT = ("object", "tail", "obj", "客体", "尾实体")


def _field(item: Mapping[str, Any], names: Sequence[str], lenient: bool) -> Any:
    for name in names:
        if name in item:
            return item[name]
    if lenient:
        folded = {str(k).strip().casefold(): v for k, v in item.items()}
        for name in names:
            if name in folded:
                return folded[name]
    return None


def _events(values: Any) -> list[Any]:
    return values if isinstance(values, list) else [values]


def json_tuples(task: str, value: Mapping[str, Any], lenient: bool = False) -> dict[str, set]:
    """Tuples of a JSON answer object, strings exactly as written (``lenient`` also reads
    ``head``/``tail`` for ``subject``/``object`` and case-insensitive field names)."""
    subject = _LENIENT_SUBJECT if lenient else _SUBJECT
    obj = _LENIENT_OBJECT if lenient else _OBJECT
    if task in (NER, EET):
        kind = "ner" if task == NER else "trigger"
        return {kind: {(str(label), span) for label, v in value.items() for span in _values(v, lenient)}}
    if task == RE:
        out = set()
        for relation, pairs in value.items():
            for pair in _events(pairs):
                if not isinstance(pair, dict):
                    continue
                heads = _values(_field(pair, subject, lenient), lenient)
                tails = _values(_field(pair, obj, lenient), lenient)
                if len(heads) == 1 and len(tails) == 1:
                    out.add((heads[0], str(relation), tails[0]))
        return {"re": out}
    triggers, arguments = set(), set()
    for etype, events in value.items():
        for event in _events(events):
            if not isinstance(event, dict):
                if task == EE and isinstance(event, str):
                    triggers.update((str(etype), t) for t in _values(event, lenient))
                continue
            if task == EE:
                for trigger in _values(_field(event, ("trigger",), lenient), lenient):
                    triggers.add((str(etype), trigger))
                args = _field(event, ("arguments",), lenient)
            else:
                args = event
            if isinstance(args, dict):
                for role, argument in args.items():
                    for arg in _values(argument, lenient):
                        arguments.add((str(etype), str(role), arg))
    if task == EEA:
        return {"argument": arguments}
    return {"trigger": triggers, "argument": arguments}


def parsed_tuples(task: str, value: Any) -> dict[str, set]:
    """Tuples of the project parser's canonical value (see ``synthesis/outputs.py``)."""
    if not isinstance(value, dict):
        return {kind: set() for kind in KINDS_OF_TASK[task]}
    return json_tuples(task, value, lenient=True)


def _project_parser():
    try:
        from hum_dagster.synthesis.parser import parse_output
    except ImportError:  # pragma: no cover - the parser ships with the package
        return None
    return parse_output


NOT_VERBATIM = "\x00not written as such: "


def _verbatim(tuples: dict[str, set], text: str) -> dict[str, set]:
    """``strict`` on the project parser's reading: a tuple whose strings are not all in
    the output as written (a label name the parser mapped to the schema's, a value it
    rewrote) stays a prediction but can match nothing."""
    return {
        kind: {t if all(part in text for part in t) else (NOT_VERBATIM + t[0], *t[1:]) for t in found}
        for kind, found in tuples.items()
    }


def _parse_any_format(task: str, text: str, schema: Any) -> Reading:
    parse_output = _project_parser()
    if parse_output is None:  # pragma: no cover
        return _failed("no JSON object in the output")
    try:
        result = parse_output(task, text, schema)
    except Exception as exc:  # a parser bug must not take the whole scoring down
        return _failed(f"{type(exc).__name__}: {exc}", "error")
    if not result.ok:
        return _failed(result.error or "unreadable", result.style)
    value = result.value
    if isinstance(value, dict) and result.unknown:
        value = {**result.unknown, **value}  # labels outside the schema still count
    return Reading(True, parsed_tuples(task, value), result.style)


def read_output(task: str, text: str | None, mode: str, schema: Any = None) -> Reading:
    """What ``mode`` reads from one output of an extraction task (``schema``: the chunk's
    schema items, used by ``lenient`` only)."""
    if task not in F1_TASKS:
        raise ValueError(f"no tuple scoring for task {task!r}")
    if _is_blank(text):
        return _failed("empty generation", "empty")
    assert text is not None
    if mode == "iepile":
        raise ValueError("iepile mode reads through evaluation.iepile.extract")
    lenient = mode == "lenient"
    try:
        value = extract_json(text)
    except ExtractError:
        value = None
    if isinstance(value, dict):
        return Reading(True, json_tuples(task, value, lenient), "json")
    reading = _parse_any_format(task, text, schema)
    if lenient or not reading.ok:
        return reading
    return Reading(True, _verbatim(reading.tuples, text), reading.style)


# --------------------------------------------------------------------------- gold


def gold_tuples(task: str, gold: Mapping[str, Any]) -> dict[str, set[tuple[str, ...]]]:
    """The record's gold (canonical ``Record.gold``) as tuples of the kinds of ``task``;
    ``""`` and ``"NAN"`` triggers and arguments are not gold."""
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
    parse_failures: int = 0
    chunks: int = 0

    def add(self, gold: set, pred: set) -> None:
        self.tp += len(gold & pred)
        self.gold += len(gold)
        self.pred += len(pred)

    def result(self) -> dict[str, Any]:
        p, r = _pct(self.tp, self.pred), _pct(self.tp, self.gold)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {
            "tp": self.tp, "gold": self.gold, "pred": self.pred, "P": p, "R": r, "F1": f1,
            "parse_failures": self.parse_failures,
            "parse_failure_rate": self.parse_failures / self.chunks if self.chunks else 0.0,
        }


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


def _iepile_kinds(task: str, pred: list[tuple], gold_label: list) -> dict[str, tuple[set, set]]:
    """(gold set, pred set) per kind of ours, from IEPile's tuples."""
    gold = iepile.gold_from_label(task, gold_label)
    if task not in iepile.EVENT_TASKS:
        return {KINDS_OF_TASK[task][0]: (set(gold), set(pred))}
    out = {"argument": (
        {(t, a, r) for t, _, args in gold for a, r in args},
        {(t, a, r) for t, _, args in pred for a, r in args},
    )}
    if task == EE:
        out["trigger"] = ({(t, g) for t, g, _ in gold}, {(t, g) for t, g, _ in pred})
    return out


class _IEPileRounded:
    """IEPile's figures (rounded as it rounds) on top of the raw counts."""

    @staticmethod
    def result(counter: F1Counter) -> dict[str, Any]:
        out = counter.result()
        p = round(_pct(counter.tp, counter.pred), 2)
        r = round(_pct(counter.tp, counter.gold), 2)
        out.update(P=p, R=r, F1=round(2 * p * r / (p + r), 2) if p + r else 0.0)
        return out


def score_f1(
    rows: Sequence[Mapping[str, Any]], outputs: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Micro P/R/F1 per metric (``ner_f1``, ``re_f1``, ``trigger_f1``, ``argument_f1``)
    and mode over extraction rows; ``outputs`` maps instruction id to the generation."""
    counters: dict[str, dict[str, F1Counter]] = {}
    stats: dict[str, dict[str, int]] = {}
    for (task, _source, _record_id), group in _group(rows).items():
        if task not in F1_TASKS:
            continue
        canonical = _gold_of(group[0])
        gold = gold_tuples(task, canonical)
        label = iepile.label_from_gold(task, canonical)
        pred: dict[str, dict[str, set]] = {m: {k: set() for k in gold} for m in ("strict", "lenient")}
        iepile_pred: list[tuple] = []
        failures = dict.fromkeys(MODES, 0)
        missing = 0
        for row in group:
            text = outputs.get(row["instruction_id"])
            if text is None:
                missing += 1
                continue
            ok, tuples = iepile.extract(task, text)
            failures["iepile"] += not ok
            iepile_pred.extend(tuples)
            for mode in ("strict", "lenient"):
                reading = read_output(task, text, mode, _schema_of(row))
                if not reading.ok:
                    failures[mode] += 1
                    continue
                for kind, found in reading.tuples.items():
                    pred[mode].setdefault(kind, set()).update(found)
        iepile_sets = _iepile_kinds(task, iepile_pred, label)
        for kind, gold_set in gold.items():
            metric = METRIC_OF_KIND[kind]
            s = stats.setdefault(metric, {"records": 0, "chunks": 0, "missing": 0})
            s["records"] += 1
            s["chunks"] += len(group)
            s["missing"] += missing
            by_mode = counters.setdefault(metric, {m: F1Counter() for m in MODES})
            for mode, counter in by_mode.items():
                counter.chunks += len(group)
                counter.parse_failures += failures[mode]
            by_mode["iepile"].add(*iepile_sets[kind])
            by_mode["strict"].add(gold_set, pred["strict"].get(kind, set()))
            by_mode["lenient"].add(
                normalise_tuples(gold_set), normalise_tuples(pred["lenient"].get(kind, set()))
            )
    return {
        metric: {
            **stats[metric],
            "iepile": _IEPileRounded.result(by_mode["iepile"]),
            "strict": by_mode["strict"].result(),
            "lenient": by_mode["lenient"].result(),
        }
        for metric, by_mode in sorted(counters.items())
    }


# --------------------------------------------------------------------------- MRC / TC

_LETTER = re.compile(
    r"^(?:(?:the\s+)?answer(?:\s+is)?|option|choice|答案(?:是|为)?|选项?|选择)?\s*[:：]?\s*"
    r"[\(（\[]?([A-Za-z])[\)）\]]?\s*[.。:：、)]?\s*$",
    re.IGNORECASE,
)
_LEADING_LETTER = re.compile(r"^[\(（\[]?([A-Za-z])[\)）\].。:：、]\s*(.+)$")
_LETTER_LIST = re.compile(r"^\s*[\(（\[]?[A-Za-z][\)）\]]?(?:\s*(?:[,，、/&]|and|or|和|或)\s*[\(（\[]?[A-Za-z][\)）\]]?)+\s*[.。]?\s*$", re.IGNORECASE)
_NEGATION_EN = re.compile(r"(?<![a-z])(?:not|no|never|neither|nor|none)(?![a-z])|n['’]t(?![a-z])")
_NEGATION_ZH = re.compile(r"不|没|未|否|非(?!常)")


def answer_of(value: Any, task: str, *, lenient: bool) -> str | None:
    """The answer string of a JSON output (``{"answer"}``/``{"label"}``), or None."""
    key = "answer" if task == MRC else "label"
    if isinstance(value, dict):
        if key in value:
            value = value[key]
        elif lenient:
            folded = {str(k).strip().casefold(): v for k, v in value.items()}
            if key in folded:
                value = folded[key]
            elif len(value) == 1:
                value = next(iter(value.values()))
            else:
                return None
        else:
            return None
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) else None


def _raw_answer(task: str, text: str, lenient: bool) -> str | None:
    """The answer of one output: the asked key of a JSON answer (None when it has none),
    a JSON string, or the whole text."""
    try:
        value = extract_json(text)
    except ExtractError:
        return text.strip()
    if isinstance(value, (dict, list)):
        return answer_of(value, task, lenient=lenient)
    if isinstance(value, str):
        return value
    return text.strip()


def _negated(text: str, options: Sequence[str]) -> bool:
    """A negation cue outside the text of the options it names."""
    rest = text.casefold()
    for option in sorted((o.casefold() for o in options if o), key=len, reverse=True):
        rest = rest.replace(option, " ")
    return bool(_NEGATION_EN.search(rest) or _NEGATION_ZH.search(rest))


def resolve_choice(answer: str, options: Sequence[str], *, strict: bool = False) -> int | None:
    """The index of the option ``answer`` names, or None (unresolved or ambiguous).

    ``strict``: only the exact option text. Otherwise, in order: the exact text; the
    normalised text; a letter (``B``, ``(B)``, ``Answer: B``, ``答案是B``); ``B. <text>``
    whose text is that option; the one option (not negated) the answer contains (as a
    whole word for Latin-script options). Several letters or options: None."""
    options = list(options)
    if answer in options:
        return options.index(answer)
    if strict:
        return None
    stripped = answer.strip()
    norm_options = [normalise_text(o) for o in options]
    norm = normalise_text(stripped)
    if norm and norm in norm_options and norm_options.count(norm) == 1:
        return norm_options.index(norm)
    if _LETTER_LIST.match(stripped):
        return None  # "A, C": several options
    match = _LETTER.match(stripped)
    if match:
        index = ord(match.group(1).upper()) - ord("A")
        return index if 0 <= index < len(options) else None
    lead = _LEADING_LETTER.match(stripped)
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
    if len(found) > 1:  # an option inside another found option ("good" in "not good")
        found = [
            i for i in found if not any(j != i and norm_options[i] in norm_options[j] for j in found)
        ]
    if len(found) != 1:
        return None
    if _negated(stripped, [options[found[0]]]):
        return None
    return found[0]


def _choice_counter() -> dict[str, Any]:
    return {"correct": 0, "parse_failures": 0, "unresolved": 0, "ambiguous": 0}


def _is_ambiguous(answer: str, options: Sequence[str]) -> bool:
    """Several options named, several letters, or the named option negated."""
    if _LETTER_LIST.match(answer.strip()):
        return True
    norm = normalise_text(answer)
    named = [o for o in options if normalise_text(o) and (
        re.search(rf"(?<!\w){re.escape(normalise_text(o))}(?!\w)", norm)
        if normalise_text(o).isascii() else normalise_text(o) in norm)]
    named = [o for o in named if not any(o != p and normalise_text(o) in normalise_text(p) for p in named)]
    return len(named) > 1 or (len(named) == 1 and _negated(answer, named))


def score_choice(
    rows: Sequence[Mapping[str, Any]], outputs: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Accuracy per task (keyed ``"MRC"``/``"TC"``) and mode."""
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
            task, {"records": 0, "chunks": 0, "missing": 0,
                   **{mode: _choice_counter() for mode in ("strict", "lenient")}},
        )
        r["records"] += 1
        r["chunks"] += 1
        text = outputs.get(row["instruction_id"])
        if text is None:
            r["missing"] += 1
            continue
        for mode in ("strict", "lenient"):
            c = r[mode]
            lenient = mode == "lenient"
            if _is_blank(text):
                c["parse_failures"] += 1
                continue
            answer = _raw_answer(task, text, lenient)
            if answer is None:
                c["parse_failures"] += 1
                continue
            if options:
                if lenient and _is_ambiguous(answer, options) and answer not in options:
                    c["ambiguous"] += 1
                    continue
                index = resolve_choice(answer, options, strict=not lenient)
                chosen = options[index] if index is not None else None
            else:  # extractive MRC: the answer text itself
                if lenient:
                    by_norm = {normalise_text(a): a for a in answers}
                    chosen = by_norm.get(normalise_text(answer))
                else:
                    chosen = answer if answer in answers else None
            if chosen is None:
                c["unresolved"] += 1
            elif chosen in answers:
                c["correct"] += 1
    for r in results.values():
        for mode in ("strict", "lenient"):
            c = r[mode]
            c["accuracy"] = _pct(c["correct"], r["records"])
            c["parse_failure_rate"] = c["parse_failures"] / r["chunks"] if r["chunks"] else 0.0
        r["iepile"] = dict(r["strict"], note="IEPile has no MRC/TC scorer: strict figures")
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
    rows: Sequence[Mapping[str, Any]], outputs: Mapping[str, str | None]
) -> dict[str, Any]:
    """All metrics the rows call for: ``{"ner_f1": {...}, "accuracy": {...}, ...}``, each
    with ``records``, ``chunks``, ``missing`` and one entry per mode. MRC and TC share
    the key ``accuracy`` (``accuracy_mrc``/``accuracy_tc`` when both occur)."""
    result: dict[str, Any] = dict(score_f1(rows, outputs))
    choice = score_choice(rows, outputs)
    if len(choice) == 1:
        result["accuracy"] = next(iter(choice.values()))
    else:
        for task, r in choice.items():
            result[f"accuracy_{task.lower()}"] = r
    return result


def _figure(value: Mapping[str, Any]) -> float:
    return float(value["F1"] if "F1" in value else value["accuracy"])


def headline(scores: Mapping[str, Any], mode: str = DEFAULT_MODE) -> dict[str, float]:
    """One number per metric (F1 or accuracy) in ``mode``, for tables."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return {m: _figure(v[mode]) for m, v in scores.items() if isinstance(v, dict) and mode in v}


def failure_rates(scores: Mapping[str, Any], mode: str = DEFAULT_MODE) -> dict[str, float]:
    """Parse-failure rate (0-1) per metric in ``mode``."""
    return {
        m: float(v[mode]["parse_failure_rate"])
        for m, v in scores.items()
        if isinstance(v, dict) and mode in v
    }


def record_counts(scores: Mapping[str, Any]) -> dict[str, int]:
    return {m: int(v["records"]) for m, v in scores.items() if isinstance(v, dict) and "records" in v}
