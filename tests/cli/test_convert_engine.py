"""``hum convert``'s engine: the same rows as the library path, for any number of
worker processes and any cut of the input into blocks, with one summary line per kind
of message instead of one line per record."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hum_dagster.cli import convert_engine as engine
from hum_dagster.cli.convert import CatalogEntry, iepile_label, main
from hum_dagster.readers.common import parse_json_line, record_reason
from hum_dagster.readers.iepile import IepileSource, RecordRejected, read_iepile
from hum_dagster.readers.validate import Declared
from hum_dagster.synthesis.basic import BasicConfig, SynthesisReport, synthesize_basic
from hum_dagster.synthesis.chunking import default_split_num
from hum_dagster.synthesis.outputs import index_gold
from hum_dagster.synthesis.templates import load_templates

TASKS = ("NER", "RE", "SPO", "EE", "EET", "EEA", "KG")
READ = {"EET": "EE", "EEA": "EE", "KG": "KGE"}
MADE = {"KG": "KGE"}


# ----------------------------------------------------------- the library path, as before
# What `hum convert` did before the engine: read_iepile, synthesize_basic, json.dumps.


def reference(src, schema, task, split, extra_config=None, language="zh", dedup=False):
    read_task, made = READ.get(task, task), MADE.get(task, task)
    options = {"schema": str(schema)} if schema else {}
    if dedup:
        options["duplicates"] = "drop"
    entry = CatalogEntry(
        name=Path(src).parent.name, task=read_task, language=language, format="iepile",
        location=str(src), split="test" if split == "test" else "train", options=options,
    )  # fmt: skip
    result = read_iepile(entry)
    extra = dict(extra_config or {})
    config = BasicConfig(
        mode=split,
        split_num={made: extra.pop("split_num", default_split_num(made))},
        seed=extra.pop("seed", 42),
        templates=load_templates(),
        kge_attributes_key="attribute",
        rng_factory=engine.line_rng,
        **extra,
    )
    records = {r.record_id: r for r in result.records}
    lines = []
    for row in synthesize_basic(
        result.records, result.schema, config, tasks=[made], report=SynthesisReport()
    ):
        if split == "test":
            gold = records[row["record_id"]].gold
            out = {
                "id": row["text_id"], "task": task, "source": Path(src).parent.name,
                "instruction": row["instruction"],
                "label": json.dumps(iepile_label(read_task, gold), ensure_ascii=False),
            }  # fmt: skip
        else:
            out = {
                "task": task, "source": Path(src).parent.name,
                "instruction": row["instruction"], "output": row["output"],
            }  # fmt: skip
        lines.append(json.dumps(out, ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8"), result


def convert(src, tgt, schema, task, split, *flags, language="zh", workers=1):
    argv = ["--src_path", str(src), "--tgt_path", str(tgt), "--language", language,
            "--task", task, "--split", split, "--workers", str(workers), *flags]  # fmt: skip
    if schema:
        argv += ["--schema_path", str(schema)]
    code = main(argv)
    return code, (Path(tgt).read_bytes() if code == 0 else None)


@pytest.fixture(scope="module")
def iepile(shared_data):
    path = shared_data / "iepile"
    if not path.is_dir():
        pytest.skip(f"IEPile sample data not found at {path}")
    return path


FLAGS = {
    "plain": ([], {}),
    "random_sort": (["--random_sort"], {"random_sort": True}),
    "neg_0.3": (["--neg_schema", "0.3", "--seed", "7"], {"neg_rate": 0.3, "seed": 7}),
    "split_-1": (["--split_num", "-1", "--random_sort"], {"split_num": -1, "random_sort": True}),
}


@pytest.mark.parametrize("flags", sorted(FLAGS))
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("task", TASKS)
def test_engine_writes_the_library_paths_bytes(task, split, flags, iepile, tmp_path, monkeypatch):
    """Every task, mode and sampling option: the engine's rows (fast NER reading, the
    flat-task rows, every block size, 1 and 3 workers) are the bytes the library path
    writes with the same per-line generator."""
    cli_flags, config = FLAGS[flags]
    src, schema = iepile / task / "sample.json", iepile / task / "schema.json"
    expected, _ = reference(src, schema, task, split, config)
    assert expected
    monkeypatch.setattr(engine, "CHUNK_BYTES", 700)  # many blocks, cut at every place
    for workers in (1, 3):
        code, got = convert(src, tmp_path / "o.json", schema, task, split, *cli_flags,
                            workers=workers)  # fmt: skip
        assert code == 0
        assert got == expected, (task, split, flags, workers)


def test_mined_schema_matches_the_reader(iepile, tmp_path):
    """Without --schema_path the labels are mined from the data first, as read_iepile does."""
    src = iepile / "NER" / "sample.json"
    expected, _ = reference(src, None, "NER", "train", {"random_sort": True})
    code, got = convert(src, tmp_path / "o.json", None, "NER", "train", "--random_sort",
                        workers=2)  # fmt: skip
    assert code == 0 and got == expected


# ----------------------------------------------------------- blocks, lines, repeats


def ner_line(text, *entities, **extra):
    obj = {"text": text, "entity": [{"entity": m, "entity_type": t} for m, t in entities]}
    obj.update(extra)
    return json.dumps(obj, ensure_ascii=False)


SCHEMA = '["PER", "LOC", "ORG"]\n[]\n{}\n'


def write(tmp_path, lines: list[str], ending="\n", bom=False, name="train.json"):
    folder = tmp_path / "mydata"
    folder.mkdir(exist_ok=True)
    src = folder / name
    data = ending.join(lines) + ending
    src.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    schema = folder / "schema.json"
    schema.write_text(SCHEMA, "utf-8")
    return src, schema


def messy_lines(n=120):
    lines = []
    for i in range(n):
        kind = i % 10
        if kind == 3:
            lines.append("")  # blank
        elif kind == 5:
            lines.append("{broken")  # quarantined: invalid JSON
        elif kind == 7:
            lines.append(ner_line(f"Zed {i}", ("Anna", "PER")))  # quarantined: not in text
        elif kind == 8:
            lines.append(ner_line("Anna met Bob in Paris", ("Anna", "PER"), ("Paris", "LOC")))
        else:
            lines.append(ner_line(f"Anna {i} met Bob in Paris", ("Anna", "PER"),
                                  ("Bob", "PER"), ("Paris", "LOC")))  # fmt: skip
    return lines


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
def test_same_bytes_for_any_workers_and_blocks(tmp_path, monkeypatch, capsys, ending, bom):
    src, schema = write(tmp_path, messy_lines(), ending=ending, bom=bom)
    expected, result = reference(src, schema, "NER", "train", {"random_sort": True},
                                 language="en")  # fmt: skip
    outputs = set()
    for chunk in (97, 1000, 1 << 20):
        monkeypatch.setattr(engine, "CHUNK_BYTES", chunk)
        for workers in (1, 2, 3):
            code, got = convert(src, tmp_path / "o.json", schema, "NER", "train",
                                "--random_sort", language="en", workers=workers)  # fmt: skip
            assert code == 0
            outputs.add(got)
            err = capsys.readouterr().err.splitlines()
            # One summary line for the 24 quarantined lines, naming the first three by
            # file and line (the reader's line numbers), and the closing line.
            assert len(err) == 2, err
            summary = err[0]
            assert summary.startswith("hum convert: warning: skipped 24 lines (")
            assert "12 x invalid JSON" in summary and "12 x entity … not found in text" in summary
            first = [q.origin.split(":")[1] for q in result.quarantine[:3]]
            for line in first:
                assert f"{src}:{line} (" in summary
            assert summary.endswith(", ... 21 more")
    assert outputs == {expected}


def test_repeats_give_one_row_each_and_dedup_one_summary(tmp_path, monkeypatch, capsys):
    anna = ner_line("Anna lives in Paris", ("Anna", "PER"), ("Paris", "LOC"))
    bob = ner_line("Bob lives in Rome", ("Rome", "LOC"))
    lines = [anna, bob] * 50 + [ner_line(f"Carl {i} is here", ("Carl", "PER")) for i in range(20)]
    src, schema = write(tmp_path, lines)
    monkeypatch.setattr(engine, "CHUNK_BYTES", 300)
    rows = {}
    for workers in (1, 2):
        code, got = convert(src, tmp_path / "o.json", schema, "NER", "train", "--random_sort",
                            "--split_num", "-1", language="en", workers=workers)  # fmt: skip
        assert code == 0
        rows[workers] = got
        err = capsys.readouterr().err
        assert "duplicate" not in err and "warning" not in err
    assert rows[1] == rows[2]
    assert rows[1].count(b"\n") == len(lines)  # as IEPile: one row per input line
    # Repeats get their own draws (a row per line, keyed by the line).
    assert len(set(rows[1].splitlines()[:100])) > 2

    expected, _ = reference(src, schema, "NER", "train", {"random_sort": True, "split_num": -1},
                            language="en", dedup=True)  # fmt: skip
    for workers in (1, 2):
        code, got = convert(src, tmp_path / "o.json", schema, "NER", "train", "--random_sort",
                            "--split_num", "-1", "--dedup", language="en", workers=workers)  # fmt: skip
        assert code == 0 and got == expected
        assert got.count(b"\n") == 22
        err = capsys.readouterr().err.splitlines()
        assert err[0] == (
            "hum convert: 98 duplicate records dropped: train.json:3 (= train.json:1), "
            "train.json:4 (= train.json:2), train.json:5 (= train.json:1), "
            "train.json:6 (= train.json:2), train.json:7 (= train.json:1), ... 93 more"
        )
        assert err[1].startswith("hum convert: wrote 22 train rows from 22 records")


def test_bad_utf8_in_a_later_block_names_the_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    lines = [ner_line(f"Anna {i}", ("Anna", "PER")) for i in range(200)]
    src, schema = write(tmp_path, lines)
    data = bytearray(src.read_bytes())
    at = data.index(b"Anna 150")
    data[at] = 0xFF
    src.write_bytes(bytes(data))
    monkeypatch.setattr(engine, "CHUNK_BYTES", 500)
    tgt = tmp_path / "out" / "o.json"
    for workers in (1, 2):
        code, _ = convert(src, tgt, schema, "NER", "train", language="en", workers=workers)
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"hum convert: error: {src}:151: not UTF-8 text (invalid start byte)"]
        assert not tgt.exists()
        assert os.listdir(tgt.parent) == []  # no temporary or part file left


def test_wrong_task_with_workers_is_one_line_and_nothing_written(tmp_path, capsys):
    src, schema = write(tmp_path, [ner_line(f"Anna {i}", ("Anna", "PER")) for i in range(50)])
    tgt = tmp_path / "o.json"
    code, _ = convert(src, tgt, None, "RE", "train", language="en", workers=2)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"hum convert: error: no record of {src} reads as an IEPile RE")
    assert "(50 skipped, the first" in err[0] and not tgt.exists()


def test_json_array_input(tmp_path):
    rows = [json.loads(ner_line(f"Anna {i} in Paris", ("Anna", "PER"), ("Paris", "LOC")))
            for i in range(5)]  # fmt: skip
    folder = tmp_path / "arr"
    folder.mkdir()
    src = folder / "train.json"
    src.write_text(json.dumps(rows, ensure_ascii=False, indent=1), "utf-8")
    (folder / "schema.json").write_text(SCHEMA, "utf-8")
    expected, _ = reference(src, folder / "schema.json", "NER", "test", language="en")
    code, got = convert(src, tmp_path / "o.json", folder / "schema.json", "NER", "test",
                        language="en", workers=2)  # fmt: skip
    assert code == 0 and got == expected and got.count(b"\n") == 5 * 1


def test_remote_source_and_target(tmp_path):
    """An fsspec URL in and out (memory://, as s3:// goes through the same calls)."""
    import fsspec

    src, schema = write(tmp_path, [ner_line("Anna in Paris", ("Anna", "PER"))] * 3)
    fs = fsspec.filesystem("memory")
    fs.pipe("/hum-test/mydata/train.json", src.read_bytes())
    code = main(["--src_path", "memory://hum-test/mydata/train.json", "--tgt_path",
                 "memory://hum-test/out/o.json", "--schema_path", str(schema),
                 "--language", "en", "--workers", "2"])  # fmt: skip
    assert code == 0
    got = fs.cat("/hum-test/out/o.json")
    expected, _ = reference(src, schema, "NER", "train", language="en")
    assert got == expected


def test_workers_must_be_positive(tmp_path, capsys):
    src, schema = write(tmp_path, [ner_line("Anna", ("Anna", "PER"))])
    code, _ = convert(src, tmp_path / "o.json", schema, "NER", "train", workers=0)
    assert code == 2
    assert capsys.readouterr().err.strip() == "hum convert: error: --workers must be at least 1, got 0"


# ----------------------------------------------------------- the fast NER path


def generic(raw: bytes, source, declared):
    """The reader's own per-line path: (text, gold) or the quarantine reason."""
    try:
        line = (raw + b"\n").decode("utf-8")[:-1]
    except UnicodeDecodeError:
        return "not utf-8"
    origin, _, value, error = parse_json_line("x.json", "x.json", 1, line)
    if error is not None:
        return error
    try:
        text, gold = source.gold(value)
    except RecordRejected as exc:
        return str(exc)
    return record_reason("NER", text, gold, declared, False) or (text, gold)


@functools.lru_cache(maxsize=2)
def ner_source(schema: bool):
    options = {}
    if schema:
        path = Path(tempfile.mkdtemp(prefix="hum-test-")) / "schema.json"
        path.write_text(SCHEMA, "utf-8")
        options["schema"] = str(path)
    entry = CatalogEntry(name="d", task="NER", language="en", format="iepile",
                         location="x.json", options=options)  # fmt: skip
    source = IepileSource(entry)
    return source, Declared(source.schema)


WORDS = st.sampled_from(["Anna", "Paris", "Bob", " ", "", "a:b", "Zed", "\u3000", "é", "\x7f",
                         "\x01", "\\", '"', "\u200b", "ORG", "Rome "])  # fmt: skip
LABELS = st.sampled_from(["PER", "LOC", "ORG", "MISC", "PER ", "", "P:ER", "\u200bPER", "\tLOC"])


@st.composite
def raw_lines(draw):
    text = "".join(draw(st.lists(WORDS, max_size=6)))
    entities = [{"entity": draw(WORDS), "entity_type": draw(LABELS)}
                for _ in range(draw(st.integers(0, 4)))]  # fmt: skip
    obj: dict = {"text": text, "entity": entities}
    if draw(st.booleans()):
        for e in entities:
            if draw(st.booleans()):
                e["entity"] = draw(st.sampled_from([w for w in ("Anna", "Bob", "é") if w in text]
                                                   or ["Anna"]))  # fmt: skip
    raw = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    edit = draw(st.sampled_from(["none", "none", "repeat_text", "repeat_entity", "extra_key",
                                 "wrong_type", "colon_escape", "truncate"]))  # fmt: skip
    if edit == "repeat_text":
        raw = raw.replace('{"text"', '{"text": "other", "text"', 1)
    elif edit == "repeat_entity" and entities:
        raw = raw.replace('"entity_type"', '"entity_type": "PER", "entity_type"', 1)
    elif edit == "extra_key":
        raw = raw[:-1] + ', "id": 3}'
    elif edit == "wrong_type":
        raw = raw.replace('"text": ', '"text": 5, "x": ', 1)
    elif edit == "colon_escape":
        raw = raw.replace(":", "\\u003a", 1) if '"text": "' in raw else raw
        raw = raw.replace('"text": "', '"text": "\\u003a', 1)
    elif edit == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw.encode("utf-8")


@given(raw_lines(), st.booleans())
def test_fast_ner_accepts_only_what_the_reader_accepts_as_the_reader_does(raw, with_schema):
    source, declared = ner_source(with_schema)
    fast = engine._fast_ner(raw, declared.types, {}, True)
    slow = generic(raw, source, declared)
    if fast is None:
        return  # the reader's own path decides (and gives its reason)
    assert isinstance(slow, tuple), (raw, slow)
    text, gold, index = fast
    assert (text, gold) == slow
    assert index == index_gold("NER", text, gold)
    assert engine._fast_ner(raw, declared.types, {}, False)[2] == index


def test_fast_ner_takes_the_common_line():
    source, declared = ner_source(True)
    raw = ner_line("Anna met Bob: in Paris", ("Anna", "PER"), ("Paris", "LOC"),
                   ("Anna", "PER")).encode()  # fmt: skip
    assert engine._fast_ner(raw, declared.types, {}, True) is not None
    raw = json.dumps(json.loads(raw), ensure_ascii=True).encode()  # \u escapes: still fast
    assert engine._fast_ner(raw, declared.types, {}, True) is not None


# ----------------------------------------------------------- JSON text


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
))  # fmt: skip
def test_json_bytes_is_json_dumps(value):
    try:
        expected = json.dumps(value, ensure_ascii=False)
        expected.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates: never in a record (validation quarantines them)
    assert engine.json_bytes(value) == expected.encode("utf-8")
    # ... and as a JSON string inside JSON (the instruction and output fields)
    assert engine.as_json_string(engine.json_bytes(value)) == json.dumps(
        expected, ensure_ascii=False
    ).encode("utf-8")


def test_string_escapes_are_json_dumps_for_every_code_point():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(chars), 4096):
        text = "".join(chars[i : i + 4096])
        assert msgspec.json.encode(text) == json.dumps(text, ensure_ascii=False).encode("utf-8")


def test_count_lines_and_blocks_agree_with_universal_newlines(tmp_path):
    for data in (b"a\nb\r\nc\rd", b"", b"\n\n", b"x", b"a\r\r\nb\r", b"\r\n" * 3):
        path = tmp_path / "f"
        path.write_bytes(data)
        with open(path, encoding="utf-8", newline="") as handle:
            expected = sum(1 for _ in handle)
        assert engine.count_lines(data) == expected
        for size in (1, 2, 3, 64):
            blocks = list(engine.plan_chunks(str(path), size))
            assert b"".join(data[o : o + n] for o, n, _ in blocks) == data
            line = 1
            for offset, length, first in blocks:
                assert first == line
                line += engine.count_lines(data[offset : offset + length])


def test_reason_kind():
    assert engine.reason_kind("entity 'Zed' not found in text") == "entity … not found in text"
    assert engine.reason_kind("invalid JSON: Expecting ',' delimiter at column 57") == (
        "invalid JSON: Expecting … delimiter at column N"
    )


def test_workers_are_forked_only_from_a_single_threaded_process():
    """A fork from a process with other threads can inherit a held lock and hang (seen:
    `hum convert --workers 2` called in a test session with a loopback server running);
    such a process gets its workers from a forkserver."""
    import threading

    from hum_dagster.cli.convert_engine import start_method

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert start_method() in ("forkserver", "spawn")
    finally:
        stop.set()
        other.join()
    code = ("import sys; from hum_dagster.cli.convert_engine import start_method; "
            "assert 'polars' not in sys.modules; print(start_method())")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "fork"  # the command's own process: fast start-up


def test_a_worker_restores_sigterm_that_its_parent_ignored():
    # Pool.terminate ends workers with SIGTERM; a worker that inherited an ignored SIGTERM
    # (a pytest-xdist worker ignores it) was waited for forever when the pool closed
    import subprocess
    import sys

    code = (
        "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "from hum_dagster.cli import convert_engine as e\n"
        "e.init_worker(None)\n"
        "print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr[-2000:]
