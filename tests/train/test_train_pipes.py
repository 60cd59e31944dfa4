"""finetuned_checkpoint for real: the trainer runs in a subprocess through Dagster Pipes
inside dg.materialize, and its logs and metadata arrive in Dagster."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

import dagster as dg  # noqa: E402

from hum_dagster.defs.resources.settings import HumSettings  # noqa: E402
from hum_dagster.defs.training.assets import (  # noqa: E402
    BASE_MODEL_INFO,
    TrainingLauncher,
    base_model_specs,
    finetuned_checkpoint,
    llamafactory_config,
)
from hum_dagster.train.tiny import build_tiny_model, toy_rows, write_export  # noqa: E402


def test_finetuned_checkpoint_through_pipes_subprocess(tmp_path):
    root = tmp_path / "storage"
    base = sorted(base_model_specs())[0]
    rows = toy_rows(8)
    # a tiny model stands in for the stored base model; the corpus export of variant "full"
    model_dir = build_tiny_model(
        root / "base_models" / base, [r["instruction"] + r["output"] for r in rows]
    )
    (root / "base_models" / base / BASE_MODEL_INFO).write_text(json.dumps({"spec": "tiny"}))
    write_export(root / "export" / "full", rows, rows[:2])
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "global_batch_size: 4\nper_device_train_batch_size: 4\nlearning_rate: 0.02\n"
        "warmup_ratio: 0.0\nlora_rank: 8\nlora_alpha: 16\nmodel_dropout: null\n"
        "max_input_tokens: 96\nmax_output_tokens: 32\nmax_steps: 4\nlogging_steps: 1\n"
        "eval_steps: 2\nsave_steps: 2\n"
    )
    launcher = TrainingLauncher(
        kind="subprocess", training_config=str(config), env={"OMP_NUM_THREADS": "1"}
    )
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("base_models", [base])  # registered at run time
    key = dg.MultiPartitionKey({"base_model": base, "corpus_variant": "full"})
    result = dg.materialize(
        [finetuned_checkpoint, llamafactory_config],
        partition_key=key,
        instance=instance,
        resources={"settings": HumSettings(storage_root=str(root)), "training_launcher": launcher},
    )
    assert result.success
    events = {
        e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    meta = events["finetuned_checkpoint"]
    # reported by the trainer through Pipes
    assert meta["global_step"].value == 4
    assert meta["tokens_per_s"].value > 0
    assert meta["final_loss"].value < meta["first_loss"].value
    assert meta["adapter_bytes"].value > 0
    assert meta["data_checksum"].value.startswith("sha256:")
    assert isinstance(meta["loss_curve"], dg.TableMetadataValue)
    assert len(meta["loss_curve"].records) == 4
    assert meta["config"].value["lora_rank"] == 8
    assert "configuration" not in meta and "loss_table" not in meta  # no duplicated entries
    assert meta["progress_messages"].value >= 4  # report_custom_message per log
    assert meta["launcher"].value == "subprocess"
    assert (root / "checkpoints" / base / "full" / "training_record.json").is_file()
    assert (root / "checkpoints" / base / "full" / "adapter" / "adapter_config.json").is_file()
    assert model_dir
    assert (root / "checkpoints" / base / "full" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert meta["loss_chart"].value.startswith("![loss of ")  # the chart inline in the UI
    assert "data:image/png;base64," in meta["loss_chart"].value
    # the trainer's progress lines arrived as Dagster logs
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    progress = [m for m in messages if m.startswith("train {")]
    assert len(progress) >= 4
    assert "loss" in json.loads(progress[0].removeprefix("train "))
    # the LlamaFactory YAML next to the export
    yaml_meta = events["llamafactory_config"]
    assert (root / "export" / "full" / "llamafactory" / f"{base}.yaml").is_file()
    assert yaml_meta["gradient_accumulation_steps"].value == 5


def test_finetuned_checkpoint_through_pipes_with_torchrun(tmp_path):
    """nproc_per_node=2: torchrun on the CPU; rank 0 alone talks to Dagster."""
    root = tmp_path / "storage"
    base = sorted(base_model_specs())[0]
    rows = toy_rows(8)
    build_tiny_model(root / "base_models" / base, [r["instruction"] + r["output"] for r in rows])
    (root / "base_models" / base / BASE_MODEL_INFO).write_text(json.dumps({"spec": "tiny"}))
    write_export(root / "export" / "full", rows, rows[:2])
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "global_batch_size: 4\nper_device_train_batch_size: 2\nlearning_rate: 0.02\n"
        "warmup_ratio: 0.0\nlora_rank: 8\nlora_alpha: 16\nmodel_dropout: null\n"
        "max_input_tokens: 96\nmax_output_tokens: 32\nmax_steps: 3\nlogging_steps: 1\n"
        "eval_steps: 2\nsave_steps: 1000\n"
    )
    launcher = TrainingLauncher(
        kind="subprocess",
        training_config=str(config),
        nproc_per_node=2,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert "--nproc_per_node=2" in launcher.command()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("base_models", [base])  # registered at run time
    key = dg.MultiPartitionKey({"base_model": base, "corpus_variant": "full"})
    result = dg.materialize(
        [finetuned_checkpoint],
        partition_key=key,
        instance=instance,
        resources={"settings": HumSettings(storage_root=str(root)), "training_launcher": launcher},
    )
    assert result.success
    materializations = result.get_asset_materialization_events()
    assert len(materializations) == 1
    meta = materializations[0].step_materialization_data.materialization.metadata
    record = json.loads((root / "checkpoints" / base / "full" / "training_record.json").read_text())
    assert meta["world_size"].value == 2 and record["world_size"] == 2
    assert meta["batch_plan"].value["gradient_accumulation_steps"] == 1  # 2 x 1 x 2 = 4
    assert meta["global_step"].value == 3
    # each logged step and evaluation reached Dagster once (rank 1 does not report)
    events = record["progress_events"]
    assert len(events) >= 4  # 3 training steps, evaluations
    assert meta["progress_messages"].value == len(events)
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert len([m for m in messages if m.startswith("train {")]) == len(events)
