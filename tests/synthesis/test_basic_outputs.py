"""Golden outputs per task, built from canonical gold and a chunk's schema items."""

from __future__ import annotations

import json

import pytest

from hum_dagster.synthesis.outputs import (
    NAN,
    build_output,
    index_gold,
    item_label,
    output_key,
    spo_item,
)


def out(task, text, gold, items):
    value = build_output(task, index_gold(task, text, gold), items)
    json.dumps(value, ensure_ascii=False)  # JSON-ready
    return value


def test_ner_order_of_appearance_dedup_and_empty():
    text = "Paris and Berlin met Anna; Paris again."
    gold = {
        "entities": [
            {"text": "Berlin", "type": "LOC", "start": 10},
            {"text": "Anna", "type": "PER", "start": 21},
            {"text": "Paris", "type": "LOC", "start": 27},  # second mention
            {"text": "Paris", "type": "LOC", "start": 0},
        ]
    }
    assert out("NER", text, gold, ["LOC", "ORG", "PER"]) == {
        "LOC": ["Paris", "Berlin"],
        "ORG": [],
        "PER": ["Anna"],
    }
    # Keys follow the schema-item order, not alphabetical order.
    assert list(out("NER", text, gold, ["PER", "LOC"])) == ["PER", "LOC"]
    assert out("NER", text, {"entities": []}, ["LOC"]) == {"LOC": []}


def test_ner_chinese_and_missing_start():
    text = "相比之下，青岛海牛队和广州松日队的雨中之战"
    gold = {
        "entities": [
            {"text": "广州松日队", "type": "组织机构", "start": None},
            {"text": "青岛海牛队", "type": "组织机构", "start": None},
        ]
    }
    result = out("NER", text, gold, ["人物", "组织机构"])
    assert result == {"人物": [], "组织机构": ["青岛海牛队", "广州松日队"]}
    assert json.dumps(result, ensure_ascii=False) == (
        '{"人物": [], "组织机构": ["青岛海牛队", "广州松日队"]}'
    )


def test_re_pairs_ordered_and_empty():
    text = "《逐风行》是纵横中文网签约作家清水秋风创作的小说"
    gold = {
        "relations": [
            {"head": "逐风行", "relation": "作者", "tail": "清水秋风"},
            {"head": "逐风行", "relation": "连载网站", "tail": "纵横中文网"},
            {"head": "逐风行", "relation": "作者", "tail": "清水秋风"},  # duplicate
        ]
    }
    assert out("RE", text, gold, ["主演", "作者", "连载网站"]) == {
        "主演": [],
        "作者": [{"subject": "逐风行", "object": "清水秋风"}],
        "连载网站": [{"subject": "逐风行", "object": "纵横中文网"}],
    }


def test_spo_keyed_by_predicate():
    text = "吴宇森导演的《辣手神探》"
    gold = {
        "relations": [
            {
                "head": "辣手神探",
                "head_type": "影视作品",
                "relation": "导演",
                "tail": "吴宇森",
                "tail_type": "人物",
            }
        ]
    }
    items = [spo_item("影视作品_导演_人物"), spo_item("影视作品_编剧_人物")]
    assert items[0] == {"subject_type": "影视作品", "predicate": "导演", "object_type": "人物"}
    assert out("SPO", text, gold, items) == {
        "导演": [{"subject": "辣手神探", "object": "吴宇森"}],
        "编剧": [],
    }
    # Same predicate, other types: not this relation.
    assert out("SPO", text, gold, [spo_item("歌曲_导演_人物")]) == {"导演": []}
    assert item_label("SPO", items[0]) == "影视作品_导演_人物"
    assert output_key("SPO", items[0]) == "导演"


def test_spo_item_with_underscore_in_predicate():
    assert spo_item("A_b_c_D") == {"subject_type": "A", "predicate": "b_c", "object_type": "D"}
    with pytest.raises(ValueError):
        spo_item("nounderscore")


EE_TEXT = "5月份甲骨文在华裁员900余人，随后谷歌也裁员，谷歌和脸书又裁员"
EE_GOLD = {
    "events": [
        {
            "event_type": "组织关系-裁员",
            "trigger": "裁员",
            "arguments": [
                {"role": "时间", "argument": "5月份"},
                {"role": "裁员方", "argument": "甲骨文"},
                {"role": "裁员人数", "argument": "900余人"},
            ],
        },
        {
            "event_type": "组织关系-裁员",
            "trigger": "又裁员",
            "arguments": [
                {"role": "裁员方", "argument": "脸书"},
                {"role": "裁员方", "argument": "谷歌"},  # multi-valued, given out of order
            ],
        },
    ]
}


def test_ee_nan_multi_value_and_absent_type():
    items = [
        {"event_type": "人生-结婚", "trigger": True, "arguments": ["时间"]},
        {
            "event_type": "组织关系-裁员",
            "trigger": True,
            "arguments": ["时间", "裁员人数", "裁员方"],
        },
    ]
    assert out("EE", EE_TEXT, EE_GOLD, items) == {
        "人生-结婚": [],
        "组织关系-裁员": [
            {
                "trigger": "裁员",
                "arguments": {"时间": "5月份", "裁员人数": "900余人", "裁员方": "甲骨文"},
            },
            {
                "trigger": "又裁员",
                "arguments": {"时间": NAN, "裁员人数": NAN, "裁员方": ["谷歌", "脸书"]},
            },
        ],
    }
    assert NAN == "NAN"


def test_ee_orders_events_by_trigger_position():
    gold = {"events": list(reversed(EE_GOLD["events"]))}
    items = [{"event_type": "组织关系-裁员", "trigger": True, "arguments": ["时间"]}]
    triggers = [e["trigger"] for e in out("EE", EE_TEXT, gold, items)["组织关系-裁员"]]
    assert triggers == ["裁员", "又裁员"]


def test_eet_triggers():
    assert out("EET", EE_TEXT, EE_GOLD, ["人生-结婚", "组织关系-裁员"]) == {
        "人生-结婚": [],
        "组织关系-裁员": ["裁员", "又裁员"],
    }


def test_eea_one_dict_per_event():
    items = [{"event_type": "组织关系-裁员", "arguments": ["裁员方", "时间"]}]
    assert out("EEA", EE_TEXT, EE_GOLD, items) == {
        "组织关系-裁员": [
            {"裁员方": "甲骨文", "时间": "5月份"},
            {"裁员方": ["谷歌", "脸书"], "时间": NAN},
        ]
    }


def test_kge_entities_attributes_and_multi_values():
    text = "刘太行，1939年3月18日出生于太行山，父亲刘伯承，母亲汪荣华。刘伯承之妻汪荣华。"
    gold = {
        "entity_type": "人物",
        "relations": [
            {"head": "刘太行", "relation": "父母", "tail": "汪荣华"},
            {"head": "刘太行", "relation": "父母", "tail": "刘伯承"},
            {"head": "刘太行", "relation": "出生地点", "tail": "太行山"},
            {"head": "刘伯承", "relation": "配偶", "tail": "汪荣华"},
        ],
    }
    items = [{"entity_type": "人物", "attributes": ["出生地点", "父母", "籍贯"]}]
    assert out("KGE", text, gold, items) == {
        "人物": {
            "刘太行": {"出生地点": "太行山", "父母": ["刘伯承", "汪荣华"]},
            "刘伯承": {},  # no queried attribute: entity kept, attributes omitted
        }
    }
    other = [{"entity_type": "组织", "attributes": ["成立日期"]}]
    assert out("KGE", text, gold, other) == {"组织": {}}


def test_openie_list_and_extra():
    gold = {
        "triples": [
            {"subject": "John", "predicate": "gave", "object": "Mary", "extra": ["a book"]},
            {"subject": "Mary", "predicate": "read", "object": "it", "extra": []},
        ]
    }
    assert out("OpenIE", "John gave Mary a book.", gold, []) == [
        {"subject": "John", "predicate": "gave", "object": "Mary", "extra": ["a book"]},
        {"subject": "Mary", "predicate": "read", "object": "it"},
    ]
    assert out("OpenIE", "Nothing.", {"triples": []}, []) == []


def test_mrc_and_tc():
    gold = {"question": "谁？", "options": ["甲", "乙"], "answers": ["乙"]}
    assert out("MRC", "乙来了", gold, ["甲", "乙"]) == {"answer": "乙"}
    assert out("MRC", "x", {"question": "q", "options": [], "answers": ["a", "b"]}, []) == {
        "answer": ["a", "b"]
    }
    assert out("TC", "great film", {"label": "positive"}, ["negative", "positive"]) == {
        "label": "positive"
    }
