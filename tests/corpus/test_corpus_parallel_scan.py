"""The corpus scan in worker processes (``HumCorpusConfig.scan_workers``): the same keys,
corpus, removed rows and report as one process; a failing table is one clear error."""

from __future__ import annotations

import glob
import json
import os

import polars as pl
import pytest
from test_corpus_pipeline import pool, row, tiny_tokenizer

from hum_dagster.corpus import build
from hum_dagster.corpus.build import HumCorpusConfig, ScanError, build_hum_corpus, scan_rows
from hum_dagster.corpus.decontam import BenchmarkIndex, DecontamConfig
from hum_dagster.corpus.keystore import KeyStore
from hum_dagster.corpus.mix import MixConfig
from hum_dagster.corpus.tokens import load_tokenizer
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, INSTRUCTION_COLUMNS, instruction_frame

BENCH = "the committee approved the new budget for the northern railway line after a long debate"


@pytest.fixture(scope="module")
def tokenizer():
    try:
        return load_tokenizer("smollm2-135m-instruct")  # its piece cache goes to the workers
    except Exception:
        return tiny_tokenizer()


@pytest.fixture(scope="module")
def index():
    return BenchmarkIndex.build([("crossner_politics", "en", BENCH)], DecontamConfig())


def tables(tmp_path) -> list[str]:
    """Four Parquet tables: a basic one without the compound columns (test-mode rows in
    between), two compound ones, and one small table holding a near duplicate and an
    exact duplicate of rows of the first, a contaminated row and one too long."""
    rows = pool(40)
    basic = rows.filter(pl.col("strategy") == "basic").select(INSTRUCTION_COLUMNS)
    basic = basic.with_columns(
        pl.when(pl.int_range(pl.len()) % 9 == 4).then(pl.lit("test")).otherwise("mode").alias("mode")
    )
    compound = rows.filter(pl.col("strategy") != "basic")
    first = basic.filter(pl.col("mode") == "train").row(0, named=True)
    near = dict(first, instruction_id="zz-near", record_id="other-record", text_id="other-text",
                instruction=first["instruction"].replace("w", "v", 1))
    exact = dict(first, instruction_id="zz-exact", record_id="third-record")
    dirty = row("NER", 900, instruction=json.dumps(
        {"instruction": "x", "input": "Reports say " + BENCH.upper() + " ."}))
    long = row("NER", 901, output=" ".join(["w2"] * 700))
    extra = instruction_frame([near, exact, dirty, long], COMPOUND_COLUMNS)
    paths = []
    for i, frame in enumerate((basic, compound.head(150), compound.slice(150), extra)):
        paths.append(str(tmp_path / f"table{i}.parquet"))
        frame.write_parquet(paths[-1], row_group_size=50)
    return paths


def config(workers: int, **kw) -> HumCorpusConfig:
    return HumCorpusConfig(scan_workers=workers, batch_rows=37, validation_fraction=0.1,
                           max_output_tokens=300, **kw)


WORKER_FIELDS = ("scan_workers", "memory_mb", "keys_bytes")


def comparable(report):
    """The report without timings, measurements and the worker fields."""
    if isinstance(report, dict):
        return {k: comparable(v) for k, v in report.items()
                if not str(k).endswith("_s") and k not in WORKER_FIELDS}
    if isinstance(report, list):
        return [comparable(v) for v in report]
    return report


def test_two_workers_build_the_corpus_of_one(tmp_path, tokenizer, index):
    paths = tables(tmp_path)
    built = {}
    for workers in (1, 2):
        scans = [pl.scan_parquet(p) for p in paths]
        built[workers] = build_hum_corpus(scans, config(workers), tokenizer=tokenizer,
                                          benchmark_index=index)
    one, two = built[1], built[2]
    assert one.report["scan_workers"] == 1 and two.report["scan_workers"] == 2
    # each worker's peak RSS (a worker that started late may have found no table left)
    assert 1 <= len(two.report["memory_mb"]["scan_workers"]) <= 2
    assert min(two.report["memory_mb"]["scan_workers"]) > 50
    assert two.rows.equals(one.rows)
    assert two.removed.equals(one.removed)
    assert comparable(two.report) == comparable(one.report)
    # what there is to find was found, across tables
    reasons = dict(one.removed.select("instruction_id", "reason").iter_rows())
    assert reasons["zz-near"] == "near_duplicate"
    assert reasons["zz-exact"] == "exact_duplicate"
    assert reasons["basi-NER-900"] == "contaminated"
    assert reasons["basi-NER-901"] == "too_long"
    assert one.report["decontam_distinct_inputs"] > 0
    assert set(two.report["timings_s"]) == {"scan_s", "minhash_s", "tokens_s", "decontam_s"}


def test_worker_keys_are_the_keys_of_one_process(tmp_path, tokenizer, index):
    paths = tables(tmp_path)
    keys = {}
    for workers in (1, 2):
        with KeyStore(workdir=str(tmp_path)) as store:
            info = scan_rows([pl.scan_parquet(p) for p in paths], config(workers), store,
                             tokenizer, index)
            files = sorted(os.path.basename(p) for p in glob.glob(f"{store.path}/keys-*.parquet"))
            assert store.batches == len(files) > len(paths)
            keys[workers] = pl.read_parquet(f"{store.path}/keys-*.parquet").sort("_row")
        if workers == 2:  # one writer per table, none the store's own numbering
            assert {f.split("-")[1] for f in files} == {"00000", "00001", "00002", "00003"}
            assert not glob.glob(f"{tmp_path}/*/*.part")
            assert info["scan_wall_s"] > 0
    assert keys[1]["_row"].to_list() == list(range(keys[1].height))
    assert keys[2].equals(keys[1])


def corrupt_column(path: str, column: str) -> None:
    """Overwrite the middle of ``column``'s data in ``path`` (the other columns stay
    readable, so the count of train-mode rows still works)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    with open(path, "rb") as f:
        data = bytearray(f.read())
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            chunk = meta.row_group(g).column(c)
            if chunk.path_in_schema == column:
                start = chunk.dictionary_page_offset or chunk.data_page_offset
                size = chunk.total_compressed_size
                begin, end = start + size // 4, start + 3 * size // 4
                data[begin:end] = b"\xab" * (end - begin)  # the same length
    with open(path, "wb") as f:
        f.write(bytes(data))
    assert os.path.getsize(path) == len(data)


def test_a_failing_table_in_a_worker_is_one_error_naming_it(tmp_path):
    paths = tables(tmp_path)
    corrupt_column(paths[2], "instruction")
    broken = pl.scan_parquet(paths[2])
    assert broken.filter(pl.col("mode") == "train").select(pl.len()).collect().item() > 0
    with pytest.raises(pl.exceptions.ComputeError):  # so the table fails in its worker
        broken.select("instruction").collect()
    with KeyStore(workdir=str(tmp_path)) as store:
        with pytest.raises(ScanError) as info:
            scan_rows([pl.scan_parquet(p) for p in paths], config(2), store)
        message = str(info.value)
        assert message.startswith("the corpus scan failed on table 2 of 4 (Parquet SCAN [")
        assert "table2.parquet]): ComputeError: parquet: File out of specification" in message
        assert "\n" not in message and "BrokenProcessPool" not in message
        assert info.value.__cause__ is None and info.value.__suppress_context__
        # no key file of the failed scan is left to be taken for a whole one
        assert store.batches == 0
        assert os.listdir(store.path) == []


def test_a_table_gone_after_planning_is_one_error_naming_it(tmp_path):
    paths = tables(tmp_path)
    scans = build.source_parts([pl.scan_parquet(p) for p in paths])  # schemas read
    os.remove(paths[1])
    with KeyStore(workdir=str(tmp_path)) as store, pytest.raises(ScanError) as info:
        scan_rows(scans, config(2), store)
    assert str(info.value).startswith("the corpus scan failed on table 1 of 4")
    assert "table1.parquet" in str(info.value) and "\n" not in str(info.value)


def test_one_table_is_scanned_in_this_process(tmp_path, monkeypatch):
    def no_workers(*args, **kwargs):
        raise AssertionError("workers started for one table")

    monkeypatch.setattr(build, "_scan_in_workers", no_workers)
    frame = pool(20)
    mix = MixConfig(total=None)
    corpus = build_hum_corpus([frame], config(4, mix=mix))
    assert corpus.report["scan_workers"] == 1
    assert list(corpus.report["memory_mb"]) == ["after_scan", "after_dedup", "after_mix",
                                                "after_split"]
    assert corpus.rows.equals(build_hum_corpus([frame], config(1, mix=mix)).rows)
