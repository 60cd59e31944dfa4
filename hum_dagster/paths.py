"""Where the project's own files live, and where the shared benchmark data is."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
ASSETS_DIR = Path(os.environ.get("HUM_ASSETS_DIR", PROJECT_DIR / "assets"))
DEFAULT_CATALOG = ASSETS_DIR / "catalog.yaml"
TEMPLATES_DIR = ASSETS_DIR / "templates"


def shared_data_dir() -> Path:
    """``$HUM_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("HUM_SHARED_DATA")
    return Path(env) if env else PROJECT_DIR.parent / "shared" / "data"


def local_cache_dir(name: str) -> Path:
    """``<storage root>/models/<name>`` for files derived once and read by every run (a
    converted tokenizer, the benchmark index); under ``$HUM_HOME`` when the storage root
    is remote (``HUM_STORAGE_ROOT`` unset: ``.hum/storage``)."""
    root = os.environ.get("HUM_STORAGE_ROOT") or ".hum/storage"
    if "://" in root:
        root = os.environ.get("HUM_HOME", ".hum")
    return Path(root) / "models" / name
