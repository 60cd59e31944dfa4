"""Training configuration: the paper's LoRA hyperparameters, JSON, LlamaFactory YAML.

The Hum paper (Yuan et al., AAAI 2025) fine-tunes with LoRA rank 64, alpha 64, LoRA
dropout 0.05, learning rate 5e-5, batch size 320, warm-up ratio 0.1, weight decay 1e-4
(Adam), dropout 0.1, inputs of 1500 and outputs of 500 tokens, on 32 H100 GPUs. Those
are the defaults of :class:`TrainingConfig`. The paper does not give the number of
epochs, the scheduler or the LoRA target modules: we use one epoch, cosine decay and
every linear layer (LlamaFactory's ``lora_target: all``).

The global batch of 320 is reached as ``per_device_train_batch_size x
gradient_accumulation_steps x world_size``; the accumulation is computed from the other
two (:meth:`TrainingConfig.batch_plan`), rounded up when 320 does not divide evenly, and
the effective batch is recorded.

No Dagster imports: the entry point on a GPU node loads this module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

PAPER_WORLD_SIZE = 32  # 32 H100 GPUs in the paper
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
PROMPT_FORMATS = ("auto", "chat", "plain")
FLOPS_FORMULAS = ("lora", "6n")
PACKING_STRATEGIES = ("bfd", "bfd_split", "wrapped")  # TRL's; see entry.packing_attention


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of one LoRA fine-tuning run (paper defaults)."""

    # LoRA
    lora_rank: int = 64
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | str = "all-linear"
    # optimisation
    learning_rate: float = 5e-5
    global_batch_size: int = 320
    per_device_train_batch_size: int = 2
    per_device_eval_batch_size: int = 2
    world_size: int | None = None  # None: $WORLD_SIZE (torchrun), else 1
    warmup_ratio: float = 0.1
    weight_decay: float = 1e-4
    optimizer: str = "adamw_torch"
    lr_scheduler_type: str = "cosine"
    max_grad_norm: float = 1.0
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many optimizer steps (quick runs, tests)
    model_dropout: float | None = (
        0.1  # the model's own dropout (attention/hidden), where it has one
    )
    # sequences
    max_input_tokens: int = 1500
    max_output_tokens: int = 500
    packing: bool = False
    packing_strategy: str = "bfd"
    prompt_format: str = "auto"  # chat: the tokenizer's chat template; plain: prompt + completion
    # run
    precision: str = "auto"  # auto: bf16 where the device supports it, else fp32
    gradient_checkpointing: bool = True
    seed: int = 42
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 2
    eval_steps: int | None = 500  # None: no evaluation during training
    dataloader_num_workers: int = 0
    attn_implementation: str | None = "sdpa"
    merge_adapter: bool = False  # also write merged full weights
    # throughput accounting
    flops_formula: str = "lora"  # lora: (4N + 2N_trainable) per token; 6n: 6N per token
    peak_tflops_per_device: float | None = None  # None: known GPUs' dense bf16 peak; CPU: no MFU

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        problems = []
        for name in ("lora_rank", "lora_alpha", "global_batch_size", "per_device_train_batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.max_input_tokens < 1 or self.max_output_tokens < 1:
            problems.append("max_input_tokens and max_output_tokens must be >= 1")
        if not 0 <= self.lora_dropout < 1:
            problems.append("lora_dropout must be in [0, 1)")
        if not 0 <= self.warmup_ratio <= 1:
            problems.append("warmup_ratio must be in [0, 1]")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be > 0")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}")
        if self.prompt_format not in PROMPT_FORMATS:
            problems.append(f"prompt_format must be one of {PROMPT_FORMATS}")
        if self.packing_strategy not in PACKING_STRATEGIES:
            problems.append(f"packing_strategy must be one of {PACKING_STRATEGIES}")
        if self.flops_formula not in FLOPS_FORMULAS:
            problems.append(f"flops_formula must be one of {FLOPS_FORMULAS}")
        if self.world_size is not None and self.world_size < 1:
            problems.append("world_size must be >= 1")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    # -- derived ----------------------------------------------------------------------------

    @property
    def max_length(self) -> int:
        """Tokens per training sequence (LlamaFactory's ``cutoff_len``)."""
        return self.max_input_tokens + self.max_output_tokens

    def resolved_world_size(self) -> int:
        if self.world_size is not None:
            return self.world_size
        return int(os.environ.get("WORLD_SIZE", "1"))

    def batch_plan(self, world_size: int | None = None) -> dict[str, int]:
        """Gradient accumulation that reaches ``global_batch_size`` (rounded up)."""
        world = world_size or self.resolved_world_size()
        per_step = self.per_device_train_batch_size * world
        accumulation = max(1, math.ceil(self.global_batch_size / per_step))
        return {
            "world_size": world,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": accumulation,
            "effective_batch_size": per_step * accumulation,
        }

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if isinstance(self.target_modules, tuple):
            data["target_modules"] = list(self.target_modules)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> TrainingConfig:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> TrainingConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainingJob:
    """Everything the entry point needs: what to train on, where to write, how.

    ``dataset_dir`` holds the corpus export (``dataset_info.json`` naming
    ``train_dataset`` and ``eval_dataset``); it and ``output_dir`` may be ``s3://``
    URIs. ``work_dir`` is a local folder for checkpoints (resumption looks there first,
    then under ``<output_dir>/checkpoints`` when the output is remote).
    """

    base_model: str
    dataset_dir: str
    output_dir: str
    config: TrainingConfig = field(default_factory=TrainingConfig)
    train_dataset: str = "hum_train"
    eval_dataset: str | None = "hum_validation"
    work_dir: str | None = None  # None: <output_dir>/work when local, a temp folder otherwise
    storage_root: str | None = None  # where a converted GGUF model is cached
    max_train_samples: int | None = None
    max_eval_samples: int | None = 256
    run_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["config"] = self.config.to_dict()
        return data

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingJob:
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training job settings {unknown}; known: {sorted(known)}")
        missing = [k for k in ("base_model", "dataset_dir", "output_dir") if not values.get(k)]
        if missing:
            raise ValueError(f"missing training job settings: {missing}")
        config = values.pop("config", None)
        if not isinstance(config, TrainingConfig):
            config = TrainingConfig.from_dict(config)
        return cls(config=config, **values)


def _lora_target(config: TrainingConfig) -> str:
    if config.target_modules in ("all-linear", "all"):
        return "all"
    if isinstance(config.target_modules, str):
        return config.target_modules
    return ",".join(config.target_modules)


def llamafactory_yaml(
    config: TrainingConfig,
    dataset_dir: str,
    dataset_name: str,
    base_model: str,
    output_dir: str,
    *,
    eval_dataset: str | None = None,
    template: str = "default",
    world_size: int | None = None,
) -> str:
    """A LlamaFactory ``llamafactory-cli train`` YAML with the same hyperparameters.

    ``world_size`` (default: the config's, else the paper's 32 GPUs) sets
    ``gradient_accumulation_steps`` so the global batch stays ``global_batch_size``.
    """
    world = world_size or config.world_size or PAPER_WORLD_SIZE
    plan = config.batch_plan(world)
    precision = config.precision if config.precision != "auto" else "bf16"
    sections: list[tuple[str, dict[str, Any]]] = [
        (
            "model",
            {"model_name_or_path": base_model, "trust_remote_code": True},
        ),
        (
            "method",
            {
                "stage": "sft",
                "do_train": True,
                "finetuning_type": "lora",
                "lora_rank": config.lora_rank,
                "lora_alpha": config.lora_alpha,
                "lora_dropout": config.lora_dropout,
                "lora_target": _lora_target(config),
            },
        ),
        (
            "dataset",
            {
                "dataset_dir": dataset_dir,
                "dataset": dataset_name,
                **({"eval_dataset": eval_dataset} if eval_dataset else {}),
                "template": template,
                "cutoff_len": config.max_length,
                "train_on_prompt": False,
                "packing": config.packing,
                "overwrite_cache": True,
                "preprocessing_num_workers": 16,
            },
        ),
        (
            "output",
            {
                "output_dir": output_dir,
                "logging_steps": config.logging_steps,
                "save_steps": config.save_steps,
                **(
                    {"save_total_limit": config.save_total_limit} if config.save_total_limit else {}
                ),
                "plot_loss": True,
                "overwrite_output_dir": False,
            },
        ),
        (
            "train",
            {
                "per_device_train_batch_size": plan["per_device_train_batch_size"],
                "gradient_accumulation_steps": plan["gradient_accumulation_steps"],
                "learning_rate": config.learning_rate,
                "num_train_epochs": config.num_train_epochs,
                **({"max_steps": config.max_steps} if config.max_steps > 0 else {}),
                "lr_scheduler_type": config.lr_scheduler_type,
                "warmup_ratio": config.warmup_ratio,
                "weight_decay": config.weight_decay,
                "optim": config.optimizer,
                "max_grad_norm": config.max_grad_norm,
                "bf16": precision == "bf16",
                "fp16": precision == "fp16",
                "disable_gradient_checkpointing": not config.gradient_checkpointing,
                "seed": config.seed,
                "ddp_timeout": 180000000,
            },
        ),
    ]
    if eval_dataset and config.eval_steps:
        sections.append(
            (
                "eval",
                {
                    "per_device_eval_batch_size": config.per_device_eval_batch_size,
                    "eval_strategy": "steps",
                    "eval_steps": config.eval_steps,
                },
            )
        )
    lines = [
        "# LlamaFactory LoRA SFT on the Hum corpus (written by hum_dagster).",
        f"# Global batch {plan['effective_batch_size']} = {plan['per_device_train_batch_size']} per device"
        f" x {plan['gradient_accumulation_steps']} accumulation x {world} devices;"
        " change gradient_accumulation_steps if you train on another number of devices.",
        f"# Input {config.max_input_tokens} + output {config.max_output_tokens} tokens = cutoff_len."
        + (
            f" The paper's model dropout {config.model_dropout} has no LlamaFactory setting:"
            " set it in the model's config.json (e.g. attention_dropout)."
            if config.model_dropout
            else ""
        ),
        "# Run: llamafactory-cli train <this file>",
    ]
    for title, values in sections:
        lines.append(f"\n### {title}")
        lines.append(yaml.safe_dump(values, sort_keys=False, allow_unicode=True).rstrip())
    return "\n".join(lines) + "\n"
