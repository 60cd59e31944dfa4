"""What the data says about each label: positives, near-miss negatives, candidates.

``label_inventory`` lists the labels of a source (from its ``LabelSchema`` and from the
gold of its records); ``collect_instances`` gathers every occurrence of every label;
``mine_entry`` picks 5 positives (distinct values first), 5 negatives and the most
frequent values. Negatives are, in this order of preference:

1. instances of hard-negative labels (a user ``{label: [confusable labels]}`` map);
2. wrong-boundary spans: a positive span with one word (en) or character (zh) added
   or removed at a boundary, never itself a gold value of the label;
3. instances of other labels of the same kind (for roles: the other roles of the
   same event first), and for relations the reversed pair (never for a symmetric
   relation, where the reversed pair is the same fact).

No negative is ever a gold value of the label anywhere in the source. Sampling uses
``record_rng(seed, "<source>|<key>", stage)``, and instances are sorted first, so the
result does not depend on record order.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hum_dagster.dictionary.model import (
    ATTRIBUTE,
    CLASS_LABEL,
    ENTITY_TYPE,
    EVENT_TYPE,
    N_NEGATIVES,
    N_POSITIVES,
    RELATION,
    ROLE,
    SPO_LABEL,
    Example,
    Text,
    entry_key,
)
from hum_dagster.paths import TEMPLATES_DIR
from hum_dagster.records import EE, KGE, NER, RE, SPO, TC, LabelSchema, Record
from hum_dagster.synthesis.chunking import record_rng
from hum_dagster.synthesis.outputs import spo_label

MINED = "mined"
N_CANDIDATES = 10
N_TYPICAL = 4
SNIPPET_LIMIT = 300  # texts longer than this are cut to a window around the value
PAIR_KINDS = (RELATION, SPO_LABEL, ATTRIBUTE)
SPAN_KINDS = (ENTITY_TYPE, EVENT_TYPE, ROLE)


@lru_cache(maxsize=1)
def dictionary_wording() -> dict[str, Any]:
    with open(TEMPLATES_DIR / "dictionary.json", encoding="utf-8") as handle:
        return json.load(handle)


def _lang(language: str) -> str:
    return "zh" if language == "zh" else "en"


@dataclass(frozen=True, slots=True)
class LabelRef:
    label: str
    kind: str
    parent: str | None = None

    @property
    def key(self) -> str:
        return entry_key(self.label, self.parent)


@dataclass(frozen=True, slots=True)
class Instance:
    value: Any  # span, {"subject", "object"} pair, or class label
    text: str
    text_id: str
    record_id: str
    start: int

    @property
    def sort_key(self) -> tuple:
        return (self.record_id, self.start, value_string(self.value))


def value_string(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('subject', '')} → {value.get('object', '')}"
    return str(value)


# --------------------------------------------------------------------------- inventory


def label_inventory(task: str, schema: LabelSchema, records: Sequence[Record]) -> list[LabelRef]:
    """Every label of the source: the schema's, plus any its records' gold uses."""
    refs: dict[str, LabelRef] = {}

    def add(label: str, kind: str, parent: str | None = None) -> None:
        if label:
            ref = LabelRef(label, kind, parent)
            refs.setdefault(ref.key, ref)

    if task == NER:
        for t in schema.types:
            add(t, ENTITY_TYPE)
        for r in records:
            for e in r.gold.get("entities", ()):
                add(e["type"], ENTITY_TYPE)
    elif task == RE:
        for t in schema.roles:
            add(t, RELATION)
        for r in records:
            for rel in r.gold.get("relations", ()):
                add(rel["relation"], RELATION)
    elif task == SPO:
        for t in schema.types:
            add(t, SPO_LABEL)
        for r in records:
            for rel in r.gold.get("relations", ()):
                add(
                    spo_label(rel.get("head_type", ""), rel["relation"], rel.get("tail_type", "")),
                    SPO_LABEL,
                )
    elif task == EE:
        for t in [*schema.type_roles, *schema.types]:
            add(t, EVENT_TYPE)
            for role in schema.type_roles.get(t, ()):
                add(role, ROLE, t)
        for r in records:
            for ev in r.gold.get("events", ()):
                add(ev["event_type"], EVENT_TYPE)
                for arg in ev.get("arguments") or ():
                    add(arg["role"], ROLE, ev["event_type"])
    elif task == KGE:
        for t, attrs in schema.type_roles.items():
            add(t, ENTITY_TYPE)
            for a in attrs:
                add(a, ATTRIBUTE, t)
        for r in records:
            etype = r.gold.get("entity_type") or ""
            if etype:
                add(etype, ENTITY_TYPE)
                for rel in r.gold.get("relations", ()):
                    add(rel["relation"], ATTRIBUTE, etype)
    elif task == TC:
        for t in schema.types:
            add(t, CLASS_LABEL)
        for r in records:
            add(str(r.gold.get("label", "")), CLASS_LABEL)
    else:
        raise ValueError(f"task {task} has no label schema to build a dictionary for")
    return [refs[k] for k in sorted(refs)]


def _find(text: str, span: str, start: int | None = None) -> int:
    if start is not None and text[start : start + len(span)] == span:
        return start
    return text.find(span) if span else -1


def collect_instances(task: str, records: Iterable[Record]) -> dict[str, list[Instance]]:
    """key -> every occurrence in the records, sorted (record id, position, value)."""
    out: dict[str, list[Instance]] = {}

    def add(key: str, value: Any, record: Record, start: int) -> None:
        out.setdefault(key, []).append(
            Instance(value, record.text, record.text_id, record.record_id, start)
        )

    for r in records:
        text, gold = r.text, r.gold
        if task == NER:
            for e in gold.get("entities", ()):
                add(e["type"], e["text"], r, _find(text, e["text"], e.get("start")))
        elif task in (RE, SPO):
            for rel in gold.get("relations", ()):
                key = (
                    rel["relation"]
                    if task == RE
                    else spo_label(
                        rel.get("head_type", ""), rel["relation"], rel.get("tail_type", "")
                    )
                )
                add(
                    key,
                    {"subject": rel["head"], "object": rel["tail"]},
                    r,
                    _find(text, rel["head"]),
                )
        elif task == EE:
            for ev in gold.get("events", ()):
                etype = ev["event_type"]
                trigger = ev.get("trigger") or ""
                if trigger:
                    add(etype, trigger, r, _find(text, trigger))
                for arg in ev.get("arguments") or ():
                    value = arg.get("argument") or ""
                    if value:
                        add(entry_key(arg["role"], etype), value, r, _find(text, value))
        elif task == KGE:
            etype = gold.get("entity_type") or ""
            heads = []
            for rel in gold.get("relations", ()):
                if etype:
                    pair = {"subject": rel["head"], "object": rel["tail"]}
                    add(entry_key(rel["relation"], etype), pair, r, _find(text, rel["head"]))
                if rel["head"] not in heads:
                    heads.append(rel["head"])
            for head in heads:
                if etype:
                    add(etype, head, r, _find(text, head))
        elif task == TC:
            label = str(gold.get("label", ""))
            if label:
                add(label, label, r, 0)
    for instances in out.values():
        instances.sort(key=lambda i: i.sort_key)
    return out


# --------------------------------------------------------------------------- snippets


def snippet(text: str, value: Any) -> str:
    """The text, or a window of it around the value when the text is long."""
    if len(text) <= SNIPPET_LIMIT:
        return text
    probe = value.get("subject", "") if isinstance(value, dict) else str(value)
    pos = text.find(probe) if probe else -1
    if pos < 0:
        return text[:SNIPPET_LIMIT]
    half = (SNIPPET_LIMIT - len(probe)) // 2
    start = max(0, pos - max(half, 0))
    return text[start : start + SNIPPET_LIMIT]


def _example(inst: Instance, value: Any = None, reason: str | None = None) -> Example:
    value = inst.value if value is None else value
    return Example(
        text=snippet(inst.text, value),
        value=value,
        provenance=MINED,
        reason=reason,
        text_id=inst.text_id,
    )


# --------------------------------------------------------------------------- boundaries


def _boundary_variants(
    text: str, span: str, start: int, language: str
) -> list[tuple[str, str, str]]:
    """(new span, kind, the text added or removed) for one-unit boundary changes."""
    if start < 0 or not span or text[start : start + len(span)] != span:
        start = text.find(span)
        if start < 0 or not span:
            return []
    end = start + len(span)
    out: list[tuple[str, str, str]] = []
    if language == "zh":
        if end < len(text) and text[end].isalnum():
            out.append((span + text[end], "extended", text[end]))
        if start > 0 and text[start - 1].isalnum():
            out.append((text[start - 1] + span, "extended", text[start - 1]))
        if len(span) > 1:
            out.append((span[:-1], "shrunk", span[-1]))
            out.append((span[1:], "shrunk", span[0]))
        return out
    after = text[end:].lstrip(" ")
    if after:
        word = after.split(" ", 1)[0]
        if word and any(ch.isalnum() for ch in word):
            out.append(
                (text[start : end + (len(text[end:]) - len(after)) + len(word)], "extended", word)
            )
    before = text[:start].rstrip(" ")
    if before:
        word = before.rsplit(" ", 1)[-1]
        if word and any(ch.isalnum() for ch in word):
            out.append(
                (
                    text[start - (len(text[:start]) - len(before)) - len(word) : end],
                    "extended",
                    word,
                )
            )
    words = span.split(" ")
    if len(words) > 1:
        out.append((" ".join(words[:-1]), "shrunk", words[-1]))
        out.append((" ".join(words[1:]), "shrunk", words[0]))
    return out


# --------------------------------------------------------------------------- entries


@dataclass
class Mined:
    positives: list[Example]
    negatives: list[Example]
    candidates: list[Text]
    typical: Text | None


def _pick_positives(instances: list[Instance], rng) -> list[Instance]:
    order = list(instances)
    rng.shuffle(order)
    picked: list[Instance] = []
    seen_values: set[str] = set()
    seen_texts: set[tuple[str, str]] = set()
    for inst in order:  # distinct values first
        v = value_string(inst.value)
        if v not in seen_values:
            seen_values.add(v)
            seen_texts.add((inst.text_id, v))
            picked.append(inst)
            if len(picked) == N_POSITIVES:
                return picked
    for inst in order:
        v = value_string(inst.value)
        if (inst.text_id, v) not in seen_texts:
            seen_texts.add((inst.text_id, v))
            picked.append(inst)
            if len(picked) == N_POSITIVES:
                break
    return picked


def mine_entry(
    ref: LabelRef,
    instances: Mapping[str, list[Instance]],
    siblings: Sequence[LabelRef],
    language: str,
    source: str,
    seed: int = 42,
    hard_negatives: Mapping[str, Sequence[str]] | None = None,
    symmetric: bool = False,
) -> Mined:
    """Positives, negatives, candidates and a typical-values description for ``ref``.

    ``siblings`` are the labels of the same kind (the roles of all events for a role);
    their instances are the confusable negatives.
    """
    lang = _lang(language)
    wording = dictionary_wording()
    reasons = wording["reasons"]
    own = instances.get(ref.key, [])
    gold_values = {value_string(i.value) for i in own}
    # Pairs: a (text, pair) that is gold of this label in that very text is never a negative.
    gold_by_text = {(i.text_id, value_string(i.value)) for i in own}
    rng_pos = record_rng(seed, f"{source}|{ref.key}", "dictionary:positives")
    positives = [_example(i) for i in _pick_positives(own, rng_pos)]

    rng = record_rng(seed, f"{source}|{ref.key}", "dictionary:negatives")
    taken: set[tuple[str, str]] = set()
    negatives: list[Example] = []

    def usable(text_id: str, value: Any) -> bool:
        v = value_string(value)
        if ref.kind in PAIR_KINDS:
            bad = (text_id, v) in gold_by_text or v in gold_values
        else:
            bad = v in gold_values
        return not bad and (text_id, v) not in taken and bool(v.strip())

    def take(pool: list[tuple[Instance, Any, str]], limit: int) -> None:
        for inst, value, reason in pool:
            if len(negatives) >= N_NEGATIVES or limit <= 0:
                return
            if usable(inst.text_id, value):
                taken.add((inst.text_id, value_string(value)))
                negatives.append(_example(inst, value, reason))
                limit -= 1

    label_name = ref.label
    sibling_refs = [s for s in siblings if s.key != ref.key]
    # For a role, prefer the other roles of the same event.
    if ref.kind == ROLE:
        sibling_refs.sort(key=lambda s: (s.parent != ref.parent, s.key))

    def other_pool(others: Sequence[LabelRef], reason_key: str) -> list[tuple[Instance, Any, str]]:
        pool = []
        for other in others:
            for inst in instances.get(other.key, ()):
                reason = reasons[reason_key][lang].format(other=other.label, label=label_name)
                pool.append((inst, inst.value, reason))
        rng.shuffle(pool)
        return pool

    # 1. hard negatives
    hard_pool: list[tuple[Instance, Any, str]] = []
    if hard_negatives:
        names = set(hard_negatives.get(ref.label, ()))
        hard_refs = [s for s in sibling_refs if s.label in names]
        hard_pool = other_pool(hard_refs, "hard")
    take(hard_pool, 2)

    # 2. wrong boundaries (spans: the span; pairs: the object)
    boundary_pool: list[tuple[Instance, Any, str]] = []
    if ref.kind != CLASS_LABEL:
        for inst in own:
            if isinstance(inst.value, dict):
                obj = inst.value["object"]
                for new, kind, extra in _boundary_variants(
                    inst.text, obj, inst.text.find(obj), lang
                ):
                    value = {"subject": inst.value["subject"], "object": new}
                    boundary_pool.append((inst, value, reasons[kind][lang].format(extra=extra)))
            else:
                for new, kind, extra in _boundary_variants(inst.text, inst.value, inst.start, lang):
                    boundary_pool.append((inst, new, reasons[kind][lang].format(extra=extra)))
        rng.shuffle(boundary_pool)
    take(boundary_pool, 2)

    # 3. confusable labels (and reversed pairs)
    confusable = other_pool(sibling_refs, "confusable")
    if ref.kind in (RELATION, SPO_LABEL) and not symmetric:
        reversed_pool = [
            (
                inst,
                {"subject": inst.value["object"], "object": inst.value["subject"]},
                reasons["reversed"][lang].format(label=label_name),
            )
            for inst in own
        ]
        rng.shuffle(reversed_pool)
        confusable = reversed_pool[:1] + confusable
    take(confusable, N_NEGATIVES)
    take(boundary_pool, N_NEGATIVES)
    take(hard_pool, N_NEGATIVES)

    counts = Counter(value_string(i.value) for i in own) if ref.kind != CLASS_LABEL else Counter()
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:N_CANDIDATES]
    candidates = [Text(v, MINED) for v, _ in top]
    typical = None
    if candidates:
        typical = Text(typical_values_text([t.value for t in candidates], language), MINED)
    return Mined(positives, negatives, candidates, typical)


def typical_values_text(values: Sequence[str], language: str) -> str:
    """The mined "typical values" description of up to ``N_TYPICAL`` of ``values``.

    The dictionary stores it made from the most frequent values of the whole source;
    guideline synthesis makes it again per record from the candidates that are not the
    record's own (``synthesis.guidelines``), so no record sees its answer in it.
    """
    lang = _lang(language)
    wording = dictionary_wording()
    shown = wording["separator"][lang].join(values[:N_TYPICAL])
    return wording["typical_values"][lang].format(values=shown)
