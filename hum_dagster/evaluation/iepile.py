"""IEPile's scorer (``ie2instruction/eval_func.py``), restated: the ``iepile`` scoring mode.

What IEPile does, rule by rule (read from zjunlp/IEPile ``ie2instruction/eval_func.py``,
``eval/extracter/*.py`` and ``eval/metric/*.py``; this is an independent statement of
those rules, not a copy of the code):

Input
    JSON lines with ``id``, ``source`` (optional: ``"None"`` when absent),
    ``instruction`` (a JSON string holding ``input``), ``output`` (the generation) and
    ``label`` (a JSON string: the record's gold list in IEPile's raw form).

Grouping
    Lines are grouped by the string ``source + id``; the outputs of a group are kept in
    file order, its ``label`` (and ``input``) come from the group's first line. IEPile's
    ``id`` is the SHA-256 of the text, so two records with the same text in one source
    are one group there; our pipeline gives each record of a benchmark file its own id.

Reading an output
    ``json.loads`` of the whole output, nothing else (no code fences, no prose around
    it). A ``JSONDecodeError``, or a value that is not an object, is an error: the output
    gives no tuple and the error count (``错误数``) grows by one, per output (chunk).
    Inside the object, per task:

    - NER: ``{type: [entity, ...]}``: a value that is not a list is skipped, a list item
      that is not a string is skipped; tuple ``(entity, type)``;
    - RE: ``{relation: [{"subject", "object"}, ...]}``: non-list values and non-dict
      items skipped; ``subject``/``object`` default to ``""`` and must be strings (an
      empty string is kept); tuple ``(subject, relation, object)``;
    - EET: ``{event type: [trigger, ...]}`` like NER; tuple ``(trigger, event type)``;
    - EE: ``{event type: [{"trigger", "arguments": {role: value | [values]}}]}``:
      ``trigger`` defaults to ``""`` and must be a string; argument values equal to
      ``"NAN"`` are dropped (list items too); tuple
      ``(event type, trigger, ((argument, role), ...))``;
    - EEA: ``{event type: [{role: value | [values]}, ...]}``; tuple
      ``(event type, "", ((argument, role), ...))``.

Gold (``convert_kg``)
    NER ``(entity, entity_type)``; RE ``(head, relation, tail)`` (``.get`` with ``""``);
    EET ``(event_trigger, event_type)``; EE ``(event_type, event_trigger, args)``; EEA
    ``(event_type, "", args)`` with ``args = ((argument, role), ...)``. Gold is not
    filtered: a gold argument ``"NAN"`` stays.

Counting (``--match_mode set``)
    Per group: the set of gold tuples and the set of the predicted tuples of all its
    outputs; ``gold += |gold|``, ``pred += |pred|``, ``tp += |gold ∩ pred|``. A tuple
    predicted twice, in one chunk or in two, counts once. ``normal`` mode counts lists:
    a repeated prediction is one more prediction and matches at most as many gold
    copies as there are (a multiset intersection). EE and EEA count two kinds: events
    ``(event type, trigger)`` and arguments ``(event type, argument, role)``, each made
    into a set on its own. EET and NER count like each other (IEPile's ``NERMetric``).

Figures
    ``P = round(100 * tp / pred, 2)`` (0 when ``pred`` is 0), ``R`` likewise, and
    ``F1 = round(2 * P * R / (P + R), 2)`` from the rounded ``P`` and ``R`` (0 when
    ``P + R`` is 0). Keys: ``总样本数`` (groups), ``错误数`` (errors), ``P``, ``R``,
    ``F1``; for EE and EEA ``event_P`` ... ``argument_F1``. The result is
    ``{"total": {...}, <category>: {...}}`` with one entry per ``--sort_by`` value,
    sorted.

Where IEPile itself is broken, and what we do
    - EET: ``EETExtracter`` names its method ``post_process4``, so ``extract`` (which
      calls ``post_process``) raises ``AttributeError`` on the first output and EET
      cannot be scored at all. We apply the rules of ``post_process4`` (above), which
      is what the code intends.
    - ``--sort_by``: ``eval_func.py`` passes ``return_result=False`` to
      ``Metric.count_instance``, which takes no such argument: any ``--sort_by`` run
      raises ``TypeError``. We compute the per-category figures it means to print.
    - EE: ``arguments`` that is not an object (say a list) raises ``AttributeError``; we
      read it as no arguments. EE/EEA argument values that are objects or lists inside a
      list are unhashable and make the set raise ``TypeError``; we use their JSON text,
      so they count as predictions that match nothing.
    - An ``output`` that is not a string (``null``) raises ``TypeError`` in
      ``json.loads``; we count it as an error.
    - ``--metrics_list rouge`` needs ``rouge_chinese`` and ``jieba``, and its
      ``count_instance_rouge`` calls ``get_rouge_score`` with wrong keyword names: it
      cannot run. We support ``f1`` only. ``--language``, ``--NAN`` and ``--prefix`` are
      parsed but never used by IEPile (its extracters use ``"NAN"``); we accept and
      ignore them too.
    - MRC is among ``--task``'s choices but has no extracter (the run fails); IEPile
      has no MRC or TC scorer.

No Dagster.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.records import EE, EEA, EET, NER, RE

IEPILE_TASKS = (NER, RE, EE, EET, EEA)
EVENT_TASKS = (EE, EEA)
NAN = "NAN"
RECORDS_KEY = "总样本数"
ERRORS_KEY = "错误数"
MATCH_MODES = ("set", "normal")


# --------------------------------------------------------------------------- reading


def _hashable(value: Any) -> Any:
    """Values a set can hold; lists and objects become their JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _arguments(mapping: Mapping[str, Any]) -> tuple[tuple[Any, str], ...]:
    args: list[tuple[Any, str]] = []
    for role, value in mapping.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item == NAN:
                continue
            args.append((_hashable(item), role))
    return tuple(args)


def extract(task: str, output: Any) -> tuple[bool, list[tuple]]:
    """(read without error, tuples) for one output, by IEPile's rules for ``task``."""
    if task not in IEPILE_TASKS:
        raise ValueError(f"IEPile scores {IEPILE_TASKS}, not {task!r}")
    if not isinstance(output, str):
        return False, []
    try:
        value = json.loads(output)
    except json.JSONDecodeError:
        return False, []
    if not isinstance(value, dict):
        return False, []
    found: list[tuple] = []
    for key, values in value.items():
        if not isinstance(values, list):
            continue
        for item in values:
            if task in (NER, EET):
                if isinstance(item, str):
                    found.append((item, key))
            elif not isinstance(item, dict):
                continue
            elif task == RE:
                head, tail = item.get("subject", ""), item.get("object", "")
                if isinstance(head, str) and isinstance(tail, str):
                    found.append((head, key, tail))
            elif task == EE:
                trigger = item.get("trigger", "")
                if not isinstance(trigger, str):
                    continue
                arguments = item.get("arguments", {})
                args = _arguments(arguments) if isinstance(arguments, dict) else ()
                found.append((key, trigger, args))
            else:  # EEA
                found.append((key, "", _arguments(item)))
    return True, found


def gold_from_label(task: str, label: Sequence[Mapping[str, Any]]) -> list[tuple]:
    """Gold tuples from an IEPile label list (``convert_kg``)."""
    out: list[tuple] = []
    for item in label:
        if task == NER:
            out.append((item["entity"], item["entity_type"]))
        elif task == RE:
            out.append((item.get("head", ""), item.get("relation", ""), item.get("tail", "")))
        elif task == EET:
            out.append((item["event_trigger"], item["event_type"]))
        elif task in EVENT_TASKS:
            args = tuple((a["argument"], a["role"]) for a in item["arguments"])
            trigger = item["event_trigger"] if task == EE else ""
            out.append((item["event_type"], trigger, args))
        else:
            raise ValueError(f"IEPile scores {IEPILE_TASKS}, not {task!r}")
    return out


def label_from_gold(task: str, gold: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The IEPile label list of a canonical ``Record.gold`` (what ``convert_func.py``
    writes in test mode): NER entities, RE relations, EE/EET/EEA events."""
    if task == NER:
        return [{"entity": e["text"], "entity_type": e["type"]} for e in gold.get("entities", ())]
    if task == RE:
        return [
            {"head": r["head"], "relation": r["relation"], "tail": r["tail"]}
            for r in gold.get("relations", ())
        ]
    if task in (EE, EET, EEA):
        return [
            {
                "event_trigger": e.get("trigger") or "",
                "event_type": e["event_type"],
                "arguments": [
                    {"argument": a.get("argument", ""), "role": a["role"]}
                    for a in e.get("arguments") or ()
                ],
            }
            for e in gold.get("events", ())
        ]
    raise ValueError(f"IEPile scores {IEPILE_TASKS}, not {task!r}")


# --------------------------------------------------------------------------- counting


def _div(a: float, b: float) -> float:
    return round(a / b * 100, 2) if b else 0.0


def _f1(p: float, r: float) -> float:
    return round(2 * p * r / (p + r), 2) if p + r else 0.0


@dataclass
class _Kind:
    tp: int = 0
    gold: int = 0
    pred: int = 0

    def add(self, gold: Iterable[tuple], pred: Iterable[tuple], match_mode: str) -> None:
        gold, pred = list(gold), list(pred)
        if match_mode == "set":
            g, p = set(gold), set(pred)
            self.tp += len(g & p)
            self.gold += len(g)
            self.pred += len(p)
        else:
            self.tp += sum((Counter(gold) & Counter(pred)).values())
            self.gold += len(gold)
            self.pred += len(pred)

    def figures(self, prefix: str = "") -> dict[str, float]:
        p, r = _div(self.tp, self.pred), _div(self.tp, self.gold)
        return {f"{prefix}P": p, f"{prefix}R": r, f"{prefix}F1": _f1(p, r)}


@dataclass
class IEPileCounter:
    """One of IEPile's metric objects: ``NERMetric`` (NER, EET), ``REMetric`` (RE) or
    ``EEMetric`` (EE, EEA), set or normal matching."""

    task: str
    match_mode: str = "set"
    records: int = 0
    errors: int = 0
    kinds: dict[str, _Kind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.match_mode not in MATCH_MODES:
            raise ValueError(f"match_mode must be one of {MATCH_MODES}, got {self.match_mode!r}")
        names = ("event", "argument") if self.task in EVENT_TASKS else ("",)
        self.kinds = {name: _Kind() for name in names}

    def count_error(self) -> None:
        self.errors += 1

    def add(self, gold: Sequence[tuple], pred: Sequence[tuple]) -> None:
        self.records += 1
        if self.task not in EVENT_TASKS:
            self.kinds[""].add(gold, pred, self.match_mode)
            return
        events = (
            [(t, trigger) for t, trigger, _ in gold],
            [(t, trigger) for t, trigger, _ in pred],
        )
        arguments = (
            [(t, arg, role) for t, _, args in gold for arg, role in args],
            [(t, arg, role) for t, _, args in pred for arg, role in args],
        )
        self.kinds["event"].add(*events, self.match_mode)
        self.kinds["argument"].add(*arguments, self.match_mode)

    def counts(self) -> dict[str, dict[str, int]]:
        """tp, gold, pred per kind (``""`` for NER/RE/EET)."""
        return {k: {"tp": v.tp, "gold": v.gold, "pred": v.pred} for k, v in self.kinds.items()}

    def compute(self) -> dict[str, Any]:
        result: dict[str, Any] = {RECORDS_KEY: self.records, ERRORS_KEY: self.errors}
        for name, kind in self.kinds.items():
            result.update(kind.figures(f"{name}_" if name else ""))
        return result


# --------------------------------------------------------------------------- a file


class _Missing:
    """A line without an ``output`` (IEPile stops with ``KeyError``; we count it)."""

    def __repr__(self) -> str:
        return "MISSING_OUTPUT"


MISSING_OUTPUT = _Missing()


@dataclass
class Group:
    """The lines of one ``source + id``: outputs in file order, each line's
    ``instruction`` beside its output."""

    key: str
    source: str
    label: list[dict[str, Any]]
    input: str
    outputs: list[Any] = field(default_factory=list)
    instructions: list[Any] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(o is MISSING_OUTPUT for o in self.outputs)

    def get(self, name: str) -> Any:
        return {"source": self.source, "input": self.input, "key": self.key}[name]


class IEPileInputError(ValueError):
    """A prediction file IEPile could not read; the message names the line."""


def read_groups(lines: Iterable[str], where: str = "<input>", allow_missing: bool = False) -> list[Group]:
    """Group JSON lines by ``source + id`` in first-seen order; with ``allow_missing`` a
    line without ``output`` gives ``MISSING_OUTPUT`` instead of an error."""
    groups: dict[str, Group] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise IEPileInputError(f"{where}:{number}: not a JSON line: {exc}") from None
        if not isinstance(data, dict) or "id" not in data:
            raise IEPileInputError(f"{where}:{number}: needs an 'id' field")
        source = data.get("source", "None")
        key = f"{source}{data['id']}"
        group = groups.get(key)
        if group is None:
            if "label" not in data:
                raise IEPileInputError(f"{where}:{number}: needs a 'label' field")
            try:
                label = json.loads(data["label"]) if isinstance(data["label"], str) else data["label"]
                instruction = data.get("instruction") or "{}"
                text = json.loads(instruction).get("input", "") if isinstance(instruction, str) else ""
            except ValueError as exc:
                raise IEPileInputError(f"{where}:{number}: 'label' or 'instruction' is not JSON: {exc}") from None
            if not isinstance(label, list):
                raise IEPileInputError(f"{where}:{number}: 'label' must be a JSON list")
            group = groups[key] = Group(key, str(source), label, text)
        if "output" not in data and not allow_missing:
            raise IEPileInputError(f"{where}:{number}: needs an 'output' field")
        group.outputs.append(data.get("output", MISSING_OUTPUT))
        group.instructions.append(data.get("instruction"))
    return list(groups.values())


def evaluate_groups(
    groups: Sequence[Group], task: str, match_mode: str = "set", sort_by: str = ""
) -> dict[str, Any]:
    """IEPile's result: ``{"total": figures, <category>: figures, ...}``."""
    total = IEPileCounter(task, match_mode)
    by_cat: dict[str, IEPileCounter] = {}
    for group in groups:
        counters = [total]
        if sort_by:
            cat = str(group.get(sort_by))
            counters.append(by_cat.setdefault(cat, IEPileCounter(task, match_mode)))
        pred: list[tuple] = []
        for output in group.outputs:
            if output is MISSING_OUTPUT:
                continue
            ok, tuples = extract(task, output)
            if not ok:
                for counter in counters:
                    counter.count_error()
            pred.extend(tuples)
        gold = gold_from_label(task, group.label)
        for counter in counters:
            counter.add(gold, pred)
    result: dict[str, Any] = {"total": total.compute()}
    for cat in sorted(by_cat):
        result[cat] = by_cat[cat].compute()
    return result
