"""vLLM offline generation on a GPU node, launched through Dagster Pipes.

Imports ``dagster_pipes`` (never ``dagster``; through ``pipes_entry``), the project's storage helpers (fsspec)
and, inside ``generate_with_vllm``, ``vllm``: the module imports without vLLM installed.

Settings come from the Pipes extras when Dagster launched the process, else from the
command line (the same names as flags)::

    python -m hum_dagster.evaluation.vllm_entry \\
        --instructions instructions.jsonl --output generations.jsonl \\
        --model /models/ckpt --temperature 0.2 --top-p 0.95 --max-new-tokens 512

- ``instructions``: JSONL, one ``{"instruction_id", "instruction"}`` per line (other
  fields ignored; ``prompt`` is accepted for ``instruction``); a local path or an
  ``s3://`` URI;
- ``output``: JSONL written atomically (local or ``s3://``), one
  ``{"instruction_id", "output"}`` per line in input order;
- ``model``: a model folder, a Hugging Face id, or an ``s3://`` folder (copied to
  ``cache_dir`` first, complete or not at all);
- ``adapter``: a LoRA adapter folder (local or ``s3://``), served with
  ``enable_lora`` and a ``LoRARequest``; ``max_lora_rank`` (0: the adapter's ``r``
  rounded up to a rank vLLM supports);
- ``cache_dir``: where remote models and adapters are copied
  (default ``$HUM_HOME/model_cache``);
- ``temperature`` (0.2), ``top_p`` (0.95), ``greedy`` (false),
  ``max_new_tokens`` (512), ``seed`` (0), ``tensor_parallel_size`` (1),
  ``max_model_len`` (None), ``chat_template`` (true: prompts go through the model's chat
  template with ``LLM.chat``; false: raw ``LLM.generate``), ``batch_size`` (prompts per
  vLLM call, for progress reports; 0 = all at once).

Progress is logged through the Pipes logger; the asset materialization carries the
counts, tokens, seconds and tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hum_dagster.evaluation.fetch import default_cache_dir, is_remote, local_copy
from hum_dagster.evaluation.pipes_entry import pipes_main
from hum_dagster.store import fsio

# max_lora_rank values vLLM accepts; an adapter's rank is rounded up to the next one
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
LORA_NAME = "hum-adapter"


@dataclass(frozen=True)
class VLLMSettings:
    instructions: str
    output: str
    model: str
    temperature: float = 0.2
    top_p: float = 0.95
    greedy: bool = False
    max_new_tokens: int = 512
    seed: int = 0
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    chat_template: bool = True
    batch_size: int = 0
    adapter: str | None = None
    max_lora_rank: int = 0
    cache_dir: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> VLLMSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown vLLM settings {unknown}; known: {sorted(known)}")
        missing = [k for k in ("instructions", "output", "model") if not values.get(k)]
        if missing:
            raise ValueError(f"missing vLLM settings: {missing}")
        settings = cls(**{k: v for k, v in values.items() if v is not None})
        if settings.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if not settings.greedy and settings.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling (set greedy instead)")
        return settings


def parse_args(argv: Sequence[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions")
    parser.add_argument("--output")
    parser.add_argument("--model")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", dest="top_p", type=float)
    parser.add_argument("--greedy", action="store_true", default=None)
    parser.add_argument("--max-new-tokens", dest="max_new_tokens", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--tensor-parallel-size", dest="tensor_parallel_size", type=int)
    parser.add_argument("--max-model-len", dest="max_model_len", type=int)
    parser.add_argument(
        "--no-chat-template", dest="chat_template", action="store_false", default=None
    )
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--adapter")
    parser.add_argument("--max-lora-rank", dest="max_lora_rank", type=int)
    parser.add_argument("--cache-dir", dest="cache_dir")
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}


def read_instructions(path: str) -> list[dict[str, str]]:
    rows = []
    with fsio.open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            prompt = data.get("instruction", data.get("prompt"))
            if not isinstance(data, dict) or "instruction_id" not in data or prompt is None:
                raise ValueError(f"{path}:{number}: needs 'instruction_id' and 'instruction'")
            rows.append({"instruction_id": str(data["instruction_id"]), "instruction": prompt})
    return rows


def write_generations(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """JSONL that appears at ``path`` (local or remote) whole or not at all."""
    with fsio.atomic_writer(path) as handle:
        for row in rows:
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))


def lora_rank(adapter_dir: str) -> int:
    """The adapter's rank (``r`` in ``adapter_config.json``) rounded up to a rank vLLM
    accepts as ``max_lora_rank``."""
    config_path = os.path.join(adapter_dir, "adapter_config.json")
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{adapter_dir}: not a LoRA adapter (no adapter_config.json)") from None
    rank = int(config.get("r") or 0)
    ranks = [int(v) for v in (config.get("rank_pattern") or {}).values()]
    rank = max([rank, *ranks])
    if rank < 1:
        raise ValueError(f"{config_path}: no LoRA rank 'r'")
    return next((r for r in LORA_RANKS if r >= rank), rank)


def localize(settings: VLLMSettings) -> VLLMSettings:
    """Settings whose model and adapter are local folders: ``s3://`` ones are copied to
    the cache first (complete copies only); the adapter's rank fills ``max_lora_rank``."""
    from dataclasses import replace

    cache = settings.cache_dir or default_cache_dir()
    model = local_copy(settings.model, cache) if is_remote(settings.model) else settings.model
    adapter = settings.adapter
    if adapter:
        adapter = local_copy(adapter, cache)
    rank = settings.max_lora_rank or (lora_rank(adapter) if adapter else 0)
    return replace(settings, model=model, adapter=adapter, max_lora_rank=rank)


_LLM_CACHE: dict[tuple, Any] = {}


def generate_with_vllm(prompts: list[str], settings: VLLMSettings) -> list[tuple[str, int]]:
    """(text, generated token count) per prompt, from vLLM. The only vLLM call."""
    from vllm import LLM, SamplingParams  # imported here: absent on CPU machines

    lora = bool(settings.adapter)
    key = (settings.model, settings.tensor_parallel_size, settings.max_model_len, lora,
           settings.max_lora_rank)
    llm = _LLM_CACHE.get(key)
    if llm is None:
        kwargs: dict[str, Any] = {"tensor_parallel_size": settings.tensor_parallel_size}
        if settings.max_model_len:
            kwargs["max_model_len"] = settings.max_model_len
        if lora:
            kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=settings.max_lora_rank)
        llm = _LLM_CACHE[key] = LLM(model=settings.model, seed=settings.seed, **kwargs)
    extra: dict[str, Any] = {}
    if lora:
        from vllm.lora.request import LoRARequest

        extra["lora_request"] = LoRARequest(LORA_NAME, 1, settings.adapter)
    if settings.greedy:
        params = SamplingParams(temperature=0.0, max_tokens=settings.max_new_tokens)
    else:
        params = SamplingParams(
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
        )
    if settings.chat_template:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        results = llm.chat(conversations, params, use_tqdm=False, **extra)
    else:
        results = llm.generate(prompts, params, use_tqdm=False, **extra)
    return [(r.outputs[0].text, len(r.outputs[0].token_ids)) for r in results]


def run(settings: VLLMSettings, log: Any = None) -> dict[str, Any]:
    """Read, fetch model and adapter, generate, write; returns the metadata to report."""
    rows = read_instructions(settings.instructions)
    requested = settings
    fetch_start = time.perf_counter()
    settings = localize(settings)
    fetch_s = time.perf_counter() - fetch_start
    prompts = [r["instruction"] for r in rows]
    step = settings.batch_size if settings.batch_size > 0 else max(1, len(prompts))
    outputs: list[tuple[str, int]] = []
    start = time.perf_counter()
    for b in range(0, len(prompts), step):
        part = generate_with_vllm(prompts[b : b + step], settings)
        if len(part) != len(prompts[b : b + step]):
            raise RuntimeError(f"vLLM returned {len(part)} outputs for {step} prompts")
        outputs.extend(part)
        if log is not None:
            log.info(f"generated {len(outputs)}/{len(prompts)}")
    seconds = time.perf_counter() - start
    write_generations(
        settings.output,
        [
            {"instruction_id": r["instruction_id"], "output": text}
            for r, (text, _) in zip(rows, outputs, strict=True)
        ],
    )
    tokens = sum(n for _, n in outputs)
    return {
        "backend": "vllm",
        "model_id": requested.model,
        "model_path": settings.model,
        "adapter": requested.adapter or "",
        "adapter_path": settings.adapter or "",
        "max_lora_rank": settings.max_lora_rank,
        "fetch_seconds": round(fetch_s, 3),
        "prompts": len(prompts),
        "generated_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else None,
        "output": settings.output,
        "decoding": json.dumps(
            {
                k: v
                for k, v in asdict(settings).items()
                if k in ("temperature", "top_p", "greedy", "max_new_tokens", "seed")
            }
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    cli = parse_args(argv if argv is not None else sys.argv[1:])
    return pipes_main(
        cli,
        lambda values, log: run(VLLMSettings.from_mapping(values), log),
        lambda values: f"vLLM generation: {values.get('model')} on {values.get('instructions')}",
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
