"""Readers: one function per file format, each turning a catalog entry into records.

A reader takes a ``CatalogEntry`` and returns a ``ReadResult``. Per-record problems
go to ``ReadResult.quarantine`` with the file, line or record and the reason; a
source that cannot be read at all raises ``SourceError``.
"""

from __future__ import annotations

from collections.abc import Callable

from hum_dagster.records import ReadResult

Reader = Callable[["CatalogEntry"], ReadResult]  # noqa: F821 (forward reference)
READERS: dict[str, Reader] = {}


def register(*formats: str) -> Callable[[Reader], Reader]:
    def decorate(func: Reader) -> Reader:
        for name in formats:
            READERS[name] = func
        return func

    return decorate


def read_source(entry) -> ReadResult:
    """Read one catalog entry with the reader registered for its format."""
    return READERS[entry.format](entry)


# Importing the modules registers their formats.
from hum_dagster.readers import (  # noqa: E402,F401
    classification,
    conll,
    fewrel,
    iepile,
    instruct,
    mrc,
    openie,
)
