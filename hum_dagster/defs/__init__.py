"""The Dagster layer: thin modules that wire the synthesis library into assets."""
