"""Jobs of the synthesis stage."""

import dagster as dg

from hum_dagster.defs.synthesis.compound import compound_instructions
from hum_dagster.defs.synthesis.partitions import compound_partitions

compound_job = dg.define_asset_job(
    "synthesize_compound",
    selection=dg.AssetSelection.assets(compound_instructions),
    partitions_def=compound_partitions,
    description="Compound instructions of one source under one strategy.",
)
