"""Compound-instruction partitions: source x strategy."""

import dagster as dg

from hum_dagster.defs.sources.partitions import source_partitions
from hum_dagster.synthesis.guidelines import GUIDELINE_STRATEGIES

COMPOUND_STRATEGIES = (*GUIDELINE_STRATEGIES, "preference_rules", "format_variants")
strategy_partitions = dg.StaticPartitionsDefinition(list(COMPOUND_STRATEGIES))

compound_partitions = dg.MultiPartitionsDefinition(
    {"source": source_partitions, "strategy": strategy_partitions}
)
