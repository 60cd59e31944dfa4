"""FAKE vLLM for tests only (see tests/fakes/README.md): records calls, answers from a map.

Not vLLM: no model is loaded and nothing is generated. The real entry point
``hum_dagster.evaluation.vllm_entry`` imports it from ``PYTHONPATH`` in a test subprocess.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

FAKE = True


def _record(event: str, **data: Any) -> None:
    path = os.environ.get("HUM_FAKE_VLLM_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"event": event, **data}, default=str) + "\n")


def _answers() -> dict[str, str]:
    path = os.environ.get("HUM_FAKE_VLLM_ANSWERS")
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    seed: int | None = None


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int] = field(default_factory=list)


@dataclass
class RequestOutput:
    prompt: str
    outputs: list[CompletionOutput]


class LLM:
    def __init__(self, model: str, seed: int = 0, tensor_parallel_size: int = 1, **kwargs: Any):
        if "://" not in model and not os.path.isfile(os.path.join(model, "config.json")):
            raise OSError(f"fake vllm: {model} is not a model folder (no config.json)")
        self.model = model
        self.enable_lora = bool(kwargs.get("enable_lora"))
        self.max_lora_rank = int(kwargs.get("max_lora_rank") or 16)
        _record("init", model=model, seed=seed, tensor_parallel_size=tensor_parallel_size, **kwargs)

    def _check_lora(self, lora_request: Any) -> dict[str, Any] | None:
        if lora_request is None:
            return None
        if not self.enable_lora:
            raise ValueError("fake vllm: LoRA is not enabled (enable_lora=True)")
        path = lora_request.lora_path
        with open(os.path.join(path, "adapter_config.json"), encoding="utf-8") as handle:
            rank = int(json.load(handle)["r"])
        if rank > self.max_lora_rank:
            raise ValueError(f"fake vllm: LoRA rank {rank} is greater than max_lora_rank")
        return {"name": lora_request.lora_name, "id": lora_request.lora_int_id, "path": path}

    def _answer(self, prompts: list[str], params: SamplingParams, lora: dict | None, how: str):
        answers = _answers()
        _record(how, prompts=prompts, sampling=asdict(params), lora=lora)
        out = []
        for prompt in prompts:
            text = answers.get(prompt, "")
            out.append(RequestOutput(prompt, [CompletionOutput(text, list(range(len(text.split()) or 1)))]))
        return out

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, **kwargs):
        lora = self._check_lora(lora_request)
        prompts = [conversation[-1]["content"] for conversation in messages]
        return self._answer(prompts, sampling_params or SamplingParams(), lora, "chat")

    def generate(self, prompts, sampling_params=None, use_tqdm=True, lora_request=None, **kwargs):
        lora = self._check_lora(lora_request)
        return self._answer(list(prompts), sampling_params or SamplingParams(), lora, "generate")
