"""``hum convert``: IEPile compatibility on IEPile's own sample files, plus errors."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from hum_dagster.cli.convert import build_parser, main

FIXTURES = Path(__file__).parents[1] / "fixtures"
IEPILE_WORDING = FIXTURES / "iepile_wording.json"
TASKS = ("NER", "RE", "SPO", "EE", "EET", "EEA", "KG")
SPLIT = {"NER": 6, "RE": 4, "SPO": 4, "EE": 4, "EET": 4, "EEA": 4, "KG": 1}


# ----------------------------------------------------------- independent reference
# IEPile's test-mode rule, written from its documented behaviour: all labels of the
# schema file (set order), chunked by split_num with the remainder rule.


def ref_split(items, n):
    if len(items) < n or n == -1:
        return [items]
    full = max(len(items) // n, 1) * n
    chunks = [items[i : i + n] for i in range(0, full, n)]
    if len(items) - full >= max(1, n // 2):
        chunks.append(items[full:])
    else:
        chunks[-1].extend(items[full:])
    return chunks


def ref_schemas(task, record, types, roles, type_roles):
    if task in ("NER", "EET"):
        return list(set(types))
    if task == "RE":
        return list(set(roles))
    if task == "SPO":
        out = []
        for t in set(types):
            s, p, o = t.split("_")
            out.append({"subject_type": s, "predicate": p, "object_type": o})
        return out
    if task == "EE":
        return [
            {"event_type": t, "trigger": True, "arguments": list(set(r))}
            for t, r in type_roles.items()
        ]
    if task == "EEA":
        if not record["event"]:
            return None
        present = {e["event_type"] for e in record["event"]}
        return [{"event_type": t, "arguments": list(set(type_roles[t]))} for t in present]
    if task == "KG":
        return [{"entity_type": t, "attribute": list(set(r))} for t, r in type_roles.items()]
    raise AssertionError(task)


def reference_test_mode(task, src, schema_path, language, wording):
    lines = Path(schema_path).read_text("utf-8").splitlines()
    types, roles = json.loads(lines[0]), json.loads(lines[1])
    type_roles = json.loads(lines[2]) if len(lines) > 2 else {}
    rows = []
    for line in Path(src).read_text("utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        schemas = ref_schemas(task, record, types, roles, type_roles)
        if schemas is None:
            continue
        key = {"NER": "entity", "EE": "event", "EET": "event", "EEA": "event"}.get(task, "relation")
        for chunk in ref_split(schemas, SPLIT[task]):
            rows.append(
                {
                    "id": hashlib.sha256(record["text"].encode("utf-8")).hexdigest(),
                    "instruction": json.dumps(
                        {
                            "instruction": wording[task + language],
                            "schema": chunk,
                            "input": record["text"],
                        },
                        ensure_ascii=False,
                    ),
                    "label": json.dumps(record[key], ensure_ascii=False),
                }
            )
    return rows


def frozen(item):
    """A hashable form of a schema item where role/attribute order does not matter."""
    if isinstance(item, str):
        return item
    return tuple(sorted((k, frozenset(v) if isinstance(v, list) else v) for k, v in item.items()))


def summarise(rows):
    """id -> (chunk-size multiset, schema-item multiset, inputs, wordings, labels)."""
    out = {}
    for row in rows:
        instruction = json.loads(row["instruction"])
        assert list(instruction) == ["instruction", "schema", "input"]
        entry = out.setdefault(row["id"], [Counter(), Counter(), set(), set(), set()])
        entry[0][len(instruction["schema"])] += 1
        entry[1].update(frozen(i) for i in instruction["schema"])
        entry[2].add(instruction["input"])
        entry[3].add(instruction["instruction"])
        entry[4].add(json.dumps(json.loads(row["label"]), ensure_ascii=False, sort_keys=True))
    return out


def run_convert(tmp_path, task, split, extra=(), data=None):
    src = data / task / "sample.json"
    tgt = tmp_path / f"{task}.{split}.json"
    argv = [
        "--src_path", str(src), "--schema_path", str(data / task / "schema.json"),
        "--tgt_path", str(tgt), "--language", "zh", "--task", task, "--split", split,
        *extra,
    ]  # fmt: skip
    assert main(argv) == 0
    return [json.loads(line) for line in tgt.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def iepile(shared_data):
    path = shared_data / "iepile"
    if not path.is_dir():
        pytest.skip(f"IEPile sample data not found at {path}")
    return path


@pytest.mark.parametrize("task", TASKS)
def test_test_mode_matches_iepile(task, iepile, tmp_path):
    wording = json.loads(IEPILE_WORDING.read_text("utf-8"))
    ours = run_convert(tmp_path, task, "test", ["--templates", str(IEPILE_WORDING)], data=iepile)
    ref = reference_test_mode(
        task, iepile / task / "sample.json", iepile / task / "schema.json", "zh", wording
    )
    assert ours, "no rows"
    assert len(ours) == len(ref)
    for row in ours:
        assert list(row) == ["id", "task", "source", "instruction", "label"]
        assert row["task"] == task and row["source"] == task  # parent folder name
        instruction = json.loads(row["instruction"])
        # IEPile's exact serialisation: key order and default separators.
        assert row["instruction"] == json.dumps(instruction, ensure_ascii=False)
        assert instruction["instruction"] == wording[f"{task}zh"]
    ours_sum, ref_sum = summarise(ours), summarise(ref)
    assert ours_sum.keys() == ref_sum.keys()
    for rid in ref_sum:
        assert ours_sum[rid] == ref_sum[rid], rid
    # Ours is deterministic: sorted items, byte-identical across runs.
    again = run_convert(tmp_path, task, "test", ["--templates", str(IEPILE_WORDING)], data=iepile)
    assert again == ours


def test_test_mode_items_are_sorted(iepile, tmp_path):
    rows = run_convert(tmp_path, "NER", "test", data=iepile)
    schemas = [json.loads(r["instruction"])["schema"] for r in rows]
    assert all(s == ["人物", "地理位置", "组织机构"] for s in schemas)


@pytest.mark.parametrize("task", ["NER", "RE", "SPO", "EE", "EET", "KG"])
def test_train_mode(task, iepile, tmp_path):
    rows = run_convert(tmp_path, task, "train", data=iepile)
    assert rows
    raw = [
        json.loads(line)
        for line in (iepile / task / "sample.json").read_text("utf-8").splitlines()
        if line.strip()
    ]
    by_text: dict[str, list[dict]] = {}
    for row in rows:
        assert list(row) == ["task", "source", "instruction", "output"]
        instruction = json.loads(row["instruction"])
        output = json.loads(row["output"])
        schema = instruction["schema"]
        keys = [
            s
            if isinstance(s, str)
            else s.get("predicate") or s.get("event_type") or s.get("entity_type")
            for s in schema
        ]
        labels = [
            s if isinstance(s, str) else "_".join(s.values()) if "predicate" in s else keys[i]
            for i, s in enumerate(schema)
        ]
        assert labels == sorted(labels)  # sorted schema
        assert list(output) == list(dict.fromkeys(keys))  # every item answered, in order
        by_text.setdefault(instruction["input"], []).append(output)
    for record in raw:
        merged: dict = {}
        for output in by_text[record["text"]]:
            for key, value in output.items():
                if isinstance(value, dict):
                    merged.setdefault(key, {}).update(value)
                else:
                    merged.setdefault(key, []).extend(value)
        if task == "NER":
            for ent in record["entity"]:
                assert ent["entity"] in merged[ent["entity_type"]]
        elif task in ("RE", "SPO"):
            for rel in record["relation"]:
                assert {"subject": rel["head"], "object": rel["tail"]} in merged[rel["relation"]]
        elif task == "EET":
            for event in record["event"]:
                assert event["event_trigger"] in merged[event["event_type"]]
        elif task == "EE":
            for event in record["event"]:
                triggers = [e["trigger"] for e in merged[event["event_type"]]]
                assert event["event_trigger"] in triggers
        elif task == "KG":
            for rel in record["relation"]:
                value = merged["人物"][rel["head"]][rel["relation"]]
                assert rel["tail"] == value or rel["tail"] in value


def test_train_mode_options(iepile, tmp_path):
    base = run_convert(tmp_path, "RE", "train", data=iepile)
    sampled = run_convert(
        tmp_path, "RE", "train", ["--neg_schema", "0.1", "--seed", "3"], data=iepile
    )
    assert len(sampled) < len(base)
    again = run_convert(
        tmp_path, "RE", "train", ["--neg_schema", "0.1", "--seed", "3"], data=iepile
    )
    assert sampled == again
    positives_only = run_convert(tmp_path, "RE", "train", ["--neg_schema", "0"], data=iepile)
    for row in positives_only:
        output = json.loads(row["output"])
        assert all(output.values())  # every queried relation is a positive
    unsplit = run_convert(tmp_path, "RE", "train", ["--split_num", "-1"], data=iepile)
    assert len(unsplit) == 6


def test_cluster_mode(iepile, tmp_path):
    hard = tmp_path / "hard.json"
    hard.write_text(json.dumps({"主演": ["导演", "编剧"]}, ensure_ascii=False), "utf-8")
    rows = run_convert(
        tmp_path, "RE", "train", ["--cluster_mode", "--hard_negative_path", str(hard)], data=iepile
    )
    first = [r for r in rows if "喜剧之王" in r["instruction"]]
    labels = {x for r in first for x in json.loads(r["instruction"])["schema"]}
    assert {"主演", "导演", "编剧"} <= labels
    assert len(labels) == 3 + 4  # plus split_num random others


def test_quarantined_records_warn_and_continue(tmp_path, capsys):
    folder = tmp_path / "mydata"
    folder.mkdir()
    src = folder / "train.json"
    src.write_text(
        '{"text": "Anna lives in Paris", "entity": [{"entity": "Anna", "entity_type": "PER"}]}\n'
        "{broken\n"
        '{"text": "Bob", "entity": [{"entity": "Zed", "entity_type": "PER"}]}\n',
        "utf-8",
    )
    schema = folder / "schema.json"
    schema.write_text('["PER", "LOC"]\n[]\n{}\n', "utf-8")
    tgt = tmp_path / "out" / "train.jsonl"
    argv = ["--src_path", str(src), "--schema_path", str(schema), "--tgt_path", str(tgt),
            "--language", "en", "--task", "NER"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"{src}:2" in err and f"{src}:3" in err
    rows = [json.loads(line) for line in tgt.read_text("utf-8").splitlines()]
    assert len(rows) == 1 and rows[0]["source"] == "mydata"
    assert json.loads(rows[0]["output"]) == {"LOC": [], "PER": ["Anna"]}


def test_errors_exit_2_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nope" / "sample.json"
    assert main(["--src_path", str(missing), "--tgt_path", str(tmp_path / "o.json")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()

    src = tmp_path / "sample.json"
    src.write_text('{"text": "x", "entity": []}\n', "utf-8")
    bad_templates = tmp_path / "t.json"
    bad_templates.write_text('{"NERxx": "?"}', "utf-8")
    code = main(["--src_path", str(src), "--tgt_path", str(tmp_path / "o.json"),
                 "--templates", str(bad_templates)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert str(bad_templates) in err and "NERxx" in err

    assert (
        main(["--src_path", str(src), "--tgt_path", str(tmp_path / "o.json"), "--cluster_mode"])
        == 2
    )
    assert "--hard_negative_path" in capsys.readouterr().err


def test_parser_defaults():
    args = build_parser().parse_args(["--src_path", "a", "--tgt_path", "b"])
    assert (args.task, args.split, args.language, args.neg_schema, args.seed) == (
        "NER",
        "train",
        "zh",
        1.0,
        42,
    )
    assert args.split_num is None and not args.random_sort and not args.cluster_mode
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--src_path", "a", "--tgt_path", "b", "--task", "OpenIE"])
