"""The out-of-core steps of the corpus (``corpus.keystore``) against in-memory statements of
the same rules: the first row of every duplicate group, the LSH candidate pairs, the mix's
choice per cell. Random inputs with many ties and collisions; DuckDB's memory limit and
spill folder."""

from __future__ import annotations

import os
import random

import numpy as np
import polars as pl
import pytest

from hum_dagster.corpus.build import CATEGORY_COLUMNS
from hum_dagster.corpus.keystore import KeyStore
from hum_dagster.corpus.mix import MixConfig, mix, mix_chosen, rank_keys

TASKS = ("NER", "RE", "SPO", "EE", "MRC", "IG")
STRATEGIES = ("basic", "basic", "description", "examples", "combined", "format_variants")


def lean(n: int, seed: int, bands: int = 3) -> pl.DataFrame:
    """``n`` lean rows with few distinct key values, so groups and buckets are large."""
    rng = np.random.default_rng(seed)
    ids = [f"{rng.integers(1 << 40):012x}" for _ in range(n)]
    frame = pl.DataFrame({
        "_row": pl.Series(range(n), dtype=pl.UInt32),
        "instruction_id": ids,
        "task": [TASKS[i] for i in rng.integers(len(TASKS), size=n)],
        "strategy": [STRATEGIES[i] for i in rng.integers(len(STRATEGIES), size=n)],
        "source": [f"s{i}" for i in rng.integers(3, size=n)],
        "_exact": pl.Series(rng.integers(n // 3, size=n), dtype=pl.UInt64),
        "_norm": pl.Series(rng.integers(n // 4, size=n), dtype=pl.UInt64),
        "_rec": pl.Series(rng.integers(n // 2, size=n), dtype=pl.UInt64),
        "_frame": pl.Series(rng.integers(4, size=n), dtype=pl.UInt64),
        **{f"_band{b}": pl.Series(rng.integers(n // 5, size=n), dtype=pl.UInt64)
           for b in range(bands)},
    })
    return frame.with_columns(rank_keys(frame["instruction_id"], 42))


def store_of(frame: pl.DataFrame, tmp_path, memory_mb: int = 512, parts: int = 3) -> KeyStore:
    store = KeyStore(memory_mb=memory_mb, threads=2, workdir=str(tmp_path))
    step = -(-frame.height // parts)
    for i in range(0, frame.height, step):
        store.append(frame.slice(i, step))
    return store


def first_rows_in_memory(frame: pl.DataFrame, key: str) -> set[int]:
    """The rows that are not the first (smallest instruction id, then row) of their group."""
    ordered = frame.sort("instruction_id", "_row")
    return set(ordered.filter(~ordered[key].is_first_distinct())["_row"].to_list())


def pairs_in_memory(frame: pl.DataFrame, bands: int) -> set[tuple[int, int]]:
    """Per band bucket of one frame: (first row, member) for members of another record."""
    pairs = set()
    for b in range(bands):
        buckets: dict[tuple, list[tuple[str, int, int]]] = {}
        for iid, row, rec, fr, key in frame.select(
            "instruction_id", "_row", "_rec", "_frame", f"_band{b}"
        ).iter_rows():
            buckets.setdefault((fr, key), []).append((iid, row, rec))
        for members in buckets.values():
            members.sort()
            _, keep, keep_rec = members[0]
            pairs.update((keep, row) for _, row, rec in members[1:] if rec != keep_rec)
    return pairs


def test_duplicates_and_pairs_match_the_in_memory_rules(tmp_path):
    frame = lean(6000, seed=3)
    with store_of(frame, tmp_path) as store:
        assert store.rows() == frame.height
        exact = store.drop_repeats("_exact", "exact_duplicate")
        expected_exact = first_rows_in_memory(frame, "_exact")
        assert exact == len(expected_exact) > 0
        rest = frame.filter(~pl.col("_row").is_in(list(expected_exact)))
        expected_norm = first_rows_in_memory(rest, "_norm")
        assert store.drop_repeats("_norm", "normalised_duplicate") == len(expected_norm) > 0
        rest = rest.filter(~pl.col("_row").is_in(list(expected_norm)))
        pairs = store.candidate_pairs(3)
        expected = pairs_in_memory(rest, 3)
        assert len(expected) > 100
        assert set(pairs.iter_rows()) == expected
        assert pairs.rows() == sorted(pairs.rows(), key=lambda p: (p[1], p[0]))
        removed = store.removed()
        assert set(removed.filter(pl.col("reason") == "exact_duplicate")["_row"]) == expected_exact
        assert removed["instruction_id"].to_list() == [
            frame["instruction_id"][r] for r in removed["_row"].to_list()
        ]


def test_a_wrong_first_row_would_be_seen(tmp_path):
    """The in-memory rule is not trivially met: the store's answer differs from one that
    keeps the largest id instead."""
    frame = lean(3000, seed=5)
    with store_of(frame, tmp_path) as store:
        store.drop_repeats("_exact", "exact_duplicate")
        got = set(store.removed()["_row"].to_list())
    wrong = frame.sort("instruction_id", descending=True)
    assert got != set(wrong.filter(~wrong["_exact"].is_first_distinct())["_row"].to_list())


@pytest.mark.parametrize(
    "config",
    [
        MixConfig(),
        MixConfig(total=900),
        MixConfig(mode="strict"),
        MixConfig(mode="strict", total=400),
        MixConfig(seed=7, task_shares={"NER": 1, "RE": 3, "MRC": 0.5}),
    ],
    ids=["fill", "fill-total", "strict", "strict-total", "other-shares"],
)
def test_the_out_of_core_mix_chooses_the_rows_mix_chooses(tmp_path, config):
    frame = lean(5000, seed=11)
    frame = frame.with_columns(rank_keys(frame["instruction_id"], config.seed))
    pool = frame.select("_row", "instruction_id", "task", "strategy", "source", "rank")
    expected = mix(pool, config)
    with store_of(frame, tmp_path) as store:
        store.pool_view(list(pool.columns))
        got = mix_chosen(store.supply(), lambda q: store.chosen(q, CATEGORY_COLUMNS), config)
    assert got.rows["_row"].to_list() == expected.rows["_row"].to_list()
    assert got.rows.height > 0
    assert got.report["per_task"] == expected.report["per_task"]
    assert got.report["counts"] == expected.report["counts"]


def test_duckdb_runs_under_the_memory_limit_and_spills_to_the_work_folder(tmp_path):
    with store_of(lean(100, seed=1), tmp_path, memory_mb=300) as store:
        limit = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        spill = store.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert limit.replace(" ", "") in ("286.1MiB", "300.0MB")
        assert spill.startswith(store.path)


def test_the_work_folder_is_removed(tmp_path):
    frame = lean(500, seed=1)
    with store_of(frame, tmp_path) as store:
        store.drop_repeats("_exact", "exact_duplicate")
        folder = store.path
        assert any(name.startswith("keys-") for name in os.listdir(folder))
    assert not os.path.exists(folder)


def test_an_empty_store_answers_empty(tmp_path):
    with KeyStore(workdir=str(tmp_path)) as store:
        assert store.rows() == 0
        assert store.drop_repeats("_exact", "exact_duplicate") == 0
        assert store.candidate_pairs(3).height == 0
        assert store.removed().height == 0


def test_rank_ties_never_decide_by_input_order(tmp_path):
    """Rows of equal rank are ordered by instruction id, whatever order they were written."""
    frame = lean(400, seed=2).with_columns(pl.lit(1, pl.Int64).alias("rank"))
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=random.Random(0).randrange(99))
    config = MixConfig(total=100)
    chosen = []
    for f in (frame, shuffled):
        with store_of(f, tmp_path) as store:
            store.pool_view(["_row", "instruction_id", "task", "strategy", "source", "rank"])
            got = mix_chosen(store.supply(), lambda q: store.chosen(q, ()), config)
            chosen.append(got.rows["instruction_id"].to_list())
    assert chosen[0] == chosen[1]
    assert chosen[0] == sorted(chosen[0])


def test_every_step_closes_its_connection_and_the_next_finds_its_tables(tmp_path):
    # DuckDB gives back the memory a query used only when its database closes
    frame = lean(500, seed=3)
    with store_of(frame, tmp_path) as store:
        dropped = store.drop_repeats("_exact", "exact_duplicate")
        assert store._con is None
        assert dropped > 0 and store.removed().height == dropped
        assert store._con is None
        store.pool_view(["_row", "task", "strategy", "rank"])
        assert sum(store.supply().values()) == frame.height - dropped


def test_a_step_out_of_duckdbs_memory_runs_again_with_twice_the_limit(tmp_path):
    # 8 MB is too little for the band buckets of 60k rows: the step runs again at 16 MB,
    # and says so; at a limit nothing fits, the error names the setting
    frame = lean(60_000, seed=4)
    with store_of(frame, tmp_path, memory_mb=8) as store:
        retried = store.candidate_pairs(3)
        assert store.retries and "candidate_pairs" in store.retries[0], store.retries
        assert store.memory_mb == 16
    with store_of(frame, tmp_path, memory_mb=512) as store:
        assert retried.equals(store.candidate_pairs(3)) and not store.retries
    with store_of(frame, tmp_path, memory_mb=1) as store, pytest.raises(
        MemoryError, match="HUM_CORPUS_MEMORY_MB"
    ):
        store.candidate_pairs(3)
