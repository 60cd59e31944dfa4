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
