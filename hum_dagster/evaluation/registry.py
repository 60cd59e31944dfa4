"""The models to evaluate (``assets/models.yaml``, or ``$HUM_MODELS``).

Backends: ``transformers`` (local generation, CPU or GPU), ``openai`` (any
OpenAI-compatible endpoint) and ``vllm`` (vLLM offline generation in its own process,
``hum_dagster.evaluation.vllm_entry``, which the caller launches: ``eval_scores`` does
it through Dagster Pipes on a subprocess, a Kubernetes pod or an ECS task). Model and
adapter may be ``s3://`` URIs: the transformers backend loads a local copy
(``hum_dagster.evaluation.fetch``), the vLLM entry point makes its own on the GPU node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers.catalog import CatalogError

DEFAULT_MODELS = ASSETS_DIR / "models.yaml"
BACKENDS = ("transformers", "openai", "vllm")
# engine settings a ``vllm`` model may set under ``vllm:`` in the model list
VLLM_OPTIONS = ("tensor_parallel_size", "max_model_len", "chat_template", "batch_size", "max_lora_rank")
KEYS = {"name", "backend", "model", "base_url", "api_key_env", "adapter", "base", "vllm"}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    adapter: str | None = None  # a LoRA adapter folder on top of ``model``
    base: str | None = None  # the model this one was fine-tuned from (for comparisons)
    vllm: Mapping[str, Any] = field(default_factory=dict)  # vLLM engine settings


def check_vllm_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(VLLM_OPTIONS))
    if unknown:
        raise CatalogError(f"{where}: unknown vllm settings {unknown}; known: {list(VLLM_OPTIONS)}")
    return dict(options)


def make_generator(
    spec: ModelSpec,
    decoding,
    *,
    storage_root: str | None = None,
    cache_root: str | None = None,
    llm_mode: str = "live",
    batch_size: int = 8,
    model_cache: str | None = None,
    vllm_launch: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
    vllm_workdir: str | None = None,
    vllm_options: Mapping[str, Any] | None = None,
):
    """The generation backend for ``spec``.

    - ``openai``: an OpenAI-compatible endpoint through the cached LLM runner;
    - ``transformers``: local generation with the LoRA adapter, if any; an ``s3://``
      model or adapter is copied to ``model_cache`` first (default: see
      ``fetch.default_cache_dir``);
    - ``vllm``: a ``VLLMGenerator`` that writes the prompts under ``vllm_workdir`` and
      calls ``vllm_launch(extras)`` to run the entry point (the caller decides where);
      ``vllm_options`` (engine settings) override the spec's ``vllm`` settings.
    """
    if spec.backend == "openai":
        from hum_dagster.evaluation.generate import make_openai_generator
        from hum_dagster.llm.client import ClientConfig

        if cache_root is None:
            raise ValueError(f"model {spec.name!r}: an OpenAI-compatible backend needs a cache root")
        config = ClientConfig(model=spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env)
        mode = "live" if llm_mode == "offline" else llm_mode
        return make_openai_generator(config, cache_root, mode, decoding, model_id=spec.name)

    if spec.backend == "vllm":
        from hum_dagster.evaluation.generate import VLLMGenerator

        if vllm_launch is None or vllm_workdir is None:
            raise ValueError(
                f"model {spec.name!r}: the vllm backend runs vllm_entry in its own process; "
                "pass vllm_launch and vllm_workdir (eval_scores launches it through Dagster Pipes)"
            )
        options = {**spec.vllm, **(vllm_options or {})}
        return VLLMGenerator(
            vllm_launch, vllm_workdir, spec.model, decoding,
            adapter=spec.adapter, model_id=spec.name, options=options,
        )
    if spec.backend != "transformers":
        raise ValueError(f"model {spec.name!r}: unknown backend {spec.backend!r}")

    from hum_dagster.evaluation.fetch import default_cache_dir, is_remote, local_copy
    from hum_dagster.evaluation.generate import TransformersGenerator
    from hum_dagster.evaluation.models import load_model

    cache = model_cache or default_cache_dir(storage_root)
    model_path = local_copy(spec.model, cache) if is_remote(spec.model) else spec.model
    loaded = load_model(model_path, storage_root=storage_root)
    model = loaded.model
    adapter_path = None
    if spec.adapter:
        from peft import PeftModel

        adapter_path = local_copy(spec.adapter, cache)
        # merged for generation: the same weights, several times faster than LoRA layers
        model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
    generator = TransformersGenerator(
        model, loaded.tokenizer, decoding, batch_size=batch_size, model_id=spec.name
    )
    generator.load_info = dict(loaded.info, adapter=spec.adapter, adapter_merged=bool(spec.adapter))
    if model_path != spec.model:
        generator.load_info["model_uri"] = spec.model
    if adapter_path and adapter_path != spec.adapter:
        generator.load_info["adapter_local"] = adapter_path
    return generator


def load_models(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """Read and check the model list; errors name the file and the model."""
    path = str(path or os.environ.get("HUM_MODELS") or DEFAULT_MODELS)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: model list not found") from exc
    out: dict[str, ModelSpec] = {}
    for index, raw in enumerate(data.get("models") or []):
        where = f"{path}: models[{index}]"
        if not isinstance(raw, dict) or not {"name", "backend", "model"} <= set(raw):
            raise CatalogError(f"{where}: needs name, backend and model")
        name = str(raw["name"])
        if not NAME_RE.match(name) or name in out:
            raise CatalogError(f"{where}: name {name!r} must match {NAME_RE.pattern} and be unique")
        if raw["backend"] not in BACKENDS:
            raise CatalogError(f"{where}: backend {raw['backend']!r} is not one of {BACKENDS}")
        unknown = set(raw) - KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
        options = raw.get("vllm") or {}
        if options and (raw["backend"] != "vllm" or not isinstance(options, dict)):
            raise CatalogError(f"{where}: 'vllm' settings need backend vllm and a mapping")
        out[name] = ModelSpec(
            name=name,
            backend=raw["backend"],
            model=str(raw["model"]),
            base_url=raw.get("base_url"),
            api_key_env=raw.get("api_key_env", "OPENAI_API_KEY"),
            adapter=raw.get("adapter"),
            base=raw.get("base"),
            vllm=check_vllm_options(options, where),
        )
    if not out:
        raise CatalogError(f"{path}: no models listed")
    return out
