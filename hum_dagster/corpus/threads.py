"""One shared thread pool for the corpus scan's work that runs without the GIL (numpy's
array operations, the tokenizers' encoding): with ``HumCorpusConfig.threads`` above one,
the MinHash sub-batches and the token-count batches of a scan batch run side by side.
Results come back in input order, so the keys are the same for any number of threads.
No Dagster imports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any


def thread_map(function: Callable[[Any], Any], items: list, threads: int) -> Iterable[Any]:
    """``map(function, items)``, in order, on ``threads`` threads of one shared pool when
    more than one."""
    if threads <= 1 or len(items) <= 1:
        return map(function, items)
    return _pool(threads).map(function, items)


@lru_cache(maxsize=4)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="hum-corpus")
