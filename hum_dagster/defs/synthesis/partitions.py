"""Compound-instruction partitions: one dynamic set of sources per strategy.

Only the (source, strategy) pairs that can hold rows exist: a strategy's partitions are
the train-split sources whose tasks it applies to (``synthesis.strategies``). Dagster's
``MultiPartitionsDefinition`` is a cross product of its dimensions and backfills do not
accept user-defined partition mappings, so each strategy is its own asset
(``compound_instructions/<strategy>``) over its own ``DynamicPartitionsDefinition``,
mapped to the source partitions by identity.

``sync_partitions`` makes the instance's dynamic partitions match a catalog: every
entry becomes a source partition and a partition of each strategy that applies to it;
with ``prune`` the names no longer in the catalog are removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg

from hum_dagster.defs.sources.partitions import SOURCES, source_partitions
from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.synthesis.strategies import STRATEGIES, applicable

compound_partitions: dict[str, dg.DynamicPartitionsDefinition] = {
    name: dg.DynamicPartitionsDefinition(name=f"compound_{name}") for name in STRATEGIES
}


def wanted_partitions(entries: Iterable[CatalogEntry], llm: bool = False) -> dict[str, list[str]]:
    """Partitions-definition name -> the keys a catalog calls for."""
    wanted: dict[str, list[str]] = {SOURCES: []}
    wanted.update({p.name: [] for p in compound_partitions.values()})
    for entry in sorted(entries, key=lambda e: e.name):
        wanted[SOURCES].append(entry.name)
        for name in applicable(entry.task, entry.split, llm):
            wanted[compound_partitions[name].name].append(entry.name)
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
    names = [source_partitions.name, *(p.name for p in compound_partitions.values())]
    return {name: list(instance.get_dynamic_partitions(name)) for name in names}
