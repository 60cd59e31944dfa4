"""Where ``hum`` keeps its Dagster instance, and the settings it starts Dagster with.

- ``HUM_HOME`` (default ``.hum`` in the project): ``dagster_home/`` (the instance,
  from ``resources/dagster.yaml``), ``logs/``, ``workspace.yaml`` and ``settings.env``;
- the settings (the code location's ``dg.EnvVar`` values) come from the project's
  ``.env``, then ``settings.env`` (what the last ``hum run`` used, so that ``hum dev``
  and ``hum sql`` look at the same catalog and storage), then the environment, then
  the command's flags. They are handed to the processes ``hum`` starts; the code
  location itself reads none of them at import.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from hum_dagster.defs.resources.settings import env_defaults, read_env_file
from hum_dagster.paths import PROJECT_DIR

INSTANCE_CONFIG = PROJECT_DIR / "resources" / "dagster.yaml"
SAVED = "settings.env"
REMEMBERED = ("HUM_CATALOG", "HUM_STORAGE_ROOT")


def hum_home() -> Path:
    return Path(os.environ.get("HUM_HOME") or PROJECT_DIR / ".hum").resolve()


def dagster_home(home: Path | None = None) -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or (home or hum_home()) / "dagster_home")


def prepare_instance(home: Path | None = None, cores: int | None = None) -> Path:
    """The instance folder, created from ``resources/dagster.yaml`` (one concurrent run
    per core) when it has no ``dagster.yaml`` yet."""
    folder = dagster_home(home)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "dagster.yaml"
    if not config.exists():
        data = yaml.safe_load(INSTANCE_CONFIG.read_text(encoding="utf-8"))
        data["concurrency"]["runs"]["max_concurrent_runs"] = cores or os.cpu_count() or 2
        text = INSTANCE_CONFIG.read_text(encoding="utf-8").split("\n", 3)
        header = "\n".join(line for line in text[:3] if line.startswith("#"))
        config.write_text(header + "\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return folder


def open_instance(home: Path | None = None):
    """The instance, with the pool limits of ``defs/resources/pools.py`` where it has none."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from hum_dagster.defs.resources.pools import ensure_pool_limits

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(prepare_instance(home))))
    ensure_pool_limits(instance)
    return instance


def absolute(value: str) -> str:
    return value if "://" in value else str(Path(value).resolve())


def settings_env(home: Path, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment for the processes ``hum`` starts (see the module docstring)."""
    values = env_defaults()
    values["HUM_STORAGE_ROOT"] = str(home / "storage")  # the default storage lives in HUM_HOME
    values.update(read_env_file(home / SAVED))
    values.update({k: v for k, v in os.environ.items() if k.startswith("HUM_") or k in values})
    values.update({k: absolute(v) for k, v in (overrides or {}).items() if v})
    values["HUM_HOME"] = str(home)
    values["DAGSTER_HOME"] = str(dagster_home(home))
    return {**os.environ, **values}


def remember(home: Path, env: dict[str, str]) -> None:
    """Keep the catalog and storage root of this run for ``hum dev``, ``sql``, ``audit``."""
    home.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}={env[name]}" for name in REMEMBERED if env.get(name)]
    (home / SAVED).write_text("\n".join(lines) + "\n", encoding="utf-8")


def copy_instance_config(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_CONFIG, target / "dagster.yaml")
