"""Every path under a storage root (a local folder or an ``s3://`` prefix), in one place.

::

    <root>/<asset key path>/<partition>.parquet     asset tables (the IO manager)
    <root>/<asset key path>/data.parquet            an unpartitioned asset's table
    <root>/<asset>/<dim>=<key>/.../<dim>=<key>.parquet   a multi-dimensional partition
    <root>/export/<variant>/                        the corpus export (hum_train.jsonl, ...)
    <root>/export/<variant>/llamafactory/<base>.yaml
    <root>/base_models/<model>/                     base models in safetensors
    <root>/checkpoints/<base>/<variant>/            LoRA adapters and training records
    <root>/llamafactory/<base>/<variant>/           LlamaFactory's output folder
    <root>/llm_cache/                               the LLM response cache
    <root>/eval_runs/<model>/<benchmark>/<run id>/  vLLM prompts and generations
    <root>/reports/                                 evaluation charts
    <root>/audit/                                   lineage audits
    <root>/hum.duckdb                               DuckDB views (local roots; see warehouse)

Compound instructions are one asset per strategy, so their tables are
``<root>/compound_instructions/<strategy>/<source>.parquet``. No Dagster imports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from hum_dagster.store import fsio

EXPORT = "export"
BASE_MODELS = "base_models"
CHECKPOINTS = "checkpoints"
LLAMAFACTORY = "llamafactory"
LLM_CACHE = "llm_cache"
EVAL_RUNS = "eval_runs"
REPORTS = "reports"
AUDIT = "audit"
WAREHOUSE = "hum.duckdb"
DATASET_INFO = "dataset_info.json"
CORPUS_CHART = "corpus_stats.png"
EVAL_CHART = "eval_report.png"

# DuckDB view name -> the folder of its tables (an asset key path)
VIEWS = {
    "raw_records": "raw_sources",
    "quarantine": "source_quarantine",
    "basic_instructions": "basic_instructions",
    "schema_dictionary": "schema_dictionary",
    "compound_instructions": "compound_instructions",
    "corpus": "hum_corpus",
}


def table_dir(root: str, key_path: Sequence[str] | str) -> str:
    """The folder of an asset's tables (``key_path``: the asset key's path parts)."""
    parts = [key_path] if isinstance(key_path, str) else list(key_path)
    return fsio.join(root, *parts)


def table_path(
    root: str, key_path: Sequence[str] | str, partition: str | Mapping[str, str] | None = None
) -> str:
    """One asset partition's Parquet file. ``partition`` is a key, a mapping of
    dimension -> key (a multi-dimensional partition, stored Hive style), or None."""
    folder = table_dir(root, key_path)
    if not partition:
        return fsio.join(folder, "data.parquet")
    if isinstance(partition, Mapping):
        parts = [f"{dim}={value}" for dim, value in sorted(partition.items())]
        return fsio.join(folder, *parts[:-1], f"{parts[-1]}.parquet")
    return fsio.join(folder, f"{partition}.parquet")


def export_dir(root: str, variant: str) -> str:
    return fsio.join(root, EXPORT, variant)


def dataset_info(root: str, variant: str) -> str:
    return fsio.join(export_dir(root, variant), DATASET_INFO)


def corpus_chart(root: str, variant: str) -> str:
    return fsio.join(export_dir(root, variant), CORPUS_CHART)


def llamafactory_yaml(root: str, variant: str, base: str) -> str:
    return fsio.join(export_dir(root, variant), LLAMAFACTORY, f"{base}.yaml")


def llamafactory_output_dir(root: str, base: str, variant: str) -> str:
    return fsio.join(root, LLAMAFACTORY, base, variant)


def base_model_dir(root: str, name: str) -> str:
    return fsio.join(root, BASE_MODELS, name)


def checkpoint_dir(root: str, base: str, variant: str) -> str:
    return fsio.join(root, CHECKPOINTS, base, variant)


def adapter_dir(root: str, base: str, variant: str) -> str:
    return fsio.join(checkpoint_dir(root, base, variant), "adapter")


def llm_cache_dir(root: str) -> str:
    return fsio.join(root, LLM_CACHE)


def eval_run_dir(root: str, model: str, benchmark: str, run_id: str) -> str:
    return fsio.join(root, EVAL_RUNS, model, benchmark, run_id)


def eval_chart(root: str) -> str:
    return fsio.join(root, REPORTS, EVAL_CHART)


def audit_dir(root: str) -> str:
    return fsio.join(root, AUDIT)


def warehouse_path(root: str) -> str:
    """The DuckDB file: inside a local root, else ``.hum/hum.duckdb`` in the cwd (DuckDB
    cannot write a database on S3)."""
    if "://" not in root:
        return os.path.join(root, WAREHOUSE)
    return os.path.join(os.getcwd(), ".hum", WAREHOUSE)
