"""Reading the project's JSON configuration files (templates, prompts, maps) with
errors that name the file and the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``ValueError("<path>: ...")`` when it is missing, not
    UTF-8 JSON, or not an object. ``what`` names the file's role in the message."""
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what}: expected a JSON object, got {type(data).__name__}")
    return data
