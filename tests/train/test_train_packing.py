"""Sequence packing in the trainer: it packs, the loss stays on the completions, packed
examples do not attend to each other (sdpa on the CPU, no flash-attention), loss goes down."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from hum_dagster.train.config import TrainingConfig, TrainingJob  # noqa: E402
from hum_dagster.train.data import prepare_examples  # noqa: E402
from hum_dagster.train.entry import Reporter, packing_attention, sft_arguments, train  # noqa: E402
from hum_dagster.train.tiny import (  # noqa: E402
    TINY_TRAINING,
    build_tiny_model,
    toy_rows,
    write_export,
)

# 256-token sequences hold five 48-token examples
PACKED = dict(
    TINY_TRAINING,
    global_batch_size=2,
    per_device_train_batch_size=2,
    max_input_tokens=200,
    max_output_tokens=56,
    packing=True,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("packing")
    rows = toy_rows(16)
    model = build_tiny_model(root / "model", [r["instruction"] + r["output"] for r in rows])
    data = write_export(root / "export", rows)
    yield {"model": model, "data": data, "rows": rows}
    torch.set_num_threads(threads)


def _trainer(tiny, tmp_path, **changes):
    """An SFTTrainer configured exactly as the entry point configures it."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    cfg = TrainingConfig(**{**PACKED, **changes})
    tokenizer = AutoTokenizer.from_pretrained(tiny["model"])
    model = AutoModelForCausalLM.from_pretrained(tiny["model"], attn_implementation="sdpa")
    prepared = prepare_examples(
        tiny["rows"], tokenizer, max_input_tokens=cfg.max_input_tokens, max_output_tokens=56
    )
    args = SFTConfig(
        **sft_arguments(
            cfg,
            output_dir=str(tmp_path / "ckpt"),
            gradient_accumulation_steps=1,
            precision="fp32",
            evaluate=False,
        )
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(prepared.examples),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"),
    )


def test_packing_keeps_the_completion_only_labels(tiny, tmp_path):
    from collections import Counter

    packed = _trainer(tiny, tmp_path).train_dataset
    plain = _trainer(tiny, tmp_path, packing=False).train_dataset
    assert len(plain) == 16
    assert len(packed) < len(plain)  # 16 examples of 48 tokens in 256-token rows
    assert sum(len(x) for x in packed["seq_lengths"]) == 16
    # the same tokens and the same loss tokens, only arranged differently
    assert Counter(t for row in packed["input_ids"] for t in row) == Counter(
        t for row in plain["input_ids"] for t in row
    )
    loss_tokens = Counter(t for row in plain["labels"] for t in row if t != -100)
    assert Counter(t for row in packed["labels"] for t in row if t != -100) == loss_tokens
    assert 0 < sum(loss_tokens.values()) < 0.5 * sum(len(r) for r in plain["input_ids"])


def test_packed_examples_do_not_attend_to_each_other(tiny, tmp_path):
    """sdpa on the CPU: a packed row gives each example the logits it has alone."""
    import torch

    trainer = _trainer(tiny, tmp_path)
    tokenizer = trainer.processing_class
    batch = next(iter(trainer.get_train_dataloader()))
    # padding-free: the batch is one flattened row, position_ids restart per example
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    bounds = batch["cu_seq_lens_q"].tolist()
    assert len(bounds) - 1 > 2  # several examples in the row
    model = trainer.model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        packed = model(**inputs).logits[0]
        # the control: the same row as one long sequence (no position_ids) differs
        leaky = model(input_ids=batch["input_ids"]).logits[0]
    outputs = {r["output"] + tokenizer.eos_token for r in tiny["rows"]}
    for start, end in zip(bounds, bounds[1:], strict=False):
        ids = batch["input_ids"][:, start:end]
        with torch.no_grad():
            alone = model(input_ids=ids).logits[0]
        torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=1e-4)
        # the loss tokens of each packed example are its completion (and EOS), nothing else
        labels = batch["labels"][0, start:end]
        assert tokenizer.decode(ids[0][labels != -100]) in outputs
    second = slice(bounds[1], bounds[2])
    assert not torch.allclose(leaky[second], packed[second], atol=1e-3)


def test_packing_attention_is_explicit():
    assert packing_attention(TrainingConfig()) is None
    assert packing_attention(TrainingConfig(packing=True)).startswith("per example")
    wrapped = TrainingConfig(packing=True, packing_strategy="wrapped")
    assert "crosses" in packing_attention(wrapped)
    assert (
        sft_arguments(
            wrapped, output_dir="o", gradient_accumulation_steps=1, precision="fp32", evaluate=False
        )["padding_free"]
        is False
    )
    with pytest.raises(ValueError, match="packing_strategy"):
        TrainingConfig(packing=True, packing_strategy="greedy")


def test_training_with_packing_learns(tiny, tmp_path):
    job = TrainingJob(
        base_model=tiny["model"],
        dataset_dir=tiny["data"],
        output_dir=str(tmp_path / "out"),
        config=TrainingConfig(**{**PACKED, "max_steps": 12}),
    )
    record = train(job, Reporter())
    data = record["data"]
    assert data["examples"] == 16
    assert data["train_sequences"] < data["examples"]
    assert data["mean_sequence_tokens"] > 2 * data["mean_example_tokens"]
    assert record["packing"] == {
        "enabled": True,
        "strategy": "bfd",
        "attention": packing_attention(job.config),
    }
    # every step sees the packed rows: more tokens per step than 2 unpacked examples
    tokens_per_step = record["tokens_seen_total"] / record["metrics"]["global_step"]
    assert tokens_per_step > 2 * 2 * data["mean_example_tokens"]
    assert 0 < data["loss_token_fraction"] < 0.5  # still the completions only
    losses = [c["loss"] for c in record["loss_curve"] if "loss" in c]
    assert len(losses) == 12 and losses[-1] < 0.7 * losses[0], losses
