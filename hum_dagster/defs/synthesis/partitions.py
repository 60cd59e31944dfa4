"""Compound-instruction partitions: one dynamic set of sources per group of strategies.

Only the (source, strategy) pairs that can hold rows exist: a strategy's partitions are
the train-split sources whose tasks it applies to (``synthesis.strategies``). Dagster's
``MultiPartitionsDefinition`` is a cross product of its dimensions and backfills do not
accept user-defined partition mappings, so each strategy is its own asset
(``compound_instructions/<strategy>``) over a ``DynamicPartitionsDefinition`` of
sources, mapped to the source partitions by identity.

Strategies that apply to exactly the same sources (for every source task, with and
without an LLM) share one partitions definition, named after the first of them in the
registry: ``compound_description`` holds the seven guideline and paraphrase strategies,
``compound_format_variants`` the format variants and the combined strategy,
``compound_preference_rules`` the preference rules. An asset backfill puts the assets
of one partitions definition and one key that are ready together into one run, so a
source's compound instructions are three runs, not ten: at the paper's scale the
per-run costs (the run queue's dequeue tick, the launch, loading the code) were paid
237 times for about 6 s of work each.

``sync_partitions`` makes the instance's dynamic partitions match a catalog: every
entry becomes a source partition and a partition of each strategy group that applies
to it; with ``prune`` the names no longer in the catalog are removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg

from hum_dagster.defs.sources.partitions import SOURCES, source_partitions
from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.records import SOURCE_TASKS
from hum_dagster.synthesis.strategies import STRATEGIES, Strategy, applicable


def applicability(spec: Strategy) -> tuple[tuple[str, bool], ...]:
    """The (source task, LLM configured) pairs ``spec`` makes rows for (train splits:
    no strategy applies to another split)."""
    return tuple(
        (task, llm) for task in SOURCE_TASKS for llm in (False, True)
        if spec.applies_to(task, "train", llm)
    )


def _grouped() -> dict[str, dg.DynamicPartitionsDefinition]:
    by_applicability: dict[tuple, dg.DynamicPartitionsDefinition] = {}
    out = {}
    for name, spec in STRATEGIES.items():
        key = applicability(spec)
        if key not in by_applicability:
            by_applicability[key] = dg.DynamicPartitionsDefinition(name=f"compound_{name}")
        out[name] = by_applicability[key]
    return out


# strategy -> its partitions definition (one object per group of strategies)
compound_partitions: dict[str, dg.DynamicPartitionsDefinition] = _grouped()


def wanted_partitions(entries: Iterable[CatalogEntry], llm: bool = False) -> dict[str, list[str]]:
    """Partitions-definition name -> the keys a catalog calls for."""
    wanted: dict[str, list[str]] = {SOURCES: []}
    wanted.update({p.name: [] for p in compound_partitions.values()})
    for entry in sorted(entries, key=lambda e: e.name):
        wanted[SOURCES].append(entry.name)
        groups = {compound_partitions[n].name for n in applicable(entry.task, entry.split, llm)}
        for group in sorted(groups):
            wanted[group].append(entry.name)
    return wanted


def partition_requests(
    instance: dg.DagsterInstance, entries: Iterable[CatalogEntry], llm: bool = False
) -> list[dg.AddDynamicPartitionsRequest]:
    """Requests adding what ``entries`` call for and the instance lacks (for a sensor)."""
    requests = []
    for name, keys in wanted_partitions(entries, llm).items():
        have = set(instance.get_dynamic_partitions(name))
        new = [k for k in keys if k not in have]
        if new:
            requests.append(dg.AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=new))
    return requests


def sync_partitions(
    instance: dg.DagsterInstance,
    entries: Iterable[CatalogEntry],
    llm: bool = False,
    prune: bool = True,
) -> dict[str, dict[str, list[str]]]:
    """Add (and with ``prune`` remove) dynamic partitions so they match ``entries``;
    returns ``{partitions def: {"added": [...], "removed": [...]}}`` for what changed."""
    changes: dict[str, dict[str, list[str]]] = {}
    for name, keys in wanted_partitions(entries, llm).items():
        have = set(instance.get_dynamic_partitions(name))
        added = [k for k in keys if k not in have]
        removed = sorted(have - set(keys)) if prune else []
        if added:
            instance.add_dynamic_partitions(name, added)
        for key in removed:
            instance.delete_dynamic_partition(name, key)
        if added or removed:
            changes[name] = {"added": added, "removed": removed}
    return changes


def registered(instance: dg.DagsterInstance) -> Mapping[str, list[str]]:
    """Partitions-definition name -> its registered keys."""
    names = [source_partitions.name, *dict.fromkeys(p.name for p in compound_partitions.values())]
    return {name: list(instance.get_dynamic_partitions(name)) for name in names}
