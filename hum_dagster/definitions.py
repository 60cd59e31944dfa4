"""The Definitions object: assets, checks, jobs and resources of hum_dagster."""

from __future__ import annotations

import os

import dagster as dg

from hum_dagster.defs.audit import lineage_audit
from hum_dagster.defs.automation import JOBS as OPS_JOBS
from hum_dagster.defs.automation import SCHEDULES, SENSORS
from hum_dagster.defs.basic import basic_instructions
from hum_dagster.defs.compound import compound_instructions
from hum_dagster.defs.corpus import corpus_partitions, hum_corpus
from hum_dagster.defs.dictionary import schema_dictionary
from hum_dagster.defs.evaluation import EvalSettings, eval_partitions, eval_report, eval_scores
from hum_dagster.defs.io_manager import TableIOManager
from hum_dagster.defs.launchers import EvalLauncher
from hum_dagster.defs.llm import LLMResource
from hum_dagster.defs.partitions import compound_partitions, source_partitions
from hum_dagster.defs.settings import HumSettings, storage_root
from hum_dagster.defs.sources import raw_sources
from hum_dagster.defs.training import (
    TrainingLauncher,
    base_model_partitions,
    base_models,
    finetuned_checkpoint,
    llamafactory_config,
    training_assets,
    training_partitions,
)

synthesize_source_job = dg.define_asset_job(
    "synthesize_source",
    selection=dg.AssetSelection.assets(raw_sources, basic_instructions, schema_dictionary),
    partitions_def=source_partitions,
    description="Read one source, build its schema dictionary and its basic instructions.",
)

compound_job = dg.define_asset_job(
    "synthesize_compound",
    selection=dg.AssetSelection.assets(compound_instructions),
    partitions_def=compound_partitions,
    description="Compound instructions of one source under one strategy.",
)

evaluate_job = dg.define_asset_job(
    "evaluate_model",
    selection=dg.AssetSelection.assets(eval_scores),
    partitions_def=eval_partitions,
    description="Score one model on one benchmark in basic and compound instruction styles.",
)

base_model_job = dg.define_asset_job(
    "prepare_base_model",
    selection=dg.AssetSelection.assets(base_models),
    partitions_def=base_model_partitions,
    description="Bring one base model into storage (converted to safetensors) with its metadata.",
)

finetune_job = dg.define_asset_job(
    "finetune",
    selection=dg.AssetSelection.assets(finetuned_checkpoint, llamafactory_config),
    partitions_def=training_partitions,
    description="LoRA-train one base model on one corpus variant (through Dagster Pipes).",
)

report_job = dg.define_asset_job(
    "build_eval_report",
    selection=dg.AssetSelection.assets(eval_report),
    description="The Table-1 comparison of every evaluated model.",
)

build_corpus_job = dg.define_asset_job(
    "build_corpus",
    selection=dg.AssetSelection.assets(hum_corpus),
    partitions_def=corpus_partitions,
    description="Mix every source's instructions into the training corpus and export it.",
)


def llm_resource() -> LLMResource:
    """The LLM endpoint from the environment; offline (no LLM, no key) unless HUM_LLM_MODE says."""
    return LLMResource(
        mode=os.environ.get("HUM_LLM_MODE", "offline"),
        base_url=os.environ.get("HUM_LLM_BASE_URL") or None,
        model=os.environ.get("HUM_LLM_MODEL", "gpt-4o-mini"),
        api_key_env=os.environ.get("HUM_LLM_API_KEY_ENV", "OPENAI_API_KEY"),
    )


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
            eval_scores, eval_report, *training_assets, lineage_audit,
        ],
        schedules=SCHEDULES,
        sensors=SENSORS,
        jobs=[
            synthesize_source_job, compound_job, build_corpus_job, base_model_job, finetune_job,
            evaluate_job,
            report_job,
            *OPS_JOBS,
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
