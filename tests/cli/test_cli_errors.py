"""Every expected failure of the ``hum`` commands is one readable line and a non-zero exit."""

from __future__ import annotations

import json

import pytest

from hum_dagster.cli.main import main


def error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_sql_typo_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HUM_STORAGE_ROOT", str(tmp_path / "storage"))
    assert main(["sql", "selec 1", "--storage-root", str(tmp_path / "storage")]) == 2
    line = error_line(capsys)
    assert line.startswith('hum sql: error: Parser Error: syntax error at or near "selec"')
    assert main(["sql", "select * from basic_instruction", "--storage-root",
                 str(tmp_path / "storage")]) == 2  # fmt: skip
    line = error_line(capsys)
    assert "basic_instruction does not exist" in line and "views: none yet" in line
    assert main(["sql", "select 41 + 1 as answer", "--storage-root", str(tmp_path / "storage")]) == 0
    assert capsys.readouterr().out.split() == ["answer", "42"]


@pytest.mark.parametrize(
    "target,expected",
    [
        ("bogus_target", "unknown target 'bogus_target'; valid targets: corpus, instructions, "
                         "checkpoint:<model>|<variant>, score:<model>|<benchmark>"),
        ("checkpoint:smollm2", "target 'checkpoint:smollm2' must look like checkpoint:<model>|<variant>"),
        ("score:", "target 'score:' must look like score:<model>|<benchmark>"),
    ],
)  # fmt: skip
def test_audit_unknown_target_exits_non_zero(capsys, target, expected):
    assert main(["audit", target, "--no-event-log"]) == 2
    assert error_line(capsys) == f"hum audit: error: {expected}"


def test_audit_unknown_section_exits_non_zero(capsys):
    assert main(["audit", "corpus", "--section", "sauces", "--no-event-log"]) == 2
    assert "unknown sections ['sauces']" in error_line(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["sql"],
        ["audit", "--bogus"],
        ["audit", "corpus", "--format", "xml"],
        ["convert", "--src_path", "a"],
        ["convert", "--src_path", "a", "--tgt_path", "b", "--bogus"],
        ["convert", "--src_path", "a", "--tgt_path", "b", "--task", "OpenIE"],
        ["run", "--bogus"],
    ],
)
def test_wrong_flags_exit_non_zero(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def iepile_ner(tmp_path, *rows):
    folder = tmp_path / "mydata"
    folder.mkdir(exist_ok=True)
    src = folder / "train.json"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    schema = folder / "schema.json"
    schema.write_text('["PER", "LOC"]\n[]\n{}\n', "utf-8")
    return src, schema


ANNA = {"text": "Anna lives in Paris", "entity": [{"entity": "Anna", "entity_type": "PER"}]}
BOB = {"text": "Bob lives in Rome", "entity": [{"entity": "Rome", "entity_type": "LOC"}]}


def test_convert_tgt_path_directory_is_one_line(tmp_path, capsys):
    src, schema = iepile_ner(tmp_path, ANNA)
    argv = ["convert", "--src_path", str(src), "--schema_path", str(schema),
            "--tgt_path", str(tmp_path), "--language", "en"]  # fmt: skip
    assert main(argv) == 2
    assert error_line(capsys) == (
        f"hum convert: error: --tgt_path {tmp_path} is a directory; give the file to write"
    )


def test_convert_wrong_task_is_an_error_not_an_empty_file(tmp_path, capsys):
    src, schema = iepile_ner(tmp_path, ANNA, BOB)
    tgt = tmp_path / "out.jsonl"
    argv = ["convert", "--src_path", str(src), "--tgt_path", str(tgt), "--language", "en",
            "--task", "RE"]  # fmt: skip
    assert main(argv) == 2
    line = error_line(capsys)
    assert line.startswith(f"hum convert: error: no record of {src} reads as an IEPile RE record")
    assert f"(2 skipped, the first {src}:1: missing field 'relation')" in line
    assert "is --task RE right?" in line
    assert not tgt.exists()


def test_convert_writes_one_row_per_line_and_dedup_drops_repeats(tmp_path, capsys):
    src, schema = iepile_ner(tmp_path, ANNA, BOB, ANNA, ANNA)
    tgt = tmp_path / "out.jsonl"
    base = ["convert", "--src_path", str(src), "--schema_path", str(schema), "--tgt_path",
            str(tgt), "--language", "en", "--split_num", "-1"]  # fmt: skip
    assert main(base) == 0
    assert len(tgt.read_text("utf-8").splitlines()) == 4  # as IEPile: one per input line
    assert "duplicate" not in capsys.readouterr().err
    assert main([*base, "--dedup"]) == 0
    assert len(tgt.read_text("utf-8").splitlines()) == 2
    err = capsys.readouterr().err.splitlines()
    summary = [line for line in err if "duplicate" in line]
    assert summary == [
        "hum convert: 2 duplicate records dropped: train.json:3 (= train.json:1), "
        "train.json:4 (= train.json:1)"
    ]
