"""Project settings: the catalog (a code-location setting) and the run-time resource."""

from __future__ import annotations

import os
from functools import cache

import dagster as dg

from hum_dagster.paths import DEFAULT_CATALOG, PROJECT_DIR, shared_data_dir
from hum_dagster.readers.catalog import CatalogEntry, load_catalog

DEFAULT_STORAGE_ROOT = str(PROJECT_DIR / ".hum" / "storage")


def catalog_path() -> str:
    """``$HUM_CATALOG``, else the sample catalog shipped in ``assets/``."""
    return os.environ.get("HUM_CATALOG", str(DEFAULT_CATALOG))


def storage_root() -> str:
    """``$HUM_STORAGE_ROOT`` (a folder or an ``s3://`` prefix), else ``.hum/storage``."""
    return os.environ.get("HUM_STORAGE_ROOT", DEFAULT_STORAGE_ROOT)


@cache
def _catalog(path: str) -> dict[str, CatalogEntry]:
    # Catalogs name the shared benchmark folder as ${HUM_SHARED_DATA}.
    os.environ.setdefault("HUM_SHARED_DATA", str(shared_data_dir()))
    return {entry.name: entry for entry in load_catalog(path)}


def catalog() -> dict[str, CatalogEntry]:
    """The catalog in force plus the sources the landing sensor registered
    (``$HUM_LANDING_CATALOG``); partitions of ``raw_sources`` are their names."""
    entries = dict(_catalog(catalog_path()))
    landing = landing_catalog_path()
    if landing and os.path.exists(landing):
        stamp = os.stat(landing).st_mtime_ns  # re-read when the sensor appended entries
        for name, entry in _landing_catalog(landing, stamp).items():
            entries.setdefault(name, entry)
    return entries


def landing_catalog_path() -> str | None:
    explicit = os.environ.get("HUM_LANDING_CATALOG")
    if explicit:
        return explicit
    landing = os.environ.get("HUM_LANDING")
    return os.path.join(landing, "_landing_catalog.yaml") if landing and "://" not in landing else None


@cache
def _landing_catalog(path: str, stamp: int) -> dict[str, CatalogEntry]:
    return {entry.name: entry for entry in load_catalog(path)}


class HumSettings(dg.ConfigurableResource):
    """Synthesis settings shared by the assets; every field can be set in the launchpad."""

    storage_root: str = DEFAULT_STORAGE_ROOT
    seed: int = 42
    neg_rate: float = 1.0  # share of negative labels sampled into train-mode schemas
    random_sort: bool = False  # shuffle schema items (seeded) instead of sorting
    hard_negative_path: str | None = None  # JSON {label: [confusable labels]}
    split_num: dict[str, int] = {}  # per-task overrides of the schema chunk size
    max_quarantine_rate: float = 0.05  # asset check threshold per source
    validation_fraction: float = 0.02
    tokenizer: str = "smollm2-135m-instruct"  # a tokenizer.json, a folder, a .gguf, or this
    max_input_tokens: int = 1500
    max_output_tokens: int = 500
    # The corpus mix (mixing.MixConfig): empty shares mean the paper's; total 0 means the
    # largest the supply allows; strict keeps the shares exact (the scarcest cell limits
    # the total), redistribute gives a short cell's quota to the others.
    mix_mode: str = "strict"
    mix_total: int = 0
    kind_shares: dict[str, float] = {}
    task_shares: dict[str, float] = {}

    def mix_config(self):
        from hum_dagster.corpus.mix import PAPER_KIND_SHARES, PAPER_TASK_SHARES, MixConfig

        return MixConfig(
            kind_shares=dict(self.kind_shares or PAPER_KIND_SHARES),
            task_shares=dict(self.task_shares or PAPER_TASK_SHARES),
            total=self.mix_total or None,
            mode=self.mix_mode,
            seed=self.seed,
        )
