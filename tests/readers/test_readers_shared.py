"""Readers on the real public benchmark files (skipped when ../shared/data is absent).

Expected counts are computed from the files themselves, independently of the readers.
"""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.readers.iepile import read_iepile_schema


def entry(fmt, task, language, location, **options):
    return CatalogEntry(
        name="real",
        task=task,
        language=language,
        format=fmt,
        location=str(location),
        options=options,
    )


def clean(result):
    """Real data reads without quarantine; repeated examples are kept (and counted)."""
    assert result.quarantine == [], result.quarantine[:3]
    assert len({r.record_id for r in result.records}) == len(result.records)
    return 0


@pytest.mark.parametrize("domain", ["politics", "science"])
def test_crossner(shared_data, domain):
    path = shared_data / "crossner" / domain / "train.txt"
    text = path.read_text(encoding="utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()]
    labels = {
        line.split("\t")[-1][2:]
        for block in blocks
        for line in block.splitlines()
        if line.split("\t")[-1] != "O"
    }
    result = read_source(entry("conll", "NER", "en", path, scheme="BIO"))
    assert len(result.records) + clean(result) == len(blocks)
    assert set(result.schema.types) == labels
    if domain == "politics":
        assert "politicalparty" in result.schema.types
    first_tokens = [line.split("\t")[0] for line in blocks[0].splitlines()]
    assert result.records[0].text == " ".join(first_tokens)
    for record in result.records:
        for ent in record.gold["entities"]:
            assert record.text[ent["start"] : ent["start"] + len(ent["text"])] == ent["text"]
    # CrossNER is IOB2: every B- tag starts exactly one entity.
    assert sum(len(r.gold["entities"]) for r in result.records) == sum(
        b.count("\tB-") for b in blocks
    )
    # Repeated sentences are kept and counted, not quarantined.
    assert len(result.duplicates) == len(blocks) - len(set(blocks))


@pytest.mark.parametrize("domain", ["politics", "science"])
@pytest.mark.parametrize("split", ["dev", "test"])
def test_crossner_eval_splits_keep_their_full_size(shared_data, domain, split):
    path = shared_data / "crossner" / domain / f"{split}.txt"
    blocks = [b for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    result = read_source(
        CatalogEntry(name="real", task="NER", language="en", format="conll",
                     location=str(path), split="test", options={"scheme": "BIO"})
    )  # fmt: skip
    assert result.quarantine == []
    assert len(result.records) == len(blocks)  # every sentence, repeats included


def test_fewrel(shared_data):
    path = shared_data / "fewrel" / "val_wiki.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    total = sum(len(v) for v in data.values())
    pid2name = shared_data / "fewrel" / "pid2name.json"
    result = read_source(entry("fewrel", "RE", "en", path, pid2name=str(pid2name)))
    assert len(result.records) + clean(result) == total == 16 * 700
    names = load_pid2name(str(pid2name))
    assert result.schema.roles == sorted(names[pid][0] for pid in data)
    per_relation = Counter(r.gold["relations"][0]["relation"] for r in result.records)
    assert len(per_relation) == 16
    sample = data["P26"][0]
    record = next(r for r in result.records if r.origin.endswith("#P26/0"))
    assert record.text == " ".join(sample["tokens"])
    assert record.gold["relations"][0] == {
        "head": " ".join(sample["tokens"][i] for i in sample["h"][2][0]),
        "relation": "spouse",
        "tail": " ".join(sample["tokens"][i] for i in sample["t"][2][0]),
    }


def test_c3(shared_data):
    path = shared_data / "c3" / "c3-m-dev.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    questions = sum(len(doc[1]) for doc in data)
    result = read_source(entry("c3", "MRC", "zh", path))
    assert len(result.records) + clean(result) == questions
    first = result.records[0]
    assert first.text == "\n".join(data[0][0])
    assert first.gold["answers"] == [data[0][1][0]["answer"]]
    assert first.gold["options"] == data[0][1][0]["choice"]


def test_imdb(shared_data):
    path = shared_data / "imdb" / "texts.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    result = read_source(entry("csv", "TC", "en", path))
    assert len(result.records) + clean(result) == len(rows) == 1000
    assert result.schema.types == ["negative", "positive"]
    assert [r.text for r in result.records[:3]] == [row["text"] for row in rows[:3]]
    train = read_source(entry("csv", "TC", "en", path, filter={"is_valid": False}))
    expected = sum(1 for row in rows if row["is_valid"] == "False")
    assert len(train.records) + clean(train) == expected
    assert 0 < expected < len(rows)


def test_carb(shared_data):
    path = shared_data / "carb" / "dev.tsv"
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    sentences = {line.split("\t")[0] for line in lines}
    result = read_source(entry("carb", "OpenIE", "en", path))
    assert result.quarantine == []
    assert len(result.records) == len(sentences)
    distinct_rows = {tuple(c.strip() for c in line.split("\t")) for line in lines}
    assert sum(len(r.gold["triples"]) for r in result.records) == len(distinct_rows)


IEPILE = [
    ("NER", "NER"),
    ("RE", "RE"),
    ("SPO", "SPO"),
    ("EE", "EE"),
    ("EEA", "EE"),
    ("EET", "EE"),
    ("KG", "KGE"),
]


@pytest.mark.parametrize("folder,task", IEPILE)
def test_iepile_samples(shared_data, folder, task):
    base = shared_data / "iepile" / folder
    lines = [
        line
        for line in (base / "sample.json").read_text(encoding="utf-8").split("\n")
        if line.strip()
    ]
    schema_path = base / "schema.json"
    result = read_source(entry("iepile", task, "zh", base / "sample.json", schema=str(schema_path)))
    assert result.quarantine == []
    assert len(result.records) == len(lines)
    # Record order and text are exactly the file's.
    assert [r.text for r in result.records] == [json.loads(line)["text"] for line in lines]
    assert result.schema == read_iepile_schema(str(schema_path))
    schema_lines = [
        json.loads(s) for s in schema_path.read_text(encoding="utf-8").split("\n") if s.strip()
    ]
    assert result.schema.types == schema_lines[0]
    if task == "KGE":
        assert {r.gold["entity_type"] for r in result.records} == {next(iter(schema_lines[2]))}
