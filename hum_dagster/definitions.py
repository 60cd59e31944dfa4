"""The code location: every definition in the ``defs/`` folder (``[tool.dg]`` project)."""

import dagster as dg

from hum_dagster.paths import PROJECT_DIR


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(project_root=PROJECT_DIR)
