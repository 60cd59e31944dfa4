"""The source catalog: a YAML file where each entry is one partition of ``raw_sources``.

Example entry::

    sources:
      - name: crossner_politics
        task: NER
        language: en
        format: conll
        location: ${HUM_SHARED_DATA}/crossner/politics/train.txt
        split: train
        options: {scheme: BIO}

Relative locations resolve against the catalog's own folder; ``${VAR}`` expands from
the environment; ``s3://`` URIs are read through s3fs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hum_dagster.records import LANGUAGES, SOURCE_TASKS

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
SPLITS = ("train", "dev", "test")


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    task: str
    language: str
    format: str
    location: str
    split: str = "train"
    options: dict[str, Any] = field(default_factory=dict)
    catalog_path: str = ""

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def resolve(self, location: str | None = None) -> str:
        """An absolute path or URI for ``location`` (default: the entry's own)."""
        return resolve_location(location or self.location, self.catalog_path)


def resolve_location(location: str, catalog_path: str) -> str:
    expanded = os.path.expandvars(os.path.expanduser(location))
    if "://" in expanded:
        return expanded
    path = Path(expanded)
    if not path.is_absolute() and catalog_path and "://" not in catalog_path:
        path = Path(catalog_path).parent / path
    return str(path.resolve()) if not path.is_absolute() else str(path)


def load_catalog(path: str | os.PathLike[str]) -> list[CatalogEntry]:
    """Read and validate a catalog; raise ``CatalogError`` naming file and entry."""
    from hum_dagster.readers import READERS  # local import: readers import this module

    path = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: catalog file not found") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise CatalogError(f"{path}: expected a mapping with a 'sources' list")

    entries: list[CatalogEntry] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["sources"]):
        where = f"{path}: sources[{index}]"
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: expected a mapping, got {type(raw).__name__}")
        missing = [k for k in ("name", "task", "language", "format", "location") if k not in raw]
        if missing and "name" in raw:
            where = f"{path}: source '{raw['name']}' (sources[{index}])"
        if missing:
            raise CatalogError(f"{where}: missing {', '.join(missing)}")
        name = str(raw["name"])
        where = f"{path}: source '{name}'"
        if not NAME_RE.match(name):
            raise CatalogError(f"{where}: name must match {NAME_RE.pattern}")
        if name in seen:
            raise CatalogError(f"{where}: duplicate name")
        seen.add(name)
        if raw["task"] not in SOURCE_TASKS:
            raise CatalogError(f"{where}: unknown task {raw['task']!r}; one of {SOURCE_TASKS}")
        if raw["language"] not in LANGUAGES:
            raise CatalogError(f"{where}: unknown language {raw['language']!r}; one of {LANGUAGES}")
        if raw["format"] not in READERS:
            raise CatalogError(f"{where}: unknown format {raw['format']!r}; one of {sorted(READERS)}")
        split = raw.get("split", "train")
        if split not in SPLITS:
            raise CatalogError(f"{where}: unknown split {split!r}; one of {SPLITS}")
        options = raw.get("options") or {}
        if not isinstance(options, dict):
            raise CatalogError(f"{where}: options must be a mapping")
        extra = set(raw) - {"name", "task", "language", "format", "location", "split", "options"}
        if extra:
            raise CatalogError(f"{where}: unknown keys {sorted(extra)}")
        entries.append(
            CatalogEntry(
                name=name,
                task=raw["task"],
                language=raw["language"],
                format=raw["format"],
                location=str(raw["location"]),
                split=split,
                options=options,
                catalog_path=os.path.abspath(path),
            )
        )
    return entries
