"""Jobs of the sources stage."""

import dagster as dg

from hum_dagster.defs.dictionary.assets import schema_dictionary
from hum_dagster.defs.sources.assets import raw_sources
from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.defs.synthesis.basic import basic_instructions

synthesize_source_job = dg.define_asset_job(
    "synthesize_source",
    selection=dg.AssetSelection.assets(raw_sources, basic_instructions, schema_dictionary),
    partitions_def=source_partitions,
    description="Read one source, build its schema dictionary and its basic instructions.",
)
