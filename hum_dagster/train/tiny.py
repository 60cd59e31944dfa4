"""A tiny Llama-architecture model and tokenizer built offline, for tests and smoke runs.

No hub access: a byte-level BPE tokenizer is trained with ``tokenizers`` on the given
texts, and a randomly initialised ``LlamaForCausalLM`` (hidden 32, 2 layers by default)
is saved next to it as a transformers folder that every loader here accepts. Also
writes small corpus exports in the layout of :mod:`hum_dagster.corpus.export`. No Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"]
# A minimal chat template (ChatML-like) for tests of the chat prompt format.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|endoftext|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 400, chat_template: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS)
    if chat_template:
        specials += ["<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>"
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    folder: str | Path,
    texts: Sequence[str],
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 64,
    vocab_size: int = 400,
    chat_template: bool = False,
    seed: int = 0,
    initializer_range: float = 0.2,
) -> str:
    """Save a tiny random Llama and its tokenizer to ``folder``; returns the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(texts, vocab_size, chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        attention_dropout=0.0,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write_export(
    directory: str | Path,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]] = (),
) -> str:
    """A corpus export as ``hum_dagster.corpus.export`` writes it: alpaca JSONL + dataset_info."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = {}
    for split, rows in (("train", train), ("validation", validation)):
        name = f"hum_{split}.jsonl"
        with open(directory / name, "w", encoding="utf-8") as handle:
            for row in rows:
                record = {"instruction": row["instruction"], "input": row.get("input", "")}
                record["output"] = row["output"]
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        info[f"hum_{split}"] = {
            "file_name": name,
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
    (directory / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return str(directory)


def toy_rows(n: int = 8) -> list[dict[str, str]]:
    """A few NER-style instructions with deterministic answers (learnable in a few steps)."""
    people = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]
    places = ["Paris", "Berlin", "Rome", "Madrid", "Oslo", "Vienna", "Prague", "Lisbon"]
    rows = []
    for i in range(n):
        person, place = people[i % len(people)], places[i % len(places)]
        instruction = json.dumps(
            {
                "instruction": "Extract the entities of the given types as JSON.",
                "schema": ["person", "location"],
                "input": f"{person} moved to {place} last year.",
            }
        )
        output = json.dumps({"person": [person], "location": [place]})
        rows.append({"instruction": instruction, "output": output})
    return rows


# TrainingConfig fields that make a tiny model learn in a few CPU steps (the tests' base;
# each test adds its batch plan and what it checks).
TINY_TRAINING = dict(
    learning_rate=2e-2,
    warmup_ratio=0.0,
    lora_rank=8,
    lora_alpha=16,
    lora_dropout=0.0,
    model_dropout=None,
    max_input_tokens=96,
    max_output_tokens=32,
    logging_steps=1,
    eval_steps=None,
    save_steps=1000,
)
