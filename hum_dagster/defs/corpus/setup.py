"""What the corpus assets share: the corpus settings as a ``HumCorpusConfig``, the
tokenizer and the benchmark index (each loaded once per run process)."""

from functools import cache

import dagster as dg

from hum_dagster.corpus.build import HumCorpusConfig
from hum_dagster.corpus.decontam import BenchmarkIndex, DecontamConfig, cached_index
from hum_dagster.corpus.tokens import Tokenizer, load_tokenizer
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.paths import local_cache_dir
from hum_dagster.records import SourceError


@cache  # once per run process: the corpus and its no_overlap check share it
def benchmark_index() -> tuple[BenchmarkIndex | None, str]:
    try:
        index = cached_index(str(local_cache_dir("decontam")), DecontamConfig())
    except (SourceError, FileNotFoundError) as exc:
        return None, f"evaluation sets unavailable, corpus not decontaminated: {exc}"
    return index, "ok"


@cache
def _tokenizer(spec: str) -> Tokenizer:
    return load_tokenizer(spec)


def corpus_tokenizer(settings: HumSettings) -> Tokenizer:
    """``settings.tokenizer``, loaded once per process; a one-line failure otherwise."""
    try:
        return _tokenizer(settings.tokenizer)
    except (FileNotFoundError, ImportError) as exc:
        raise dg.Failure(f"tokenizer {settings.tokenizer!r} cannot be loaded: {exc}") from exc


def corpus_config(settings: HumSettings, variant: str = "full") -> HumCorpusConfig:
    """The corpus settings of ``settings`` for ``variant`` (raises ``dg.Failure`` on a
    mix setting it cannot use)."""
    try:
        mix_config = settings.mix_config()
    except ValueError as exc:  # an unknown mode, a negative total: one line, no retries
        raise dg.Failure(description=f"settings: {exc}", allow_retries=False) from exc
    return HumCorpusConfig(
        seed=settings.seed, validation_fraction=settings.validation_fraction, variant=variant,
        max_input_tokens=settings.max_input_tokens, max_output_tokens=settings.max_output_tokens,
        mix=mix_config, memory_mb=settings.corpus_memory_mb,
        threads=max(1, settings.corpus_threads),
        workdir=settings.corpus_workdir or None,
        scan_workers=max(1, settings.corpus_scan_workers),
    )
