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
the environment (an unset variable is an error naming it); ``s3://`` URIs are read
through s3fs. Each entry's task must be one its format serves (``readers.FORMAT_TASKS``);
a repeated key in the YAML is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hum_dagster.records import LANGUAGES, SOURCE_TASKS, SourceError

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


_BRACED = re.compile(r"\$\{([^}]*)\}")


def unset_variables(text: str) -> list[str]:
    """The ``${VAR}`` names in ``text`` that the environment does not set."""
    return [name for name in _BRACED.findall(text) if name not in os.environ]


def expand_variables(text: str) -> str:
    """``${VAR}`` (and ``$VAR``) from the environment, ``~`` to the home folder; an unset
    ``${VAR}`` raises ``SourceError`` naming it (never left literal in a path)."""
    unset = unset_variables(text)
    if unset:
        names = ", ".join("${" + name + "}" for name in unset)
        raise SourceError(text, f"{names} not set in the environment")
    return os.path.expandvars(os.path.expanduser(text))


def resolve_location(location: str, catalog_path: str) -> str:
    expanded = expand_variables(location)
    if "://" in expanded:
        return expanded
    path = Path(expanded)
    if not path.is_absolute() and catalog_path and "://" not in catalog_path:
        path = Path(catalog_path).parent / path
    return str(path.resolve()) if not path.is_absolute() else str(path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that repeats a key (the last would win)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key; the constructor reports it
            break
        if first is not None:
            raise CatalogError(
                f"line {key_node.start_mark.line + 1}: the key {key!r} is repeated "
                f"(first on line {first})"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: where and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{problem}"


def _read_yaml(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: catalog file not found") from exc
    except IsADirectoryError as exc:
        raise CatalogError(f"{path}: is a directory, expected a catalog YAML file") from exc
    except PermissionError as exc:
        raise CatalogError(f"{path}: permission denied") from exc
    except UnicodeDecodeError as exc:
        with open(path, "rb") as handle:
            line = handle.read().count(b"\n", 0, exc.start) + 1
        raise CatalogError(f"{path}: line {line}: not UTF-8 text ({exc.reason})") from exc
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: {_yaml_problem(exc)}") from exc


def _text_field(raw: dict, key: str, where: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        shown = "null" if value is None else f"{type(value).__name__} {value!r}"
        raise CatalogError(f"{where}: {key} must be a non-empty string, got {shown}")
    return value


def _check_variables(value: Any, what: str, where: str) -> None:
    if isinstance(value, str):
        unset = unset_variables(value)
        if unset:
            names = ", ".join("${" + name + "}" for name in unset)
            raise CatalogError(f"{where}: {what} {value!r} uses {names}, which is not set")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_variables(item, f"option '{key}'" if what == "options" else what, where)
    elif isinstance(value, list):
        for item in value:
            _check_variables(item, what, where)


def load_catalog(path: str | os.PathLike[str]) -> list[CatalogEntry]:
    """Read and validate a catalog; raise ``CatalogError`` naming file and entry.

    Every message is one line: the file, the entry (or line) and the reason.
    """
    from hum_dagster.readers import READERS, pair_problem  # readers import this module

    path = str(path)
    data = _read_yaml(path)
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
        for key in ("task", "language", "format"):
            _text_field(raw, key, where)
        if raw["task"] not in SOURCE_TASKS:
            raise CatalogError(f"{where}: unknown task {raw['task']!r}; one of {SOURCE_TASKS}")
        if raw["language"] not in LANGUAGES:
            raise CatalogError(f"{where}: unknown language {raw['language']!r}; one of {LANGUAGES}")
        if raw["format"] not in READERS:
            raise CatalogError(f"{where}: unknown format {raw['format']!r}; one of {sorted(READERS)}")
        problem = pair_problem(raw["task"], raw["format"])
        if problem is not None:
            raise CatalogError(f"{where}: {problem}")
        split = raw.get("split", "train")
        if split not in SPLITS:
            raise CatalogError(f"{where}: unknown split {split!r}; one of {SPLITS}")
        location = _text_field(raw, "location", where)
        _check_variables(location, "location", where)
        options = raw.get("options") or {}
        if not isinstance(options, dict):
            raise CatalogError(f"{where}: options must be a mapping")
        _check_variables(options, "options", where)
        extra = set(raw) - {"name", "task", "language", "format", "location", "split", "options"}
        if extra:
            raise CatalogError(f"{where}: unknown keys {sorted(extra)}")
        entries.append(
            CatalogEntry(
                name=name,
                task=raw["task"],
                language=raw["language"],
                format=raw["format"],
                location=location,
                split=split,
                options=options,
                catalog_path=os.path.abspath(path),
            )
        )
    return entries
