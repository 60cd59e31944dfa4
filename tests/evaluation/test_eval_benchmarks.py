"""Benchmark registration and evaluation instructions on the real files in ../shared/data."""

from __future__ import annotations

import json

import pytest

from hum_dagster.evaluation.benchmarks import (
    BUILTIN_BUILDER,
    build_eval_instructions,
    describe_eval_instructions,
    load_benchmarks,
    sample_records,
)
from hum_dagster.readers.catalog import CatalogError
from hum_dagster.records import Record

EXPECTED = {
    "crossner_politics": ("CrossNER", ("NER",)),
    "crossner_science": ("CrossNER", ("NER",)),
    "fewrel": ("FewRel", ("RE",)),
    "ee_law_standin": ("CCF Law", ("EET", "EEA")),
    "c3": ("C3", ("MRC",)),
    "imdb": ("IMDB", ("TC",)),
}


@pytest.fixture(scope="module")
def benchmarks(shared_data, monkeypatch_module):
    monkeypatch_module.setenv("HUM_SHARED_DATA", str(shared_data))
    return load_benchmarks()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_registered(benchmarks):
    assert {n: (b.family, b.tasks) for n, b in benchmarks.items()} == EXPECTED
    assert benchmarks["ee_law_standin"].metrics == ("trigger_f1", "argument_f1")
    assert "No public CCF Law" in benchmarks["ee_law_standin"].notes
    assert all(b.entry.split in ("dev", "test") for b in benchmarks.values())


def test_sampling_is_deterministic_and_nested():
    records = [Record("s", "TC", "en", f"text {i}", {"label": "a"}, "f:1") for i in range(50)]
    five = sample_records(records, 5, seed=7)
    reversed_five = sample_records(list(reversed(records)), 5, seed=7)
    assert [r.record_id for r in reversed_five] == [r.record_id for r in reversed(five)]
    six = sample_records(records, 6, seed=7)
    assert {r.record_id for r in five} < {r.record_id for r in six}
    assert {r.record_id for r in sample_records(records, 5, seed=8)} != {r.record_id for r in five}
    assert sample_records(records, None, 1) == records and sample_records(records, 0, 1) == records


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_basic_rows(benchmarks, name):
    bench = benchmarks[name]
    rows = build_eval_instructions(bench, "B", sample_size=3, seed=5)
    again = build_eval_instructions(bench, "B", sample_size=3, seed=5)
    assert rows == again
    summary = describe_eval_instructions(rows)
    assert summary["records"] == 3 and summary["builders"] == ["basic"]
    assert set(summary["tasks"]) <= set(bench.tasks)
    by_record: dict[str, list[dict]] = {}
    for row in rows:
        assert row["mode"] == "test" and row["label"] and row["benchmark"] == name
        assert row["eval_style"] == "B" and row["eval_seed"] == 5 and row["eval_sample_size"] == 3
        instruction = json.loads(row["instruction"])
        assert set(instruction) == {"instruction", "schema", "input"}
        by_record.setdefault((row["task"], row["record_id"]), []).append(row)
    for chunks in by_record.values():  # every chunk of a record carries it, and one gold
        assert len({c["label"] for c in chunks}) == 1
        assert sorted(c["chunk_index"] for c in chunks) == list(range(chunks[0]["n_chunks"]))


def test_all_labels_in_test_mode(benchmarks):
    bench = benchmarks["crossner_politics"]
    schema = bench.read().schema
    rows = build_eval_instructions(bench, "B", sample_size=2, seed=1)
    first = rows[0]["record_id"]
    asked = [label for r in rows if r["record_id"] == first for label in json.loads(r["schema"])]
    assert sorted(asked) == sorted(schema.types)


def test_style_c_builtin_and_custom(benchmarks):
    bench = benchmarks["fewrel"]
    rows = build_eval_instructions(bench, "C", sample_size=2, seed=1)
    assert {r["eval_builder"] for r in rows} == {BUILTIN_BUILDER}
    item = json.loads(rows[0]["schema"])[0]
    assert set(item) == {"label", "description"} and item["label"] in item["description"]
    assert all(r["instruction_id"] != r["base_instruction_id"] for r in rows)

    def my_builder(rows):
        return [dict(r, strategy="examples") for r in rows]

    my_builder.builder_name = "guidelines:examples"
    rows = build_eval_instructions(bench, "C", sample_size=2, seed=1, compound_builder=my_builder)
    assert {r["eval_builder"] for r in rows} == {"guidelines:examples"}
    assert {r["strategy"] for r in rows} == {"examples"}

    with pytest.raises(ValueError, match="style"):
        build_eval_instructions(bench, "D", sample_size=1)


def test_bad_benchmark_files(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("HUM_SHARED_DATA", str(shared_data))
    path = tmp_path / "b.yaml"
    path.write_text(
        "sources:\n  - {name: imdb, task: TC, language: en, format: csv, split: train,\n"
        "     location: x.csv}\n"
    )
    with pytest.raises(CatalogError, match="split 'train'"):
        load_benchmarks(path)
    path.write_text(
        "sources:\n  - {name: imdb, task: TC, language: en, format: csv, split: test,\n"
        "     location: x.csv}\nbenchmarks:\n  other: {family: X}\n"
    )
    with pytest.raises(CatalogError, match="other"):
        load_benchmarks(path)
    path.write_text(
        "sources:\n  - {name: imdb, task: TC, language: en, format: csv, split: test,\n"
        "     location: x.csv}\nbenchmarks:\n  imdb: {tasks: [NER]}\n"
    )
    with pytest.raises(CatalogError, match="cannot be made"):
        load_benchmarks(path)


def test_every_record_is_scored_repeats_included(benchmarks):
    """A benchmark file's repeated records (CrossNER science repeats 7 sentences) are each
    scored as a record: the reader keeps a test split's repeats as records of their own."""
    from hum_dagster.evaluation.metrics import score_f1

    bench = benchmarks["crossner_science"]
    kept = bench.read()
    assert len(kept.records) == 543 and len(kept.duplicates) == 7
    assert len({r.record_id for r in kept.records}) == 543  # each repeat has its own id
    rows = build_eval_instructions(bench, "B", None, read=kept)
    records = describe_eval_instructions(rows)["records"]
    assert records == 543
    assert len({r["instruction_id"] for r in rows}) == len(rows)  # no chunk merged away
    scores = score_f1(rows, {})["ner_f1"]
    assert scores["records"] == 543 and scores["missing"] == len(rows)
