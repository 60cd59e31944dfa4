"""Partitions: one per catalog source; compound instructions per source x strategy."""

import dagster as dg

from hum_dagster.defs.settings import catalog
from hum_dagster.synthesis.guidelines import GUIDELINE_STRATEGIES

source_partitions = dg.StaticPartitionsDefinition(sorted(catalog()))

COMPOUND_STRATEGIES = (*GUIDELINE_STRATEGIES, "preference_rules", "format_variants")
strategy_partitions = dg.StaticPartitionsDefinition(list(COMPOUND_STRATEGIES))

compound_partitions = dg.MultiPartitionsDefinition(
    {"source": source_partitions, "strategy": strategy_partitions}
)
