"""Curated seed files (``assets/dictionaries/*.yaml``) and FewRel's pid2name.

A seed file is YAML::

    language: en
    labels:                       # label -> what we know about it
      person:
        descriptions: [semantic explanation, typical values]
        variants: [synonym, synonym]
        examples: [{text: ..., value: ...}]      # optional curated positives
        symmetric: true                          # relations: (a, b) means (b, a) too
        roles:                                   # EE roles / KGE attributes of this label
          time: {descriptions: [...], variants: [...]}
    roles: {time: {...}}          # defaults for roles/attributes of any label
    label_sets:                   # named label sets (a catalog entry names one)
      crossner_politics:
        sources: [crossner_politics]   # sources matched by name
        labels: [person, ...]          # omitted: every label of the file

A catalog entry names its label set with ``options.dictionary`` (a name or a list);
otherwise a label set is matched by source name (listed in ``sources``, equal to the
set's name, or the set's name followed by ``_`` at the start of the source name).
Every value from a seed carries provenance ``"seed:<file name>"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hum_dagster.paths import ASSETS_DIR

DICTIONARIES_DIR = ASSETS_DIR / "dictionaries"
PID2NAME = "pid2name"


@dataclass(frozen=True)
class SeedEntry:
    descriptions: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    examples: tuple[dict[str, Any], ...] = ()
    roles: Mapping[str, SeedEntry] = field(default_factory=dict)
    symmetric: bool = False


@dataclass(frozen=True)
class SeedSet:
    """The seeds a source uses: label -> entry, with role defaults and provenance."""

    name: str
    provenance: str  # "seed:<file>" or "pid2name"
    language: str
    entries: Mapping[str, SeedEntry]
    role_defaults: Mapping[str, SeedEntry] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def entry(self, label: str, parent: str | None = None) -> SeedEntry | None:
        if parent is None:
            return self.entries.get(label)
        owner = self.entries.get(parent)
        if owner is not None and label in owner.roles:
            return owner.roles[label]
        return self.role_defaults.get(label)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _entry(data: Any, where: str) -> SeedEntry:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with descriptions/variants/examples")
    unknown = set(data) - {"descriptions", "variants", "examples", "roles", "symmetric"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    examples = data.get("examples") or []
    if not isinstance(examples, list) or not all(
        isinstance(x, dict) and "text" in x and "value" in x for x in examples
    ):
        raise ValueError(f"{where}: examples must be a list of {{text, value}}")
    roles = data.get("roles") or {}
    if not isinstance(roles, dict):
        raise ValueError(f"{where}: roles must be a mapping")
    symmetric = data.get("symmetric", False)
    if not isinstance(symmetric, bool):
        raise ValueError(f"{where}: symmetric must be true or false")
    return SeedEntry(
        descriptions=_strings(data.get("descriptions"), f"{where}.descriptions"),
        variants=_strings(data.get("variants"), f"{where}.variants"),
        examples=tuple(dict(x) for x in examples),
        roles={str(k): _entry(v, f"{where}.roles.{k}") for k, v in roles.items()},
        symmetric=symmetric,
    )


def load_seed_file(path: str | Path) -> list[SeedSet]:
    """The label sets of one seed file (one set named after the file when none listed)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
        raise ValueError(f"{path}: expected a mapping with 'labels'")
    provenance = f"seed:{path.name}"
    language = str(data.get("language", ""))
    labels = {str(k): _entry(v, f"{path.name}:labels.{k}") for k, v in data["labels"].items()}
    defaults = {
        str(k): _entry(v, f"{path.name}:roles.{k}") for k, v in (data.get("roles") or {}).items()
    }
    sets_data = data.get("label_sets") or {path.stem: {}}
    out = []
    for name, spec in sets_data.items():
        spec = spec or {}
        chosen = spec.get("labels")
        if chosen is None:
            entries = dict(labels)
        else:
            missing = [label for label in chosen if label not in labels]
            if missing:
                raise ValueError(f"{path}: label set {name!r} names undefined labels {missing}")
            entries = {label: labels[label] for label in chosen}
        out.append(
            SeedSet(
                name=str(name),
                provenance=provenance,
                language=str(spec.get("language", language)),
                entries=entries,
                role_defaults=defaults,
                sources=_strings(spec.get("sources"), f"{path.name}:{name}.sources"),
            )
        )
    return out


def load_seed_book(directory: str | Path | None = None) -> dict[str, SeedSet]:
    """Every label set of every ``*.yaml``/``*.yml`` file in ``directory``, by name."""
    directory = Path(directory) if directory is not None else DICTIONARIES_DIR
    return dict(_load_book(str(directory)))


@lru_cache(maxsize=8)
def _load_book(directory: str) -> tuple[tuple[str, SeedSet], ...]:
    book: dict[str, SeedSet] = {}
    for path in sorted(Path(directory).glob("*.y*ml")):
        for seed_set in load_seed_file(path):
            if seed_set.name in book:
                raise ValueError(
                    f"{path}: label set {seed_set.name!r} is also defined in "
                    f"{book[seed_set.name].provenance}"
                )
            book[seed_set.name] = seed_set
    return tuple(book.items())


def select_seeds(
    book: Mapping[str, SeedSet], source: str, options: Mapping[str, Any] | None = None
) -> list[SeedSet]:
    """The label sets a source uses: ``options["dictionary"]`` (name or list of names)
    when given, else those matched by source name."""
    named = (options or {}).get("dictionary")
    if named:
        names = [named] if isinstance(named, str) else list(named)
        missing = [n for n in names if n not in book]
        if missing:
            raise ValueError(
                f"source {source!r}: options.dictionary names unknown label sets {missing}; "
                f"known: {sorted(book)}"
            )
        return [book[n] for n in names]
    found = [s for name, s in sorted(book.items()) if source in s.sources]
    if found:
        return found
    if source in book:
        return [book[source]]
    prefixed = [n for n in book if source.startswith(n + "_")]
    if prefixed:
        return [book[max(prefixed, key=len)]]
    return []


def pid2name_seeds(pid2name: Mapping[str, Sequence[str]], language: str = "en") -> SeedSet:
    """FewRel's ``{pid: (name, description)}`` as a seed set keyed by relation name
    (the name the FewRel reader gives relations), provenance ``"pid2name"``."""
    entries: dict[str, SeedEntry] = {}
    for pid in sorted(pid2name):
        value = pid2name[pid]
        name = value[0].strip()
        desc = value[1].strip() if len(value) > 1 else ""
        descs = (desc,) if desc and desc.lower() != "no description defined" else ()
        entries.setdefault(name, SeedEntry(descriptions=descs))
        entries.setdefault(pid, SeedEntry(descriptions=descs))  # sources without names
    return SeedSet(name=PID2NAME, provenance=PID2NAME, language=language, entries=entries)
