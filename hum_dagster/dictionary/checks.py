"""Validators of a stored schema dictionary (``records.Problem`` values, by check name).
No Dagster imports."""

from __future__ import annotations

from hum_dagster.dictionary.model import SchemaDictionary
from hum_dagster.records import Problem

COVERAGE_CHECK = "labels_have_descriptions"


def undescribed_labels(dictionary: SchemaDictionary) -> list[Problem]:
    """A top-level label without any description (style C instructions and the
    description strategies have nothing to show for it)."""
    return [
        Problem(COVERAGE_CHECK, entry.key, f"label {entry.label!r} has no description")
        for entry in sorted(dictionary.entries.values(), key=lambda e: e.key)
        if entry.parent is None and not entry.descriptions
    ]
