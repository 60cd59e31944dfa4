"""hum_dagster: the Hum instruction-synthesis method as a Dagster project.

The synthesis library (records, catalog, readers, synthesis, export) has no Dagster
imports; ``hum_dagster.defs`` wires it into assets and ``hum_dagster.definitions``
holds the Definitions object.
"""

import os

# Polars allocates through its own jemalloc and, on import, asks it to keep freed pages
# for 0.5 s (dirty) and 1 s (muzzy) before giving them back, putting that in front of
# whatever _RJEM_MALLOC_CONF holds (jemalloc takes the last value of each option). The
# corpus step frees batch after batch of text, and those pages counted in its peak RSS:
# returned at once, the 2.8M-instruction corpus peaked at 1.79 GB instead of 2.02 GB and
# ran no slower (bench/corpus_graph.py). Set here, before any hum_dagster module imports
# polars; a value set by the user wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
