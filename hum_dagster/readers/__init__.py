"""Readers: one function per file format, each turning a catalog entry into records.

A reader takes a ``CatalogEntry`` and returns a ``ReadResult``. Every record is
validated where it is read (``readers.validate``, the same rules for every reader);
per-record problems go to ``ReadResult.quarantine`` with the file, line or record and
the reason; repeated records are kept and listed in ``ReadResult.duplicates``; a
source that cannot be read at all raises ``SourceError``.

Each format serves the tasks it registers (``FORMAT_TASKS``); the catalog refuses any
other task x format pair, and so does :func:`read_source`.
"""

from __future__ import annotations

from collections.abc import Callable

from hum_dagster.records import ReadResult, SourceError

Reader = Callable[["CatalogEntry"], ReadResult]  # noqa: F821 (forward reference)
READERS: dict[str, Reader] = {}
FORMAT_TASKS: dict[str, tuple[str, ...]] = {}


def register(*formats: str, tasks: tuple[str, ...]) -> Callable[[Reader], Reader]:
    def decorate(func: Reader) -> Reader:
        for name in formats:
            READERS[name] = func
            FORMAT_TASKS[name] = tuple(tasks)
        return func

    return decorate


def valid_pairs() -> str:
    """Every task x format pair the readers serve, as one line: ``NER: conll, iepile; ...``."""
    by_task: dict[str, list[str]] = {}
    for fmt in sorted(FORMAT_TASKS):
        for task in FORMAT_TASKS[fmt]:
            by_task.setdefault(task, []).append(fmt)
    from hum_dagster.records import SOURCE_TASKS

    order = [t for t in SOURCE_TASKS if t in by_task]
    return "; ".join(f"{task}: {', '.join(by_task[task])}" for task in order)


def pair_problem(task: str, fmt: str) -> str | None:
    """Why format ``fmt`` cannot serve ``task`` (with the valid pairs), or None."""
    tasks = FORMAT_TASKS.get(fmt)
    if tasks is None:
        return f"unknown format {fmt!r}; one of {sorted(READERS)}"
    if task in tasks:
        return None
    return (
        f"format {fmt!r} cannot serve task {task!r} (it reads {', '.join(tasks)}); "
        f"valid pairs (task: formats): {valid_pairs()}"
    )


def _no_labels(task: str, schema) -> bool:
    """Whether ``schema`` gives a labelled task nothing to ask about (as synthesis sees it)."""
    if task in ("NER", "SPO", "TC"):
        return not schema.types
    if task == "RE":
        return not schema.roles
    if task == "EE":
        return not (schema.types or schema.type_roles)
    if task == "KGE":
        return not schema.type_roles
    return False


def read_source(entry) -> ReadResult:
    """Read one catalog entry with the reader registered for its format.

    Raises ``SourceError`` for a task the format cannot serve, and for a labelled
    source whose records carry no label and that declares none (no instruction could
    be asked of it).
    """
    problem = pair_problem(entry.task, entry.format)
    if problem is not None:
        raise SourceError(entry.resolve(), f"source '{entry.name}': {problem}")
    result = READERS[entry.format](entry)
    if result.records and _no_labels(entry.task, result.schema):
        raise SourceError(
            result.files[0] if result.files else entry.resolve(),
            f"source '{entry.name}': none of its {len(result.records)} {entry.task} records has "
            "a label and the source declares none (option 'labels' or 'schema'): "
            "no instruction can be asked of it",
        )
    return result


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
