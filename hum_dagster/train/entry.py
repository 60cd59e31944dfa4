"""LoRA fine-tuning entry point, launched through Dagster Pipes (or run by hand).

Imports only ``dagster_pipes`` from Dagster, never ``dagster``: this runs on a GPU
node, in a pod or an ECS task, wherever a launcher puts it::

    python -m hum_dagster.train.entry                      # under Dagster: settings from Pipes extras
    python -m hum_dagster.train.entry --config job.json    # by hand: a TrainingJob as JSON
    torchrun --nproc_per_node 8 -m hum_dagster.train.entry # multi-GPU (DDP through accelerate)

Under torchrun the processes form one DDP group through accelerate: NCCL on GPUs, gloo
on a machine without GPUs (``device_setup``; tests/test_train_distributed.py runs two
CPU processes). The global batch is ``per_device x accumulation x world``; rank 0 alone
reports to Dagster and writes the adapter, merged weights and record.

The settings are a :class:`~hum_dagster.train.config.TrainingJob` (``base_model``,
``dataset_dir``, ``output_dir``, ``config`` with the hyperparameters, ...). Under
torchrun every rank reads them; only rank 0 opens the Pipes session and reports.

What it does: TRL's ``SFTTrainer`` with a PEFT LoRA adapter on prompt/completion
examples (loss on the response only), gradient checkpointing, optional packing (the
examples kept apart, see ``packing_attention``), resumption from the newest checkpoint in
``work_dir`` (or, for an ``s3://`` output, the newest complete one uploaded under
``<output_dir>/checkpoints``), a callback that
streams loss, learning rate, tokens/s and MFU (see :mod:`hum_dagster.train.flops`) to
Dagster, and at the end the adapter (and optionally merged weights) plus
``training_record.json`` (written last: it marks completion) under ``output_dir``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader, open_dagster_pipes

from hum_dagster.train import artifacts
from hum_dagster.train.config import TrainingConfig, TrainingJob
from hum_dagster.train.data import (
    data_checksum,
    dataset_file,
    prepare_examples,
    read_alpaca,
    read_dataset_info,
)
from hum_dagster.train.flops import device_peak_flops, flops_model, mfu

DROPOUT_ATTRS = (
    "attention_dropout",
    "hidden_dropout",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "resid_pdrop",
    "attn_pdrop",
    "embd_pdrop",
    "dropout",
)


# -- reporting ------------------------------------------------------------------------------


class Reporter:
    """Where progress goes: Dagster Pipes (rank 0 under Dagster), stdout, or nowhere."""

    def info(self, message: str) -> None:  # pragma: no cover - interface
        pass

    def progress(self, event: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        pass

    def done(self, metadata: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        pass


class PipesReporter(Reporter):
    def __init__(self, pipes: Any):
        self.pipes = pipes

    def info(self, message: str) -> None:
        self.pipes.log.info(message)

    def progress(self, event: Mapping[str, Any]) -> None:
        self.pipes.log.info("train " + json.dumps(event, sort_keys=True))
        self.pipes.report_custom_message({"kind": "train_progress", **event})

    def done(self, metadata: Mapping[str, Any]) -> None:
        self.pipes.report_asset_materialization(metadata=dict(metadata))


class PrintReporter(Reporter):
    def info(self, message: str) -> None:
        print(message, flush=True)

    def progress(self, event: Mapping[str, Any]) -> None:
        print(json.dumps({"train_progress": event}, sort_keys=True), flush=True)

    def done(self, metadata: Mapping[str, Any]) -> None:
        print(json.dumps({"training_done": metadata}, default=str), flush=True)


# -- the callback ---------------------------------------------------------------------------


def make_callback(reporter: Reporter, flops: Any, peak: float | None, devices: int):
    """A transformers ``TrainerCallback`` (built lazily: transformers imports slowly)."""
    from transformers import TrainerCallback

    class PipesProgressCallback(TrainerCallback):
        """Streams loss, learning rate, tokens/s and MFU on every log (rank 0 only)."""

        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []
            self.first_step: int | None = None
            self.started = 0.0
            self.last_time = 0.0
            self.last_tokens = 0
            self.tokens_this_run = 0
            self.seconds_this_run = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = self.last_time = time.perf_counter()
            self.last_tokens = state.num_input_tokens_seen
            self.first_step = state.global_step
            if state.is_world_process_zero and state.global_step:
                reporter.info(f"resumed at step {state.global_step} of {state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            now = time.perf_counter()
            event: dict[str, Any] = {"step": state.global_step, "max_steps": state.max_steps}
            if "loss" in logs:
                tokens = state.num_input_tokens_seen - self.last_tokens
                seconds = now - self.last_time
                self.last_tokens, self.last_time = state.num_input_tokens_seen, now
                self.tokens_this_run += tokens
                self.seconds_this_run += seconds
                tps = tokens / seconds if seconds > 0 else 0.0
                event.update(
                    loss=round(float(logs["loss"]), 5),
                    learning_rate=float(logs.get("learning_rate", 0.0)),
                    tokens_per_s=round(tps, 2),
                    tokens_seen=int(state.num_input_tokens_seen),
                )
                if "grad_norm" in logs:
                    event["grad_norm"] = round(float(logs["grad_norm"]), 5)
                value = mfu(tps, flops.per_token(), peak, devices)
                if value is not None:
                    event["mfu"] = round(value, 4)
            if "eval_loss" in logs:
                event["eval_loss"] = round(float(logs["eval_loss"]), 5)
            if len(event) > 2:
                self.events.append(event)
                reporter.progress(event)

    return PipesProgressCallback()


# -- helpers --------------------------------------------------------------------------------


def _precision(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def last_checkpoint(folder: Path) -> str | None:
    """The newest ``checkpoint-N`` with a ``trainer_state.json`` (a save that finished)."""
    if not folder.is_dir():
        return None
    done = [
        p
        for p in folder.iterdir()
        if p.is_dir() and p.name.startswith("checkpoint-") and (p / "trainer_state.json").is_file()
    ]
    if not done:
        return None
    return str(max(done, key=lambda p: int(p.name.rsplit("-", 1)[1])))


def _work_dir(job: TrainingJob) -> Path:
    if job.work_dir:
        return Path(job.work_dir)
    if not artifacts.is_remote(job.output_dir):
        return Path(job.output_dir) / "work"
    return Path(tempfile.gettempdir()) / "hum-train" / (job.run_name or "run")


def _loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    curve = []
    for entry in log_history:
        if "loss" in entry:
            curve.append(
                {
                    "step": entry.get("step"),
                    "loss": round(float(entry["loss"]), 5),
                    "learning_rate": entry.get("learning_rate"),
                }
            )
        elif "eval_loss" in entry:
            curve.append(
                {"step": entry.get("step"), "eval_loss": round(float(entry["eval_loss"]), 5)}
            )
    return curve


# -- training -------------------------------------------------------------------------------


def device_setup() -> tuple[bool, str | None]:
    """(use_cpu, ddp_backend) for this process.

    Without an accelerator the Trainer must be told ``use_cpu``: otherwise accelerate
    treats a torchrun launch on CPU as one process per rank (``DistributedType.NO``),
    every rank trains alone on the whole data set and writes the same outputs. On CPU the
    collective backend is gloo (NCCL needs GPUs); on GPUs accelerate picks NCCL.
    """
    import torch

    accelerator = torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        accelerator = True
    use_cpu = not accelerator
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return use_cpu, ("gloo" if use_cpu and world > 1 else None)


def packing_attention(cfg: TrainingConfig) -> str | None:
    """How attention treats the examples packed into one sequence (None: no packing).

    ``bfd``/``bfd_split`` keep example boundaries: TRL flattens each batch into one
    padding-free row with ``position_ids`` restarting at 0 for every example and no
    attention mask. FlashAttention-2/3 turn the boundaries into varlen ``cu_seq_lens``;
    with ``sdpa`` or ``eager`` (the CPU, or a GPU without flash-attn) transformers'
    ``masking_utils`` finds the restarts in ``position_ids`` and builds a block-diagonal
    causal mask, so no example attends to another (checked token by token in
    tests/test_train_packing.py). That mask is dense (batch tokens squared), which keeps
    sdpa off its fastest kernel: on H100s use ``attn_implementation:
    flash_attention_2`` with packing. ``wrapped`` concatenates examples and cuts
    mid-example with a plain all-ones mask: attention crosses example boundaries.
    """
    if not cfg.packing:
        return None
    if cfg.packing_strategy == "wrapped":
        return "crosses example boundaries (wrapped: all-ones mask)"
    return "per example (padding-free, position_ids restart per example)"


def sft_arguments(
    cfg: TrainingConfig,
    *,
    output_dir: str,
    gradient_accumulation_steps: int,
    precision: str,
    evaluate: bool,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of TRL's ``SFTConfig`` for ``cfg`` (one place for train and tests)."""
    use_cpu, backend = device_setup()
    return dict(
        output_dir=output_dir,
        run_name=run_name,
        use_cpu=use_cpu,
        ddp_backend=backend,
        # rank 0 merges and uploads while the others wait at the last barrier: allow hours
        ddp_timeout=3 * 3600,
        # LoRA on every linear layer: every trainable parameter gets a gradient each step
        ddp_find_unused_parameters=False,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=cfg.lr_scheduler_type,
        optim=cfg.optimizer,
        max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=cfg.eval_steps if evaluate else None,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        max_length=cfg.max_length,
        packing=cfg.packing,
        packing_strategy=cfg.packing_strategy,
        # Explicit rather than TRL's implicit switch: padding-free (position_ids, no mask)
        # is what keeps packed examples apart; see packing_attention().
        padding_free=cfg.packing and cfg.packing_strategy != "wrapped",
        # Labels are built per example (prompt tokens -100) before packing, and packing
        # carries the labels along, so the loss stays on the completions when packed.
        completion_only_loss=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=cfg.dataloader_num_workers,
        include_num_input_tokens_seen="non_padding",
    )


def _column_tokens(dataset: Any, column: str) -> int:
    """Tokens in a list column of a datasets.Dataset (arrow, no Python loop)."""
    import pyarrow.compute as pc

    values = dataset.with_format("arrow")[column]
    return int(pc.sum(pc.list_value_length(values)).as_py() or 0)


def train(job: TrainingJob, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run one fine-tuning job; returns the training record (rank 0; ``{}`` on the others)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, set_seed
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from hum_dagster.train.models import local_model_dir

    reporter = reporter or Reporter()
    cfg = job.config
    wall_start = time.perf_counter()
    use_cpu, backend = device_setup()
    state = PartialState(cpu=use_cpu, backend=backend)
    world = state.num_processes
    is_main = state.is_main_process
    if cfg.world_size is not None and cfg.world_size != world:
        raise ValueError(
            f"the training config says world_size {cfg.world_size} but {world} process(es) run:"
            " the global batch would be wrong; launch that many or drop world_size"
        )
    work = _work_dir(job)
    checkpoints = work / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)

    if is_main:
        artifacts.invalidate_record(job.output_dir)
    # once per node: the work folder (model conversion, fetched checkpoints) is node-local
    with state.local_main_process_first():
        model_dir = local_model_dir(job.base_model, job.storage_root, str(work / "models"))
        if (
            state.is_local_main_process
            and artifacts.is_remote(job.output_dir)
            and last_checkpoint(checkpoints) is None
        ):
            fetched = artifacts.fetch_latest_checkpoint(job.output_dir, checkpoints)
            if fetched:
                reporter.info(f"fetched checkpoint {fetched} from {job.output_dir}")

    # model and tokenizer
    precision = _precision(cfg.precision)
    model_config = AutoConfig.from_pretrained(model_dir)
    dropout_set = []
    if cfg.model_dropout is not None:
        for attr in DROPOUT_ATTRS:
            if isinstance(getattr(model_config, attr, None), int | float):
                setattr(model_config, attr, cfg.model_dropout)
                dropout_set.append(attr)
    load_kwargs: dict[str, Any] = {
        "config": model_config,
        "dtype": torch.bfloat16 if precision == "bf16" else torch.float32,
    }
    if cfg.attn_implementation:
        load_kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(model_dir, **load_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reporter.info(
        f"base model {job.base_model} ({sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{precision}); dropout set on {dropout_set or 'nothing'}; {world} process(es)"
        + (f" ({state.distributed_type.value}, {state.backend})" if world > 1 else "")
    )

    # data
    info = read_dataset_info(job.dataset_dir)
    train_path = dataset_file(job.dataset_dir, job.train_dataset, info)
    eval_path = (
        dataset_file(job.dataset_dir, job.eval_dataset, info)
        if job.eval_dataset and job.eval_dataset in info and cfg.eval_steps
        else None
    )
    checksum = data_checksum([p for p in (train_path, eval_path) if p])
    train_rows = read_alpaca(train_path, job.max_train_samples)
    if not train_rows:
        raise ValueError(f"{train_path}: no training examples")
    prepared = prepare_examples(
        train_rows,
        tokenizer,
        max_input_tokens=cfg.max_input_tokens,
        max_output_tokens=cfg.max_output_tokens,
        prompt_format=cfg.prompt_format,
    )
    train_ds = Dataset.from_list(prepared.examples)
    eval_ds = None
    if eval_path:
        eval_rows = read_alpaca(eval_path, job.max_eval_samples)
        if eval_rows:
            eval_ds = Dataset.from_list(
                prepare_examples(
                    eval_rows,
                    tokenizer,
                    max_input_tokens=cfg.max_input_tokens,
                    max_output_tokens=cfg.max_output_tokens,
                    prompt_format=prepared.prompt_format,
                ).examples
            )

    plan = cfg.batch_plan(world)
    target = cfg.target_modules
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(target) if isinstance(target, tuple) else target,
        bias="none",
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        **sft_arguments(
            cfg,
            output_dir=str(checkpoints),
            gradient_accumulation_steps=plan["gradient_accumulation_steps"],
            precision=precision,
            evaluate=eval_ds is not None,
            run_name=job.run_name,
        )
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora,
    )
    train_sequences = len(trainer.train_dataset)
    train_tokens = _column_tokens(trainer.train_dataset, "input_ids")
    sample = trainer.train_dataset.select(range(min(1000, train_sequences)))
    lengths = [len(ids) for ids in sample["input_ids"]]
    mean_len = sum(lengths) / len(lengths) if lengths else float(cfg.max_length)
    loss_fraction = None
    if "labels" in sample.column_names:  # completion-only loss: prompt tokens are -100
        labels = [label for row in sample["labels"] for label in row]
        loss_fraction = sum(1 for label in labels if label != -100) / max(1, len(labels))
    attention = packing_attention(cfg)
    # attention spans one example, not the packed row: FLOPs use the examples' lengths
    example_len = mean_len
    if attention and attention.startswith("per example") and "seq_lengths" in sample.column_names:
        parts = [n for row in sample["seq_lengths"] for n in row]
        example_len = sum(parts) / len(parts) if parts else mean_len
    if cfg.packing:
        reporter.info(
            f"packing ({cfg.packing_strategy}): {prepared.stats['examples']} examples in "
            f"{train_sequences} sequences of up to {cfg.max_length} tokens; attention {attention}"
        )
    flops = flops_model(trainer.model, example_len, cfg.flops_formula)
    peak, device_name = device_peak_flops(cfg.peak_tflops_per_device)
    callback = make_callback(reporter, flops, peak, world)
    trainer.add_callback(callback)
    trainer.remove_callback(PrinterCallback)  # our callback reports instead
    if artifacts.is_remote(job.output_dir) and is_main:
        trainer.add_callback(_uploader(job.output_dir))

    resume = last_checkpoint(checkpoints)
    if resume:
        reporter.info(f"resuming from {resume}")
    train_start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.perf_counter() - train_start
    eval_metrics = trainer.evaluate() if eval_ds is not None else {}

    # outputs: local first, then published; the record last. Every rank calls save_model
    # (it writes on rank 0 only) and gather_object (a collective); rank 0 writes the rest.
    staging = work / "output"
    adapter_dir = staging / "adapter"
    trainer.save_model(str(adapter_dir))
    ranks = gather_object(
        [
            {
                "rank": state.process_index,
                "local_rank": state.local_process_index,
                "host": platform.node(),
                "pid": os.getpid(),
                "device": str(state.device),
            }
        ]
    )
    record: dict[str, Any] = {}
    if is_main:
        total_params = sum(p.numel() for p in trainer.model.parameters())
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        tokenizer.save_pretrained(str(adapter_dir))
        adapter_bytes = artifacts.dir_size(adapter_dir)
        if cfg.merge_adapter:
            _save_merged(trainer.model, tokenizer, staging / "merged")
        artifacts.publish_dir(staging, job.output_dir)
        curve = _loss_curve(trainer.state.log_history)
        tokens = callback.tokens_this_run
        tps = tokens / callback.seconds_this_run if callback.seconds_this_run > 0 else None
        achieved = mfu(tps or 0.0, flops.per_token(), peak, world)
        achieved_6n = mfu(tps or 0.0, flops.per_token("6n"), peak, world)
        train_losses = [c["loss"] for c in curve if "loss" in c]
        record = {
            "complete": True,
            "base_model": job.base_model,
            "base_model_dir": model_dir,
            "job": job.to_dict(),
            "config": cfg.to_dict(),
            "batch_plan": plan,
            "precision": precision,
            "prompt_format": prepared.prompt_format,
            "data": {
                "train_file": train_path,
                "eval_file": eval_path,
                "checksum": checksum,
                **prepared.stats,
                "eval_examples": len(eval_ds) if eval_ds is not None else 0,
                "train_sequences": train_sequences,  # fewer than examples when packed
                "train_tokens": train_tokens,
                "mean_sequence_tokens": round(mean_len, 1),
                "mean_example_tokens": round(example_len, 1),
                "loss_token_fraction": round(loss_fraction, 4)
                if loss_fraction is not None
                else None,
            },
            "metrics": {
                "global_step": trainer.state.global_step,
                "max_steps": trainer.state.max_steps,
                "epoch": trainer.state.epoch,
                "train_loss": result.training_loss,
                "first_loss": train_losses[0] if train_losses else None,
                "final_loss": train_losses[-1] if train_losses else None,
                **{k: v for k, v in eval_metrics.items() if isinstance(v, int | float)},
            },
            "resumed_from": resume,
            "loss_curve": curve,
            "progress_events": callback.events,
            "wall_seconds": round(time.perf_counter() - wall_start, 3),
            "train_seconds": round(train_seconds, 3),
            "tokens_trained_this_run": tokens,
            "tokens_seen_total": trainer.state.num_input_tokens_seen,
            "tokens_per_s": round(tps, 2) if tps else None,
            "seconds_per_step": round(
                train_seconds / max(1, trainer.state.global_step - (callback.first_step or 0)), 4
            ),
            "mfu": round(achieved, 4) if achieved is not None else None,
            "mfu_6n": round(achieved_6n, 4) if achieved_6n is not None else None,
            "flops_formula": flops.describe(),
            "flops_per_token": flops.per_token(),
            "peak_flops_per_device": peak,
            "device": device_name,
            "world_size": world,
            "ranks": ranks,
            "written_by_rank": state.process_index,
            "packing": {
                "enabled": cfg.packing,
                "strategy": cfg.packing_strategy if cfg.packing else None,
                "attention": attention,
            },
            "parameters": {
                "total": total_params,
                "trainable": trainable,
                "matmul": flops.matmul_params,
            },
            "adapter_bytes": adapter_bytes,
            "adapter_dir": artifacts_join(job.output_dir, "adapter"),
            "merged_dir": artifacts_join(job.output_dir, "merged") if cfg.merge_adapter else None,
            "output_dir": job.output_dir,
            "versions": _versions(),
        }
        artifacts.write_record(job.output_dir, record)
    state.wait_for_everyone()
    return record


def _save_merged(model: Any, tokenizer: Any, folder: Path) -> None:
    """Base weights with the LoRA update folded in, loadable by plain transformers.

    ``merge_and_unload`` changes the model in place (the adapter is saved before);
    the KV cache, switched off for training, is switched back on for generation.
    """
    merged = model.merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))


def artifacts_join(root: str, name: str) -> str:
    from hum_dagster.store import fsio

    return fsio.join(root, name)


def _uploader(output_dir: str):
    from transformers import TrainerCallback

    class UploadCheckpoints(TrainerCallback):
        """Copies each saved checkpoint under ``<output_dir>/checkpoints`` (marker last)."""

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                local = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if local.is_dir():
                    artifacts.upload_checkpoint(local, output_dir)

    return UploadCheckpoints()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def record_metadata(record: Mapping[str, Any]) -> dict[str, Any]:
    """The Pipes materialization metadata of a finished run (typed where it helps)."""
    metrics = record["metrics"]
    meta: dict[str, Any] = {
        "global_step": metrics["global_step"],
        "train_loss": metrics["train_loss"],
        "first_loss": metrics["first_loss"],
        "final_loss": metrics["final_loss"],
        "wall_seconds": record["wall_seconds"],
        "train_seconds": record["train_seconds"],
        "seconds_per_step": record["seconds_per_step"],
        "tokens_per_s": record["tokens_per_s"],
        "adapter_bytes": record["adapter_bytes"],
        "trainable_parameters": record["parameters"]["trainable"],
        "device": record["device"],
        "world_size": record["world_size"],
        "precision": record["precision"],
        "data_checksum": record["data"]["checksum"],
        "train_examples": record["data"]["examples"],
        "resumed_from": record["resumed_from"] or "",
        "adapter_dir": {"raw_value": record["adapter_dir"], "type": "path"},
        "output_dir": {"raw_value": record["output_dir"], "type": "path"},
        # the loss curve itself is one table, added by the asset from training_record.json
        "config": {"raw_value": record["config"], "type": "json"},
        "flops_formula": record["flops_formula"],
    }
    if "eval_loss" in metrics:
        meta["eval_loss"] = metrics["eval_loss"]
    if record["mfu"] is not None:
        meta["mfu"] = record["mfu"]
        meta["mfu_6n"] = record["mfu_6n"]
    return {k: v for k, v in meta.items() if v is not None}


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a TrainingJob as JSON (a file)")
    parser.add_argument("--base-model", dest="base_model")
    parser.add_argument("--dataset-dir", dest="dataset_dir")
    parser.add_argument("--output-dir", dest="output_dir")
    parser.add_argument("--work-dir", dest="work_dir")
    parser.add_argument("--max-steps", dest="max_steps", type=int)
    ns = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if ns.config:
        with open(ns.config, encoding="utf-8") as handle:
            values = json.load(handle)
    for key in ("base_model", "dataset_dir", "output_dir", "work_dir"):
        if getattr(ns, key):
            values[key] = getattr(ns, key)
    if ns.max_steps is not None:
        values["config"] = {**(values.get("config") or {}), "max_steps": ns.max_steps}
    return values


def _extras_read_only() -> dict[str, Any]:
    """The Pipes extras without opening a session (ranks other than 0)."""
    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return dict(data.get("extras") or {})


def _close_process_group() -> None:
    """Leave the torchrun process group before exit: a gloo group still open when the
    interpreter ends aborts its rank ("terminate called without an active exception")."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is always there when training ran
        return
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        _close_process_group()


def _main(argv: Sequence[str] | None) -> int:
    cli = parse_args(argv if argv is not None else sys.argv[1:])
    in_pipes = PipesEnvVarParamsLoader().is_dagster_pipes_process()
    rank = int(os.environ.get("RANK", "0"))
    if in_pipes and rank == 0:
        with open_dagster_pipes() as pipes:
            values = {**dict(pipes.extras), **cli}
            job = TrainingJob.from_dict(values)
            reporter = PipesReporter(pipes)
            reporter.info(f"training {job.base_model} on {job.dataset_dir} -> {job.output_dir}")
            record = train(job, reporter)
            reporter.done(record_metadata(record))
        return 0
    values = {**(_extras_read_only() if in_pipes else {}), **cli}
    job = TrainingJob.from_dict(values)
    record = train(job, PrintReporter() if rank == 0 else Reporter())
    if rank == 0:
        PrintReporter().done(record_metadata(record))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["TrainingConfig", "TrainingJob", "main", "record_metadata", "train"]
