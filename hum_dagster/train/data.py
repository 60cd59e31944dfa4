"""The corpus export read back as prompt/completion examples for TRL.

``hum_dagster.corpus.export`` writes LlamaFactory alpaca JSONL (``instruction``, ``input``,
``output``, optional ``system`` and ``history``) and a ``dataset_info.json`` naming the
files. Here each record becomes a *prompt/completion* example, so TRL's SFTTrainer puts
the loss on the completion only:

- ``chat`` format (the tokenizer has a chat template): ``prompt`` is a list of messages
  (system, history turns, the user instruction) and ``completion`` the assistant
  message; TRL renders both through the template;
- ``plain`` format: ``prompt`` is the instruction text plus a newline, ``completion``
  the output (TRL appends EOS).

Prompts are cut to ``max_input_tokens`` and outputs to ``max_output_tokens`` (tokens of
the message text; the chat template's few tokens come on top), and the cuts are counted.
No Dagster imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.store import fsio


class DatasetError(ValueError):
    """A corpus file or record that cannot be used; the message names file and line."""


@dataclass
class PreparedData:
    examples: list[dict[str, Any]]
    prompt_format: str
    stats: dict[str, int] = field(default_factory=dict)


def read_dataset_info(dataset_dir: str) -> dict[str, Any]:
    path = fsio.join(dataset_dir, "dataset_info.json")
    try:
        return json.loads(fsio.read_bytes(path))
    except FileNotFoundError:
        raise DatasetError(
            f"{path}: no dataset_info.json (is the corpus exported to {dataset_dir}?)"
        ) from None
    except ValueError as exc:
        raise DatasetError(f"{path}: not JSON: {exc}") from None


def dataset_file(dataset_dir: str, name: str, info: dict[str, Any] | None = None) -> str:
    """The data file of dataset ``name`` as ``dataset_info.json`` names it."""
    info = info if info is not None else read_dataset_info(dataset_dir)
    if name not in info:
        raise DatasetError(
            f"{fsio.join(dataset_dir, 'dataset_info.json')}: no dataset {name!r} (has {sorted(info)})"
        )
    entry = info[name]
    formatting = entry.get("formatting", "alpaca")
    if formatting != "alpaca":
        raise DatasetError(f"dataset {name!r}: formatting {formatting!r}, expected 'alpaca'")
    return fsio.join(dataset_dir, entry["file_name"])


def read_alpaca(path: str, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with fsio.open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DatasetError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(row, dict) or "instruction" not in row or "output" not in row:
                raise DatasetError(f"{path}:{number}: needs 'instruction' and 'output'")
            history = row.get("history") or []
            if not isinstance(history, list) or any(
                not isinstance(turn, list | tuple) or len(turn) != 2 for turn in history
            ):
                raise DatasetError(
                    f"{path}:{number}: 'history' must be a list of [user, assistant]"
                )
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    return rows


def file_checksum(path: str) -> str:
    """sha256 of a (local or remote) file's bytes."""
    digest = hashlib.sha256()
    fs, p = fsio.filesystem(path)
    with fs.open(p, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def data_checksum(paths: Iterable[str]) -> str:
    """One sha256 over the files' own checksums, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(file_checksum(path).encode())
    return "sha256:" + digest.hexdigest()


def resolve_prompt_format(requested: str, tokenizer: Any) -> str:
    if requested != "auto":
        if requested == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt_format 'chat' needs a tokenizer with a chat template")
        return requested
    return "chat" if getattr(tokenizer, "chat_template", None) else "plain"


def _cut(tokenizer: Any, texts: list[str], limit: int) -> tuple[list[str], int]:
    """Texts cut to ``limit`` tokens each (batched tokenisation); how many were cut."""
    if not texts:
        return texts, 0
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    out, cut = [], 0
    for text, ids in zip(texts, encoded, strict=True):
        if len(ids) > limit:
            out.append(tokenizer.decode(ids[:limit]))
            cut += 1
        else:
            out.append(text)
    return out, cut


def prepare_examples(
    rows: list[dict[str, Any]],
    tokenizer: Any,
    *,
    max_input_tokens: int,
    max_output_tokens: int,
    prompt_format: str = "auto",
) -> PreparedData:
    """Alpaca rows -> TRL prompt/completion examples (loss on the completion only)."""
    fmt = resolve_prompt_format(prompt_format, tokenizer)
    prompts = [
        row["instruction"] + (("\n" + row["input"]) if row.get("input") else "") for row in rows
    ]
    outputs = [str(row["output"]) for row in rows]
    prompts, prompts_cut = _cut(tokenizer, prompts, max_input_tokens)
    outputs, outputs_cut = _cut(tokenizer, outputs, max_output_tokens)
    examples = []
    for row, prompt, output in zip(rows, prompts, outputs, strict=True):
        if fmt == "chat":
            messages = []
            if row.get("system"):
                messages.append({"role": "system", "content": row["system"]})
            for user, assistant in row.get("history") or []:
                messages.append({"role": "user", "content": user})
                messages.append({"role": "assistant", "content": assistant})
            messages.append({"role": "user", "content": prompt})
            examples.append(
                {"prompt": messages, "completion": [{"role": "assistant", "content": output}]}
            )
        else:
            prefix = (row["system"] + "\n") if row.get("system") else ""
            for user, assistant in row.get("history") or []:
                prefix += f"{user}\n{assistant}\n"
            examples.append({"prompt": prefix + prompt + "\n", "completion": output})
    return PreparedData(
        examples,
        fmt,
        {"examples": len(examples), "prompts_cut": prompts_cut, "outputs_cut": outputs_cut},
    )
