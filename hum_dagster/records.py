"""The canonical record model every reader produces and every synthesis step consumes.

A ``Record`` is one labelled example from a source, normalised away from its file
format. Its ``gold`` field holds the task-specific structure (see ``GOLD_SHAPES``).
Nothing here imports Dagster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Tasks a source can carry (raw) and tasks an instruction can have.
NER, RE, SPO, EE, EET, EEA = "NER", "RE", "SPO", "EE", "EET", "EEA"
OPENIE, KGE, MRC, TC, IG = "OpenIE", "KGE", "MRC", "TC", "IG"

SOURCE_TASKS = (NER, RE, SPO, EE, OPENIE, KGE, MRC, TC, IG)
INSTRUCTION_TASKS = (NER, RE, SPO, EE, EET, EEA, OPENIE, KGE, MRC, TC, IG)
LANGUAGES = ("en", "zh")

# Instruction tasks that a source of a given task yields by default.
DERIVED_TASKS: dict[str, tuple[str, ...]] = {EE: (EE, EET, EEA)}

# The shape of ``Record.gold`` per source task, for readers and for documentation.
GOLD_SHAPES: dict[str, str] = {
    NER: '{"entities": [{"text": str, "type": str, "start": int | null}]}',
    RE: '{"relations": [{"head": str, "relation": str, "tail": str}]}',
    SPO: '{"relations": [{"head": str, "head_type": str, "relation": str, "tail": str, "tail_type": str}]}',
    EE: '{"events": [{"event_type": str, "trigger": str, "arguments": [{"role": str, "argument": str}]}]}',
    OPENIE: '{"triples": [{"subject": str, "predicate": str, "object": str, "extra": [str], '
    '"time"?: str, "location"?: str, "context"?: str}]}',
    KGE: '{"entity_type": str, "relations": [{"head": str, "relation": str, "tail": str}]}',
    MRC: '{"question": str, "options": [str], "answers": [str]}',
    TC: '{"label": str}',
    IG: '{"conversation": [{"role": "user" | "assistant" | "system", "content": str}]}',
}


def sha256_hex(text: str) -> str:
    """Full SHA-256 hex digest of UTF-8 text (IEPile's record id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """Compact, key-sorted, non-ASCII-preserving JSON: the bytes we hash and store."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def make_record_id(source: str, text: str, gold: dict[str, Any], occurrence: int = 0) -> str:
    """A stable id from content: same source, text and gold give the same id anywhere.

    ``occurrence`` tells repeats of one record in a source apart: the first keeps the
    content id, the n-th repeat (n >= 1) gets its own, so a dataset that repeats a
    sentence keeps one record per line, each with a distinct id.
    """
    digest = hashlib.sha256()
    for part in (source, text, canonical_json(gold)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    if occurrence:
        digest.update(f"#{occurrence}".encode())
    return digest.hexdigest()[:24]


class SourceError(Exception):
    """A source that cannot be read at all (missing file, wrong format, bad options).

    The message always names the location (file, and line or record where known)
    and the reason, so the failing partition tells its owner what to fix.
    """

    def __init__(self, location: str, reason: str, line: int | None = None):
        self.location = location
        self.line = line
        self.reason = reason
        where = f"{location}:{line}" if line is not None else location
        super().__init__(f"{where}: {reason}")


@dataclass(slots=True)
class Record:
    source: str
    task: str
    language: str
    text: str
    gold: dict[str, Any]
    origin: str  # "<file>:<line>" or "<file>#<record>" where the record came from
    split: str = "train"
    record_id: str = ""
    text_id: str = ""

    def __post_init__(self) -> None:
        if not self.record_id:
            self.record_id = make_record_id(self.source, self.text, self.gold)
        if not self.text_id:
            self.text_id = sha256_hex(self.text)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["gold"] = canonical_json(self.gold)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        values = dict(row)
        gold = values["gold"]
        values["gold"] = json.loads(gold) if isinstance(gold, str) else gold
        return cls(**values)


def _storable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(slots=True)
class Quarantined:
    """A record a reader could not use, kept with the reason instead of being dropped."""

    source: str
    origin: str  # "<file>:<line>" or "<file>#<record>"
    reason: str
    raw: str = ""  # the offending input, truncated to RAW_LIMIT characters

    RAW_LIMIT = 500

    def __post_init__(self) -> None:
        if len(self.raw) > self.RAW_LIMIT:
            self.raw = self.raw[: self.RAW_LIMIT] + "..."
        # What could not be used may hold lone surrogates (a JSON "\ud800"); keep them
        # as escapes so the quarantine table can always be written as UTF-8.
        self.raw = _storable(self.raw)
        self.reason = _storable(self.reason)
        self.origin = _storable(self.origin)

    def to_row(self) -> dict[str, Any]:
        return {"source": self.source, "origin": self.origin, "reason": self.reason, "raw": self.raw}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing an asset check found wrong: which check, in which row, and why.

    Validators in the library return these; the Dagster layer turns them into asset
    check results (passed when a check has none), so a check is routed by its name,
    never by the wording of its reason.
    """

    check: str  # the asset check's name, e.g. "spans_occur_in_input"
    record: str  # what the problem is in: an instruction id, a record id or an origin
    reason: str  # one readable sentence

    def to_row(self) -> dict[str, str]:
        return {"check": self.check, "record": self.record, "reason": self.reason}


@dataclass(slots=True)
class LabelSchema:
    """The label inventory of a source, mirroring IEPile's three-line schema file.

    - ``types``: entity types (NER), event types (EE), SPO strings ``subj_pred_obj``
      (SPO), class labels (TC), entity types (KGE);
    - ``roles``: relation names (RE, KGE attributes), argument roles (EE);
    - ``type_roles``: event type to its roles (EE), entity type to its attributes (KGE).
    """

    types: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    type_roles: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LabelSchema:
        data = json.loads(text)
        return cls(
            types=list(data.get("types", [])),
            roles=list(data.get("roles", [])),
            type_roles={k: list(v) for k, v in data.get("type_roles", {}).items()},
        )

    def is_empty(self) -> bool:
        return not (self.types or self.roles or self.type_roles)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A record that repeats an earlier one of its source (same text and gold).

    A repeat is a property of the dataset, not a bad record: it is kept (as its own
    record, with its own id) unless the source asks to drop repeats.
    """

    origin: str  # where the repeat is
    first: str  # where the record first occurs
    dropped: bool = False

    def to_row(self) -> dict[str, Any]:
        return {"origin": self.origin, "first": self.first, "dropped": self.dropped}


@dataclass(slots=True)
class ReadResult:
    """What a reader returns for one source."""

    records: list[Record]
    quarantine: list[Quarantined]
    schema: LabelSchema
    files: list[str] = field(default_factory=list)  # every file read, for provenance
    duplicates: list[Duplicate] = field(default_factory=list)  # repeats, kept or dropped

    def duplicate_summary(self, limit: int = 5) -> str:
        """One line: how many repeats, kept or dropped, and where the first few are."""
        if not self.duplicates:
            return "no duplicate records"
        verb = "dropped" if any(d.dropped for d in self.duplicates) else "kept"
        where = ", ".join(f"{d.origin} (= {d.first})" for d in self.duplicates[:limit])
        more = f", ... {len(self.duplicates) - limit} more" if len(self.duplicates) > limit else ""
        return f"{len(self.duplicates)} duplicate records {verb}: {where}{more}"
