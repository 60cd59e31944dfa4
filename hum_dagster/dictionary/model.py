"""The schema dictionary data model: one ``LabelEntry`` per label of a source.

Every field value carries its own provenance string:

- ``"seed:<file>"``: a curated seed file in ``assets/dictionaries/``;
- ``"pid2name"``: FewRel's relation names and descriptions (data, read at build time);
- ``"mined"``: mined from the source's records;
- ``"llm:<cache key>"``: written by the LLM (``dictionary.describe``: descriptions and
  synonyms; ``dictionary.examples``: positives, negatives, candidates), keyed by the
  response's cache key. Such a value also carries ``origin``: the model that answered
  and the prompt template with its version, ``"<model> <template>@<version>"`` (empty,
  and left out of the JSON, for seeded and mined values, so their bytes do not change).

A label is addressed by ``entry_key(label, parent)``: the label itself for top-level
labels, ``"<parent>/<label>"`` for event roles (parent: the event type) and KGE
attributes (parent: the entity type). The key is never parsed back (event types may
contain ``/``); ``LabelEntry.label`` and ``LabelEntry.parent`` hold the parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Label kinds.
ENTITY_TYPE = "entity_type"  # NER entity type, KGE entity type
RELATION = "relation"  # RE relation
SPO_LABEL = "spo"  # SPO "subject_predicate_object" string
EVENT_TYPE = "event_type"  # EE event type
ROLE = "role"  # EE argument role (parent: event type)
ATTRIBUTE = "attribute"  # KGE attribute (parent: entity type)
CLASS_LABEL = "class"  # TC class label
KINDS = (ENTITY_TYPE, RELATION, SPO_LABEL, EVENT_TYPE, ROLE, ATTRIBUTE, CLASS_LABEL)

N_POSITIVES = 5
N_NEGATIVES = 5

DICTIONARY_COLUMNS = (
    "source",
    "task",
    "language",
    "key",
    "label",
    "kind",
    "parent",
    "descriptions",
    "variants",
    "positives",
    "negatives",
    "candidates",
    "symmetric",
)


def entry_key(label: str, parent: str | None = None) -> str:
    return f"{parent}/{label}" if parent else label


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _prov(value: Text | Example) -> str:
    return f"{value.provenance}, {value.origin}" if value.origin else value.provenance


@dataclass(frozen=True, slots=True)
class Text:
    value: str
    provenance: str
    origin: str = ""  # LLM-written: "<model> <template>@<version>"

    def to_json(self) -> dict[str, Any]:
        data = {"value": self.value, "provenance": self.provenance}
        if self.origin:
            data["origin"] = self.origin
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Text:
        return cls(str(data["value"]), str(data["provenance"]), str(data.get("origin") or ""))


@dataclass(frozen=True, slots=True)
class Example:
    """One instance (positive) or near-miss (negative) of a label.

    ``text`` is the snippet the value occurs in; ``value`` is the span (NER, event
    trigger, argument), a ``{"subject", "object"}`` pair (RE, SPO, KGE attribute) or the
    class label (TC, where ``text`` is the document). ``text_id`` is the sha256 of the
    full record text the snippet came from ("" for curated examples), so a guideline
    instruction can refuse to show a record its own text. ``reason`` says why a
    negative is not an instance of the label.
    """

    text: str
    value: Any
    provenance: str
    reason: str | None = None
    text_id: str = ""
    origin: str = ""  # LLM-written: "<model> <template>@<version>"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "value": self.value,
            "provenance": self.provenance,
        }
        if self.reason is not None:
            data["reason"] = self.reason
        if self.text_id:
            data["text_id"] = self.text_id
        if self.origin:
            data["origin"] = self.origin
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Example:
        return cls(
            text=str(data["text"]),
            value=data["value"],
            provenance=str(data["provenance"]),
            reason=data.get("reason"),
            text_id=str(data.get("text_id") or ""),
            origin=str(data.get("origin") or ""),
        )


@dataclass(slots=True)
class LabelEntry:
    label: str
    kind: str
    parent: str | None = None
    descriptions: list[Text] = field(default_factory=list)
    variants: list[Text] = field(default_factory=list)
    positives: list[Example] = field(default_factory=list)
    negatives: list[Example] = field(default_factory=list)
    candidates: list[Text] = field(default_factory=list)
    # A symmetric relation (spouse, sibling, ...): (a, b) holds when (b, a) does, so a
    # swapped pair is never one of its negatives.
    symmetric: bool = False

    @property
    def key(self) -> str:
        return entry_key(self.label, self.parent)

    def description(self) -> Text | None:
        """The canonical description (the first; seeds come first)."""
        return self.descriptions[0] if self.descriptions else None

    def coverage(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "descriptions": len(self.descriptions),
            "variants": len(self.variants),
            "positives": len(self.positives),
            "negatives": len(self.negatives),
            "candidates": len(self.candidates),
            "has_descriptions": bool(self.descriptions),
            "has_variants": bool(self.variants),
            "has_examples": len(self.positives) >= N_POSITIVES
            and len(self.negatives) >= N_NEGATIVES,
        }


@dataclass(slots=True)
class SchemaDictionary:
    source: str
    task: str
    language: str
    entries: dict[str, LabelEntry] = field(default_factory=dict)

    def get(self, label: str, parent: str | None = None) -> LabelEntry | None:
        return self.entries.get(entry_key(label, parent))

    # ------------------------------------------------------------------ rows

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per label, sorted by key; list fields are JSON strings."""
        rows = []
        for key in sorted(self.entries):
            e = self.entries[key]
            rows.append(
                {
                    "source": self.source,
                    "task": self.task,
                    "language": self.language,
                    "key": key,
                    "label": e.label,
                    "kind": e.kind,
                    "parent": e.parent,
                    "descriptions": _dumps([t.to_json() for t in e.descriptions]),
                    "variants": _dumps([t.to_json() for t in e.variants]),
                    "positives": _dumps([x.to_json() for x in e.positives]),
                    "negatives": _dumps([x.to_json() for x in e.negatives]),
                    "candidates": _dumps([t.to_json() for t in e.candidates]),
                    "symmetric": e.symmetric,
                }
            )
        return rows

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> SchemaDictionary:
        rows = list(rows)
        if not rows:
            raise ValueError("a schema dictionary needs at least one row")
        first = rows[0]
        out = cls(source=first["source"], task=first["task"], language=first["language"])

        def load(value: Any) -> list[Any]:
            return json.loads(value) if isinstance(value, str) else list(value or [])

        for row in rows:
            entry = LabelEntry(
                label=row["label"],
                kind=row["kind"],
                parent=row.get("parent") or None,
                descriptions=[Text.from_json(t) for t in load(row["descriptions"])],
                variants=[Text.from_json(t) for t in load(row["variants"])],
                positives=[Example.from_json(x) for x in load(row["positives"])],
                negatives=[Example.from_json(x) for x in load(row["negatives"])],
                candidates=[Text.from_json(t) for t in load(row["candidates"])],
                symmetric=bool(row.get("symmetric") or False),
            )
            out.entries[entry.key] = entry
        return out

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole dictionary (for determinism checks and hashing)."""
        return _dumps(self.to_rows()).encode("utf-8")

    # ------------------------------------------------------------------ views

    def coverage(self) -> list[dict[str, Any]]:
        return [self.entries[k].coverage() for k in sorted(self.entries)]

    def coverage_summary(self) -> dict[str, Any]:
        cov = self.coverage()
        n = len(cov)
        return {
            "labels": n,
            "with_descriptions": sum(c["has_descriptions"] for c in cov),
            "with_variants": sum(c["has_variants"] for c in cov),
            "with_5_5_examples": sum(c["has_examples"] for c in cov),
            "missing_descriptions": [c["key"] for c in cov if not c["has_descriptions"]],
            "missing_variants": [c["key"] for c in cov if not c["has_variants"]],
        }

    def to_markdown(self, n: int = 3) -> str:
        """A readable view of the first ``n`` entries (by key)."""
        lines = [f"### Schema dictionary `{self.source}` ({self.task}, {self.language})", ""]
        for key in sorted(self.entries)[:n]:
            e = self.entries[key]
            lines.append(f"**{key}** ({e.kind})")
            for t in e.descriptions:
                lines.append(f"- description: {t.value} _({_prov(t)})_")
            if e.variants:
                lines.append(
                    "- variants: " + ", ".join(f"{t.value} _({_prov(t)})_" for t in e.variants)
                )
            for x in e.positives:
                lines.append(f'- positive: `{_dumps(x.value)}` in "{x.text}" _({_prov(x)})_')
            for x in e.negatives:
                lines.append(
                    f'- negative: `{_dumps(x.value)}` in "{x.text}": {x.reason} _({_prov(x)})_'
                )
            if e.candidates:
                lines.append("- candidates: " + ", ".join(t.value for t in e.candidates))
            lines.append("")
        return "\n".join(lines)
