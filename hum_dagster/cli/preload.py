"""Imported once by the code server's forkserver (``hum_dagster.cli.code_server``): what
every run process needs, loaded before the fork (imports only: no thread is started)."""

import dagster._grpc.impl  # noqa: F401  (the run entry point)
import matplotlib  # the corpus and report charts
from dagster._core.execution.api import execute_run_iterator  # noqa: F401

from hum_dagster.definitions import defs

matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: E402, F401

defs().get_repository_def()

try:  # the evaluation runs generate with transformers (the `eval` extra): 2 CPU-s each
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
except ImportError:
    pass
