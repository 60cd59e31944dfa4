"""synthesize_basic: rows, modes, sampling, determinism, every task, validation."""

from __future__ import annotations

import json
import random

import pytest

from hum_dagster.records import LabelSchema, Record, canonical_json
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic, validate_basic_row
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS
from hum_dagster.synthesis.templates import load_templates

NER_TYPES = [f"T{i:02d}" for i in range(13)]  # 13 labels, split 6 -> [6, 7]


def ner_record(i: int, types=("T03",), language="en") -> Record:
    words = [f"w{i}x{j}" for j in range(len(types))]
    text = "Text " + " and ".join(words) + f" number {i}."
    ents = [
        {"text": w, "type": t, "start": text.index(w)} for w, t in zip(words, types, strict=True)
    ]
    return Record(
        source="toy",
        task="NER",
        language=language,
        text=text,
        gold={"entities": ents},
        origin=f"toy:{i}",
    )


NER_SCHEMA = LabelSchema(types=list(reversed(NER_TYPES)))


def rows_of(records, schema, **config):
    return list(synthesize_basic(records, schema, BasicConfig(**config)))


def test_row_columns_and_instruction_structure():
    rows = rows_of([ner_record(1)], NER_SCHEMA)
    assert len(rows) == 2
    templates = load_templates()
    for index, row in enumerate(rows):
        assert tuple(row) == INSTRUCTION_COLUMNS
        assert row["strategy"] == "basic" and row["mode"] == "train" and row["task"] == "NER"
        assert row["template"] == f"NERen@{templates.version}"
        assert row["chunk_index"] == index and row["n_chunks"] == 2
        assert row["label"] is None and row["history"] is None and row["system"] is None
        schema = json.loads(row["schema"])
        expected = json.dumps(
            {
                "instruction": templates.wording("NER", "en"),
                "schema": schema,
                "input": "Text w1x0 number 1.",
            },
            ensure_ascii=False,
        )
        assert row["instruction"] == expected  # IEPile's exact serialisation
        assert validate_basic_row(row) == []
    # Sorted label order, chunk sizes by the remainder rule.
    assert json.loads(rows[0]["schema"]) == NER_TYPES[:6]
    assert json.loads(rows[1]["schema"]) == NER_TYPES[6:]
    assert json.loads(rows[0]["output"])["T03"] == ["w1x0"]


def test_test_mode_all_labels_and_gold_label():
    record = ner_record(2, types=("T01", "T12"))
    rows = rows_of([record], NER_SCHEMA, mode="test")
    assert [len(json.loads(r["schema"])) for r in rows] == [6, 7]
    assert sorted(x for r in rows for x in json.loads(r["schema"])) == NER_TYPES
    for row in rows:
        assert row["label"] == canonical_json(record.gold)
        assert row["record_id"] == record.record_id and row["text_id"] == record.text_id
    merged = {}
    for row in rows:
        merged.update(json.loads(row["output"]))
    assert merged["T01"] == ["w2x0"] and merged["T12"] == ["w2x1"]
    assert sum(1 for v in merged.values() if v) == 2


def test_rate_zero_positives_only_and_skip_without_positives():
    empty = Record(
        source="toy", task="NER", language="en", text="nothing", gold={"entities": []}, origin="o"
    )
    rows = rows_of([ner_record(3, types=("T05", "T09")), empty], NER_SCHEMA, neg_rate=0.0)
    assert len(rows) == 1
    assert json.loads(rows[0]["schema"]) == ["T05", "T09"]


def test_partial_rate_keeps_positives_and_is_order_independent():
    records = [ner_record(i, types=(NER_TYPES[i % 13],)) for i in range(60)]
    config = dict(neg_rate=0.3, split_num={"NER": 4})
    forward = rows_of(records, NER_SCHEMA, **config)
    shuffled = list(records)
    random.Random(5).shuffle(shuffled)
    backward = rows_of(shuffled, NER_SCHEMA, **config)
    key = lambda r: r["instruction_id"]  # noqa: E731
    assert sorted(forward, key=key) == sorted(backward, key=key)
    # Split across "processes": two halves give the same rows.
    halves = rows_of(records[:30], NER_SCHEMA, **config) + rows_of(
        records[30:], NER_SCHEMA, **config
    )
    assert halves == forward
    by_record: dict[str, list[str]] = {}
    for row in forward:
        by_record.setdefault(row["record_id"], []).extend(json.loads(row["schema"]))
        assert validate_basic_row(row) == []
    sizes = set()
    for record in records:
        labels = by_record[record.record_id]
        assert record.gold["entities"][0]["type"] in labels
        assert labels == sorted(labels)
        sizes.add(len(labels))
    assert len(sizes) > 3  # the number of negatives varies
    # Another seed gives other samples.
    other = rows_of(records, NER_SCHEMA, seed=7, **config)
    assert [r["schema"] for r in other] != [r["schema"] for r in forward]


def test_random_sort_is_seeded_and_keeps_the_label_set():
    record = ner_record(4)
    a = rows_of([record], NER_SCHEMA, random_sort=True, mode="test")
    b = rows_of([record], NER_SCHEMA, random_sort=True, mode="test")
    assert a == b
    labels = [x for r in a for x in json.loads(r["schema"])]
    assert sorted(labels) == NER_TYPES and labels != NER_TYPES


def test_instruction_ids_unique_and_config_sensitive():
    records = [ner_record(i) for i in range(5)]
    rows = rows_of(records, NER_SCHEMA)
    ids = [r["instruction_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert rows_of(records, NER_SCHEMA)[0]["instruction_id"] == ids[0]
    assert rows_of(records, NER_SCHEMA, seed=1)[0]["instruction_id"] != ids[0]
    assert rows_of(records, NER_SCHEMA, mode="test")[0]["instruction_id"] != ids[0]
    assert rows_of(records, NER_SCHEMA, split_num={"NER": 3})[0]["instruction_id"] != ids[0]


def test_empty_schema_raises_naming_source():
    with pytest.raises(ValueError, match="'toy'"):
        rows_of([ner_record(1)], LabelSchema())


def test_config_validation():
    with pytest.raises(ValueError):
        BasicConfig(mode="dev")
    with pytest.raises(ValueError):
        BasicConfig(neg_rate=1.5)
    with pytest.raises(ValueError):
        BasicConfig(split_num={"NER": 0})


EE_SCHEMA = LabelSchema(
    types=["人生-结婚", "组织关系-裁员"],
    roles=["时间", "裁员方", "裁员人数", "结婚双方"],
    type_roles={"组织关系-裁员": ["裁员方", "裁员人数", "时间"], "人生-结婚": ["结婚双方", "时间"]},
)
EE_RECORD = Record(
    source="duee",
    task="EE",
    language="zh",
    text="5月份甲骨文在华裁员900余人",
    gold={
        "events": [
            {
                "event_type": "组织关系-裁员",
                "trigger": "裁员",
                "arguments": [
                    {"role": "时间", "argument": "5月份"},
                    {"role": "裁员方", "argument": "甲骨文"},
                ],
            }
        ]
    },
    origin="duee:1",
)
EE_EMPTY = Record(
    source="duee",
    task="EE",
    language="zh",
    text="今天天气很好",
    gold={"events": []},
    origin="duee:2",
)


def test_ee_source_yields_ee_eet_eea():
    rows = rows_of([EE_RECORD, EE_EMPTY], EE_SCHEMA)
    tasks = [(r["task"], r["record_id"] == EE_RECORD.record_id) for r in rows]
    assert tasks == [("EE", True), ("EET", True), ("EEA", True), ("EE", False), ("EET", False)]
    ee, eet, eea = (json.loads(r["output"]) for r in rows[:3])
    assert ee == {
        "人生-结婚": [],
        "组织关系-裁员": [
            {
                "trigger": "裁员",
                "arguments": {"时间": "5月份", "裁员人数": "NAN", "裁员方": "甲骨文"},
            }
        ],
    }
    assert eet == {"人生-结婚": [], "组织关系-裁员": ["裁员"]}
    assert json.loads(rows[2]["schema"]) == [
        {
            "event_type": "组织关系-裁员",
            "trigger": ["裁员"],
            "arguments": ["时间", "裁员人数", "裁员方"],
        }
    ]
    assert eea == {"组织关系-裁员": [{"时间": "5月份", "裁员人数": "NAN", "裁员方": "甲骨文"}]}
    for row in rows:
        assert validate_basic_row(row) == [], row
        assert row["language"] == "zh"


def test_ee_test_mode_items():
    rows = rows_of([EE_RECORD], EE_SCHEMA, mode="test")
    ee = json.loads(next(r for r in rows if r["task"] == "EE")["schema"])
    assert ee == [
        {"event_type": "人生-结婚", "trigger": True, "arguments": ["时间", "结婚双方"]},
        {
            "event_type": "组织关系-裁员",
            "trigger": True,
            "arguments": ["时间", "裁员人数", "裁员方"],
        },
    ]
    eea = json.loads(next(r for r in rows if r["task"] == "EEA")["schema"])
    assert eea == [{"event_type": "组织关系-裁员", "arguments": ["时间", "裁员人数", "裁员方"]}]


def test_ee_partial_rate_keeps_positive_roles():
    for seed in range(20):
        rows = list(
            synthesize_basic(
                [EE_RECORD], EE_SCHEMA, BasicConfig(neg_rate=0.2, seed=seed), tasks=["EE"]
            )
        )
        items = [i for r in rows for i in json.loads(r["schema"])]
        layoff = next(i for i in items if i["event_type"] == "组织关系-裁员")
        assert {"时间", "裁员方"} <= set(layoff["arguments"])
        for item in items:
            assert item["arguments"], item  # at least one role per type


def test_tasks_argument_limits_and_checks():
    rows = list(synthesize_basic([EE_RECORD], EE_SCHEMA, BasicConfig(), tasks=["EET"]))
    assert {r["task"] for r in rows} == {"EET"}
    with pytest.raises(ValueError, match="NER"):
        list(synthesize_basic([EE_RECORD], EE_SCHEMA, BasicConfig(), tasks=["NER"]))


def test_kge_train_and_test():
    schema = LabelSchema(
        types=["人物"],
        roles=["父母", "配偶", "籍贯"],
        type_roles={"人物": ["父母", "配偶", "籍贯"]},
    )
    record = Record(
        source="kg",
        task="KGE",
        language="zh",
        text="刘太行，父亲刘伯承",
        gold={
            "entity_type": "人物",
            "relations": [{"head": "刘太行", "relation": "父母", "tail": "刘伯承"}],
        },
        origin="kg:1",
    )
    (train,) = rows_of([record], schema)
    assert json.loads(train["schema"]) == [
        {"entity_type": "人物", "attributes": ["父母", "籍贯", "配偶"]}
    ]
    assert json.loads(train["output"]) == {"人物": {"刘太行": {"父母": "刘伯承"}}}
    assert validate_basic_row(train) == []
    (test,) = rows_of([record], schema, mode="test")
    assert json.loads(test["schema"]) == json.loads(train["schema"])
    zero = rows_of([record], schema, neg_rate=0.0)
    assert json.loads(zero[0]["schema"]) == [{"entity_type": "人物", "attributes": ["父母"]}]


def test_re_spo_rows_validate():
    re_schema = LabelSchema(roles=["作者", "主演", "导演", "国籍", "妻子"])
    re_record = Record(
        source="re",
        task="RE",
        language="zh",
        text="《逐风行》是清水秋风创作的小说",
        gold={"relations": [{"head": "逐风行", "relation": "作者", "tail": "清水秋风"}]},
        origin="re:1",
    )
    rows = rows_of([re_record], re_schema)
    assert [len(json.loads(r["schema"])) for r in rows] == [5]  # 4 + a remainder of 1 (< 2)
    spo_schema = LabelSchema(types=["图书作品_作者_人物", "影视作品_导演_人物"])
    spo_record = Record(
        source="spo",
        task="SPO",
        language="zh",
        text="《逐风行》是清水秋风创作的小说",
        gold={
            "relations": [
                {
                    "head": "逐风行",
                    "head_type": "图书作品",
                    "relation": "作者",
                    "tail": "清水秋风",
                    "tail_type": "人物",
                }
            ]
        },
        origin="spo:1",
    )
    (row,) = rows_of([spo_record], spo_schema)
    assert json.loads(row["output"]) == {
        "作者": [{"subject": "逐风行", "object": "清水秋风"}],
        "导演": [],
    }
    for r in [*rows, row]:
        assert validate_basic_row(r) == []


def test_tc_mrc_openie_ig():
    tc = Record(
        source="imdb",
        task="TC",
        language="en",
        text="A great film.",
        gold={"label": "positive"},
        origin="i:1",
    )
    (row,) = rows_of([tc], LabelSchema(types=["positive", "negative"]))
    assert json.loads(row["schema"]) == ["negative", "positive"]
    assert json.loads(row["output"]) == {"label": "positive"}
    assert validate_basic_row(row) == []

    mrc = Record(
        source="c3",
        task="MRC",
        language="zh",
        text="男：你好。女：明天见。",
        gold={"question": "女的说什么？", "options": ["你好", "明天见"], "answers": ["明天见"]},
        origin="c3:1",
    )
    (row,) = rows_of([mrc], LabelSchema())
    instruction = json.loads(row["instruction"])
    assert list(instruction) == ["instruction", "schema", "input"]
    assert instruction["schema"] == ["你好", "明天见"]
    assert instruction["input"] == "问题：女的说什么？\n文章：男：你好。女：明天见。"
    assert json.loads(row["output"]) == {"answer": "明天见"}
    assert validate_basic_row(row) == []

    oie = Record(
        source="carb",
        task="OpenIE",
        language="en",
        text="John gave Mary a book.",
        gold={
            "triples": [
                {"subject": "John", "predicate": "gave", "object": "Mary", "extra": ["a book"]}
            ]
        },
        origin="carb:1",
    )
    (row,) = rows_of([oie], LabelSchema(), mode="test")
    assert row["schema"] == "[]" and json.loads(row["instruction"])["schema"] == []
    assert json.loads(row["output"])[0]["extra"] == ["a book"]
    assert row["label"] == canonical_json(oie.gold)

    ig = Record(
        source="chat",
        task="IG",
        language="en",
        text="Hi",
        gold={
            "conversation": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
            ]
        },
        origin="chat:1",
    )
    (row,) = rows_of([ig], LabelSchema())
    assert row["instruction"] == "2+2?" and row["output"] == "4"
    assert json.loads(row["history"]) == [["Hi", "Hello!"]]
    assert row["system"] == "Be brief."
    assert validate_basic_row(row) == []


def test_validate_reports_problems():
    (row,) = rows_of([ner_record(9, types=("T00",))], LabelSchema(types=["T00", "T01"]))
    good = json.loads(row["output"])
    assert validate_basic_row(row) == []
    bad = dict(row, output="{not json")
    assert any("not valid JSON" in p for p in validate_basic_row(bad))
    bad = dict(row, output=json.dumps({"T00": good["T00"]}))
    assert any("'T01' is missing" in p for p in validate_basic_row(bad))
    bad = dict(row, output=json.dumps({**good, "T99": []}))
    assert any("'T99'" in p for p in validate_basic_row(bad))
    bad = dict(row, output=json.dumps({"T00": ["invented"], "T01": []}))
    assert any("'invented' does not occur" in p for p in validate_basic_row(bad))

    (ee,) = list(synthesize_basic([EE_RECORD], EE_SCHEMA, BasicConfig(), tasks=["EE"]))
    out = json.loads(ee["output"])
    out["组织关系-裁员"][0]["arguments"]["裁员人数"] = "1000人"
    problems = validate_basic_row(dict(ee, output=json.dumps(out, ensure_ascii=False)))
    assert any("'1000人'" in p for p in problems)
