"""Jobs of the corpus stage."""

import dagster as dg

from hum_dagster.defs.corpus.assets import hum_corpus
from hum_dagster.defs.corpus.partitions import corpus_partitions

build_corpus_job = dg.define_asset_job(
    "build_corpus",
    selection=dg.AssetSelection.assets(hum_corpus),
    partitions_def=corpus_partitions,
    description="Mix every source's instructions into the training corpus and export it.",
)
