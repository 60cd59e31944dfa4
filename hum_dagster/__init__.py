"""hum_dagster: the Hum instruction-synthesis method as a Dagster project.

The synthesis library (records, catalog, readers, synthesis, export) has no Dagster
imports; ``hum_dagster.defs`` wires it into assets and ``hum_dagster.definitions``
holds the Definitions object.
"""
