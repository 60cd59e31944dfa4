"""The Definitions object: assets, checks, jobs and resources of hum_dagster."""

from __future__ import annotations

import os

import dagster as dg

from hum_dagster.defs.corpus.assets import hum_corpus
from hum_dagster.defs.corpus.jobs import build_corpus_job
from hum_dagster.defs.dictionary.assets import schema_dictionary
from hum_dagster.defs.evaluation.assets import EVALUATION_ASSETS, EVALUATION_CHECKS, EvalSettings
from hum_dagster.defs.evaluation.jobs import EVALUATION_JOBS
from hum_dagster.defs.operations.audit import lineage_audit
from hum_dagster.defs.operations.automation import JOBS as OPS_JOBS
from hum_dagster.defs.operations.automation import SCHEDULES, SENSORS
from hum_dagster.defs.resources.io_manager import TableIOManager
from hum_dagster.defs.resources.launchers import EvalLauncher
from hum_dagster.defs.resources.llm import LLMResource, llm_resource_from_env
from hum_dagster.defs.resources.settings import HumSettings, storage_root
from hum_dagster.defs.sources.assets import raw_sources
from hum_dagster.defs.sources.jobs import synthesize_source_job
from hum_dagster.defs.synthesis.basic import basic_instructions
from hum_dagster.defs.synthesis.compound import compound_instructions
from hum_dagster.defs.synthesis.jobs import compound_job
from hum_dagster.defs.training.assets import TrainingLauncher, training_assets
from hum_dagster.defs.training.jobs import base_model_job, finetune_job


def llm_resource() -> LLMResource:
    """The LLM endpoint from the HUM_LLM_* variables (dg.EnvVar); offline unless HUM_LLM_MODE says."""
    return llm_resource_from_env()


def eval_settings() -> EvalSettings:
    """Evaluation size from the environment (``hum run`` sets small embedded defaults)."""
    defaults = EvalSettings()
    return EvalSettings(
        sample_size=int(os.environ.get("HUM_EVAL_SAMPLE_SIZE", defaults.sample_size)),
        max_new_tokens=int(os.environ.get("HUM_EVAL_MAX_NEW_TOKENS", defaults.max_new_tokens)),
        finetuned_backend=os.environ.get("HUM_EVAL_FINETUNED_BACKEND", defaults.finetuned_backend),
        launcher=EvalLauncher(kind=os.environ.get("HUM_EVAL_LAUNCHER", "subprocess")),
    )


def build_definitions(root: str | None = None) -> dg.Definitions:
    root = root or storage_root()
    return dg.Definitions(
        assets=[
            raw_sources, basic_instructions, schema_dictionary, compound_instructions, hum_corpus,
            *EVALUATION_ASSETS, *training_assets, lineage_audit,
        ],
        asset_checks=[*EVALUATION_CHECKS],
        schedules=SCHEDULES,
        sensors=SENSORS,
        jobs=[
            synthesize_source_job, compound_job, build_corpus_job, base_model_job, finetune_job,
            *EVALUATION_JOBS, *OPS_JOBS,
        ],
        resources={
            "io_manager": TableIOManager(root=root),
            "settings": HumSettings(storage_root=root),
            "llm": llm_resource(),
            "eval_settings": eval_settings(),
            "training_launcher": TrainingLauncher(
                kind=os.environ.get("HUM_TRAIN_LAUNCHER", "subprocess"),
                config_overrides_json=os.environ.get("HUM_TRAIN_OVERRIDES", "{}"),
            ),
        },
    )


defs = build_definitions()
