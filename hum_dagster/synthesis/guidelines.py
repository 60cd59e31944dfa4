"""Guideline compound instructions: basic rows enriched from a source's schema dictionary.

``synthesize_guidelines(rows, dictionary, strategy, config)`` turns basic instruction
rows (columns ``INSTRUCTION_COLUMNS``; train mode, and test mode only with
``GuidelineConfig(test_rows=True)``, for evaluation) into compound rows with the same
columns (``strategy`` set, ``instruction_id`` recomputed) plus ``base_instruction_id``
and ``provenance`` (a JSON string: which dictionary values were used, with their
provenance, the label map, example text ids and LLM cache keys).

The instruction stays the JSON string ``{"instruction", "schema", [extra keys],
"input"}``; the wording is the basic wording followed by the strategy's sentence from
``assets/templates/guidelines.json``. Schema item shapes per strategy (``<item>`` is
the basic item: a label string, or the SPO/EE/EEA/KGE object):

- ``description`` / ``description_variants``: ``{"label": l, "description": d}`` for
  string items; object items get a ``"description"`` key, and their roles/attributes
  become ``{"role"|"attribute": r, "description": d}`` (description when known).
  ``description`` uses the canonical (first) description, ``description_variants`` one
  of the others, sampled per record.
- ``examples``: ``{"label": l, "positive examples": [{"text", "answer"}],
  "negative examples": [{"text", "answer", "reason"}]}`` (object items get the two
  keys). Examples of EE/EEA/KGE items are of the event/entity type itself.
- ``output_format``: items unchanged; an extra key ``"output_format"`` holds a JSON
  skeleton of the expected answer with the chunk's own labels and placeholders.
- ``label_variants``: items keep their shape; every top-level label (SPO: the
  predicate) is replaced by a synonym, roles/attributes too where the dictionary has
  one; the output keys follow.
- ``label_masking``: items as in ``description``; a share (``mask_ratio``, at least
  one) of the labels that have a description become ``LABEL_<n>``; the output uses the
  placeholders.
- ``representative_examples``: ``{"label": l, "examples": [values]}``: frequent values
  (spans; pairs as ``{"subject", "object"}``; texts for TC) from other records.

A row whose strategy lacks what it needs (no dictionary entry, no variant, no usable
example...) is skipped and counted by reason in ``GuidelineReport``; nothing is faked.

Nothing of a record's own answer or text is shown in its guidelines: no example is
its own input (checked by text, by containment and by text id); no description,
example, reason or typical value quotes one of the record's gold spans (collected
from all basic rows of the record; ``own_answers``), and no typical value occurs in
its input. The canonical description that quotes the answer gives way to the next
one; the mined "typical values" description is made again for each record from the
candidates that are not its own; a row left with nothing to show is skipped
(``SKIP_OWN_DESCRIPTION``). Randomness: ``record_rng(seed, record_id,
"guideline:<strategy>")``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from hum_dagster.dictionary.mine import MINED, typical_values_text
from hum_dagster.dictionary.model import LabelEntry, SchemaDictionary, Text, entry_key
from hum_dagster.paths import TEMPLATES_DIR
from hum_dagster.records import EE, EEA, EET, KGE, NER, RE, SPO, TC
from hum_dagster.synthesis.basic import validate_basic_row
from hum_dagster.synthesis.chunking import record_rng
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS
from hum_dagster.synthesis.outputs import item_label
from hum_dagster.synthesis.own_answers import (
    MIN_SPAN_CHARS,
    instruction_leaks,
    label_names,
    record_spans,
    span_appears,
    string_values,
)

GUIDELINE_STRATEGIES = (
    "description",
    "examples",
    "output_format",
    "label_variants",
    "label_masking",
    "description_variants",
    "representative_examples",
)
GUIDED_TASKS = (NER, RE, SPO, EE, EET, EEA, KGE, TC)
WORDING_PATH = TEMPLATES_DIR / "guidelines.json"
OWN_INPUT = "is the instruction's own input"
FLAT_TASKS = (NER, RE, EET, TC)
# a record with up to this many spans is searched for them by substring tests, one with
# more by one compiled pattern (``_Guard.leaks``)
FEW_SPANS = 8

# Skip reasons (stable keys for the report).
SKIP_TASK = "task has no label schema"
SKIP_TEST_MODE = "test-mode row (evaluation only)"
SKIP_ENTRY = "no dictionary entry"
SKIP_DESCRIPTION = "no description"
SKIP_DESCRIPTION_VARIANT = "no description variant"
SKIP_VARIANT = "no variant"
SKIP_VARIANT_CLASH = "variants collide"
SKIP_EXAMPLES = "no usable examples"
SKIP_REPRESENTATIVE = "no representative examples"
SKIP_MASK = "no description to mask with"
SKIP_BAD_ROW = "basic row does not parse"
SKIP_OWN_DESCRIPTION = "every description quotes the record's answer"
SKIP_OWN_ANSWER = "guidelines would quote the record's answer"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class GuidelineWording:
    data: Mapping[str, Any]
    version: str
    origin: str

    def sentence(self, strategy: str, language: str, task: str | None = None) -> str:
        """The strategy's sentence; a strategy may word it per task (``{"KGE": {...}}``)."""
        forms = self.data[strategy]
        if task is not None and isinstance(forms.get(task), dict):
            forms = forms[task]
        return forms.get(language) or forms["en"]

    def placeholders(self, language: str) -> Mapping[str, str]:
        forms = self.data["placeholders"]
        return forms.get(language) or forms["en"]

    def mask(self, n: int) -> str:
        return self.data["mask"].format(n=n)


@lru_cache(maxsize=4)
def load_guideline_wording(path: str | None = None) -> GuidelineWording:
    path = str(path or WORDING_PATH)
    raw = Path(path).read_bytes()
    data = json.loads(raw.decode("utf-8"))
    missing = [k for k in (*GUIDELINE_STRATEGIES, "placeholders", "mask") if k not in data]
    if missing:
        raise ValueError(f"{path}: guideline wording lacks {missing}")
    return GuidelineWording(data, hashlib.sha256(raw).hexdigest()[:12], path)


@dataclass(frozen=True)
class GuidelineConfig:
    seed: int = 42
    n_positive: int = 2  # positive examples per label (examples)
    n_negative: int = 2  # negative examples per label (examples)
    n_representative: int = 3  # values per label (representative_examples)
    mask_ratio: float = 0.5  # share of labels masked (label_masking)
    wording: GuidelineWording = field(default_factory=load_guideline_wording)
    # Test-mode rows are for evaluation, never for training: they get guidelines only
    # when asked (the evaluation's style C), otherwise they are skipped and counted.
    test_rows: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must lie in (0, 1], got {self.mask_ratio}")
        for name in ("n_positive", "n_negative", "n_representative"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def stamp(self) -> str:
        return (
            f"{self.seed}|{self.n_positive}|{self.n_negative}|{self.n_representative}|"
            f"{self.mask_ratio}|{self.wording.version}"
        )


@dataclass
class GuidelineReport:
    strategy: str
    rows_in: int = 0
    rows_out: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> rows

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "skipped": dict(sorted(self.skipped.items())),
        }


class _Skip(Exception):
    def __init__(self, reason: str):
        self.reason = reason


# --------------------------------------------------------------------------- items


def _sub_field(task: str) -> str | None:
    return {EE: "arguments", EEA: "arguments", KGE: "attributes"}.get(task)


def _sub_names(task: str, item: Any) -> list[str]:
    """The role (EE, EEA) or attribute (KGE) names of a schema item; KGE items written
    before the ``attributes`` key carry ``attribute``."""
    if isinstance(item, str):
        return []
    if task == KGE:
        names = item.get("attributes", item.get("attribute"))
    elif task in (EE, EEA):
        names = item.get("arguments")
    else:
        return []
    out = []
    for n in names or ():
        if isinstance(n, dict):
            n = n.get("role") or n.get("attribute")
        if isinstance(n, str):
            out.append(n)
    return out


def _set_subs(item: dict[str, Any], task: str, subs: list[Any]) -> None:
    item.pop("attribute", None)
    item[_sub_field(task)] = subs


def _sub_name(task: str) -> str:
    return "attribute" if task == KGE else "role"


def _name_field(task: str) -> str:
    return {SPO: "predicate", EE: "event_type", EEA: "event_type", KGE: "entity_type"}.get(
        task, "label"
    )


def _with(item: Any, task: str, **extra: Any) -> dict[str, Any]:
    """The item as an object with extra keys (string items become {"label": ...})."""
    base = {"label": item} if isinstance(item, str) else dict(item)
    base.update(extra)
    return base


def _renamed(item: Any, task: str, new_name: str) -> Any:
    if isinstance(item, str):
        return new_name
    out = dict(item)
    out[_name_field(task)] = new_name
    return out


# --------------------------------------------------------------------------- the plan


class _Context:
    """Per-call caches: dictionary lookups, wording, precomputed JSON."""

    def __init__(self, dictionary: SchemaDictionary, strategy: str, config: GuidelineConfig):
        self.dictionary = dictionary
        self.strategy = strategy
        self.config = config
        digest = hashlib.blake2b(dictionary.to_bytes(), digest_size=8).hexdigest()
        self.stamp = f"{strategy}|{config.stamp()}|{digest}"
        self.heads: dict[tuple[str, str], str] = {}
        self.item_json: dict[tuple, str] = {}
        self.probes = _Probes()

    def entry(self, label: str, parent: str | None = None) -> LabelEntry | None:
        return self.dictionary.entries.get(entry_key(label, parent))

    def wording(self, basic: str, language: str, task: str | None = None) -> str:
        key = (basic, language, task)
        found = self.heads.get(key)
        if found is None:
            sentence = self.config.wording.sentence(self.strategy, language, task)
            sep = "" if language == "zh" else " "
            found = self.heads[key] = f"{basic}{sep}{sentence}" if sentence else basic
        return found


def _llm_keys(provenances: Iterable[str]) -> list[str]:
    return sorted({p[4:] for p in provenances if p.startswith("llm:")})


def _own_text(text: str, text_id: str, input_text: str, row_text_id: str) -> bool:
    if text_id and text_id == row_text_id:
        return True
    return bool(text) and (text == input_text or text in input_text or input_text in text)


def _same(x: Any) -> Any:
    return x


class _Guard:
    """What one row's guidelines must not show: the gold spans of its record (those a
    visible label name does not already show) and, for values shown as examples,
    anything that occurs in its input."""

    __slots__ = ("spans", "text", "_all", "_names", "_pattern", "_probes")

    def __init__(
        self, spans: frozenset[str], text: str, names: list[str], probes: _Probes | None = None
    ):
        self._all = spans
        self.text = text
        self._names = names
        self.spans = [s for s in spans if not any(s in n for n in names)]
        # what ``leaks`` searches for: the spans themselves (few) or one pattern (many)
        self._pattern: tuple[str, ...] | re.Pattern | None = None
        self._probes = probes if probes is not None else _Probes()

    def visible(self, names: list[str]) -> _Guard:
        """The guard for a row whose schema shows only ``names`` (label masking)."""
        return _Guard(self._all, self.text, names, self._probes)

    def leaks(self, *texts: Any) -> bool:
        """Whether any of the record's spans appears in ``texts`` (strings, or lists and
        dicts of them): ``leaked_spans`` without building its sorted list, as this runs
        for every label value of every row (a tenth of a guideline strategy's time)."""
        if not self.spans:
            return False
        if self._pattern is None:  # a C-level search per text; spans confirm a hit
            looked_for = [s for s in self.spans if len(s) >= MIN_SPAN_CHARS]
            if len(looked_for) <= FEW_SPANS:
                # a substring test per span: compiling a pattern for each record cost
                # more than the searches (13,000 compilations, 2 s of a 26 s strategy)
                self._pattern = tuple(looked_for)
            else:  # no span long enough to count: a pattern that never matches
                self._pattern = re.compile("|".join(map(re.escape, looked_for)) or r"(?!)")
        flat = texts if all(isinstance(t, str) for t in texts) else string_values(texts)
        if isinstance(self._pattern, tuple):
            spans = self._pattern
            def search(t: str) -> bool:
                return any(s in t for s in spans)
        else:
            search = self._pattern.search
        return any(
            search(t) and any(span_appears(s, t) for s in self.spans) for t in flat if t
        )

    def own_value(self, value: Any) -> bool:
        """A value to show as a typical value or candidate: the record's own when it, or
        a side of a pair, occurs in the input, or when it quotes a gold span."""
        parts = _value_parts(value)
        if any(p and p in self.text for p in parts):
            return True
        return self.leaks(*parts)

    def others(
        self, entry: LabelEntry, name: str, items: list[Any], value: Callable[[Any], Any] = _same
    ) -> list[Any]:
        """``items`` (the entry's ``name`` list) but those whose ``value`` ``own_value``
        rejects. Most rows reject none, which one search of the input for any of their
        parts and one search of all their parts for the record's spans show (the same
        answers as asking value by value: a search for alternatives finds one where any
        occurs)."""
        in_text, joined = self._probes.of(
            entry, name, lambda: (p for x in items for p in _value_parts(value(x)))
        )
        if not in_text.search(self.text) and not self.leaks(joined):
            return list(items)
        return [x for x in items if not self.own_value(value(x))]

    def any_leak(self, entry: LabelEntry, name: str, texts: Callable[[], Iterable[str]]) -> bool:
        """Whether any of ``texts()`` (the entry's ``name`` texts) quotes a gold span: one
        search over all of them."""
        return self.leaks(self._probes.of(entry, name, texts)[1])


def _value_parts(value: Any) -> list[str]:
    """A typical value's parts as ``own_value`` checks them: the two sides of a pair."""
    if isinstance(value, dict):
        return [str(value.get("subject", "")), str(value.get("object", ""))]
    return str(value).split(" → ")


class _Probes:
    """Per synthesis call and dictionary entry, what ``_Guard.others`` searches: a
    pattern of any part of the entry's values, and the parts joined by a character no
    span holds (so a span found in the join is in one part). The dictionary does not
    change during a call, so an entry's id names it."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, str], tuple[LabelEntry, re.Pattern, str]] = {}

    def of(
        self, entry: LabelEntry, name: str, parts_of: Callable[[], Iterable[str]]
    ) -> tuple[re.Pattern, str]:
        """(pattern, joined) of the strings ``parts_of()`` gives for ``entry``'s ``name``."""
        hit = self._memo.get((id(entry), name))
        if hit is None or hit[0] is not entry:
            parts = sorted({p for p in parts_of() if p})
            pattern = re.compile("|".join(map(re.escape, parts)) or r"(?!)")
            hit = (entry, pattern, "\x00".join(parts))
            self._memo[(id(entry), name)] = hit
        return hit[1], hit[2]


def _description(entry: LabelEntry, guard: _Guard, language: str, start: int = 0) -> list[Text]:
    """The entry's descriptions from ``start`` on that the row may show: none quoting the
    record's answer; the mined typical-values one made again without its own values."""
    out = []
    for d in entry.descriptions[start:]:
        if d.provenance == MINED:
            values = guard.others(  # the data's values only: LLM-written ones are no data
                entry, "mined", [c.value for c in entry.candidates if c.provenance == MINED]
            )
            if not values:
                continue
            d = Text(typical_values_text(values, language), MINED)
        if not guard.leaks(d.value):
            out.append(d)
    return out


# --------------------------------------------------------------------------- strategies


@dataclass
class _Result:
    items: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)  # output key -> new key
    sub_rename: dict[str, dict[str, str]] = field(default_factory=dict)  # new key -> {role: new}
    prov: dict[str, Any] = field(default_factory=dict)
    provenances: list[str] = field(default_factory=list)


def _entries(ctx: _Context, task: str, items: list[Any]) -> list[LabelEntry]:
    out = []
    for item in items:
        entry = ctx.entry(item_label(task, item))
        if entry is None:
            raise _Skip(SKIP_ENTRY)
        out.append(entry)
    return out


def _described_subs(
    ctx: _Context, task: str, item: Any, res: _Result, guard: _Guard, language: str
) -> list[Any] | None:
    sub = _sub_field(task)
    if sub is None or isinstance(item, str):
        return None
    parent = item["event_type"] if task in (EE, EEA) else item["entity_type"]
    name = _sub_name(task)
    out = []
    for role in _sub_names(task, item):
        entry = ctx.entry(role, parent)
        usable = _description(entry, guard, language) if entry is not None else []
        d = usable[0] if usable else None
        if d is None:
            out.append({name: role})
        else:
            out.append({name: role, "description": d.value})
            res.prov.setdefault("descriptions", {})[entry_key(role, parent)] = d.provenance
            res.provenances.append(d.provenance)
    return out


def _describe(
    ctx: _Context, task: str, items: list[Any], rng, variants: bool, guard: _Guard, language: str
) -> _Result:
    """``description``: the first description the row may show (the canonical one
    unless it quotes the record's answer); ``description_variants``: one of the others."""
    res = _Result(items=[])
    entries = _entries(ctx, task, items)
    for item, entry in zip(items, entries, strict=True):
        if variants:
            if len(entry.descriptions) < 2:
                raise _Skip(SKIP_DESCRIPTION_VARIANT)
            usable = _description(entry, guard, language, start=1)
            if not usable:
                raise _Skip(SKIP_OWN_DESCRIPTION)
            d = usable[rng.randrange(len(usable))]
        else:
            if not entry.descriptions:
                raise _Skip(SKIP_DESCRIPTION)
            usable = _description(entry, guard, language)
            if not usable:
                raise _Skip(SKIP_OWN_DESCRIPTION)
            d = usable[0]
        res.prov.setdefault("descriptions", {})[entry.key] = d.provenance
        res.provenances.append(d.provenance)
        subs = _described_subs(ctx, task, item, res, guard, language)
        if subs is None and task in FLAT_TASKS:
            key = ("d", item, d.value)
            found = ctx.item_json.get(key)
            if found is None:
                found = ctx.item_json[key] = _dumps({"label": item, "description": d.value})
            res.items.append(_Raw(found))
            continue
        new = _with(item, task, description=d.value)
        if subs is not None:
            _set_subs(new, task, subs)
        res.items.append(new)
    return res


class _Raw(str):
    """An item already dumped to JSON (spliced into the instruction as is)."""


def _example_json(x, negative: bool) -> dict[str, Any]:
    data = {"text": x.text, "answer": x.value}
    if negative and x.reason:
        data["reason"] = x.reason
    return data


def _examples(
    ctx: _Context, task: str, items: list[Any], rng, text: str, text_id: str, guard: _Guard
) -> _Result:
    res = _Result(items=[])
    cfg = ctx.config
    used_ids: set[str] = set()

    def usable(x, clean: bool) -> bool:
        return not _own_text(x.text, x.text_id, text, text_id) and (
            clean or not guard.leaks(x.text, x.value, x.reason or "")
        )

    for item, entry in zip(items, _entries(ctx, task, items), strict=True):
        # whether no example of the entry quotes the record's answer: then each needs
        # only the own-text test
        clean = not guard.any_leak(entry, "examples", lambda e=entry: string_values(
            [[x.text, x.value, x.reason or ""] for x in (*e.positives, *e.negatives)]
        ))
        pos = [x for x in entry.positives if usable(x, clean)]
        neg = [x for x in entry.negatives if usable(x, clean)]
        pos = rng.sample(pos, min(cfg.n_positive, len(pos)))
        neg = rng.sample(neg, min(cfg.n_negative, len(neg)))
        if not pos and not neg:
            raise _Skip(SKIP_EXAMPLES)
        res.items.append(
            _with(
                item,
                task,
                **{
                    "positive examples": [_example_json(x, False) for x in pos],
                    "negative examples": [_example_json(x, True) for x in neg],
                },
            )
        )
        provs = [x.provenance for x in (*pos, *neg)]
        res.prov.setdefault("examples", {})[entry.key] = provs
        res.provenances.extend(provs)
        used_ids.update(x.text_id for x in (*pos, *neg) if x.text_id)
    res.prov["example_text_ids"] = sorted(used_ids)
    return res


def _skeleton(task: str, items: list[Any], ph: Mapping[str, str]) -> Any:
    if task == TC:
        return {"label": ph["label"]}
    out: dict[str, Any] = {}
    for item in items:
        if task in (NER, EET):
            out[item] = [ph["span"]]
        elif task in (RE, SPO):
            key = item if isinstance(item, str) else item["predicate"]
            out[key] = [{"subject": ph["subject"], "object": ph["object"]}]
        elif task == EE:
            args = {r: ph["argument"] for r in item.get("arguments") or ()}
            out[item["event_type"]] = [{"trigger": ph["trigger"], "arguments": args}]
        elif task == EEA:
            out[item["event_type"]] = [{r: ph["argument"] for r in item.get("arguments") or ()}]
        elif task == KGE:
            attrs = {a: ph["value"] for a in _sub_names(task, item)}
            out[item["entity_type"]] = {ph["entity"]: attrs}
    return out


def _output_format(ctx: _Context, task: str, items: list[Any], language: str) -> _Result:
    ph = ctx.config.wording.placeholders(language)
    return _Result(items=list(items), extra={"output_format": _skeleton(task, items, ph)})


def _output_key(task: str, item: Any) -> str:
    if isinstance(item, str):
        return item
    return item[_name_field(task)]


def _variants(ctx: _Context, task: str, items: list[Any], rng) -> _Result:
    res = _Result(items=[])
    entries = _entries(ctx, task, items)
    taken = {_output_key(task, it) for it in items}
    chosen_by_key: dict[str, str] = {}
    for item, entry in zip(items, entries, strict=True):
        old = _output_key(task, item)
        if old in chosen_by_key:  # SPO items sharing a predicate share its variant
            new = chosen_by_key[old]
        else:
            options = [t for t in entry.variants if t.value not in taken]
            if not entry.variants:
                raise _Skip(SKIP_VARIANT)
            if not options:
                raise _Skip(SKIP_VARIANT_CLASH)
            pick = options[rng.randrange(len(options))]
            new = pick.value
            taken.add(new)
            chosen_by_key[old] = new
            res.rename[old] = new
            res.prov.setdefault("variants", {})[entry.key] = {
                "value": new,
                "provenance": pick.provenance,
            }
            res.provenances.append(pick.provenance)
        new_item = _renamed(item, task, new)
        sub = _sub_field(task)
        if sub is not None and not isinstance(item, str):
            parent = item_label(task, item)
            roles = _sub_names(task, item)
            role_taken = set(roles)
            mapping: dict[str, str] = {}
            for role in roles:
                role_entry = ctx.entry(role, parent)
                opts = [
                    t
                    for t in (role_entry.variants if role_entry else ())
                    if t.value not in role_taken
                ]
                if not opts:
                    continue
                pick = opts[rng.randrange(len(opts))]
                mapping[role] = pick.value
                role_taken.add(pick.value)
                res.prov.setdefault("variants", {})[entry_key(role, parent)] = {
                    "value": pick.value,
                    "provenance": pick.provenance,
                }
                res.provenances.append(pick.provenance)
            if mapping:
                _set_subs(new_item, task, [mapping.get(r, r) for r in roles])
                res.sub_rename[new] = mapping
        res.items.append(new_item)
    res.prov["label_map"] = {new: old for old, new in res.rename.items()}
    return res


def _masking(
    ctx: _Context, task: str, items: list[Any], rng, guard: _Guard, language: str
) -> _Result:
    wording = ctx.config.wording
    entries = _entries(ctx, task, items)
    keys = [_output_key(task, it) for it in items]
    # A masked label's description must not quote the answer even where only the
    # placeholder is visible: judge usability with no top-level label name shown.
    hidden = guard.visible([n for it in items for n in _sub_names(task, it)])
    described = sorted(
        {k for k, e in zip(keys, entries, strict=True) if _description(e, hidden, language)}
    )
    if not described:
        if any(e.descriptions for e in entries):
            raise _Skip(SKIP_OWN_DESCRIPTION)
        raise _Skip(SKIP_MASK)
    n_mask = min(len(described), max(1, round(ctx.config.mask_ratio * len(set(keys)))))
    masked = set(rng.sample(described, n_mask))
    res = _Result(items=[])
    counter = 0
    for key in keys:  # placeholders numbered in schema order
        if key in masked and key not in res.rename:
            counter += 1
            placeholder = wording.mask(counter)
            if placeholder in keys:
                raise _Skip(SKIP_VARIANT_CLASH)
            res.rename[key] = placeholder
    shown = guard.visible(
        [res.rename.get(k, k) for k in keys] + [n for it in items for n in _sub_names(task, it)]
    )
    for item, entry, key in zip(items, entries, keys, strict=True):
        usable = _description(entry, shown, language)
        d = usable[0] if usable else None
        new_name = res.rename.get(key, key)
        extra = {}
        if d is not None:
            extra["description"] = d.value
            res.prov.setdefault("descriptions", {})[entry.key] = d.provenance
            res.provenances.append(d.provenance)
        new = _with(_renamed(item, task, new_name), task, **extra)
        subs = _described_subs(ctx, task, item, res, shown, language)
        if subs is not None:
            _set_subs(new, task, subs)
        res.items.append(new)
    res.prov["label_map"] = {new: old for old, new in res.rename.items()}
    return res


def _representative(
    ctx: _Context, task: str, items: list[Any], rng, text: str, text_id: str, guard: _Guard
) -> _Result:
    """Typical values from other records: never a value (or a side of a pair) that
    occurs in the row's input or quotes its answer; TC: texts of other records."""
    res = _Result(items=[])
    k = ctx.config.n_representative
    used_ids: set[str] = set()
    for item, entry in zip(items, _entries(ctx, task, items), strict=True):
        pool: list[tuple[Any, str, str]] = []  # (value, provenance, text id)
        if task == TC:
            for x in entry.positives:
                if not _own_text(x.text, x.text_id, text, text_id):
                    pool.append((x.text, x.provenance, x.text_id))
        elif entry.positives and isinstance(entry.positives[0].value, dict):
            seen = set()
            for x in guard.others(entry, "pairs", entry.positives, lambda x: x.value):
                v = x.value
                if _own_text(x.text, x.text_id, text, text_id):
                    continue
                sig = (v.get("subject"), v.get("object"))
                if sig not in seen:
                    seen.add(sig)
                    pool.append((v, x.provenance, x.text_id))
        else:
            shown = [c for c in entry.candidates if c.value]
            for c in guard.others(entry, "candidates", shown, lambda c: c.value):
                pool.append((c.value, c.provenance, ""))
        if not pool:
            raise _Skip(SKIP_REPRESENTATIVE)
        picked = rng.sample(pool, min(k, len(pool))) if k else []
        if not picked:
            raise _Skip(SKIP_REPRESENTATIVE)
        res.items.append(_with(item, task, examples=[v for v, _, _ in picked]))
        res.prov.setdefault("examples", {})[entry.key] = [p for _, p, _ in picked]
        res.provenances.extend(p for _, p, _ in picked)
        used_ids.update(t for _, _, t in picked if t)
    res.prov["example_text_ids"] = sorted(used_ids)
    return res


# --------------------------------------------------------------------------- outputs


def _rename_output(task: str, output: Any, res: _Result) -> Any:
    if task == TC:
        label = output.get("label")
        return {"label": res.rename.get(label, label)}
    out: dict[str, Any] = {}
    for key, value in output.items():
        new_key = res.rename.get(key, key)
        mapping = res.sub_rename.get(new_key)
        if mapping:
            if task == EE:
                value = [
                    {
                        "trigger": ev["trigger"],
                        "arguments": {mapping.get(r, r): v for r, v in ev["arguments"].items()},
                    }
                    for ev in value
                ]
            elif task == EEA:
                value = [{mapping.get(r, r): v for r, v in ev.items()} for ev in value]
            elif task == KGE:
                value = {
                    ent: {mapping.get(a, a): v for a, v in attrs.items()}
                    for ent, attrs in value.items()
                }
        out[new_key] = value
    return out


def _leaks(res: _Result, spans: frozenset[str]) -> bool:
    """Whether the row ``res`` describes would quote its record's answer (the
    ``no_own_answer_in_guidelines`` check's own reading of it)."""
    schema = [json.loads(it) if isinstance(it, _Raw) else it for it in res.items]
    return bool(instruction_leaks({"schema": schema, **res.extra}, spans))


def _instruction_id(base_id: str, stamp: str) -> str:
    key = f"{base_id}|{stamp}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


# --------------------------------------------------------------------------- synthesis


def synthesize_guidelines(
    rows: Iterable[Mapping[str, Any]],
    dictionary: SchemaDictionary,
    strategy: str,
    config: GuidelineConfig | None = None,
    report: GuidelineReport | None = None,
    only: frozenset[str] | set[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Compound rows (``COMPOUND_COLUMNS``) for the basic ``rows`` of one source.

    Rows of tasks without a label schema, and rows whose strategy lacks what it needs,
    are skipped and counted in ``report`` (when given) by reason. ``only``: make rows
    for these base instruction ids alone (the others still lend their records' gold
    spans to the own-answer guard); None: for every row.
    """
    if strategy not in GUIDELINE_STRATEGIES:
        raise ValueError(f"strategy must be one of {GUIDELINE_STRATEGIES}, got {strategy!r}")
    config = config or GuidelineConfig()
    report = report if report is not None else GuidelineReport(strategy)
    ctx = _Context(dictionary, strategy, config)
    sentence_cache = ctx.wording
    rng_stage = f"guideline:{strategy}"
    needs_rng = strategy not in ("description", "output_format")
    needs_output = strategy in ("label_variants", "label_masking")

    rows = rows if isinstance(rows, list) else list(rows)
    spans_of = record_spans(rows)
    no_spans: frozenset[str] = frozenset()
    for row in rows:
        if only is not None and row["instruction_id"] not in only:
            continue
        report.rows_in += 1
        task = row["task"]
        if row.get("mode") == "test" and not config.test_rows:
            report.skipped[SKIP_TEST_MODE] += 1
            continue
        if task not in GUIDED_TASKS:
            report.skipped[SKIP_TASK] += 1
            continue
        try:
            inst = json.loads(row["instruction"])
            items = inst["schema"]
            text = inst["input"]
            basic_wording = inst["instruction"]
        except (TypeError, ValueError, KeyError):
            report.skipped[SKIP_BAD_ROW] += 1
            continue
        language = row["language"]
        text_id = row["text_id"]
        rng = record_rng(config.seed, row["record_id"], rng_stage) if needs_rng else None
        spans = spans_of.get(row["record_id"], no_spans)
        guard = _Guard(spans, text, label_names(items), ctx.probes)
        try:
            if strategy == "description":
                res = _describe(ctx, task, items, rng, False, guard, language)
            elif strategy == "description_variants":
                res = _describe(ctx, task, items, rng, True, guard, language)
            elif strategy == "examples":
                res = _examples(ctx, task, items, rng, text, text_id, guard)
            elif strategy == "output_format":
                res = _output_format(ctx, task, items, language)
            elif strategy == "label_variants":
                res = _variants(ctx, task, items, rng)
            elif strategy == "label_masking":
                res = _masking(ctx, task, items, rng, guard, language)
            else:
                res = _representative(ctx, task, items, rng, text, text_id, guard)
            if spans and _leaks(res, spans):
                raise _Skip(SKIP_OWN_ANSWER)  # a last guard: never seen on the shipped data
        except _Skip as skip:
            report.skipped[skip.reason] += 1
            continue

        schema_json = (
            "[" + ", ".join(it if isinstance(it, _Raw) else _dumps(it) for it in res.items) + "]"
        )
        parts = [
            '{"instruction": ',
            _dumps(sentence_cache(basic_wording, language, task)),
            ', "schema": ',
            schema_json,
        ]
        for key, value in res.extra.items():
            parts.append(f", {_dumps(key)}: {_dumps(value)}")
        parts.append(', "input": ')
        parts.append(_dumps(text))
        parts.append("}")
        output = row["output"]
        if needs_output and res.rename:
            output = _dumps(_rename_output(task, json.loads(output), res))
        prov = res.prov
        prov["dictionary"] = dictionary.source
        keys = _llm_keys(res.provenances)
        if keys:
            prov["cache_keys"] = keys
        base_id = row["instruction_id"]
        out = {col: row.get(col) for col in INSTRUCTION_COLUMNS}
        out.update(
            instruction_id=_instruction_id(base_id, ctx.stamp),
            strategy=strategy,
            template=f"{row.get('template')}+{strategy}.{language}@{config.wording.version}",
            schema=schema_json,
            instruction="".join(parts),
            output=output,
            base_instruction_id=base_id,
            variant=None,
            provenance=json.dumps(prov, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            strategies=strategy,
        )
        report.rows_out += 1
        yield out


def run_guidelines(
    rows: Iterable[Mapping[str, Any]],
    dictionary: SchemaDictionary,
    strategy: str,
    config: GuidelineConfig | None = None,
) -> tuple[list[dict[str, Any]], GuidelineReport]:
    report = GuidelineReport(strategy)
    out = list(synthesize_guidelines(rows, dictionary, strategy, config, report))
    return out, report


# --------------------------------------------------------------------------- validation


def basic_item(task: str, item: Any) -> Any:
    """A compound schema item back in basic shape (for the basic validator)."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        raise ValueError(f"schema item {item!r} is neither a string nor an object")
    if task in FLAT_TASKS:
        return item["label"]
    if task == SPO:
        return {k: item[k] for k in ("subject_type", "predicate", "object_type")}
    sub = _sub_field(task)
    name = _sub_name(task)
    subs = [s[name] if isinstance(s, dict) else s for s in item.get(sub, item.get("attribute")) or ()]
    if task == KGE:
        return {"entity_type": item["entity_type"], "attributes": subs}
    out = {"event_type": item["event_type"], "arguments": subs}
    if task == EE:
        out["trigger"] = True
    return out


def _example_texts(task: str, item: Any) -> Iterator[str]:
    if not isinstance(item, dict):
        return
    for key in ("positive examples", "negative examples"):
        for x in item.get(key) or ():
            if isinstance(x, dict) and isinstance(x.get("text"), str):
                yield x["text"]
    if task == TC:
        for x in item.get("examples") or ():
            if isinstance(x, str):
                yield x


def validate_compound_row(
    row: Mapping[str, Any], own_input: list[str] | None = None
) -> list[str]:
    """Problems with one compound row; empty when sound.

    The output must parse and answer exactly the instruction's own label names
    (variants and placeholders included), spans must occur in the input, and no
    example may be the instruction's own input. With ``own_input`` given, the
    own-input problems go there instead of into the returned list (the two checks are
    told apart by where a problem went, never by its wording).
    """
    task = row.get("task")
    try:
        inst = json.loads(row["instruction"])
        items = inst["schema"]
        text = inst["input"]
    except (TypeError, ValueError, KeyError) as exc:
        return [f"instruction is not valid instruction JSON: {exc}"]
    problems: list[str] = []
    try:
        if json.loads(row["schema"]) != items:
            problems.append("schema column differs from the instruction's schema")
    except (TypeError, ValueError):
        problems.append("schema column is not valid JSON")
    try:
        basic_items = [basic_item(task, it) for it in items]
    except (KeyError, TypeError, ValueError) as exc:
        return [*problems, f"schema items are malformed for {task}: {exc}"]
    problems.extend(
        validate_basic_row(
            {
                "task": task,
                "instruction": row["instruction"],
                "schema": _dumps(basic_items),
                "output": row.get("output"),
            }
        )
    )
    own_out = problems if own_input is None else own_input
    for item in items:
        for example in _example_texts(task, item):
            if example == text:
                own_out.append(f"example text {example[:60]!r} {OWN_INPUT}")
    try:
        prov = json.loads(row.get("provenance") or "{}")
    except ValueError:
        prov = {}
        problems.append("provenance is not valid JSON")
    if row.get("text_id") and row.get("text_id") in (prov.get("example_text_ids") or ()):
        own_out.append(f"an example comes from text {row['text_id'][:12]}..., which {OWN_INPUT}")
    return problems


__all__ = [
    "GUIDED_TASKS",
    "GUIDELINE_STRATEGIES",
    "GuidelineConfig",
    "GuidelineReport",
    "GuidelineWording",
    "basic_item",
    "load_guideline_wording",
    "run_guidelines",
    "synthesize_guidelines",
    "validate_compound_row",
]
