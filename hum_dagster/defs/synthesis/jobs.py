"""Jobs of the synthesis stage: the compound instructions of one strategy, per source."""

import dagster as dg

from hum_dagster.defs.synthesis.compound import compound_assets

compound_jobs = [
    dg.define_asset_job(
        f"synthesize_{asset.key.path[-1]}",
        selection=dg.AssetSelection.assets(asset),
        partitions_def=asset.partitions_def,
        description=f"Compound instructions ({asset.key.path[-1]}) of one source.",
    )
    for asset in compound_assets
]
