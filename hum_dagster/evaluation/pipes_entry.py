"""The shared ``main`` of the evaluation entry points launched through Dagster Pipes.

Imports ``dagster_pipes`` only (never ``dagster``). Settings come from the Pipes extras
when Dagster launched the process, else from the command line (flags override extras);
the metadata ``run`` returns is reported as the asset materialization, or printed as
JSON when run by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes


def pipes_main(
    cli: Mapping[str, Any],
    run: Callable[[dict[str, Any], Any], Mapping[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> int:
    """``run(values, log)`` with the settings of this process (``log``: the Pipes
    logger, or None by hand); ``describe(values)`` is the first log line."""
    in_pipes = PipesEnvVarParamsLoader().is_dagster_pipes_process()
    with open_dagster_pipes() as pipes:
        values = dict(pipes.extras) if in_pipes else {}
        values.update(cli)  # flags override extras
        if in_pipes:
            pipes.log.info(describe(values))
        metadata = run(values, pipes.log if in_pipes else None)
        if in_pipes:
            pipes.report_asset_materialization(metadata=dict(metadata))
        else:
            print(json.dumps(metadata, default=str))
    return 0
