"""Jobs of the training stage."""

import dagster as dg

from hum_dagster.defs.training.assets import base_models, finetuned_checkpoint, llamafactory_config
from hum_dagster.defs.training.partitions import base_model_partitions, training_partitions

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
