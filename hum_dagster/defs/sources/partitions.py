"""Source partitions: one per catalog entry, registered at run time (no code reload).

``hum run``, the landing sensor and the catalog sensor add an entry's name here (and to
the compound partitions of the strategies that apply to it, see
``hum_dagster.defs.synthesis.partitions``).
"""

import dagster as dg

SOURCES = "sources"
source_partitions = dg.DynamicPartitionsDefinition(name=SOURCES)
