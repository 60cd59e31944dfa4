"""The code location: every definition in the ``defs/`` folder (``[tool.dg]`` project)."""

from functools import cache

import dagster as dg

from hum_dagster.paths import PROJECT_DIR


@cache
def _load() -> dg.Definitions:
    # Once per process: a code server's run processes are forked from a process that has
    # built them already (hum_dagster.cli.code_server).
    return dg.load_from_defs_folder(project_root=PROJECT_DIR)


@dg.definitions
def defs() -> dg.Definitions:
    return _load()
