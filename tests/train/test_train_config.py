"""Training configuration: the paper's hyperparameters, batch plan, JSON, LlamaFactory YAML."""

from __future__ import annotations

import pytest
import yaml

from hum_dagster.train.config import TrainingConfig, TrainingJob, llamafactory_yaml
from hum_dagster.train.flops import FlopsModel, mfu
from hum_dagster.train.launch import load_training_config


def test_defaults_are_the_papers():
    c = TrainingConfig()
    assert (c.lora_rank, c.lora_alpha, c.lora_dropout) == (64, 64, 0.05)
    assert c.learning_rate == 5e-5
    assert c.global_batch_size == 320
    assert c.warmup_ratio == 0.1
    assert c.weight_decay == 1e-4
    assert c.model_dropout == 0.1
    assert (c.max_input_tokens, c.max_output_tokens, c.max_length) == (1500, 500, 2000)
    assert c.gradient_checkpointing and c.precision == "auto"


def test_batch_plan_reaches_the_global_batch():
    c = TrainingConfig()
    assert c.batch_plan(32) == {
        "world_size": 32,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 5,
        "effective_batch_size": 320,
    }
    assert c.batch_plan(8)["gradient_accumulation_steps"] == 20
    assert c.batch_plan(1)["gradient_accumulation_steps"] == 160
    odd = c.replace(per_device_train_batch_size=3).batch_plan(8)  # 320 / 24 is not whole
    assert odd["gradient_accumulation_steps"] == 14 and odd["effective_batch_size"] == 336


def test_json_round_trip_and_errors():
    c = TrainingConfig(target_modules=("q_proj", "v_proj"), max_steps=7)
    again = TrainingConfig.from_json(c.to_json())
    assert again == c
    job = TrainingJob("m", "d", "o", config=c)
    assert TrainingJob.from_dict(job.to_dict()) == job
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainingConfig.from_dict({"lora_rnak": 8})
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingConfig(learning_rate=0)
    with pytest.raises(ValueError, match="missing training job settings"):
        TrainingJob.from_dict({"base_model": "m"})


def test_paper_yaml_is_the_defaults():
    paper = TrainingConfig.from_dict(load_training_config("paper.yaml"))
    assert paper.replace(precision="auto") == TrainingConfig()
    assert TrainingConfig.from_dict(load_training_config("local.yaml")).max_steps == 20


def test_llamafactory_yaml_has_the_papers_hyperparameters():
    text = llamafactory_yaml(
        TrainingConfig(),
        dataset_dir="/data/export/full",
        dataset_name="hum_train",
        base_model="/models/llama",
        output_dir="/out",
        eval_dataset="hum_validation",
    )
    y = yaml.safe_load(text)
    assert y["stage"] == "sft" and y["finetuning_type"] == "lora"
    assert (y["lora_rank"], y["lora_alpha"], y["lora_dropout"]) == (64, 64, 0.05)
    assert y["lora_target"] == "all"
    assert y["learning_rate"] == 5e-5
    assert y["per_device_train_batch_size"] * y["gradient_accumulation_steps"] * 32 == 320
    assert y["warmup_ratio"] == 0.1 and y["weight_decay"] == 1e-4
    assert y["cutoff_len"] == 2000 and y["train_on_prompt"] is False
    assert y["bf16"] is True and y["disable_gradient_checkpointing"] is False
    assert (y["dataset_dir"], y["dataset"], y["eval_dataset"]) == (
        "/data/export/full",
        "hum_train",
        "hum_validation",
    )
    assert y["model_name_or_path"] == "/models/llama" and y["output_dir"] == "/out"
    assert "max_steps" not in y
    eight = yaml.safe_load(
        llamafactory_yaml(TrainingConfig(), "d", "hum_train", "m", "o", world_size=8)
    )
    assert eight["gradient_accumulation_steps"] == 20


def test_flops_formulas():
    f = FlopsModel(matmul_params=1000, trainable_matmul_params=10, layers=2, hidden=4, seq_len=8)
    assert f.per_token() == 4 * 1000 + 2 * 10 + 12 * 2 * 8 * 4
    assert f.per_token("6n") == 6 * 1000 + 12 * 2 * 8 * 4
    assert mfu(1000.0, 1e9, 1e12, 1) == pytest.approx(1.0)
    assert mfu(1000.0, 1e9, None, 1) is None
