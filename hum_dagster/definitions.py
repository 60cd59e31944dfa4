"""The Definitions object: assets, checks, jobs and resources of hum_dagster."""

from __future__ import annotations

import dagster as dg

from hum_dagster.defs.basic import basic_instructions
from hum_dagster.defs.corpus import hum_corpus
from hum_dagster.defs.io_manager import TableIOManager
from hum_dagster.defs.partitions import source_partitions
from hum_dagster.defs.settings import HumSettings, storage_root
from hum_dagster.defs.sources import raw_sources

synthesize_source_job = dg.define_asset_job(
    "synthesize_source",
    selection=dg.AssetSelection.assets(raw_sources, basic_instructions),
    partitions_def=source_partitions,
    description="Read one source and synthesize its basic instructions (one partition per run).",
)

build_corpus_job = dg.define_asset_job(
    "build_corpus",
    selection=dg.AssetSelection.assets(hum_corpus),
    description="Mix every source's instructions into the training corpus and export it.",
)


def build_definitions(root: str | None = None) -> dg.Definitions:
    root = root or storage_root()
    return dg.Definitions(
        assets=[raw_sources, basic_instructions, hum_corpus],
        jobs=[synthesize_source_job, build_corpus_job],
        resources={
            "io_manager": TableIOManager(root=root),
            "settings": HumSettings(storage_root=root),
        },
    )


defs = build_definitions()
