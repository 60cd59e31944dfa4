"""Storage, corpus, export and warehouse: local and on a real S3 API (moto's server)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from hum_dagster import fsio
from hum_dagster.corpus import INSTRUCTION_COLUMNS, CorpusConfig, build_corpus
from hum_dagster.export import export_alpaca
from hum_dagster.storage import Table, read_table, write_table
from hum_dagster.warehouse import connect, refresh_views


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
    schema = {c: (pl.Int64 if c in ("chunk_index", "n_chunks") else pl.String) for c in INSTRUCTION_COLUMNS}
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


def test_corpus_drops_test_mode_and_duplicates_and_splits_deterministically():
    a = instruction_rows(200, "a")
    dup = a.head(10).with_columns(pl.col("instruction_id").str.replace("a-", "d-"))
    test_rows = instruction_rows(5, "t", mode="test")
    config = CorpusConfig(seed=7, validation_fraction=0.1)
    result = build_corpus([a, dup, test_rows], config)
    assert result.input_rows == 215
    assert result.test_mode_rows == 5
    assert result.duplicates_removed == 10
    assert result.corpus.height == 200
    validation = result.corpus.filter(pl.col("split") == "validation")["instruction_id"].to_list()
    assert 5 <= len(validation) <= 40
    again = build_corpus([test_rows, dup, a], config)  # input order does not matter
    assert again.corpus.sort("instruction_id").equals(result.corpus.sort("instruction_id"))
    other_seed = build_corpus([a], CorpusConfig(seed=8, validation_fraction=0.1))
    assert set(other_seed.corpus.filter(pl.col("split") == "validation")["instruction_id"]) != set(validation)


def test_tiny_corpus_still_gets_a_validation_row():
    result = build_corpus([instruction_rows(3)], CorpusConfig(validation_fraction=0.0001))
    assert (result.corpus["split"] == "validation").sum() == 1


def test_export_alpaca_files_and_dataset_info(tmp_path):
    corpus = build_corpus([instruction_rows(50)], CorpusConfig(validation_fraction=0.2)).corpus
    ig = corpus.head(1).with_columns(
        pl.lit("ig-1").alias("instruction_id"), pl.lit("Hi").alias("instruction"),
        pl.lit("Hello").alias("output"), pl.lit('[["a", "b"]]').alias("history"),
        pl.lit("Be brief.").alias("system"), pl.lit("train").alias("split"),
    )
    result = export_alpaca(pl.concat([corpus, ig]), str(tmp_path))
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["hum_train"]["file_name"] == "hum_train.jsonl"
    assert info["hum_train"]["columns"]["prompt"] == "instruction"
    lines = [json.loads(x) for x in (tmp_path / "hum_train.jsonl").read_text().splitlines()]
    assert len(lines) == result.rows["train"]
    assert lines[-1] == {"instruction": "Hi", "input": "", "output": "Hello", "system": "Be brief.",
                         "history": [["a", "b"]]}
    assert result.rows["train"] + result.rows["validation"] == 51


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
    corpus = build_corpus([table.df], CorpusConfig()).corpus
    export_alpaca(corpus, f"{root}/export")
    info = json.loads(fsio.read_bytes(f"{root}/export/dataset_info.json"))
    assert "hum_validation" in info
    with fsio.open_text(f"{root}/export/hum_train.jsonl") as handle:
        assert sum(1 for _ in handle) == (corpus["split"] == "train").sum()
