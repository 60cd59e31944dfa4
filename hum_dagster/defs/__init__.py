"""The Dagster layer: thin modules that wire the synthesis library into assets."""

import warnings

import dagster as dg

# MultiToSingleDimensionPartitionMapping is marked beta; we rely on it knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
