"""``dagster-daemon run`` with a shorter pause between backfill iterations.

Dagster's backfill daemon waits 30 s (``DEFAULT_DAEMON_INTERVAL_SECONDS``, a constant
with no setting) between iterations, and an asset backfill advances one level of the
graph (sources -> compound instructions -> corpus -> training -> evaluation -> report)
per iteration at best: six levels cost three minutes of waiting on a run that computes
for two. ``hum run`` starts the daemon through this module, which sets that pause to
``HUM_DAEMON_INTERVAL`` seconds (default 2) and then runs Dagster's own daemon command;
nothing else changes. ``hum dev`` and deployments use the stock daemon.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from dagster._daemon import controller

    from hum_dagster.cli.orphans import exit_with_parent

    exit_with_parent()
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = int(os.environ.get("HUM_DAEMON_INTERVAL", "2"))
    from dagster._daemon.cli import main as daemon_main

    sys.argv = ["dagster-daemon", *sys.argv[1:]]
    daemon_main()


if __name__ == "__main__":
    main()
