"""Which label is a broader form of which: the pairs a granularity rule may merge.

``assets/rules/label_hierarchy.yaml`` maps, per language, a broader label to the
narrower labels it covers (``person: [politician, scientist]``). A granularity rule
"A also covers B" (``preferences_rules``, ``granularity/merge``) is made only for such a
pair: merging two unrelated labels ("a place covers persons") would teach a rule no
annotator writes. No Dagster imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hum_dagster.paths import ASSETS_DIR

HIERARCHY_PATH = ASSETS_DIR / "rules" / "label_hierarchy.yaml"


@dataclass(frozen=True)
class LabelHierarchy:
    """Per language: broader label (case-folded) -> its narrower labels (case-folded)."""

    by_language: dict[str, dict[str, frozenset[str]]]
    origin: str = "built-in"

    def covers(self, broader: str, narrower: str, language: str) -> bool:
        """Whether ``broader`` is listed as covering ``narrower`` (the row's language
        first, then any other)."""
        b, n = broader.casefold(), narrower.casefold()
        langs = [language, *sorted(k for k in self.by_language if k != language)]
        return any(n in self.by_language.get(lang, {}).get(b, ()) for lang in langs)


def read_label_hierarchy(path: str | Path) -> LabelHierarchy:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ValueError(f"{path}: label hierarchy not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping from language to broader: [narrower]")
    table: dict[str, dict[str, frozenset[str]]] = {}
    for lang, spec in data.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: {lang}: expected a mapping broader label: [narrower labels]")
        out: dict[str, frozenset[str]] = {}
        for broader, narrower in spec.items():
            if not name_ok(broader) or not isinstance(narrower, list) or not all(
                map(name_ok, narrower)
            ):
                raise ValueError(f"{path}: {lang}.{broader}: expected a list of label names")
            names = frozenset(str(n).casefold() for n in narrower)
            if str(broader).casefold() in names:
                raise ValueError(f"{path}: {lang}.{broader}: a label cannot cover itself")
            out[str(broader).casefold()] = names
        table[str(lang)] = out
    return LabelHierarchy(table, origin=str(path))


def name_ok(value: Any) -> bool:
    """A label or relation name in a rules file: a non-blank string."""
    return isinstance(value, str) and bool(value.strip())


@lru_cache(maxsize=1)
def _builtin() -> LabelHierarchy:
    return read_label_hierarchy(HIERARCHY_PATH)


def load_label_hierarchy(path: str | Path | None = None) -> LabelHierarchy:
    return _builtin() if path is None else read_label_hierarchy(path)


__all__ = ["LabelHierarchy", "load_label_hierarchy", "read_label_hierarchy"]
