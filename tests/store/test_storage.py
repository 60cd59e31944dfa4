"""Storage, corpus, export and warehouse: local and on a real S3 API (moto's server)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from hum_dagster.corpus.build import HumCorpusConfig, build_hum_corpus
from hum_dagster.corpus.export import export_corpus
from hum_dagster.corpus.mix import MixConfig
from hum_dagster.store import fsio
from hum_dagster.store.tables import Table, read_table, write_table
from hum_dagster.store.warehouse import connect, refresh_views
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS, instruction_schema


def instruction_rows(n: int, source: str = "s", mode: str = "train") -> pl.DataFrame:
    rows = []
    for i in range(n):
        row = {c: None for c in INSTRUCTION_COLUMNS}
        row.update(
            instruction_id=f"{source}-{i:04d}", source=source, record_id=f"r{i}", text_id=f"t{i}",
            task="NER", language="en", mode=mode, strategy="basic", template="NERen@x",
            chunk_index=0, n_chunks=1, schema='["person"]',
            instruction=json.dumps({"instruction": "x", "schema": ["person"], "input": f"text {i}"}),
            output=json.dumps({"person": []}),
        )
        rows.append(row)
    schema = instruction_schema()
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_table_roundtrip_keeps_footer_metadata(tmp_path):
    path = str(tmp_path / "a" / "t.parquet")
    write_table(path, Table(pl.DataFrame({"x": [1, 2]}), {"hum.label_schema": '{"types":["中文"]}'}))
    table = read_table(path)
    assert table.df["x"].to_list() == [1, 2]
    assert table.meta == {"hum.label_schema": '{"types":["中文"]}'}


def test_failed_write_leaves_previous_file_whole_and_no_temp(tmp_path):
    path = tmp_path / "out.jsonl"
    fsio.write_bytes_atomic(str(path), b"complete\n")
    with pytest.raises(RuntimeError), fsio.atomic_writer(str(path)) as handle:
        handle.write(b"half")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"complete\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


NER_ONLY = MixConfig(total=None, kind_shares={"basic": 1}, task_shares={"NER": 1})


def small_corpus(tables, seed=42, fraction=0.1):
    config = HumCorpusConfig(seed=seed, validation_fraction=fraction, mix=NER_ONLY, near_dup=False)
    return build_hum_corpus(tables, config)


def test_corpus_drops_test_mode_and_duplicates_and_splits_deterministically():
    a = instruction_rows(200, "a")
    dup = a.head(10).with_columns(pl.col("instruction_id").str.replace("a-", "d-"))
    test_rows = instruction_rows(5, "t", mode="test")
    result = small_corpus([a, dup, test_rows], seed=7)
    reasons = result.removed.group_by("reason").len()
    assert dict(reasons.iter_rows()) == {"exact_duplicate": 10}
    assert result.rows.height == 200
    assert not set(result.rows["instruction_id"]) & set(test_rows["instruction_id"])
    validation = set(result.rows.filter(pl.col("split") == "validation")["instruction_id"])
    assert 5 <= len(validation) <= 40
    again = small_corpus([test_rows, dup, a], seed=7)  # input order does not matter
    assert set(again.rows.filter(pl.col("split") == "validation")["instruction_id"]) == validation
    other_seed = small_corpus([a], seed=8)
    assert set(other_seed.rows.filter(pl.col("split") == "validation")["instruction_id"]) != validation


def test_tiny_corpus_still_gets_a_validation_row():
    result = small_corpus([instruction_rows(3)], fraction=0.0001)
    assert (result.rows["split"] == "validation").sum() == 1


def test_export_alpaca_files_and_dataset_info(tmp_path):
    rows = instruction_rows(50)
    ig = rows.head(1).with_columns(
        pl.lit("ig-1").alias("instruction_id"), pl.lit("IG").alias("task"),
        pl.lit("Hi").alias("instruction"), pl.lit("Hello").alias("output"),
        pl.lit('[["a", "b"]]').alias("history"), pl.lit("Be brief.").alias("system"),
    )
    mix = MixConfig(total=None, kind_shares={"basic": 1}, task_shares={"NER": 1, "IG": 1},
                    mode="redistribute")
    corpus = build_hum_corpus([rows, ig], HumCorpusConfig(validation_fraction=0.2, mix=mix))
    result = export_corpus([rows, ig], corpus.rows, str(tmp_path))
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["hum_train"]["file_name"] == "hum_train.jsonl"
    assert info["hum_train"]["columns"]["prompt"] == "instruction"
    lines = [json.loads(x) for split in ("train", "validation")
             for x in (tmp_path / f"hum_{split}.jsonl").read_text().splitlines()]
    assert len(lines) == result.rows["train"] + result.rows["validation"] == corpus.rows.height
    assert {"instruction": "Hi", "input": "", "output": "Hello", "system": "Be brief.",
            "history": [["a", "b"]]} in lines


def test_warehouse_views_query_the_parquet_outputs(tmp_path):
    root = str(tmp_path)
    write_table(f"{root}/basic_instructions/a.parquet", Table(instruction_rows(4, "a")))
    write_table(f"{root}/basic_instructions/b.parquet", Table(instruction_rows(6, "b")))
    views = refresh_views(root)
    assert views == ["basic_instructions"]
    con = connect(root)
    rows = con.execute("select source, count(*) from basic_instructions group by 1 order by 1").fetchall()
    con.close()
    assert rows == [("a", 4), ("b", 6)]


def test_tables_and_export_on_s3(s3_bucket):
    root = f"{s3_bucket}/run1"
    write_table(f"{root}/basic_instructions/a.parquet", Table(instruction_rows(5), {"k": "v"}))
    table = read_table(f"{root}/basic_instructions/a.parquet")
    assert table.df.height == 5 and table.meta == {"k": "v"}
    corpus = small_corpus([table.df])
    export_corpus([table.df], corpus.rows, f"{root}/export")
    info = json.loads(fsio.read_bytes(f"{root}/export/dataset_info.json"))
    assert "hum_validation" in info
    with fsio.open_text(f"{root}/export/hum_train.jsonl") as handle:
        assert sum(1 for _ in handle) == (corpus.rows["split"] == "train").sum()


def _hold(lock: str, log: str, name: str) -> None:
    import time

    with fsio.exclusive(lock):
        with open(log, "a") as f:
            f.write(f"{name} in\n")
        time.sleep(0.3)
        with open(log, "a") as f:
            f.write(f"{name} out\n")


def test_exclusive_lets_one_process_in_at_a_time(tmp_path):
    import multiprocessing

    lock, log = str(tmp_path / "sub" / "x.lock"), str(tmp_path / "log")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hold, args=(lock, log, n)) for n in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    with open(log) as f:
        lines = f.read().split()
    # in, out pairs never interleave
    pairs = [lines[i:i + 4] for i in range(0, len(lines), 4)]
    assert len(lines) == 12
    assert all(p[0] == p[2] and p[1] == "in" and p[3] == "out" for p in pairs), lines
