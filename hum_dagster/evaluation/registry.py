"""The models to evaluate (``assets/models.yaml``, or ``$HUM_MODELS``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import yaml

from hum_dagster.catalog import CatalogError
from hum_dagster.paths import ASSETS_DIR

DEFAULT_MODELS = ASSETS_DIR / "models.yaml"
BACKENDS = ("transformers", "openai")
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


def make_generator(
    spec: ModelSpec,
    decoding,
    *,
    storage_root: str | None = None,
    cache_root: str | None = None,
    llm_mode: str = "live",
    batch_size: int = 8,
):
    """The generation backend for ``spec``: local transformers (with its LoRA adapter, if
    any) or an OpenAI-compatible endpoint through the cached LLM runner."""
    if spec.backend == "openai":
        from hum_dagster.evaluation.generate import make_openai_generator
        from hum_dagster.llm.client import ClientConfig

        if cache_root is None:
            raise ValueError(f"model {spec.name!r}: an OpenAI-compatible backend needs a cache root")
        config = ClientConfig(model=spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env)
        mode = "live" if llm_mode == "offline" else llm_mode
        return make_openai_generator(config, cache_root, mode, decoding, model_id=spec.name)

    from hum_dagster.evaluation.generate import TransformersGenerator
    from hum_dagster.evaluation.models import load_model

    loaded = load_model(spec.model, storage_root=storage_root)
    model = loaded.model
    if spec.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter)
    generator = TransformersGenerator(
        model, loaded.tokenizer, decoding, batch_size=batch_size, model_id=spec.name
    )
    generator.load_info = dict(loaded.info, adapter=spec.adapter)
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
        unknown = set(raw) - {"name", "backend", "model", "base_url", "api_key_env", "adapter", "base"}
        if unknown:
            raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
        out[name] = ModelSpec(
            name=name,
            backend=raw["backend"],
            model=str(raw["model"]),
            base_url=raw.get("base_url"),
            api_key_env=raw.get("api_key_env", "OPENAI_API_KEY"),
            adapter=raw.get("adapter"),
            base=raw.get("base"),
        )
    if not out:
        raise CatalogError(f"{path}: no models listed")
    return out
