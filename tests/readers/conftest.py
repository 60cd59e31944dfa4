"""The corruption suite's counts, printed at the end of a run that executed it (in one
process: with pytest-xdist the counts stay in the workers, so run it with ``-n 0``)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    import sys

    module = sys.modules.get("corruption_cases")
    if module is not None and module.COUNTS["cases"]:
        terminalreporter.write_line(module.summary())
