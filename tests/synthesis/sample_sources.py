"""The shipped sample sources as the synthesis tests use them: read, with their schema
dictionary (seeds, mined values, FewRel's pid2name) and their basic rows, once per test
session. The cached values are shared: tests must not change them."""

from __future__ import annotations

from functools import cache

from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import load_catalog
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic


@cache
def sample_source(name: str):
    """(schema dictionary, read result) of the sample catalog's entry ``name``."""
    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == name)
    result = read_source(entry)
    pid = entry.option("pid2name")
    dictionary, _ = build_dictionary(
        entry.name, entry.task, entry.language, result.records, result.schema,
        select_seeds(load_seed_book(), entry.name),
        pid2name=load_pid2name(entry.resolve(pid)) if pid else None,
    )
    return dictionary, result


@cache
def sample_rows(name: str, mode: str = "train") -> list[dict]:
    """The basic instruction rows of a sample source in ``mode`` (train or test)."""
    _, result = sample_source(name)
    return list(synthesize_basic(result.records, result.schema, BasicConfig(mode=mode)))
