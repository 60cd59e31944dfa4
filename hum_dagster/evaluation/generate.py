"""Model backends for evaluation, behind one interface.

``Generator.generate(prompts) -> texts`` (same order, one text per prompt) and
``Generator.metadata`` (backend, model id, decoding settings, throughput of the last
call). Backends:

- ``OpenAIGenerator``: any OpenAI-compatible endpoint through the LLM layer's
  ``LLMRunner`` (step ``eval.generate``, template ``eval``), so generations are cached
  and re-scoring costs nothing;
- ``TransformersGenerator``: local generation with transformers (CPU for small models,
  GPU where present): batched, left padding, the tokenizer's chat template when it has
  one;
- ``VLLMGenerator``: vLLM offline generation in its own process
  (``hum_dagster.evaluation.vllm_entry``, on a GPU node): prompts are written as JSONL
  to a work folder (local or ``s3://``), a caller-given ``launch(extras)`` runs the
  entry point (``eval_scores`` launches it through Dagster Pipes) and the generations
  are read back from the same folder.

Decoding defaults are the paper's: temperature 0.2, top-p 0.95; ``greedy=True`` decodes
greedily. No Dagster imports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMRunner
from hum_dagster.store import fsio

log = logging.getLogger(__name__)

EVAL_STEP = "eval.generate"
EVAL_TEMPLATE = "eval"


@dataclass(frozen=True)
class DecodingConfig:
    """How to decode. ``greedy`` overrides temperature and top-p."""

    temperature: float = 0.2
    top_p: float = 0.95
    greedy: bool = False
    max_new_tokens: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not self.greedy and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling (use greedy=True instead)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")

    def as_metadata(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def openai_params(self) -> dict[str, Any]:
        if self.greedy:
            return {"temperature": 0.0, "top_p": 1.0, "max_tokens": self.max_new_tokens}
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_new_tokens,
        }

    def fingerprint(self) -> str:
        text = repr(sorted(self.as_metadata().items()))
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


class Generator(Protocol):
    """What evaluation calls; ``metadata`` describes the model and the decoding."""

    @property
    def metadata(self) -> dict[str, Any]: ...

    def generate(self, prompts: list[str]) -> list[str]: ...


# --------------------------------------------------------------------------- OpenAI-compatible


class OpenAIGenerator:
    """Generation through an ``LLMRunner`` (``hum_dagster.llm``): one user message per
    prompt, asked as free text (``expect_json=False``) so every answer is kept and cached
    as the model wrote it, never re-sampled; re-scoring is free. A failed request gives
    ``""`` and is counted in ``metadata["failures"]``.
    """

    def __init__(
        self,
        runner: LLMRunner,
        decoding: DecodingConfig | None = None,
        *,
        model_id: str | None = None,
        template_version: str = "eval-v1",
    ) -> None:
        self.runner = runner
        self.decoding = decoding or DecodingConfig()
        config = getattr(runner, "config", None)
        self.model_id = model_id or getattr(config, "model", None) or "unknown"
        self.template_version = template_version
        self._last: dict[str, Any] = {}

    def requests(self, prompts: Sequence[str]) -> list[LLMRequest]:
        params = self.decoding.openai_params()
        return [
            LLMRequest(
                step=EVAL_STEP,
                template=EVAL_TEMPLATE,
                template_version=self.template_version,
                messages=({"role": "user", "content": prompt},),
                params=params,
                expect_json=False,
            )
            for prompt in prompts
        ]

    def generate(self, prompts: list[str]) -> list[str]:
        start = time.perf_counter()
        results = self.runner.run(self.requests(prompts))
        texts: list[str] = []
        failures: dict[str, int] = {}
        cached = completion_tokens = 0
        for result in results:
            if isinstance(result, LLMFailure):
                reason = result.reason.split(":", 1)[0]
                failures[reason] = failures.get(reason, 0) + 1
                texts.append("")
                continue
            texts.append(result.content)
            cached += bool(result.cached)
            completion_tokens += int(result.usage.get("completion_tokens", 0))
        elapsed = time.perf_counter() - start
        self._last = {
            "prompts": len(prompts),
            "cached": cached,
            "failures": failures,
            "completion_tokens": completion_tokens,
            "seconds": round(elapsed, 3),
            "cache_keys": [getattr(r, "key", "") for r in results],
        }
        return texts

    @property
    def metadata(self) -> dict[str, Any]:
        last = {k: v for k, v in self._last.items() if k != "cache_keys"}
        return {
            "backend": "openai",
            "model_id": self.model_id,
            "decoding": self.decoding.as_metadata(),
            "step": EVAL_STEP,
            "template": EVAL_TEMPLATE,
            "template_version": self.template_version,
            "runner_mode": getattr(self.runner, "mode", None),
            **last,
        }

    @property
    def last_cache_keys(self) -> list[str]:
        return list(self._last.get("cache_keys", []))


def make_openai_generator(
    config: Any,
    cache_root: str,
    mode: str = "live",
    decoding: DecodingConfig | None = None,
    **kwargs: Any,
) -> OpenAIGenerator:
    """An ``OpenAIGenerator`` on a fresh ``OpenAIRunner`` built from a ``ClientConfig``
    with no structured-output forcing (the benchmark's instruction states the format)."""
    from hum_dagster.llm.client import OpenAIRunner

    config = dataclasses.replace(config, max_invalid_retries=0, structured_output="none")
    return OpenAIGenerator(OpenAIRunner(config, cache_root, mode), decoding, **kwargs)


# --------------------------------------------------------------------------- transformers


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class TransformersGenerator:
    """Local generation with transformers.

    ``model`` is a loaded model or a spec for ``hum_dagster.evaluation.models.resolve_model``
    (a path, a Hugging Face-style folder, or ``"smollm2-135m-instruct"``). Prompts are
    sorted by length into batches of ``batch_size`` (less padding) and returned in input
    order. Sampling is seeded per batch with ``decoding.seed``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        decoding: DecodingConfig | None = None,
        *,
        batch_size: int = 8,
        device: str | None = None,
        storage_root: str | None = None,
        use_chat_template: bool | None = None,
        model_id: str | None = None,
    ) -> None:
        import torch

        self.decoding = decoding or DecodingConfig()
        self.batch_size = max(1, int(batch_size))
        self.device = device or default_device()
        self.load_info: dict[str, Any] = {}
        if isinstance(model, str):
            from hum_dagster.evaluation.models import load_model

            loaded = load_model(model, storage_root=storage_root, device=self.device)
            model, tokenizer = loaded.model, loaded.tokenizer
            self.load_info = loaded.info
            model_id = model_id or loaded.model_id
        if tokenizer is None:
            raise ValueError("a tokenizer is needed when the model is given as an object")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if use_chat_template is None:
            use_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = use_chat_template
        self.model_id = model_id or getattr(model.config, "_name_or_path", "") or "local"
        self._torch = torch
        self._last: dict[str, Any] = {}

    def render(self, prompt: str) -> str:
        if self.use_chat_template:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    def generate(self, prompts: list[str]) -> list[str]:
        torch = self._torch
        tok = self.tokenizer
        rendered = [self.render(p) for p in prompts]
        lengths = [len(tok(text, add_special_tokens=False)["input_ids"]) for text in rendered]
        order = sorted(range(len(prompts)), key=lambda i: (lengths[i], i))
        out: list[str | None] = [None] * len(prompts)
        d = self.decoding
        kwargs: dict[str, Any] = {
            "max_new_tokens": d.max_new_tokens,
            "pad_token_id": tok.pad_token_id,
        }
        if d.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=d.temperature, top_p=d.top_p)
        new_tokens = 0
        start = time.perf_counter()
        add_special = not self.use_chat_template  # the template already has BOS etc.
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                enc = tok(
                    [rendered[i] for i in idx],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=add_special,
                ).to(self.device)
                torch.manual_seed(d.seed + b)
                gen = self.model.generate(**enc, **kwargs)
                tail = gen[:, enc["input_ids"].shape[1] :]
                for row, i in enumerate(idx):
                    ids = tail[row]
                    if tok.pad_token_id is not None:
                        # count up to the first pad/eos (generation pads finished rows)
                        stop = (ids == tok.pad_token_id).nonzero()
                        n = int(stop[0]) if len(stop) else len(ids)
                    else:
                        n = len(ids)
                    new_tokens += n
                    out[i] = tok.decode(ids[:n], skip_special_tokens=True).strip()
        elapsed = time.perf_counter() - start
        self._last = {
            "prompts": len(prompts),
            "prompt_tokens": sum(lengths),
            "generated_tokens": new_tokens,
            "seconds": round(elapsed, 3),
            "tokens_per_s": round(new_tokens / elapsed, 2) if elapsed > 0 else None,
        }
        return [o or "" for o in out]

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model_id": self.model_id,
            "device": self.device,
            "dtype": str(getattr(self.model, "dtype", "")),
            "batch_size": self.batch_size,
            "chat_template": self.use_chat_template,
            "decoding": self.decoding.as_metadata(),
            "load": self.load_info,
            **self._last,
        }


# --------------------------------------------------------------------------- vLLM (out of process)

VLLM_INSTRUCTIONS = "instructions.jsonl"
VLLM_GENERATIONS = "generations.jsonl"


class VLLMGenerator:
    """Generation by ``hum_dagster.evaluation.vllm_entry`` in another process.

    Each ``generate`` call writes ``<workdir>/<call>/instructions.jsonl`` (one
    ``{"instruction_id", "instruction"}`` per prompt), calls ``launch(extras)`` (the
    entry point's settings: paths, model, adapter, decoding, engine ``options``), which
    must return when the entry point has finished and give back the metadata it
    reported, then reads ``generations.jsonl`` from the same folder. A missing or extra
    generation is an error, never a silent empty answer. Every call gets a fresh
    folder, so output left by an earlier attempt is never read.
    """

    def __init__(
        self,
        launch: Callable[[dict[str, Any]], Mapping[str, Any]],
        workdir: str,
        model: str,
        decoding: DecodingConfig | None = None,
        *,
        adapter: str | None = None,
        model_id: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.launch = launch
        self.workdir = workdir
        self.model = model
        self.adapter = adapter
        self.decoding = decoding or DecodingConfig()
        self.model_id = model_id or model
        self.options = dict(options or {})
        self.launcher: str | None = None  # where the caller runs it, for metadata
        self.calls = 0
        self._last: dict[str, Any] = {}

    def extras(self, instructions: str, output: str) -> dict[str, Any]:
        d = self.decoding
        extras: dict[str, Any] = {
            "instructions": instructions,
            "output": output,
            "model": self.model,
            "temperature": d.temperature,
            "top_p": d.top_p,
            "greedy": d.greedy,
            "max_new_tokens": d.max_new_tokens,
            "seed": d.seed,
            **self.options,
        }
        if self.adapter:
            extras["adapter"] = self.adapter
        return extras

    def generate(self, prompts: list[str]) -> list[str]:
        folder = fsio.join(self.workdir, f"{self.calls:03d}-{uuid.uuid4().hex[:8]}")
        self.calls += 1
        instructions = fsio.join(folder, VLLM_INSTRUCTIONS)
        output = fsio.join(folder, VLLM_GENERATIONS)
        ids = [f"p{i:06d}" for i in range(len(prompts))]
        lines = (
            json.dumps({"instruction_id": i, "instruction": p}, ensure_ascii=False) + "\n"
            for i, p in zip(ids, prompts, strict=True)
        )
        fsio.write_bytes_atomic(instructions, "".join(lines).encode("utf-8"))
        start = time.perf_counter()
        reported = dict(self.launch(self.extras(instructions, output)) or {})
        wall = time.perf_counter() - start
        texts: dict[str, str] = {}
        with fsio.open_text(output) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    texts[str(row["instruction_id"])] = str(row["output"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{output}:{number}: not a generation row: {exc}") from None
        missing = [i for i in ids if i not in texts]
        if missing or len(texts) != len(ids):
            raise RuntimeError(
                f"{output}: {len(texts)} generations for {len(ids)} prompts "
                f"({len(missing)} missing, first {missing[:3]})"
            )
        keep = ("prompts", "generated_tokens", "seconds", "tokens_per_s", "model_id")
        self._last = {
            **{k: reported[k] for k in keep if k in reported},
            "prompts": len(prompts),
            "wall_s": round(wall, 3),
            "instructions_path": instructions,
            "generations_path": output,
        }
        if "model_id" in self._last:
            self._last["engine_model"] = self._last.pop("model_id")
        return [texts[i] for i in ids]

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            "backend": "vllm",
            "model_id": self.model_id,
            "model": self.model,
            "adapter": self.adapter,
            "decoding": self.decoding.as_metadata(),
            "engine": dict(self.options),
            "launcher": self.launcher,
            "calls": self.calls,
            **self._last,
        }


# --------------------------------------------------------------------------- helpers


def generate_for_rows(
    generator: Generator, rows: Sequence[dict[str, Any]], *, chunk: int | None = 256
) -> dict[str, str]:
    """Generate for each row's ``instruction`` (de-duplicated by instruction id), in
    chunks of ``chunk`` prompts (None: all in one call); returns
    ``{instruction_id: text}``. One id with two different instructions is an error."""
    unique: dict[str, str] = {}
    for row in rows:
        seen = unique.setdefault(row["instruction_id"], row["instruction"])
        if seen != row["instruction"]:
            raise ValueError(f"instruction id {row['instruction_id']} names two instructions")
    ids = list(unique)
    chunk = chunk or max(1, len(ids))
    outputs: dict[str, str] = {}
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        texts = generator.generate([unique[i] for i in part])
        if len(texts) != len(part):
            raise RuntimeError(f"generator returned {len(texts)} texts for {len(part)} prompts")
        outputs.update(zip(part, texts, strict=True))
    return outputs
