"""Source partitions: one per catalog entry."""

import dagster as dg

from hum_dagster.defs.resources.settings import catalog

source_partitions = dg.StaticPartitionsDefinition(sorted(catalog()))
