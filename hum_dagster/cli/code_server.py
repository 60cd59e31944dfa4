"""``dagster api grpc`` whose run processes start warm.

Dagster's code server starts every run in a fresh interpreter (``multiprocessing``'s
``spawn``), which then imports Dagster and this project and builds the definitions again:
about 2.5 s of one core per run, more than most of our partitions take to compute. Run
from this module, the code server starts its runs from a ``forkserver`` whose process
imported Dagster's run machinery and built the definitions once
(``hum_dagster.cli.preload``): a run starts in a fraction of a second. Nothing else in
the server changes; the forkserver process is single-threaded when it forks, as
``multiprocessing`` requires. ``hum run`` uses this module; ``hum dev`` and deployments use
Dagster's own command.
"""

from __future__ import annotations

import multiprocessing
import sys


def install() -> None:
    from dagster._grpc import server

    context = multiprocessing.get_context("forkserver")
    multiprocessing.set_forkserver_preload(["hum_dagster.cli.preload"])
    original = server.DagsterApiServer.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._mp_ctx = context

    server.DagsterApiServer.__init__ = __init__


def main() -> None:
    from hum_dagster.cli.orphans import exit_with_parent

    exit_with_parent()
    install()
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", "api", "grpc", *sys.argv[1:]]
    dagster_main()


if __name__ == "__main__":
    main()
