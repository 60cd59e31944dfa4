"""The source catalog: validation errors name the file and the source; locations resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import CatalogError, load_catalog, resolve_location

GOOD = """\
sources:
  - name: tc_small
    task: TC
    language: en
    format: csv
    location: data/tc.csv
    split: dev
    options: {labels: [neg, pos]}
"""


def write(tmp_path: Path, text: str, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_catalog_resolves_relative_locations(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tc.csv").write_text("label,text\npos,nice\nneg,bad\n", encoding="utf-8")
    path = write(tmp_path, GOOD)
    [entry] = load_catalog(path)
    assert (entry.name, entry.task, entry.language, entry.format, entry.split) == (
        "tc_small",
        "TC",
        "en",
        "csv",
        "dev",
    )
    assert entry.options == {"labels": ["neg", "pos"]}
    assert entry.resolve() == str(tmp_path / "data" / "tc.csv")
    assert entry.resolve("other/x.json") == str(tmp_path / "other" / "x.json")
    result = read_source(entry)
    assert [r.split for r in result.records] == ["dev", "dev"]


def test_relative_location_is_against_the_catalog_not_the_cwd(tmp_path, monkeypatch):
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(sub, GOOD)
    monkeypatch.chdir(tmp_path)
    [entry] = load_catalog(Path("conf") / "catalog.yaml")
    assert entry.resolve() == str(sub / "data" / "tc.csv")
    assert Path(entry.catalog_path) == path


def test_absolute_and_s3_locations_are_kept(tmp_path):
    assert resolve_location("/abs/file.txt", str(tmp_path / "c.yaml")) == "/abs/file.txt"
    assert (
        resolve_location("s3://bucket/key.json", str(tmp_path / "c.yaml")) == "s3://bucket/key.json"
    )


def test_env_var_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("HUM_TEST_DATA", str(tmp_path / "shared"))
    monkeypatch.setenv("HUM_TEST_BUCKET", "my-bucket")
    path = write(
        tmp_path,
        GOOD.replace("data/tc.csv", "${HUM_TEST_DATA}/tc.csv")
        + """\
  - name: remote
    task: NER
    language: zh
    format: iepile
    location: s3://${HUM_TEST_BUCKET}/ner.json
""",
    )
    local, remote = load_catalog(path)
    assert local.resolve() == str(tmp_path / "shared" / "tc.csv")
    assert remote.resolve() == "s3://my-bucket/ner.json"
    assert remote.split == "train" and remote.options == {}


@pytest.mark.parametrize(
    "change,expected",
    [
        (("    task: TC\n", ""), "source 'tc_small' (sources[0]): missing task"),
        (("  - name: tc_small\n    task", "  - task"), "sources[0]: missing name"),
        (("format: csv", "format: parquet"), "source 'tc_small': unknown format 'parquet'"),
        (("task: TC", "task: SUMMARY"), "source 'tc_small': unknown task 'SUMMARY'"),
        (("language: en", "language: fr"), "source 'tc_small': unknown language 'fr'"),
        (("split: dev", "split: holdout"), "source 'tc_small': unknown split 'holdout'"),
        (("name: tc_small", "name: TC Small"), "source 'TC Small': name must match"),
        (
            ("    split: dev\n", "    split: dev\n    colour: red\n"),
            "source 'tc_small': unknown keys ['colour']",
        ),
        (
            ("options: {labels: [neg, pos]}", "options: [a, b]"),
            "source 'tc_small': options must be a mapping",
        ),
    ],
)
def test_entry_errors_name_file_and_source(tmp_path, change, expected):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message


def test_duplicate_name(tmp_path):
    body = GOOD.split("\n", 1)[1]
    path = write(tmp_path, GOOD + body)
    with pytest.raises(CatalogError, match="source 'tc_small': duplicate name") as info:
        load_catalog(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("sources:\n  - name: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping with a 'sources' list"),
        ("sources:\n  - just a string\n", "sources[0]: expected a mapping, got str"),
    ],
)
def test_file_level_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError, match=expected.replace("[", "\\[")) as info:
        load_catalog(path)
    assert str(path) in str(info.value)


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="catalog file not found") as info:
        load_catalog(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)


def test_shipped_catalog_loads(assets_dir):
    entries = load_catalog(assets_dir / "catalog.yaml")
    assert len(entries) == len({e.name for e in entries}) >= 10
    for entry in entries:
        assert Path(entry.resolve()).is_file(), entry.name
        for key in ("schema", "pid2name"):
            if key in entry.options:
                assert Path(entry.resolve(entry.options[key])).is_file(), (entry.name, key)


# ---------------------------------------------------------------------------- one-line errors


def one_line_error(path: Path) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    return message


def test_csv_declared_as_ner_is_refused_with_the_valid_pairs(tmp_path):
    path = write(tmp_path, GOOD.replace("task: TC", "task: NER"))
    message = one_line_error(path)
    assert "source 'tc_small': format 'csv' cannot serve task 'NER' (it reads TC)" in message
    for pair in ("NER: conll, iepile", "RE: fewrel, iepile", "TC: csv, jsonl", "IG: alpaca, sharegpt"):
        assert pair in message


def test_every_registered_format_serves_only_its_tasks():
    from hum_dagster.readers import FORMAT_TASKS, READERS

    assert set(FORMAT_TASKS) == set(READERS)
    assert FORMAT_TASKS["iepile"] == ("NER", "RE", "SPO", "EE", "KGE")
    assert {f for f, tasks in FORMAT_TASKS.items() if "MRC" in tasks} == {"c3", "squad"}


@pytest.mark.parametrize(
    "change,expected",
    [
        (("location: data/tc.csv", "location: null"), "location must be a non-empty string, got null"),
        (("location: data/tc.csv", "location: ''"), "location must be a non-empty string, got str ''"),
        (("location: data/tc.csv", "location: [a, b]"), "location must be a non-empty string, got list"),
        (("task: TC", "task: [TC]"), "task must be a non-empty string, got list ['TC']"),
        (("format: csv", "format: {x: 1}"), "format must be a non-empty string, got dict"),
        (("location: data/tc.csv", "location: ${HUM_SURELY_UNSET}/tc.csv"),
         "location '${HUM_SURELY_UNSET}/tc.csv' uses ${HUM_SURELY_UNSET}, which is not set"),
        (("options: {labels: [neg, pos]}", "options: {labels: [neg, pos], schema: '${HUM_SURELY_UNSET}'}"),
         "option 'schema' '${HUM_SURELY_UNSET}' uses ${HUM_SURELY_UNSET}, which is not set"),
        (("    split: dev\n", "    split: dev\n    location: other.csv\n"),
         "line 8: the key 'location' is repeated (first on line 6)"),
    ],
)  # fmt: skip
def test_entry_value_errors_are_one_line(tmp_path, monkeypatch, change, expected):
    monkeypatch.delenv("HUM_SURELY_UNSET", raising=False)
    old, new = change
    assert old in GOOD
    message = one_line_error(write(tmp_path, GOOD.replace(old, new)))
    assert expected in message, message


def test_unreadable_catalog_files_are_one_line(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(GOOD.encode("utf-8").replace(b"tc_small", b"caf\xe9", 1))
    assert "line 2: not UTF-8 text" in one_line_error(latin)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert "is a directory, expected a catalog YAML file" in one_line_error(folder)
    broken = write(tmp_path, "sources:\n  - name: x\n    task: [NER\n", "broken.yaml")
    message = one_line_error(broken)
    assert "not valid YAML: line 4, column 1:" in message


def test_set_variables_still_expand(tmp_path, monkeypatch):
    monkeypatch.setenv("HUM_TEST_FOLDER", "data")
    (tmp_path / "data").mkdir()
    path = write(tmp_path, GOOD.replace("data/tc.csv", "${HUM_TEST_FOLDER}/tc.csv"))
    [entry] = load_catalog(path)
    assert entry.resolve() == str(tmp_path / "data" / "tc.csv")
