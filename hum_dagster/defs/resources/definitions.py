"""The resources and the executor of the code location, fed by environment variables.

Each ``dg.EnvVar`` is resolved when a run (or a sensor tick) starts, in the process that
executes it; the UI shows the variable's name, never its value. The embedded defaults
live in the project's ``.env`` file, which ``dagster dev`` loads and ``hum`` passes on
(see README, "Settings"). The API key itself is never config: ``HUM_LLM_API_KEY_ENV``
names the variable that holds it.
"""

import os

import dagster as dg

from hum_dagster.defs.evaluation.assets import EvalSettings
from hum_dagster.defs.resources.executor import hum_executor
from hum_dagster.defs.resources.io_manager import TableIOManager
from hum_dagster.defs.resources.launchers import EvalLauncher
from hum_dagster.defs.resources.llm import ENV_FIELDS, llm_resource_from_env
from hum_dagster.defs.resources.settings import HumSettings, env_defaults
from hum_dagster.defs.training.assets import TrainingLauncher

ENV_VARS = {
    "HUM_STORAGE_ROOT": "settings.storage_root, io_manager.root",
    "HUM_CATALOG": "settings.catalog",
    "HUM_LANDING": "settings.landing",
    "HUM_BASE_MODELS": "settings.base_models",
    "HUM_MIX_MODE": "settings.mix_mode",
    "HUM_MIX_TOTAL": "settings.mix_total",
    "HUM_MIX_COMPOUND": "settings.mix_compound",
    "HUM_CORPUS_MEMORY_MB": "settings.corpus_memory_mb",
    "HUM_CORPUS_WORKDIR": "settings.corpus_workdir",
    "HUM_CORPUS_THREADS": "settings.corpus_threads",
    "HUM_CORPUS_SCAN_WORKERS": "settings.corpus_scan_workers",
    # llm: every field of LLMResource has a HUM_LLM_* variable (llm.ENV_FIELDS)
    **{variable: f"llm.{field}" for field, (variable, _) in ENV_FIELDS.items()},
    "HUM_TRAIN_LAUNCHER": "training_launcher.kind",
    "HUM_EVAL_LAUNCHER": "eval_settings.launcher.kind",
    "HUM_EVAL_FINETUNED_BACKEND": "eval_settings.finetuned_backend",
}


def _mix_fields(environ) -> dict:
    """An ``EnvVar`` for ``HUM_MIX_MODE`` / ``HUM_MIX_TOTAL`` where the variable is set
    (``.env`` sets both; a deployment without them keeps the resource's defaults)."""
    fields: dict = {}
    if environ.get("HUM_MIX_MODE", "").strip():
        fields["mix_mode"] = dg.EnvVar("HUM_MIX_MODE")
    if environ.get("HUM_MIX_TOTAL", "").strip():
        fields["mix_total"] = dg.EnvVar.int("HUM_MIX_TOTAL")
    if environ.get("HUM_MIX_COMPOUND", "").strip():
        fields["mix_compound"] = dg.EnvVar("HUM_MIX_COMPOUND")
    if environ.get("HUM_CORPUS_MEMORY_MB", "").strip():
        fields["corpus_memory_mb"] = dg.EnvVar.int("HUM_CORPUS_MEMORY_MB")
    if environ.get("HUM_CORPUS_WORKDIR", "").strip():
        fields["corpus_workdir"] = dg.EnvVar("HUM_CORPUS_WORKDIR")
    if environ.get("HUM_CORPUS_THREADS", "").strip():
        fields["corpus_threads"] = dg.EnvVar.int("HUM_CORPUS_THREADS")
    if environ.get("HUM_CORPUS_SCAN_WORKERS", "").strip():
        fields["corpus_scan_workers"] = dg.EnvVar.int("HUM_CORPUS_SCAN_WORKERS")
    return fields


def resources() -> dict:
    env = dg.EnvVar
    environ = {**env_defaults(), **os.environ}
    return {
        "io_manager": TableIOManager(root=env("HUM_STORAGE_ROOT")),
        "settings": HumSettings(
            storage_root=env("HUM_STORAGE_ROOT"),
            catalog=env("HUM_CATALOG"),
            landing=env("HUM_LANDING"),
            base_models=env("HUM_BASE_MODELS"),
            **_mix_fields(environ),
        ),
        # an EnvVar for each HUM_LLM_* variable that is set (the four of .env always are);
        # the others keep the resource's defaults
        "llm": llm_resource_from_env(environ),
        "eval_settings": EvalSettings(
            finetuned_backend=env("HUM_EVAL_FINETUNED_BACKEND"),
            launcher=EvalLauncher(kind=env("HUM_EVAL_LAUNCHER")),
        ),
        "training_launcher": TrainingLauncher(kind=env("HUM_TRAIN_LAUNCHER")),
    }


@dg.definitions
def shared_resources() -> dg.Definitions:
    return dg.Definitions(resources=resources(), executor=hum_executor)
