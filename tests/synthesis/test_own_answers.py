"""No record's own answer in the guideline part of its compound instructions: the
check (``no_own_answer_in_guidelines``) fails on leaking rows, and the guideline
strategies never make one."""

from __future__ import annotations

import json

import pytest
from sample_sources import sample_rows, sample_source

from hum_dagster.dictionary import build_dictionary
from hum_dagster.dictionary.mine import MINED
from hum_dagster.dictionary.model import LabelEntry, SchemaDictionary, Text
from hum_dagster.records import LabelSchema, Record
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.guidelines import GUIDELINE_STRATEGIES, GuidelineConfig, run_guidelines
from hum_dagster.synthesis.own_answers import (
    OWN_ANSWER_CHECK,
    check_own_answers,
    guideline_strings,
    leaked_spans,
    output_spans,
    record_spans,
    span_appears,
)

SOURCES = (
    "ner_en_conll",
    "ner_zh_bioes",
    "ner_zh_iepile",
    "re_en_fewrel",
    "re_zh_iepile",
    "spo_zh_iepile",
    "ee_zh_iepile",
    "kge_zh_iepile",
    "tc_en_csv",
)


def test_output_spans_per_task():
    assert output_spans("NER", {"person": ["Ann Lee", "X"], "place": []}) == {"Ann Lee"}
    assert output_spans("RE", {"r": [{"subject": "Kessel Station", "object": "Lower Tarn"}]}) == {
        "Kessel Station",
        "Lower Tarn",
    }
    ee = {"Attack": [{"trigger": "bombed", "arguments": {"a": "rebels", "b": ["x1", "x2"], "c": "NAN"}}]}
    assert output_spans("EE", ee) == {"bombed", "rebels", "x1", "x2"}
    assert output_spans("EEA", {"Attack": [{"a": "rebels", "c": "NAN"}]}) == {"rebels"}
    kge = {"人物": {"方小满": {"出生地点": "江苏扬州", "性别": "男"}}}
    assert output_spans("KGE", kge) == {"方小满", "江苏扬州"}  # one character is not looked for
    assert output_spans("TC", {"label": "positive"}) == set()


def test_span_appears_respects_ascii_word_boundaries():
    assert span_appears("Leeds", 'Place names like "Leeds", "Kerala"')
    assert not span_appears("US", "the USA and Canada")
    assert not span_appears("Lee", "Leeds is a city")
    assert span_appears("Lee", "Ann Lee.")
    assert span_appears("方小满", "典型取值为人名，如“宋知远”“方小满”。")
    assert not span_appears("男", "性别，男或女")  # one character: not looked for


def _row(schema, extra=None, strategy="description", wording="Extract."):
    instruction = {"instruction": wording, "schema": schema, **(extra or {}), "input": "TEXT"}
    return {
        "instruction_id": "c1",
        "record_id": "r1",
        "strategy": strategy,
        "instruction": json.dumps(instruction, ensure_ascii=False),
    }


BASIC = [
    {
        "instruction_id": "b1",
        "record_id": "r1",
        "task": "NER",
        "schema": '["location", "person"]',
        "output": json.dumps({"location": ["Leeds"], "person": ["Maria Okafor"]}),
    },
    {
        "instruction_id": "b2",
        "record_id": "r2",
        "task": "NER",
        "schema": '["location"]',
        "output": json.dumps({"location": ["Kerala"]}),
    },
]


def test_a_description_quoting_the_own_answer_fails_the_check():
    leaking = _row(
        [{"label": "location", "description": 'Place names like "Leeds", "Kerala".'}, "person"]
    )
    (problem,) = check_own_answers([leaking], BASIC)
    assert problem.check == OWN_ANSWER_CHECK and problem.record == "c1"
    assert "'Leeds'" in problem.reason
    # the same description on another record's row is fine: Kerala is r2's, not r1's
    other = {**leaking, "record_id": "r3"}
    assert check_own_answers([other], BASIC) == []


@pytest.mark.parametrize(
    "schema, extra",
    [
        ([{"label": "person", "positive examples": [{"text": "x", "answer": "Maria Okafor"}]}], None),
        ([{"label": "person", "examples": ["Maria Okafor", "Ann"]}], None),
        (["person"], {"output_format": {"person": ["Maria Okafor"]}}),
        (["person"], {"rules": [{"label": "person", "rule": "Drop the title of Maria Okafor."}]}),
        ([{"label": "LABEL_1", "description": "A place such as Leeds."}], None),
    ],
)
def test_every_part_a_strategy_adds_is_looked_at(schema, extra):
    assert check_own_answers([_row(schema, extra)], BASIC)


def test_input_wording_and_label_names_are_not_the_guideline_part():
    # the input and the wording quote the answer: that is the task, not a leak
    row = _row(["person", "location"], wording="Find people such as Maria Okafor.")
    row["instruction"] = row["instruction"].replace('"TEXT"', '"Maria Okafor moved to Leeds."')
    assert check_own_answers([row], BASIC) == []
    inst = json.loads(row["instruction"])
    assert guideline_strings(inst) == []
    # a label name that holds the answer shows it already: an event type holds its trigger
    ee_basic = [{"instruction_id": "b", "record_id": "r1", "task": "EET", "schema": "[]",
                 "output": json.dumps({"组织关系-裁员": ["裁员"]})}]
    shown = _row([{"label": "组织关系-裁员", "description": "触发词如“裁员”“裁撤”。"}])
    assert check_own_answers([shown], ee_basic) == []
    masked = _row([{"label": "LABEL_1", "description": "触发词如“裁员”“裁撤”。"}])
    assert check_own_answers([masked], ee_basic)


def test_extractive_mrc_answers_count_and_option_texts_do_not():
    basic = [
        {"instruction_id": "m", "record_id": "r1", "task": "MRC", "schema": "[]",
         "output": json.dumps({"answer": ["Denver Broncos", "the Broncos"]})},
        {"instruction_id": "c", "record_id": "r2", "task": "MRC", "schema": '["家里", "学校"]',
         "output": json.dumps({"answer": "家里"})},
    ]
    assert record_spans(basic) == {"r1": frozenset({"Denver Broncos", "the Broncos"})}


# --------------------------------------------------------------------------- the strategies


def _source(name: str):
    return sample_source(name)[0], sample_rows(name)


@pytest.mark.parametrize("name", SOURCES)
def test_no_strategy_quotes_a_records_own_answer(name):
    d, rows = _source(name)
    for strategy in GUIDELINE_STRATEGIES:
        out, _ = run_guidelines(rows, d, strategy, GuidelineConfig())
        assert check_own_answers(out, rows) == [], (name, strategy)


def test_mined_typical_values_are_made_again_without_the_records_own():
    # two records; the source-wide typical values name both persons
    records = [
        Record("s", "NER", "en", f"{name} spoke today.", {"entities": [
            {"text": name, "type": "person", "start": 0}]}, f"f:{i}")
        for i, name in enumerate(["Ann Ode", "Bo Lind", "Cy Moss"])
    ]
    schema = LabelSchema(types=["person"])
    d, _ = build_dictionary("s", "NER", "en", records, schema, [])
    entry = d.get("person")
    (typical,) = [t for t in entry.descriptions if t.provenance == MINED]
    assert all(n in typical.value for n in ("Ann Ode", "Bo Lind", "Cy Moss"))
    rows = list(synthesize_basic(records, schema, BasicConfig()))
    out, _ = run_guidelines(rows, d, "description")
    assert len(out) == 3
    for row in out:
        (item,) = json.loads(row["instruction"])["schema"]
        own = json.loads(row["output"])["person"][0]
        assert own not in item["description"]
        others = [n for n in ("Ann Ode", "Bo Lind", "Cy Moss") if n != own]
        assert all(n in item["description"] for n in others)
    assert check_own_answers(out, rows) == []


def test_a_seed_description_quoting_the_answer_gives_way_to_the_next():
    record = Record("s", "NER", "en", "Leeds is wet.", {"entities": [
        {"text": "Leeds", "type": "location", "start": 0}]}, "f:1")
    other = Record("s", "NER", "en", "Kerala is warm.", {"entities": [
        {"text": "Kerala", "type": "location", "start": 0}]}, "f:2")
    d = SchemaDictionary("s", "NER", "en", {"location": LabelEntry(
        "location", "entity_type", descriptions=[
            Text('A named place, e.g. "Leeds".', "seed:x"), Text("A named place.", "seed:x")])})
    rows = list(synthesize_basic([record, other], LabelSchema(types=["location"]), BasicConfig()))
    out, _ = run_guidelines(rows, d, "description")
    by_text = {json.loads(r["instruction"])["input"]: r for r in out}
    leeds = json.loads(by_text["Leeds is wet."]["instruction"])["schema"][0]["description"]
    kerala = json.loads(by_text["Kerala is warm."]["instruction"])["schema"][0]["description"]
    assert leeds == "A named place." and kerala == 'A named place, e.g. "Leeds".'
    # with only the quoting description, the Leeds row is skipped and counted
    d.entries["location"].descriptions.pop()
    out, report = run_guidelines(rows, d, "description")
    assert len(out) == 1 and report.skipped == {"every description quotes the record's answer": 1}
    out, report = run_guidelines(rows, d, "description_variants")
    assert out == []


def test_representative_examples_never_come_from_the_input():
    records = [
        Record("s", "NER", "en", "Ann Ode met Bo Lind.", {"entities": [
            {"text": "Ann Ode", "type": "person", "start": 0}]}, "f:1"),
        Record("s", "NER", "en", "Bo Lind left.", {"entities": [
            {"text": "Bo Lind", "type": "person", "start": 0}]}, "f:2"),
        Record("s", "NER", "en", "Cy Moss came.", {"entities": [
            {"text": "Cy Moss", "type": "person", "start": 0}]}, "f:3"),
    ]
    schema = LabelSchema(types=["person"])
    d, _ = build_dictionary("s", "NER", "en", records, schema, [])
    rows = list(synthesize_basic(records, schema, BasicConfig()))
    out, _ = run_guidelines(rows, d, "representative_examples")
    for row in out:
        inst = json.loads(row["instruction"])
        for value in inst["schema"][0]["examples"]:
            assert value not in inst["input"]  # "Bo Lind" is in the first input, not its answer


def test_the_guards_one_search_filter_keeps_what_value_by_value_keeps():
    # _Guard.others answers for a whole list with two searches where no value is the
    # record's; on random rows full of near misses it must agree with own_value
    import random

    from hum_dagster.synthesis.guidelines import _Guard, _Probes

    rng = random.Random(7)
    words = ["Ann", "Annex", "Bo", "Lind", "x", "Cy Moss", "Moss", "Leeds", "è", "北京", "京"]
    probes = _Probes()
    entries = [LabelEntry(f"l{i}", "entity") for i in range(6)]
    values = [
        [" ".join(rng.sample(words, rng.randint(1, 2))) + rng.choice(["", " → Bo", " → 京"])
         for _ in range(rng.randint(0, 6))]
        for _ in entries
    ]
    disagree = 0
    for _ in range(400):
        spans = frozenset(rng.sample(words, rng.randint(0, 3)))
        text = " ".join(rng.sample(words, rng.randint(1, 4)))
        guard = _Guard(spans, text, rng.sample(words, rng.randint(0, 2)), probes)
        for entry, vals in zip(entries, values, strict=True):
            expected = [v for v in vals if not guard.own_value(v)]
            disagree += guard.others(entry, "typical", vals) != expected
            disagree += guard.any_leak(entry, "texts", lambda v=vals: v) != any(
                guard.leaks(v) for v in vals
            )
    assert disagree == 0


def test_a_guard_finds_the_leaks_leaked_spans_finds_with_few_spans_or_many():
    # _Guard.leaks looks for up to FEW_SPANS spans by substring tests and for more by one
    # pattern; both must answer as leaked_spans does (word boundaries, short spans)
    import random

    from hum_dagster.synthesis.guidelines import FEW_SPANS, _Guard, _Probes

    rng = random.Random(11)
    words = ["Ann", "Annex", "Bo", "Lind", "x", "Cy Moss", "Moss", "Leeds", "è", "北京", "京",
             *(f"w{i}" for i in range(30))]
    probes = _Probes()
    counts = {"few": 0, "many": 0}
    for _ in range(600):
        spans = frozenset(rng.sample(words, rng.randint(0, 2 * FEW_SPANS)))
        text = " ".join(rng.sample(words, rng.randint(1, 4)))
        guard = _Guard(spans, text, [], probes)
        texts = [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(3)]
        assert guard.leaks(*texts) == bool(leaked_spans(spans, texts)), (spans, texts)
        counts["few" if len(spans) <= FEW_SPANS else "many"] += 1
    assert min(counts.values()) > 100  # both ways were exercised
