"""Per-task outputs of basic instructions, built from a record's canonical gold.

Each task has two steps: ``index_gold`` turns a record's gold into a lookup keyed by
label (done once per record), and ``build_output`` answers one chunk of schema items
from that lookup (done once per chunk). Outputs follow the IEPile/OneKE structure:

- NER ``{type: [entity, ...]}``; EET ``{event_type: [trigger, ...]}``;
- RE ``{relation: [{"subject", "object"}]}``; SPO the same keyed by predicate;
- EE ``{event_type: [{"trigger", "arguments": {role: value | [values] | "NAN"}}]}``;
- EEA ``{event_type: [{role: value | [values] | "NAN"}, ...]}`` (one dict per event);
- KGE ``{entity_type: {entity: {attribute: value | [values]}}}``;
- OpenIE ``[{"subject", "predicate", "object"(, "extra", "time", "location",
  "context")}]``; MRC ``{"answer"}``;
  TC ``{"label"}``.

Lists of spans are de-duplicated and ordered by first position in the text; every
queried schema item is present in the output (empty when absent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hum_dagster.records import EE, EEA, EET, IG, KGE, MRC, NER, OPENIE, RE, SPO, TC

NAN = "NAN"
# The key of a KGE schema item's attribute list: OneKE's instruction format writes
# "attributes"; IEPile's converter (and tables written before this key) "attribute".
KGE_ATTRIBUTES = "attributes"
IEPILE_KGE_ATTRIBUTES = "attribute"


def kge_attributes(item: Any) -> list[str]:
    """The attribute names of a KGE schema item, under either key."""
    if not isinstance(item, dict):
        return []
    names = item.get(KGE_ATTRIBUTES)
    if names is None:
        names = item.get(IEPILE_KGE_ATTRIBUTES)
    return list(names or ())
_FAR = 1 << 62  # position of a span that does not occur in the text


# --------------------------------------------------------------------------- labels


def spo_label(subject_type: str, predicate: str, object_type: str) -> str:
    return f"{subject_type}_{predicate}_{object_type}"


def spo_item(label: str) -> dict[str, str]:
    """IEPile's schema item for an SPO label ``subj_pred_obj``.

    The subject and object types are the first and last ``_`` parts; the predicate
    is what lies between (so a predicate may itself contain ``_``).
    """
    parts = label.split("_")
    if len(parts) < 3:
        raise ValueError(f"SPO label {label!r} is not of the form subject_predicate_object")
    return {
        "subject_type": parts[0],
        "predicate": "_".join(parts[1:-1]),
        "object_type": parts[-1],
    }


def item_label(task: str, item: Any) -> str:
    """The label string a schema item stands for (used for sorting and sampling)."""
    if isinstance(item, str):
        return item
    if task == SPO:
        return spo_label(item["subject_type"], item["predicate"], item["object_type"])
    if task in (EE, EEA):
        return item["event_type"]
    if task == KGE:
        return item["entity_type"]
    raise ValueError(f"unexpected schema item for {task}: {item!r}")


def output_key(task: str, item: Any) -> str:
    """The key under which a schema item's answer appears in the output."""
    if task == SPO and not isinstance(item, str):
        return item["predicate"]
    return item_label(task, item)


# --------------------------------------------------------------------------- helpers


def _positions(text: str) -> Callable[[str], int]:
    cache: dict[str, int] = {}

    def pos(span: str) -> int:
        found = cache.get(span)
        if found is None:
            found = text.find(span) if span else -1
            if found < 0:
                found = _FAR
            cache[span] = found
        return found

    return pos


def _ordered_unique(values: list[str], pos: Callable[[str], int]) -> list[str]:
    unique = list(dict.fromkeys(values))
    if len(unique) > 1:
        unique.sort(key=pos)
    return unique


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------- indexes


def _index_ner(text: str, gold: dict[str, Any]) -> dict[str, list[str]]:
    first: dict[tuple[str, str], int] = {}
    for ent in gold.get("entities", ()):
        mention, etype = ent["text"], ent["type"]
        start = ent.get("start")
        if start is None or text[start : start + len(mention)] != mention:
            start = text.find(mention)
            if start < 0:
                start = _FAR
        key = (etype, mention)
        if key not in first or start < first[key]:
            first[key] = start
    index: dict[str, list[str]] = {}
    for (etype, mention), _ in sorted(first.items(), key=lambda kv: kv[1]):
        index.setdefault(etype, []).append(mention)
    return index


def _pairs(text: str, triples: list[tuple[str, str, str]]) -> dict[str, list[dict[str, str]]]:
    pos = _positions(text)
    seen: dict[tuple[str, str, str], None] = dict.fromkeys(triples)
    ordered = sorted(seen, key=lambda t: (pos(t[1]), pos(t[2])))
    index: dict[str, list[dict[str, str]]] = {}
    for label, head, tail in ordered:
        index.setdefault(label, []).append({"subject": head, "object": tail})
    return index


def _index_re(text: str, gold: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    return _pairs(text, [(r["relation"], r["head"], r["tail"]) for r in gold.get("relations", ())])


def _index_spo(text: str, gold: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    triples = [
        (
            spo_label(r.get("head_type", ""), r["relation"], r.get("tail_type", "")),
            r["head"],
            r["tail"],
        )
        for r in gold.get("relations", ())
    ]
    return _pairs(text, triples)


def _events(text: str, gold: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """event_type -> [(trigger, {role: value | [values]})] ordered by trigger position."""
    pos = _positions(text)
    index: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for event in gold.get("events", ()):
        trigger = event.get("trigger") or ""
        arguments = event.get("arguments") or ()
        if not trigger and not arguments:
            continue
        roles: dict[str, list[str]] = {}
        for arg in arguments:
            value = arg.get("argument") or ""
            if value:
                roles.setdefault(arg["role"], []).append(value)
        args = {role: _one_or_many(_ordered_unique(vals, pos)) for role, vals in roles.items()}
        index.setdefault(event["event_type"], []).append((trigger or NAN, args))
    for events in index.values():
        if len(events) > 1:
            events.sort(key=lambda e: pos(e[0]) if e[0] != NAN else _FAR)
    return index


def _index_eet(text: str, gold: dict[str, Any]) -> dict[str, list[str]]:
    pos = _positions(text)
    triggers: dict[str, list[str]] = {}
    for event in gold.get("events", ()):
        trigger = event.get("trigger") or ""
        if trigger:
            triggers.setdefault(event["event_type"], []).append(trigger)
    return {etype: _ordered_unique(vals, pos) for etype, vals in triggers.items()}


def _index_kge(text: str, gold: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    pos = _positions(text)
    heads: dict[str, dict[str, list[str]]] = {}
    for rel in gold.get("relations", ()):
        heads.setdefault(rel["head"], {}).setdefault(rel["relation"], []).append(rel["tail"])
    entities = {
        head: {attr: _one_or_many(_ordered_unique(vals, pos)) for attr, vals in attrs.items()}
        for head, attrs in sorted(heads.items(), key=lambda kv: pos(kv[0]))
    }
    return gold.get("entity_type", ""), entities


def _index_identity(text: str, gold: dict[str, Any]) -> dict[str, Any]:
    return gold


INDEXERS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    NER: _index_ner,
    RE: _index_re,
    SPO: _index_spo,
    EE: _events,
    EEA: _events,
    EET: _index_eet,
    KGE: _index_kge,
    OPENIE: _index_identity,
    MRC: _index_identity,
    TC: _index_identity,
    IG: _index_identity,
}


def index_gold(task: str, text: str, gold: dict[str, Any]) -> Any:
    """The per-record lookup that ``build_output`` answers chunks from."""
    return INDEXERS[task](text, gold)


# --------------------------------------------------------------------------- outputs


def _out_flat(index: dict[str, list[Any]], items: Sequence[str]) -> dict[str, list[Any]]:
    return {label: index.get(label, []) for label in items}


def _out_spo(index: dict[str, list[dict[str, str]]], items: Sequence[dict[str, str]]) -> dict:
    out: dict[str, list[dict[str, str]]] = {}
    for item in items:
        found = index.get(
            spo_label(item["subject_type"], item["predicate"], item["object_type"]), []
        )
        bucket = out.setdefault(item["predicate"], [])
        bucket.extend(pair for pair in found if pair not in bucket)
    return out


def _out_ee(index: dict[str, list[tuple[str, dict[str, Any]]]], items: Sequence[dict]) -> dict:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        roles = item["arguments"]
        out[item["event_type"]] = [
            {"trigger": trigger, "arguments": {role: args.get(role, NAN) for role in roles}}
            for trigger, args in index.get(item["event_type"], ())
        ]
    return out


def _out_eea(index: dict[str, list[tuple[str, dict[str, Any]]]], items: Sequence[dict]) -> dict:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        roles = item["arguments"]
        out[item["event_type"]] = [
            {role: args.get(role, NAN) for role in roles}
            for _, args in index.get(item["event_type"], ())
        ]
    return out


def _out_kge(index: tuple[str, dict[str, dict[str, Any]]], items: Sequence[dict]) -> dict:
    entity_type, entities = index
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for item in items:
        if item["entity_type"] != entity_type:
            out[item["entity_type"]] = {}
            continue
        attributes = kge_attributes(item)
        out[item["entity_type"]] = {
            head: {attr: attrs[attr] for attr in attributes if attr in attrs}
            for head, attrs in entities.items()
        }
    return out


def _out_openie(gold: dict[str, Any], items: Sequence[Any]) -> list[dict[str, Any]]:
    triples = []
    for triple in gold.get("triples", ()):
        row = {
            "subject": triple["subject"],
            "predicate": triple["predicate"],
            "object": triple["object"],
        }
        if triple.get("extra"):
            row["extra"] = list(triple["extra"])
        for role in ("time", "location", "context"):  # CaRB's T:, L:, C: arguments
            if triple.get(role):
                row[role] = triple[role]
        triples.append(row)
    return triples


def _out_mrc(gold: dict[str, Any], items: Sequence[Any]) -> dict[str, Any]:
    answers = list(gold.get("answers") or [])
    return {"answer": answers[0] if len(answers) == 1 else answers}


def _out_tc(gold: dict[str, Any], items: Sequence[Any]) -> dict[str, Any]:
    return {"label": gold["label"]}


BUILDERS: dict[str, Callable[[Any, Sequence[Any]], Any]] = {
    NER: _out_flat,
    RE: _out_flat,
    EET: _out_flat,
    SPO: _out_spo,
    EE: _out_ee,
    EEA: _out_eea,
    KGE: _out_kge,
    OPENIE: _out_openie,
    MRC: _out_mrc,
    TC: _out_tc,
}


def build_output(task: str, index: Any, items: Sequence[Any]) -> Any:
    """The answer to one chunk of schema items (a JSON-ready value, not yet dumped)."""
    return BUILDERS[task](index, items)
