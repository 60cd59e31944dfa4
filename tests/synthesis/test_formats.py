"""Format variants: golden renderings, instruction and provenance of compound rows,
determinism, and render-then-parse of every row made from real basic instructions."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hum_dagster.records import LabelSchema, Record
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.columns import (
    COMPOUND_COLUMNS,
    COMPOUND_EXTRA_COLUMNS,
    INSTRUCTION_COLUMNS,
)
from hum_dagster.synthesis.formats import (
    EMPTY_SPELLINGS,
    FORMAT_CHECK,
    FORMAT_STYLES,
    STRATEGY,
    WORDING_PATH,
    FormatConfig,
    FormatWording,
    StrictFormatError,
    check_format_rows,
    format_row_problems,
    format_sentence,
    format_variant_rows,
    load_format_wording,
    read_strict,
    render,
)
from hum_dagster.synthesis.parser import parse_output
from hum_dagster.synthesis.templates import join_parts, load_templates

NER = {"person": ["Barack Obama", "Smith, John"], "location": [], "organization": ["ACME"]}
EE = {
    "Attack": [
        {
            "trigger": "bombed",
            "arguments": {"attacker": "rebels", "target": ["bridge", "road"], "place": "NAN"},
        }
    ],
    "Die": [],
}


# ---------------------------------------------------------------- golden renderings


def test_golden_ner_renderings():
    assert render("json", "NER", NER, "[]") == (
        '{"person": ["Barack Obama", "Smith, John"], "location": [], "organization": ["ACME"]}'
    )
    assert render("json", "NER", NER, "null") == (
        '{"person": ["Barack Obama", "Smith, John"], "location": null, "organization": ["ACME"]}'
    )
    assert render("kv_lines", "NER", NER, "NAN") == (
        'person: Barack Obama, "Smith, John"\nlocation: NAN\norganization: ACME'
    )
    assert render("kv_lines", "NER", NER, "blank", layout=1) == (
        'person: Barack Obama; "Smith, John"\nlocation:\norganization: ACME'
    )
    assert render("kv_lines_zh", "NER", {"人物": ["张三", "李四"], "地点": []}, "无", 0, "zh") == (
        "人物：张三，李四\n地点：无"
    )
    assert render("tuple_lines", "NER", NER, "NAN") == (
        '(Barack Obama, person)\n("Smith, John", person)\n(ACME, organization)'
    )
    assert render("bullets", "NER", NER, "None") == (
        '- person: Barack Obama\n- person: "Smith, John"\n- location: None\n- organization: ACME'
    )
    assert render("markdown_table", "NER", NER, "-") == (
        "| entity | type |\n| --- | --- |\n| Barack Obama | person |\n"
        '| "Smith, John" | person |\n| ACME | organization |\n| - | location |'
    )
    assert render("markdown_table", "NER", {"人物": ["张三"]}, "NAN", 0, "zh").startswith(
        "| 实体 | 类型 |"
    )
    assert render("tuples", "NER", NER, "[]") == (
        "[('Barack Obama', 'person'), ('Smith, John', 'person'), ('ACME', 'organization')]"
    )
    assert render("json_flat", "NER", {"person": [], "location": []}, "[]") == "[]"
    assert render("json_flat", "NER", {"person": [], "location": []}, "blank") == ""
    assert render("xml", "NER", NER, "NAN") == (
        '<entity type="person">Barack Obama</entity>\n<entity type="person">Smith, John</entity>\n'
        '<entity type="location">NAN</entity>\n<entity type="organization">ACME</entity>'
    )
    assert render("yaml", "NER", NER, "[]") == (
        "person:\n  - Barack Obama\n  - Smith, John\nlocation: []\norganization:\n  - ACME"
    ).replace("  - Smith, John", '  - "Smith, John"')


def test_golden_event_and_relation_renderings():
    assert render("kv_lines", "EE", EE, "NAN") == (
        "Attack: bombed {attacker: rebels, target: [bridge, road], place: NAN}\nDie: NAN"
    )
    assert render("tuple_lines", "EE", EE, "None") == (
        "(Attack, bombed, {attacker: rebels, target: [bridge, road], place: None})"
    )
    assert render("xml", "EE", EE, "blank") == (
        '<event type="Attack"><trigger>bombed</trigger><argument role="attacker">rebels</argument>'
        '<argument role="target">bridge</argument><argument role="target">road</argument>'
        '<argument role="place"/></event>\n<event type="Die"/>'
    )
    re_value = {"founded by": [{"subject": "Apple", "object": "Steve Jobs"}], "born in": []}
    assert render("tuple_lines", "RE", re_value, "NAN") == "(Apple, founded by, Steve Jobs)"
    assert render("kv_lines", "RE", re_value, "NAN") == (
        "founded by: (Apple, Steve Jobs)\nborn in: NAN"
    )
    openie = [{"subject": "He", "predicate": "went", "object": "home", "extra": ["at 5"]}]
    assert render("tuple_lines", "OpenIE", openie, "NAN") == "(He, went, home, at 5)"
    assert render("tuple_lines", "OpenIE", [], "NAN") == "NAN"


def test_golden_choice_renderings():
    options = ["red", "blue", "green"]
    value = {"answer": "blue"}
    assert render("option_letter", "MRC", value, options=options) == "B"
    assert render("letter_text", "MRC", value, options=options) == "B. blue"
    assert render("option_text", "MRC", value, options=options) == "blue"
    assert render("answer_line", "MRC", value, language="zh", options=options) == "答案：blue"
    assert render("label_word", "TC", {"label": "positive"}) == "positive"
    assert render("answer_line", "TC", {"label": "positive"}) == "Label: positive"
    assert render("json", "TC", {"label": "正面"}) == '{"label": "正面"}'


def test_format_sentences_state_style_layout_and_empty_spelling():
    s = format_sentence("kv_lines", "NER", "en", "NAN")
    assert s.startswith("Reply in plain text") and "Output format" not in s
    assert "separated by commas" in s and "Write NAN for a label" in s
    assert s.endswith("<type>: <entity>, <entity>")
    s1 = format_sentence("kv_lines", "NER", "en", "NAN", layout=1)
    assert "separated by semicolons" in s1 and s1.endswith("<type>: <entity>; <entity>")
    z = format_sentence("markdown_table", "EE", "zh", "blank")
    assert "事件类型" in z and "留空" in z
    assert "{}" in format_sentence("json", "KGE", "en", "[]")
    assert "reply NAN" in format_sentence("tuple_lines", "RE", "en", "NAN")
    assert '"entity_type"、"entity"、"attributes"' in format_sentence(
        "json_flat", "KGE", "zh", "[]"
    )
    # each layout states its own marker, and shows it in its example
    assert format_sentence("bullets", "NER", "en", "NAN", layout=0).endswith(
        "- <type>: <entity>\n- <type>: <entity>"
    )
    assert '"* "' in format_sentence("bullets", "NER", "en", "NAN", layout=1)
    numbered = format_sentence("bullets", "NER", "en", "NAN", layout=2)
    assert "numbered list" in numbered and numbered.endswith("2. <type>: <entity>")
    assert format_sentence("answer_line", "TC", "en", "blank") == (
        'Reply with one line: "Label: " followed by the label, exactly as the schema writes it.'
    )
    assert "答案：" in format_sentence("answer_line", "MRC", "zh", "blank")
    assert "、" in format_sentence("kv_lines_zh", "NER", "zh", "无", layout=1)
    assert "；" in format_sentence("kv_lines_zh", "NER", "zh", "无", layout=2)
    for sid, fmt in FORMAT_STYLES.items():
        for task in fmt.tasks:
            for language in fmt.languages:
                for layout in range(fmt.layouts):
                    for empty in fmt.empties or ("blank",):
                        text = format_sentence(sid, task, language, empty, layout=layout)
                        assert not re.search(r"\{[a-z]+\}", text), (sid, task, text)
                        assert "replaces" not in text and "替代" not in text


def test_registry_is_consistent():
    wording = load_format_wording()
    for sid, fmt in FORMAT_STYLES.items():
        assert fmt.id == sid and fmt.layouts >= 1
        assert set(fmt.empties) <= set(EMPTY_SPELLINGS)
        for layout in range(fmt.layouts):
            assert wording.style(sid, "en", layout) and wording.style(sid, "zh", layout)
        statements = {wording.style(sid, "en", i) for i in range(fmt.layouts)}
        assert len(statements) == fmt.layouts  # every layout is stated in its own words
    assert (*INSTRUCTION_COLUMNS, *COMPOUND_EXTRA_COLUMNS) == COMPOUND_COLUMNS


def test_a_specification_must_cover_every_layout(tmp_path):
    data = json.loads(WORDING_PATH.read_text(encoding="utf-8"))
    data["styles"]["bullets"]["layouts"].pop()
    path = tmp_path / "formats.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="bullets: needs 3 layouts"):
        FormatWording(data, str(path))


# ---------------------------------------------------------------- compound rows


def _records() -> tuple[list[tuple[list[Record], LabelSchema]], ...]:
    ner = [
        Record(
            "s",
            "NER",
            "en",
            "Barack Obama visited ACME in Paris.",
            {
                "entities": [
                    {"text": "Barack Obama", "type": "person", "start": 0},
                    {"text": "ACME", "type": "organization", "start": 21},
                    {"text": "Paris", "type": "location", "start": 29},
                ]
            },
            "f:1",
        ),
        Record(
            "s",
            "NER",
            "zh",
            "张三在北京工作。",
            {
                "entities": [
                    {"text": "张三", "type": "人物", "start": 0},
                    {"text": "北京", "type": "地点", "start": 3},
                ]
            },
            "f:2",
        ),
    ]
    ner_schema = LabelSchema(types=["person", "organization", "location", "misc", "人物", "地点"])
    ee = [
        Record(
            "s",
            "EE",
            "en",
            "Rebels bombed the bridge and the road.",
            {
                "events": [
                    {
                        "event_type": "Attack",
                        "trigger": "bombed",
                        "arguments": [
                            {"role": "attacker", "argument": "Rebels"},
                            {"role": "target", "argument": "bridge"},
                            {"role": "target", "argument": "road"},
                        ],
                    }
                ]
            },
            "f:3",
        ),
    ]
    ee_schema = LabelSchema(
        types=["Attack", "Die"],
        roles=["attacker", "target", "place", "victim"],
        type_roles={"Attack": ["attacker", "target", "place"], "Die": ["victim", "place"]},
    )
    re_records = [
        Record(
            "s",
            "RE",
            "en",
            "Apple was founded by Steve Jobs.",
            {"relations": [{"head": "Apple", "relation": "founded by", "tail": "Steve Jobs"}]},
            "f:4",
        ),
    ]
    re_schema = LabelSchema(roles=["founded by", "born in"])
    kge = [
        Record(
            "s",
            "KGE",
            "zh",
            "张三出生于北京，毕业于清华和北大。",
            {
                "entity_type": "人物",
                "relations": [
                    {"head": "张三", "relation": "出生地", "tail": "北京"},
                    {"head": "张三", "relation": "毕业院校", "tail": "清华"},
                    {"head": "张三", "relation": "毕业院校", "tail": "北大"},
                ],
            },
            "f:5",
        ),
    ]
    kge_schema = LabelSchema(types=["人物"], type_roles={"人物": ["出生地", "毕业院校", "国籍"]})
    openie = [
        Record(
            "s",
            "OpenIE",
            "en",
            "He went home at five.",
            {
                "triples": [
                    {"subject": "He", "predicate": "went", "object": "home", "extra": ["at five"]}
                ]
            },
            "f:6",
        ),
        Record("s", "OpenIE", "en", "Nothing here.", {"triples": []}, "f:7"),
    ]
    mrc = [
        Record(
            "s",
            "MRC",
            "zh",
            "他们在家里。",
            {"question": "他们在哪里？", "options": ["公园", "学校", "家里"], "answers": ["家里"]},
            "f:8",
        ),
        Record(
            "s",
            "MRC",
            "en",
            "Paris is the capital of France.",
            {"question": "What is the capital?", "options": [], "answers": ["Paris"]},
            "f:9",
        ),
    ]
    tc = [Record("s", "TC", "en", "Great film!", {"label": "positive"}, "f:10")]
    tc_schema = LabelSchema(types=["positive", "negative"])
    ig = [
        Record(
            "s",
            "IG",
            "en",
            "",
            {
                "conversation": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ]
            },
            "f:11",
        )
    ]
    return (
        (ner, ner_schema),
        (ee, ee_schema),
        (re_records, re_schema),
        (kge, kge_schema),
        (openie, LabelSchema()),
        (mrc, LabelSchema()),
        (tc, tc_schema),
        (ig, LabelSchema()),
    )


def _basic_rows(mode: str = "train") -> list[dict]:
    rows: list[dict] = []
    for records, schema in _records():
        rows.extend(synthesize_basic(records, schema, BasicConfig(mode=mode)))
    return rows


def test_every_variant_row_states_its_format_once_and_reads_back_strictly():
    basic = _basic_rows()
    report: Counter = Counter()
    config = FormatConfig(per_row=len(FORMAT_STYLES))  # every applicable style
    rows = list(format_variant_rows(basic, config, report))
    assert report["skipped: task without format variants"] == 1  # the IG row
    by_id = {r["instruction_id"]: r for r in basic}
    templates = load_templates()
    seen_styles = Counter()
    for row in rows:
        assert tuple(row) == COMPOUND_COLUMNS
        assert row["strategy"] == STRATEGY and row["mode"] == "train"
        base = by_id[row["base_instruction_id"]]
        inst = json.loads(row["instruction"])
        base_inst = json.loads(base["instruction"])
        assert list(inst) == ["instruction", "schema", "input", "format"]
        assert inst["schema"] == base_inst["schema"] and inst["input"] == base_inst["input"]
        # the task sentence stays; the JSON reply sentence is gone, the format stated once
        task_text = templates.task_part(row["task"], row["language"])
        assert inst["instruction"].startswith(task_text)
        assert base_inst["instruction"] not in inst["instruction"]
        assert inst["format"] == row["variant"].split("/")[0]
        prov = json.loads(row["provenance"])
        assert prov["style"] == inst["format"] and prov["base"] == base["instruction_id"]
        assert row["variant"] == (
            f"{prov['style']}/{prov['empty']}" if prov["empty"] else prov["style"]
        )
        assert format_row_problems(row, base) == [], (row["variant"], row["output"])
        options = inst["schema"] if row["task"] == "MRC" else ()
        strict = read_strict(
            prov["style"], row["task"], row["output"], prov["empty"] or "blank", prov["layout"],
            row["language"], options, inst["schema"] if row["task"] != "MRC" else None,
        )
        assert strict == json.loads(base["output"])
        # the tolerant parser used for model generations reads them too
        parsed = parse_output(row["task"], row["output"], inst["schema"])
        assert parsed.ok, (row["variant"], row["output"], parsed)
        assert parsed.value == json.loads(base["output"]), (row["variant"], row["output"])
        seen_styles[inst["format"]] += 1
    assert set(seen_styles) == set(FORMAT_STYLES)
    assert len({r["instruction_id"] for r in rows}) == len(rows)
    assert check_format_rows(rows, basic) == []


def test_test_mode_rows_get_no_format_variants():
    report: Counter = Counter()
    assert list(format_variant_rows(_basic_rows("test"), FormatConfig(per_row=3), report)) == []
    assert report["skipped: test-mode row (evaluation only)"] > 0


def _variant(style: str, task: str = "NER", per_row: int = 20) -> tuple[dict, dict]:
    """A format row of ``style`` for ``task`` made from the test records, and its base."""
    basic = _basic_rows()
    rows = format_variant_rows(basic, FormatConfig(styles=(style,), per_row=per_row))
    by_id = {r["instruction_id"]: r for r in basic}
    for row in rows:
        if row["task"] == task and row["language"] == "en":
            return row, by_id[row["base_instruction_id"]]
    raise AssertionError(f"no {style} row for {task}")


def _with_layout(row: dict, base: dict, layout: int) -> dict:
    """``row`` re-rendered in another layout of its style, instruction and provenance too."""
    prov = json.loads(row["provenance"])
    inst = json.loads(row["instruction"])
    task_text = load_templates().task_part(row["task"], row["language"])
    statement = format_sentence(prov["style"], row["task"], row["language"],
                                prov["empty"] or "blank", layout=layout)
    inst["instruction"] = join_parts(task_text, statement, row["language"])
    output = render(prov["style"], row["task"], json.loads(base["output"]),
                    prov["empty"] or "blank", layout, row["language"])
    return {**row, "instruction": json.dumps(inst, ensure_ascii=False), "output": output,
            "provenance": json.dumps({**prov, "layout": layout})}


def _problems(row: dict, base: dict) -> list:
    found = check_format_rows([row], [base])
    assert all(p.check == FORMAT_CHECK and p.record == row["instruction_id"] for p in found)
    return [p.reason for p in found]


def test_bullets_that_are_numbered_or_starred_fail_the_check():
    row, base = _variant("bullets")
    dash = _with_layout(row, base, 0)
    assert _problems(dash, base) == []
    lines = dash["output"].split("\n")
    numbered = {**dash, "output": "\n".join(f"{i}. {x[2:]}" for i, x in enumerate(lines, 1))}
    starred = {**dash, "output": "\n".join("* " + x[2:] for x in lines)}
    for bad in (numbered, starred):
        (reason,) = _problems(bad, base)
        assert "should start with '- '" in reason
        assert parse_output("NER", bad["output"], json.loads(row["schema"])).ok  # tolerated there
    # the numbered layout, stated as such, passes; stated as "- " it fails
    assert _problems(_with_layout(row, base, 2), base) == []
    mislabelled = {**_with_layout(row, base, 2), "instruction": dash["instruction"]}
    assert any("does not state layout 2" in r for r in _problems(mislabelled, base))


def test_answer_and_label_prefixes_must_be_the_stated_one():
    row, base = _variant("answer_line", "TC")
    assert row["output"] == "Label: positive" and _problems(row, base) == []
    (reason,) = _problems({**row, "output": "Answer: positive"}, base)
    assert "must start with 'Label: '" in reason
    mrc_row, mrc_base = _variant("answer_line", "MRC")
    assert mrc_row["output"].startswith("Answer: ")
    assert _problems({**mrc_row, "output": "Label: " + mrc_row["output"][8:]}, mrc_base)


def _two_person_rows(style: str, language: str = "en") -> tuple[dict, dict]:
    text = "Barack Obama met Angela Merkel in Paris." if language == "en" else "张三和李四在北京。"
    names = ("Barack Obama", "Angela Merkel") if language == "en" else ("张三", "李四")
    label = "person" if language == "en" else "人物"
    record = Record("s", "NER", language, text, {"entities": [
        {"text": n, "type": label, "start": text.index(n)} for n in names]}, "f:1")
    basic = list(synthesize_basic([record], LabelSchema(types=[label, "place"]), BasicConfig()))
    (row,) = format_variant_rows(basic, FormatConfig(styles=(style,), per_row=1))
    return row, basic[0]


def test_key_value_separators_must_be_the_stated_ones():
    row, base = _two_person_rows("kv_lines")
    for layout, wrong in ((0, "; "), (1, ", ")):
        good = _with_layout(row, base, layout)
        assert _problems(good, base) == []
        line = next(x for x in good["output"].split("\n") if x.startswith("person"))
        right = ", " if layout == 0 else "; "
        bad_line = line.replace(right, wrong)
        bad = {**good, "output": good["output"].replace(line, bad_line)}
        assert _problems(bad, base), (layout, bad["output"])
    equals = {**row, "output": row["output"].replace(": ", "=", 1)}
    assert _problems(equals, base)
    # the zh layouts: "，" stated, "；" written; an ASCII colon where "：" is stated
    zrow, zbase = _two_person_rows("kv_lines_zh", "zh")
    z0 = _with_layout(zrow, zbase, 0)
    assert _problems(z0, zbase) == [] and "张三，李四" in z0["output"]
    assert _problems({**z0, "output": z0["output"].replace("张三，李四", "张三；李四")}, zbase)
    assert _problems({**z0, "output": z0["output"].replace("：", ":")}, zbase)


def test_the_json_reply_sentence_must_be_replaced_not_kept():
    row, base = _variant("tuple_lines", "RE")
    assert _problems(row, base) == []
    inst = json.loads(row["instruction"])
    kept = json.loads(base["instruction"])["instruction"] + " (this replaces the reply format "
    kept += "described above) " + inst["instruction"].split(". ", 1)[1]
    bad = {**row, "instruction": json.dumps({**inst, "instruction": kept}, ensure_ascii=False)}
    assert any("in place of the JSON reply sentence" in r for r in _problems(bad, base))


def test_an_output_with_another_answer_or_extra_text_fails():
    row, base = _variant("json", "NER")
    value = json.loads(base["output"])
    label = next(k for k, v in value.items() if v)
    other = {**value, label: [*value[label], "ACME Corp"]}
    prov = json.loads(row["provenance"])
    wrong = render("json", "NER", other, prov["empty"] or "blank", prov["layout"])
    assert any("another answer" in r for r in _problems({**row, "output": wrong}, base))
    fenced = {**row, "output": "```json\n" + row["output"] + "\n```"}
    assert _problems(fenced, base)
    assert _problems({**row, "output": row["output"] + " "}, base)
    with pytest.raises(StrictFormatError):
        read_strict("json", "NER", "{'person': []}", "[]")


def test_empty_spellings_and_layouts_stay_varied():
    rows = [
        r
        for seed in range(6)
        for r in format_variant_rows(_basic_rows(), FormatConfig(seed=seed, per_row=len(FORMAT_STYLES)))
    ]
    layouts: dict[str, set] = {}
    empties: dict[str, set] = {}
    for r in rows:
        prov = json.loads(r["provenance"])
        layouts.setdefault(prov["style"], set()).add(prov["layout"])
        empties.setdefault(prov["style"], set()).add(prov["empty"])
    for sid, fmt in FORMAT_STYLES.items():
        if fmt.layouts > 1:
            assert len(layouts[sid]) == fmt.layouts, (sid, layouts[sid])
        if fmt.empties:
            assert len(empties[sid]) >= 3, (sid, empties[sid])


def test_rows_are_deterministic_and_order_independent():
    basic = _basic_rows()
    config = FormatConfig(seed=7, per_row=3)
    a = list(format_variant_rows(basic, config))
    b = list(format_variant_rows(list(reversed(basic)), config))
    key = lambda r: r["instruction_id"]  # noqa: E731
    assert sorted(a, key=key) == sorted(b, key=key)
    c = list(format_variant_rows(basic, FormatConfig(seed=8, per_row=3)))
    assert {r["instruction_id"] for r in a} != {r["instruction_id"] for r in c}


def test_config_limits_styles_and_empties():
    basic = _basic_rows()
    config = FormatConfig(styles=("markdown_table", "kv_lines"), empties=("NAN",), per_row=5)
    rows = list(format_variant_rows(basic, config))
    assert rows
    assert {r["variant"] for r in rows} <= {"markdown_table/NAN", "kv_lines/NAN"}
    with pytest.raises(ValueError, match="unknown format styles"):
        FormatConfig(styles=("nope",))
    with pytest.raises(ValueError, match="unknown empty spellings"):
        FormatConfig(empties=("zilch",))


def test_zh_only_spelling_and_style_stay_on_zh_rows():
    rows = list(format_variant_rows(_basic_rows(), FormatConfig(per_row=20)))
    for row in rows:
        if row["language"] != "zh":
            assert "无" not in row["variant"] and not row["variant"].startswith("kv_lines_zh")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_any_seed_gives_rows_that_follow_their_format(seed, per_row):
    basic = _basic_rows()
    rows = list(format_variant_rows(basic, FormatConfig(seed=seed, per_row=per_row)))
    assert check_format_rows(rows, basic) == []
    for row in rows:
        inst = json.loads(row["instruction"])
        base = next(b for b in basic if b["instruction_id"] == row["base_instruction_id"])
        assert parse_output(row["task"], row["output"], inst["schema"]).value == json.loads(
            base["output"]
        )


def test_the_stated_spelling_of_a_missing_argument_is_the_written_one():
    from hum_dagster.synthesis.formats import argument_spelling

    value = {"Attack": [{"trigger": "bombed", "arguments": {"target": "bridge", "place": "NAN"}}]}
    for sid, fmt in FORMAT_STYLES.items():
        if "EE" not in fmt.tasks:
            continue
        for empty in fmt.empties:
            token = argument_spelling(sid, empty)
            sentence = format_sentence(sid, "EE", "en", empty)
            out = render(sid, "EE", value, empty)
            if token:
                assert f"Write {token} for an argument role" in sentence, (sid, empty)
                assert token in out, (sid, empty, out)
                if token == "NAN":
                    assert "None" not in out and "null" not in out, (sid, empty, out)
            else:
                assert "Leave an argument role that is not mentioned empty" in sentence
