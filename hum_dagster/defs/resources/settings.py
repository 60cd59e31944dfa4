"""The ``settings`` resource: storage root, catalog, synthesis and corpus settings.

Every field can be set in the launchpad or in a run's config; the definitions feed the
deployment-wide ones from environment variables (``dg.EnvVar``, read when a run
starts, never at import): ``HUM_STORAGE_ROOT``, ``HUM_CATALOG``, ``HUM_LANDING``,
``HUM_BASE_MODELS``, ``HUM_MIX_MODE``, ``HUM_MIX_TOTAL``. ``ENV_DEFAULTS`` (the project's ``.env`` file) gives the embedded
defaults that ``hum`` and ``dagster dev`` start the code location with.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import dagster as dg

from hum_dagster.paths import DEFAULT_CATALOG, PROJECT_DIR, shared_data_dir
from hum_dagster.readers.catalog import CatalogEntry, CatalogError, load_catalog
from hum_dagster.store import fsio

ENV_FILE = PROJECT_DIR / ".env"
LANDING_CATALOG = "_landing_catalog.yaml"
DEFAULT_BASE_MODELS = "smollm2-135m-instruct"


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``NAME=value`` lines of a dotenv file (``#`` comments, no interpolation)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip('"').strip("'")
    return values


def env_defaults(project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """The embedded defaults from ``.env``, relative paths made absolute against the
    project folder (the code location's working directory)."""
    values = read_env_file(project_dir / ".env")
    for name in ("HUM_STORAGE_ROOT", "HUM_CATALOG"):
        value = values.get(name)
        if value and "://" not in value and not os.path.isabs(value):
            values[name] = str((project_dir / value).resolve())
    return values


def base_model_specs(raw: str = DEFAULT_BASE_MODELS) -> dict[str, str]:
    """``name=spec,name=spec`` (a spec alone is its own name) as ``{name: spec}``;
    specs are what ``hum_dagster.evaluation.models.resolve_model`` accepts."""
    specs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (raw or DEFAULT_BASE_MODELS).split(","))):
        name, _, spec = item.partition("=")
        specs[name.strip()] = (spec or name).strip()
    return specs


@cache
def _read_catalog(path: str, stamp: int) -> tuple[CatalogEntry, ...]:
    # Catalogs name the shared benchmark folder as ${HUM_SHARED_DATA}.
    os.environ.setdefault("HUM_SHARED_DATA", str(shared_data_dir()))
    return tuple(load_catalog(path))


def _stamp(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns  # re-read when the file changes
    except OSError:
        return 0


def read_catalogs(catalog: str, landing_catalog: str | None = None) -> dict[str, CatalogEntry]:
    """The catalog's entries plus those the landing sensor registered (a catalog entry
    wins over a landed one of the same name). Raises ``CatalogError``."""
    entries = {e.name: e for e in _read_catalog(catalog, _stamp(catalog))}
    if landing_catalog and "://" not in landing_catalog and os.path.exists(landing_catalog):
        for entry in _read_catalog(landing_catalog, _stamp(landing_catalog)):
            entries.setdefault(entry.name, entry)
    return entries


class HumSettings(dg.ConfigurableResource):
    """Storage, catalog and synthesis settings shared by the assets."""

    storage_root: str  # a folder or an s3:// prefix (HUM_STORAGE_ROOT)
    # the source catalog YAML (HUM_CATALOG); one entry = one source partition
    catalog: str = str(DEFAULT_CATALOG)
    landing: str = ""  # a folder or s3:// prefix where new sources land (HUM_LANDING)
    base_models: str = DEFAULT_BASE_MODELS  # name=spec,... (HUM_BASE_MODELS)
    seed: int = 42
    neg_rate: float = 1.0  # share of negative labels sampled into train-mode schemas
    random_sort: bool = False  # shuffle schema items (seeded) instead of sorting
    hard_negative_path: str | None = None  # JSON {label: [confusable labels]}
    split_num: dict[str, int] = {}  # per-task overrides of the schema chunk size
    max_quarantine_rate: float = 0.05  # asset check threshold per source
    validation_fraction: float = 0.02
    tokenizer: str = "smollm2-135m-instruct"  # a tokenizer.json, a folder, a .gguf, or this
    max_input_tokens: int = 1500
    max_output_tokens: int = 500
    # The corpus mix (corpus.mix.MixConfig; HUM_MIX_MODE, HUM_MIX_TOTAL): empty shares
    # mean the paper's. fill (default) uses every usable row, or with a total N
    # water-fills the tasks toward their shares (a short task's share goes to the tasks
    # with rows left); strict keeps the shares exact (the scarcest cell limits the total).
    # Total 0: no total (fill: every usable row; strict: the largest exact mix).
    mix_mode: str = "fill"
    mix_total: int = 0
    # HUM_MIX_COMPOUND: compound rows from every compound asset (all) or only from the
    # combined strategy (combined: the paper's compound instructions, one per record)
    mix_compound: str = "all"
    kind_shares: dict[str, float] = {}
    task_shares: dict[str, float] = {}
    # The corpus's out-of-core steps (corpus.keystore): DuckDB's memory limit in MB
    # (HUM_CORPUS_MEMORY_MB) and the folder for the per-row keys and DuckDB's spill files
    # (HUM_CORPUS_WORKDIR; "": the system's temp folder). A few GB of disk at the paper's
    # scale. HUM_CORPUS_THREADS: DuckDB's threads and the scan's (MinHash, token counts).
    corpus_memory_mb: int = 256
    corpus_workdir: str = ""
    corpus_threads: int = 2
    # HUM_CORPUS_SCAN_WORKERS: processes the corpus scan runs over the instruction tables
    # in (1: the run's own process); each is a Python process with polars, the tokenizer
    # and one batch of text (about 550 MB at its peak at 0.25x the paper's scale). On 2
    # cores inside a run they saved 5% of the scan (69.9 s -> 65.4 s), so 1 by default.
    corpus_scan_workers: int = 1

    def landing_catalog(self) -> str | None:
        """Where the landing sensor registers landed sources (a local landing folder)."""
        if not self.landing or "://" in self.landing:
            return None
        return fsio.join(self.landing, LANDING_CATALOG)

    def entries(self) -> dict[str, CatalogEntry]:
        """The catalog in force (file and landed sources); raises ``CatalogError``."""
        return read_catalogs(self.catalog, self.landing_catalog())

    def entry(self, name: str) -> CatalogEntry:
        """One source's entry; a ``dg.Failure`` naming the catalog when it is not there."""
        try:
            entries = self.entries()
        except CatalogError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        if name not in entries:
            raise dg.Failure(
                description=f"source '{name}' is not in the catalog {self.catalog} (it has "
                f"{', '.join(sorted(entries)) or 'no sources'}); remove the partition or add the entry",
                allow_retries=False,
            )
        return entries[name]

    def base_model_specs(self) -> dict[str, str]:
        return base_model_specs(self.base_models)

    def mix_config(self):
        from hum_dagster.corpus.mix import PAPER_KIND_SHARES, PAPER_TASK_SHARES

        return mix_config(
            self.mix_mode,
            self.mix_total,
            compound=self.mix_compound,
            kind_shares=dict(self.kind_shares or PAPER_KIND_SHARES),
            task_shares=dict(self.task_shares or PAPER_TASK_SHARES),
            seed=self.seed,
        )


def mix_config(mode: str, total: int | str | None, compound: str = "all", **fields):
    """``corpus.mix.MixConfig`` from the settings' ``mix_mode`` and ``mix_total`` (0 or
    empty: no total); ``ValueError`` with one line naming the setting when either is bad."""
    from hum_dagster.corpus.mix import MixConfig

    text = str(total if total is not None else "").strip()
    try:
        number = int(text) if text else 0
    except ValueError:
        raise ValueError(f"mix_total must be a whole number of rows, got {total!r}") from None
    if number < 0:
        raise ValueError(f"mix_total must be >= 0 (0: no total), got {number}")
    try:
        return MixConfig(total=number or None, mode=str(mode).strip().lower(),
                         compound=str(compound or "all").strip().lower(), **fields)
    except ValueError as exc:
        if "compound source" in str(exc):
            raise ValueError(f"mix_compound: {exc}") from None
        raise ValueError(f"mix_mode: {exc}" if "mode" in str(exc) else str(exc)) from None
