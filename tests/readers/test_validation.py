"""Validation where records are read: the shared rules, and each reader's bad input that
used to become training data (issue 14's "silently wrong" cases) now quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.readers.validate import bad_char, record_problem
from hum_dagster.records import LabelSchema, SourceError

SAMPLES = Path(__file__).parents[2] / "assets" / "samples"


def entry(tmp_path: Path, fmt: str, task: str, content: str | bytes, *, filename="data.txt",
          language="en", split="train", **options) -> CatalogEntry:  # fmt: skip
    path = tmp_path / filename
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return CatalogEntry(name="src", task=task, language=language, format=fmt,
                        location=str(path), split=split, options=options)  # fmt: skip


def jsonl(*rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def quarantine(result) -> list[tuple[str, str]]:
    return [(q.origin, q.reason) for q in result.quarantine]


# ---------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    "task,text,gold,expected",
    [
        ("NER", "Anna met Bob", {"entities": [{"text": "Bob", "type": "PER", "start": 9}]}, None),
        ("NER", "Anna met Bob", {"entities": [{"text": "Bob", "type": "PER", "start": 8}]},
         "entity 'Bob' is not in the text at offset 8"),
        ("NER", "Anna met Bob", {"entities": [{"text": "Bob", "type": "PER", "start": True}]},
         "entity 'Bob' offset must be an integer, got boolean"),
        ("NER", "Anna met Bob", {"entities": [{"text": "Bob", "type": "PER", "start": None}]},
         "entity 'Bob' has no offset in the text"),
        ("NER", "Anna met Bob", {"entities": [{"text": "Bob", "type": ["PER"], "start": 9}]},
         "entity 1 type must be a string, got array"),
        ("NER", "Anna met Bob", {"entities": [{"text": "Bob", "type": "PER"}]},
         "entity 1 has no start"),
        ("NER", "Anna\x07 met Bob", {"entities": []},
         "text contains a control character U+0007 at offset 4"),
        ("NER", "Anna \ud800", {"entities": []},
         "text contains a lone surrogate (not Unicode) U+D800 at offset 5"),
        ("RE", "Ann married Bob", {"relations": [{"head": "Ann", "relation": "spouse",
                                                 "tail": "Rob"}]},
         "tail 'Rob' does not occur in the text"),
        ("RE", "Ann married Bob", {"relations": [{"head": "Ann", "relation": "spouse",
                                                 "tail": "Bob", "extra": 1}]},
         "relation 1 has unexpected keys ['extra']"),
        ("SPO", "Ann married Bob", {"relations": [{"head": "Ann", "head_type": "人_物",
                                                  "relation": "spouse", "tail": "Bob",
                                                  "tail_type": "人物"}]},
         "head_type '人_物' contains '_', IEPile's SPO separator"),
        ("EE", "they wed", {"events": [{"event_type": "婚礼", "trigger": "", "arguments": []}]},
         "event 1 trigger is empty"),
        ("EE", "they wed", {"events": [{"event_type": "婚礼", "trigger": "wed",
                                        "arguments": [{"role": "who", "argument": "us"}]}]},
         "argument 'us' does not occur in the text"),
        ("MRC", "The cat sat.", {"question": "Who?", "options": ["cat", "dog"], "answers": []},
         "a multiple-choice question without an answer"),
        ("MRC", "The cat sat.", {"question": "Who?", "options": [], "answers": ["dog"]},
         "answer 'dog' does not occur in the text"),
        ("TC", "fine", {"label": 1}, "label must be a string, got number"),
        ("TC", "fine", {"label": "true"}, None),
        ("OpenIE", "S is o", {"triples": [{"subject": "", "predicate": "is", "object": "o",
                                          "extra": []}]},
         "triple 1 subject is empty"),
        ("IG", "b", {"conversation": [{"role": "user", "content": "a"},
                                      {"role": "user", "content": "b"},
                                      {"role": "assistant", "content": "c"}]},
         "turn 2: two user turns in a row; turns must alternate user, assistant"),
        ("IG", "a", {"conversation": [{"role": "user", "content": "a"},
                                      {"role": "assistant", "content": "c"},
                                      {"role": "system", "content": "s"}]},
         "turn 3 is a system turn inside the conversation"),
    ],
)  # fmt: skip
def test_record_rules(task, text, gold, expected):
    assert record_problem(task, text, gold) == expected


def test_declared_schema_rules():
    ee = LabelSchema(types=["婚礼"], roles=["地点"], type_roles={"婚礼": ["地点"]})
    gold = {"events": [{"event_type": "婚礼", "trigger": "婚礼",
                        "arguments": [{"role": "时间", "argument": "昨天"}]}]}  # fmt: skip
    assert record_problem("EE", "昨天的婚礼", gold, ee) == (
        "role '时间' is not in the schema for event type '婚礼'"
    )
    assert record_problem("EE", "昨天的婚礼", gold) is None  # mined: any role goes
    spo = LabelSchema(types=["图书作品_作者_人物"], roles=["作者"])
    rel = {"head": "长河", "head_type": "书籍", "relation": "作者", "tail": "白露",
           "tail_type": "人物"}  # fmt: skip
    assert record_problem("SPO", "长河白露", {"relations": [rel]}, spo) == (
        "SPO type '书籍_作者_人物' is not in the schema"
    )
    kge = LabelSchema(types=["人物"], roles=["别名"], type_roles={"人物": ["别名"]})
    gold = {"entity_type": "地点", "relations": []}
    assert record_problem("KGE", "某地", gold, kge) == "entity type '地点' is not in the schema"
    assert record_problem("TC", "x", {"label": "meh"}, LabelSchema(types=["pos", "neg"])) == (
        "label 'meh' is not in the schema"
    )


def test_bad_char_allows_tab_newline_and_c1_remnants():
    assert bad_char("a\tb\nc\r\n") is None
    assert bad_char("cp1252 dash \x96 and ellipsis \x85") is None  # real IMDB reviews
    assert bad_char("bell\x07") == "a control character U+0007 at offset 4"
    assert bad_char("nul\x00") == "a control character U+0000 at offset 3"


# ---------------------------------------------------------------------------- issue 14 cases


def test_iepile_spans_not_in_the_text_are_quarantined(tmp_path):
    content = jsonl(
        {"text": "许明远生于杭州", "relation": [{"head": "许明", "relation": "出生地", "tail": "杭州"}]},
        {"text": "许明远生于杭州", "relation": [{"head": "王五", "relation": "出生地", "tail": "杭州"}]},
        {"text": "他们举办婚礼", "event": []},
    )  # fmt: skip
    result = read_source(entry(tmp_path, "iepile", "RE", content, language="zh"))
    assert quarantine(result) == [
        ("data.txt:2", "head '王五' does not occur in the text"),
        ("data.txt:3", "missing field 'relation'"),
    ]
    events = jsonl(
        {"text": "他们举办婚礼", "event": [{"event_trigger": "葬礼", "event_type": "人生-婚礼",
                                           "arguments": []}]},
        {"text": "他们举办婚礼", "event": [{"event_trigger": "婚礼", "event_type": "人生-婚礼",
                                           "arguments": [{"argument": "大理", "role": "地点"}]}]},
        {"text": "他们在大理举办婚礼", "event": [{"event_trigger": "婚礼", "event_type": "人生-婚礼",
                                                "arguments": [{"argument": "大理", "role": "地点"}]}]},
    )  # fmt: skip
    result = read_source(entry(tmp_path, "iepile", "EE", events, language="zh"))
    assert quarantine(result) == [
        ("data.txt:1", "trigger '葬礼' does not occur in the text"),
        ("data.txt:2", "argument '大理' does not occur in the text"),
    ]
    assert [r.origin for r in result.records] == ["data.txt:3"]
    # A falsy non-list is not "no arguments".
    bad_args = jsonl({"text": "婚礼", "event": [{"event_trigger": "婚礼", "event_type": "婚",
                                                 "arguments": 0}]})  # fmt: skip
    result = read_source(entry(tmp_path, "iepile", "EE", bad_args, language="zh"))
    assert quarantine(result) == [("data.txt:1", "event 'arguments' must be a list, got number")]


def test_spo_type_outside_the_schema_makes_no_schema_item(tmp_path):
    schema = str(SAMPLES / "iepile_spo_zh.schema.json")
    content = jsonl(
        {"text": "《长河落日》是作家白露创作的长篇小说", "relation": [
            {"head": "长河落日", "head_type": "书籍", "relation": "作者", "tail": "白露",
             "tail_type": "人物"}]},
        {"text": "《长河落日》是作家白露创作的长篇小说", "relation": [
            {"head": "长河落日", "head_type": "图书作品", "relation": "作者", "tail": "白露",
             "tail_type": "人物"}]},
    )  # fmt: skip
    result = read_source(entry(tmp_path, "iepile", "SPO", content, language="zh", schema=schema))
    assert quarantine(result) == [("data.txt:1", "SPO type '书籍_作者_人物' is not in the schema")]
    assert "书籍_作者_人物" not in result.schema.types
    assert len(result.records) == 1


def test_fewrel_positions_must_be_consecutive_integers(tmp_path):
    def inst(h, t):
        return {"tokens": ["Ann", "Lee", "married", "Bob"], "h": ["ann", "Q1", [h]],
                "t": ["bob", "Q2", [t]]}  # fmt: skip

    data = {"P26": [inst([0, 1], [3]), inst([1, 0], [3]), inst([True], [3]), inst([1.0], [3]),
                    inst([0], [9]), inst([0, 2], [3])]}  # fmt: skip
    pid = tmp_path / "pid2name.json"
    pid.write_text('{"P26": ["spouse", "the spouse"]}', encoding="utf-8")
    result = read_source(entry(tmp_path, "fewrel", "RE", json.dumps(data), filename="f.json",
                               pid2name=str(pid)))  # fmt: skip
    assert [r.gold["relations"][0]["head"] for r in result.records] == ["Ann Lee"]
    assert quarantine(result) == [
        ("f.json#P26/1", "'h' token positions [1, 0] are not consecutive and ascending"),
        ("f.json#P26/2", "'h' token position true is not an integer"),
        ("f.json#P26/3", "'h' token position 1.0 is not an integer"),
        ("f.json#P26/4", "'t' token position 9 outside the 4 tokens"),
        ("f.json#P26/5", "'h' token positions [0, 2] are not consecutive and ascending"),
    ]


def test_fewrel_relation_missing_from_pid2name_is_quarantined(tmp_path):
    data = {"P777": [{"tokens": ["a", "b"], "h": ["a", "Q", [[0]]], "t": ["b", "Q", [[1]]]}],
            "P26": [{"tokens": ["a", "b"], "h": ["a", "Q", [[0]]], "t": ["b", "Q", [[1]]]}]}
    pid = tmp_path / "pid2name.json"
    pid.write_text('{"P26": ["spouse", "the spouse"]}', encoding="utf-8")
    result = read_source(entry(tmp_path, "fewrel", "RE", json.dumps(data), filename="f.json",
                               pid2name=str(pid)))  # fmt: skip
    assert quarantine(result) == [("f.json#P777/0", "relation id 'P777' is not in pid2name.json")]
    assert result.schema.roles == ["spouse"]  # never the label "P777"


def test_squad_is_impossible_must_be_a_boolean(tmp_path):
    qa = {"id": "q1", "question": "Where?", "is_impossible": "false",
          "answers": [{"text": "on the mat", "answer_start": 12}]}  # fmt: skip
    data = {"data": [{"paragraphs": [{"context": "The cat sat on the mat.", "qas": [qa]}]}]}
    result = read_source(entry(tmp_path, "squad", "MRC", json.dumps(data)))
    assert quarantine(result) == [
        ("data.txt#q1", "'is_impossible' must be true or false, got string 'false'")
    ]
    qa["is_impossible"] = True
    result = read_source(entry(tmp_path, "squad", "MRC", json.dumps(data)))
    assert quarantine(result) == [
        ("data.txt#q1", "'is_impossible' is true but the question has answers")
    ]


def test_csv_unclosed_quote_does_not_merge_records(tmp_path):
    content = (
        "label,text\n"
        'positive,"A warm film with a great cast.\n'  # line 2: the quote never closes
        "negative,The plot collapses halfway through.\n"
        'positive,"Two lines,\nstill one review.",\n'  # a legitimate two-line field
        "negative,Flat dialogue.\n"
    )
    result = read_source(entry(tmp_path, "csv", "TC", content, filename="t.csv",
                               labels=["negative", "positive"]))  # fmt: skip
    assert quarantine(result) == [
        ("t.csv:2", "unclosed quote: the field opened on line 2 runs into line 3, which "
                    "reads as a record of its own"),
        ("t.csv:4", "expected 2 columns, got 3"),
    ]  # fmt: skip
    assert [(r.origin, r.gold["label"]) for r in result.records] == [
        ("t.csv:3", "negative"), ("t.csv:6", "negative")
    ]  # fmt: skip
    runaway = 'label,text\nnegative,fine\npositive,"never closed\nand more text\n'
    result = read_source(entry(tmp_path, "csv", "TC", runaway, filename="t.csv"))
    assert quarantine(result)[0] == (
        "t.csv:3", "unclosed quote: the field opened on line 3 runs to the end of the file"
    )
    assert [r.text for r in result.records] == ["fine"]


def test_csv_header_must_not_repeat_a_column(tmp_path):
    with pytest.raises(SourceError, match="repeats the column 'label'") as info:
        read_source(entry(tmp_path, "csv", "TC", "label,text,label\na,b,c\n", filename="t.csv"))
    assert info.value.line == 1


def test_jsonl_labels_are_strings(tmp_path):
    content = jsonl({"text": "好", "label": ["正面"]}, {"text": "差", "label": 1},
                    {"text": "行", "label": True}, {"text": "嗯", "label": "中性"})  # fmt: skip
    result = read_source(entry(tmp_path, "jsonl", "TC", content, language="zh"))
    assert quarantine(result) == [
        ("data.txt:1", 'label must be a string, got array ["正面"]'),
        ("data.txt:2", "label must be a string, got number 1"),
        ("data.txt:3", "label must be a string, got boolean true"),
    ]
    assert result.schema.types == ["中性"]
    # label_map names non-string values; a boolean is never the number 1, nor 1 true.
    mapped = read_source(entry(tmp_path, "jsonl", "TC", content, language="zh",
                               label_map={1: "负面"}))  # fmt: skip
    assert [r.gold["label"] for r in mapped.records] == ["负面", "中性"]
    assert [q.origin for q in mapped.quarantine] == ["data.txt:1", "data.txt:3"]
    mapped = read_source(entry(tmp_path, "jsonl", "TC", content, language="zh",
                               label_map={True: "正面"}))  # fmt: skip
    assert [r.gold["label"] for r in mapped.records] == ["正面", "中性"]
    assert [q.origin for q in mapped.quarantine] == ["data.txt:1", "data.txt:2"]


def test_carb_markers_become_roles_and_empty_arguments_are_refused(tmp_path):
    content = (
        "He said she left .\tleft\tshe\tC: He said\n"  # a context in the object column
        "They met in May in Rome .\tmet\tThey\tT: in May\tL: in Rome\n"
        "They met in May in Rome .\tmet\t\tin Rome\n"  # no subject
        "They met in May in Rome .\tmet\tThey\tT:\n"  # an empty marked argument
        "They met in May in Rome .\tmet\tThey\tT: in May\tT: today\n"
    )
    result = read_source(entry(tmp_path, "carb", "OpenIE", content))
    assert [r.gold["triples"] for r in result.records] == [
        [{"subject": "she", "predicate": "left", "object": "", "extra": [],
          "context": "He said"}],
        [{"subject": "They", "predicate": "met", "object": "", "extra": [], "time": "in May",
          "location": "in Rome"}],
    ]  # fmt: skip
    assert quarantine(result) == [
        ("data.txt:3", "empty subject (column 3)"),
        ("data.txt:4", "empty 'T:' argument in column 4"),
        ("data.txt:5", "two 'T:' arguments (time)"),
    ]


def test_carb_markers_on_the_real_file(shared_data):
    path = shared_data / "carb" / "dev.tsv"
    result = read_source(CatalogEntry(name="carb", task="OpenIE", language="en", format="carb",
                                      location=str(path)))  # fmt: skip
    assert result.quarantine == []
    triples = [t for r in result.records for t in r.gold["triples"]]
    texts = [v for t in triples for v in (t["subject"], t["object"], *t["extra"])]
    assert not [v for v in texts if v[:2] in ("T:", "L:", "C:")]  # no marker kept as text
    lines = path.read_text(encoding="utf-8").splitlines()
    marked = {line for line in lines if any(c[:2] in ("T:", "L:", "C:") for c in line.split("\t")[2:])}
    assert sum(1 for t in triples if {"time", "location", "context"} & t.keys()) == len(marked)
    assert any(t.get("context", "").endswith("said") for t in triples)


def test_sharegpt_turns_must_alternate(tmp_path):
    turns = [{"from": "human", "value": "你好"}, {"from": "human", "value": "在吗"},
             {"from": "gpt", "value": "在"}]  # fmt: skip
    good = [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "你好！"}]
    content = jsonl({"conversations": turns}, *({"conversations": good} for _ in range(3)))
    result = read_source(entry(tmp_path, "sharegpt", "IG", content, language="zh"))
    assert quarantine(result) == [
        ("data.txt:1", "turn 2: two user turns in a row; turns must alternate user, assistant")
    ]
    assert len(result.records) == 3  # the good conversations (repeats kept)


def test_repeated_json_keys_are_quarantined(tmp_path):
    content = (
        '{"text": "张三在北京", "text": "李四在上海", "entity": []}\n'
        '{"text": "张三在北京", "entity": [{"entity": "张三", "entity_type": "人物", '
        '"entity_type": "地点"}]}\n'
        '{"text": "张三在北京", "entity": [{"entity": "北京", "entity_type": "地点"}]}\n'
    )
    result = read_source(entry(tmp_path, "iepile", "NER", content, language="zh"))
    assert quarantine(result) == [
        ("data.txt:1", "JSON object repeats the key 'text' (which value is meant is ambiguous)"),
        ("data.txt:2",
         "JSON object repeats the key 'entity_type' (which value is meant is ambiguous)"),
    ]  # fmt: skip
    fewrel = '{"P1": [{"tokens": ["a"], "h": ["a", "Q", [[0]]], "t": ["a", "Q", [[0]]]}],\n' \
             ' "P1": []}'  # fmt: skip
    with pytest.raises(SourceError, match="top-level object repeats the key 'P1'") as info:
        read_source(entry(tmp_path, "fewrel", "RE", fewrel))
    assert info.value.line == 2
    inner = {"P1": [{"tokens": ["a"], "h": ["a", "Q", [[0]]], "t": ["a", "Q", [[0]]]}]}
    text = json.dumps(inner).replace('"tokens": ["a"]', '"tokens": ["a"], "tokens": ["b"]')
    result = read_source(entry(tmp_path, "fewrel", "RE", text))
    assert quarantine(result) == [
        ("data.txt#P1/0", "JSON object repeats the key 'tokens' (which value is meant is ambiguous)")
    ]


def test_conll_trailing_tab_is_not_a_column(tmp_path):
    result = read_source(entry(tmp_path, "conll", "NER", "Anna\tB-PER\t\nlives\tO \n\n"
                                                         "\tO\nx\t\t\n"))  # fmt: skip
    assert result.records[0].gold["entities"] == [{"text": "Anna", "type": "PER", "start": 0}]
    assert quarantine(result) == [("data.txt:4", "line 4: empty token (the line starts with a tab)")]


def test_utf16_file_is_named_as_such(tmp_path):
    content = '{"text": "a", "entity": []}\n'.encode("utf-16")
    with pytest.raises(SourceError, match="UTF-16 little-endian") as info:
        read_source(entry(tmp_path, "iepile", "NER", content))
    assert info.value.line == 1


def test_unset_variable_in_a_location_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("HUM_SURELY_UNSET", raising=False)
    e = CatalogEntry(name="s", task="NER", language="en", format="conll",
                     location="${HUM_SURELY_UNSET}/train.txt")  # fmt: skip
    with pytest.raises(SourceError, match=r"\$\{HUM_SURELY_UNSET\} not set"):
        read_source(e)


def test_a_labelled_source_without_any_label_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="none of its 2 NER records has a label") as info:
        read_source(entry(tmp_path, "conll", "NER", "Ok\tO\n\nFine\tO\n"))
    assert str(tmp_path / "data.txt") in str(info.value)
    declared = read_source(entry(tmp_path, "conll", "NER", "Ok\tO\n", labels=["PER"]))
    assert declared.schema.types == ["PER"]  # declared labels: negatives can be asked


def test_read_source_refuses_a_format_that_cannot_serve_the_task(tmp_path):
    e = entry(tmp_path, "csv", "NER", "label,text\npositive,fine\n", filename="t.csv")
    with pytest.raises(SourceError) as info:
        read_source(e)
    message = str(info.value)
    assert "format 'csv' cannot serve task 'NER' (it reads TC)" in message
    assert "NER: conll, iepile" in message and "\n" not in message


def test_labels_are_clean_names():
    gold = {"entities": [{"text": "Anna", "type": "PER ", "start": 0}]}
    assert record_problem("NER", "Anna", gold) == "entity 1 type 'PER ' has leading or trailing space"
    gold = {"entities": [{"text": "Anna", "type": "P\ufeffER", "start": 0}]}
    assert record_problem("NER", "Anna", gold) == (
        "entity 1 type 'P\\ufeffER' contains the control character U+FEFF"
    )
    assert record_problem("TC", "x", {"label": "pos\x85"}) == (
        "label 'pos\\x85' contains the control character U+0085"
    )


def test_ee_event_type_must_be_in_the_type_to_roles_map():
    # Synthesis asks EE about the map's types: a type only in the type list would become
    # a schema item of its own.
    schema = LabelSchema(types=["婚礼", "葬礼"], roles=["地点"], type_roles={"婚礼": ["地点"]})
    gold = {"events": [{"event_type": "葬礼", "trigger": "葬礼", "arguments": []}]}
    assert record_problem("EE", "葬礼", gold, schema) == "event type '葬礼' is not in the schema"


def test_schema_side_files_with_unclean_labels_are_errors(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text('["国家 _首都_城市"]\n["首都"]\n{}\n', encoding="utf-8")
    content = jsonl({"text": "北京是首都", "relation": []})
    with pytest.raises(SourceError, match="the part '国家 ' has leading or trailing space"):
        read_source(entry(tmp_path, "iepile", "SPO", content, language="zh", schema=str(schema)))
    schema.write_text('["人物"]\n[]\n{"人\\ufeff物": []}\n', encoding="utf-8")
    with pytest.raises(SourceError, match="contains the control character U\\+FEFF") as info:
        read_source(entry(tmp_path, "iepile", "NER", content, language="zh", schema=str(schema)))
    assert info.value.line == 3
    pid = tmp_path / "pid2name.json"
    pid.write_text("{}", encoding="utf-8")
    fewrel = json.dumps({"P1": [{"tokens": ["a"], "h": ["a", "Q", [[0]]], "t": ["a", "Q", [[0]]]}]})
    with pytest.raises(SourceError, match="names no relation"):
        read_source(entry(tmp_path, "fewrel", "RE", fewrel, pid2name=str(pid)))
    with pytest.raises(SourceError, match="option 'labels': 'pos ' has leading or trailing space"):
        read_source(entry(tmp_path, "csv", "TC", "label,text\npos,x\n", filename="t.csv",
                          labels=["pos ", "neg"]))  # fmt: skip
