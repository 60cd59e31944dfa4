"""Evaluation metrics: three scoring modes against hand-computed cases."""

from __future__ import annotations

import json

import pytest

from hum_dagster.evaluation.metrics import (
    headline,
    json_tuples,
    normalise_text,
    read_output,
    resolve_choice,
    score_choice,
    score_f1,
    score_rows,
)


def row(iid, task, record_id, label, schema=(), source="src"):
    return {
        "instruction_id": iid,
        "task": task,
        "source": source,
        "record_id": record_id,
        "schema": json.dumps(list(schema)),
        "label": json.dumps(label),
    }


def ner_gold(*pairs):
    return {"entities": [{"text": t, "type": ty, "start": None} for ty, t in pairs]}


def approx(value):
    return pytest.approx(value, abs=1e-9)


def counts(result):
    return (result["tp"], result["gold"], result["pred"])


def test_ner_chunks_merge_duplicates_and_unparseable():
    # record r1: gold {(per, Ann), (loc, Paris), (org, ACME)}; two chunks. Chunk 0
    # predicts per Ann twice (counts once) and a wrong loc; chunk 1 (fenced) predicts org
    # ACME and per Ann again (merged: still once). Record r2's only chunk is prose.
    gold1 = ner_gold(("per", "Ann"), ("loc", "Paris"), ("org", "ACME"))
    rows = [
        row("a0", "NER", "r1", gold1, ["per", "loc"]),
        row("a1", "NER", "r1", gold1, ["org"]),
        row("b0", "NER", "r2", ner_gold(("per", "Bob")), ["per"]),
    ]
    outputs = {
        "a0": '{"per": ["Ann", "Ann"], "loc": ["London"]}',
        "a1": '```json\n{"org": ["ACME"], "per": ["Ann"]}\n```',
        "b0": "Sorry, I cannot help with that.",
    }
    result = score_f1(rows, outputs)["ner_f1"]
    assert result["records"] == 2 and result["chunks"] == 3 and result["missing"] == 0
    strict = result["strict"]
    assert counts(strict) == (2, 4, 3) and strict["parse_failures"] == 1
    assert strict["P"] == approx(200 / 3) and strict["R"] == approx(50.0)
    assert strict["parse_failure_rate"] == approx(1 / 3)
    # iepile: json.loads only, so the fenced chunk fails too
    iep = result["iepile"]
    assert counts(iep) == (1, 4, 2) and iep["parse_failures"] == 2
    assert (iep["P"], iep["R"], iep["F1"]) == (50.0, 25.0, 33.33)


def test_strict_matches_exact_strings_lenient_folds():
    gold = ner_gold(("person", "Ann"), ("person", "Bob"))
    rows = [row("x", "NER", "r1", gold, ["person"])]
    out = {"x": '{"Person": ["Ann"], "person": [" Bob "]}'}
    s = score_f1(rows, out)["ner_f1"]
    assert counts(s["strict"]) == (0, 2, 2)  # "Person" is not "person", " Bob " is not "Bob"
    assert counts(s["iepile"]) == (0, 2, 2)
    assert counts(s["lenient"]) == (2, 2, 2)


def test_empty_word_gold_spans_are_matched_like_any_span():
    gold = ner_gold(("answer", "None"), ("answer", "-"), ("answer", "无"), ("answer", "没有"),
                    ("answer", "n/a"))
    rows = [row("x", "NER", "r1", gold, ["answer"])]
    out = {"x": json.dumps({"answer": ["None", "-", "无", "没有", "n/a"]}, ensure_ascii=False)}
    s = score_f1(rows, out)["ner_f1"]
    for mode in ("iepile", "strict", "lenient"):
        assert counts(s[mode]) == (5, 5, 5), mode
    # the JSON empties are no answer: "", "NAN", null
    out = {"x": '{"answer": ["", "NAN", null]}'}
    s = score_f1(rows, out)["ner_f1"]
    assert s["strict"]["pred"] == 0 and s["lenient"]["pred"] == 0


def test_empty_generation_is_a_failure_and_missing_is_counted():
    rows = [row("a", "NER", "r1", ner_gold(("per", "Ann")), ["per"]),
            row("b", "NER", "r2", ner_gold(("per", "Bob")), ["per"])]
    s = score_f1(rows, {"a": ""})["ner_f1"]  # "": the OpenAI generator's failed request
    assert s["missing"] == 1
    for mode in ("iepile", "strict", "lenient"):
        assert s[mode]["parse_failures"] == 1 and s[mode]["pred"] == 0, mode
        assert s[mode]["parse_failure_rate"] == approx(0.5)
    # whitespace only is empty too; a real empty answer is not a failure
    assert score_f1(rows[:1], {"a": "  \n"})["ner_f1"]["lenient"]["parse_failures"] == 1
    assert score_f1(rows[:1], {"a": '{"per": []}'})["ner_f1"]["strict"]["parse_failures"] == 0


def test_empty_gold_and_zero_denominators():
    rows = [
        row("x", "NER", "r1", ner_gold(), ["per"]),  # empty gold, predicts one: FP
        row("y", "NER", "r2", ner_gold(("per", "Ann")), ["per"]),  # gold, empty pred: FN
    ]
    s = score_f1(rows, {"x": '{"per": ["Zed"]}', "y": '{"per": []}'})["ner_f1"]["strict"]
    assert counts(s) == (0, 1, 1) and s["F1"] == 0.0
    s = score_f1(rows[:1], {"x": '{"per": []}'})["ner_f1"]
    assert s["strict"]["F1"] == 0.0 and s["iepile"]["F1"] == 0.0


def test_re_tuples_and_lenient_normalisation():
    gold = {"relations": [
        {"head": "barack obama", "relation": "spouse", "tail": "michelle obama"},
        {"head": "paris", "relation": "country", "tail": "france"},
    ]}
    rows = [row("r", "RE", "r1", gold, ["spouse", "country"])]
    out = {"r": json.dumps({
        "spouse": [{"subject": "Barack Obama", "object": "Michelle  Obama."}],
        "country": [{"subject": "paris", "object": "france"}, {"subject": "x"}, "junk"],
    })}
    s = score_f1(rows, out)["re_f1"]
    assert counts(s["strict"]) == (1, 2, 2) and s["strict"]["F1"] == approx(50.0)
    assert counts(s["lenient"]) == (2, 2, 2) and s["lenient"]["F1"] == approx(100.0)
    # IEPile keeps {"subject": "x"} with an empty object: one more prediction
    assert counts(s["iepile"]) == (1, 2, 3)


def test_normalise_text():
    assert normalise_text("  The  U.S.A.,\tInc! ") == "the u s a inc"
    assert normalise_text("ＡＢＣ「北京」") == "abc 北京"


def test_event_trigger_and_argument_f1():
    gold = {"events": [
        {"event_type": "hire", "trigger": "hired", "arguments": [
            {"role": "employer", "argument": "ACME"}, {"role": "employee", "argument": "Ann"},
            {"role": "time", "argument": ""}]},
        {"event_type": "fire", "trigger": "fired", "arguments": [{"role": "employee", "argument": "Bob"}]},
    ]}
    rows = [
        row("t0", "EET", "e1", gold, ["hire"]),
        row("t1", "EET", "e1", gold, ["fire", "quit"]),
        row("a0", "EEA", "e1", gold, [{"event_type": "hire", "arguments": ["employer", "employee", "time"]}]),
        row("a1", "EEA", "e1", gold, [{"event_type": "fire", "arguments": ["employee"]}]),
    ]
    outputs = {
        "t0": '{"hire": ["hired", "hired"]}',
        "t1": '{"fire": [], "quit": ["left"]}',
        "a0": '{"hire": [{"employer": "ACME", "employee": ["Ann", "Carl"], "time": "NAN"}]}',
        "a1": "not json",
    }
    s = score_f1(rows, outputs)
    assert counts(s["trigger_f1"]["strict"]) == (1, 2, 2)
    a = s["argument_f1"]["strict"]
    assert counts(a) == (2, 3, 3) and a["F1"] == approx(200 / 3)
    assert s["argument_f1"]["strict"]["parse_failures"] == 1
    assert s["trigger_f1"]["strict"]["parse_failures"] == 0
    # iepile: gold keeps the empty "time" argument (IEPile does not filter gold)
    assert counts(s["argument_f1"]["iepile"]) == (2, 4, 3)


def test_ee_json_gives_both_kinds():
    value = {"hire": [{"trigger": "hired", "arguments": {"employer": "ACME", "time": "NAN"}},
                      {"trigger": "NAN", "arguments": {}}]}
    got = json_tuples("EE", value)
    assert got == {"trigger": {("hire", "hired")}, "argument": {("hire", "employer", "ACME")}}


def test_other_formats_are_read_by_the_project_parser():
    rows = [row("a", "NER", "r1", ner_gold(("per", "Ann")), ["per"])]
    # text format, plus a label outside the chunk's schema: a false positive
    s = score_f1(rows, {"a": "per: Ann\nloc: Paris"})["ner_f1"]
    assert counts(s["strict"]) == (1, 1, 2) and counts(s["lenient"]) == (1, 1, 2)
    assert s["iepile"]["parse_failures"] == 1  # not JSON
    # the parser maps "PER" to the schema's "per": strict counts a prediction that is
    # not written as such, which matches nothing; lenient takes the mapping
    s = score_f1(rows, {"a": "PER: Ann"})["ner_f1"]
    assert counts(s["strict"]) == (0, 1, 1) and counts(s["lenient"]) == (1, 1, 1)
    assert read_output("NER", "PER: Ann", "lenient", ["per"]).tuples == {"ner": {("per", "Ann")}}
    assert not read_output("NER", "", "lenient", ["per"]).ok
    # truncated JSON is a failure, never tuples invented from the JSON's punctuation
    for mode in ("strict", "lenient"):
        cut = read_output("NER", '{"per": ["Ann"], "loc": [', mode, ["per", "loc"])
        assert not cut.ok and cut.tuples == {}, mode


@pytest.mark.parametrize(
    "answer, index",
    [
        ("B", 1), ("(b)", 1), ("Answer: C", 2), ("答案是A", 0), ("blue", 1), ("Blue.", 1),
        ("B. blue", 1), ("I think the answer is green", 2), ("E", None),
        ("red or blue", None), ("A, C", None), ("not blue", None), ("it isn't red", None),
    ],
)
def test_resolve_choice_lenient(answer, index):
    assert resolve_choice(answer, ["red", "blue", "green"]) == index


def test_resolve_choice_strict_and_contained_options():
    assert resolve_choice("blue.", ["red", "blue"], strict=True) is None
    assert resolve_choice("B", ["red", "blue"], strict=True) is None  # only the exact option
    assert resolve_choice("blue", ["red", "blue"], strict=True) == 1
    assert resolve_choice("it is not good", ["good", "not good"]) == 1  # the longer option wins
    assert resolve_choice("很满意还是很无奈", ["很满意", "很无奈", "一般"]) is None
    assert resolve_choice("不是很满意", ["很满意", "很无奈"]) is None
    assert resolve_choice("我觉得非常满意", ["满意", "一般"]) == 0  # 非常 is not a negation


def test_mrc_and_tc_accuracy_per_mode():
    mrc_gold = {"question": "q", "options": ["他", "她", "它"], "answers": ["她"]}
    rows = [row(f"m{i}", "MRC", f"q{i}", mrc_gold, mrc_gold["options"]) for i in range(6)]
    outputs = {"m0": '{"answer": "她"}', "m1": "B", "m2": '{"answer": "它"}', "m3": "???",
               "m4": "她还是它", "m5": ""}
    r = score_choice(rows, outputs)["MRC"]
    assert r["records"] == 6 and r["missing"] == 0
    assert r["strict"]["correct"] == 1 and r["strict"]["parse_failures"] == 1
    assert r["lenient"]["correct"] == 2 and r["lenient"]["ambiguous"] == 1
    assert r["lenient"]["accuracy"] == approx(100 / 3)
    assert r["iepile"]["accuracy"] == r["strict"]["accuracy"]

    tc_rows = [
        row("c1", "TC", "t1", {"label": "positive"}, ["negative", "positive"]),
        row("c2", "TC", "t2", {"label": "negative"},
            [{"label": "negative", "description": "d"}, {"label": "positive", "description": "d"}]),
        row("c3", "TC", "t3", {"label": "negative"}, ["negative", "positive"]),
        row("c4", "TC", "t4", {"label": "negative"}, ["negative", "positive"]),
        row("c5", "TC", "t5", {"label": "positive"}, ["negative", "positive"]),
    ]
    outputs = {"c1": '{"label": "Positive"}', "c2": "The review is negative.",
               "c3": "positive or negative", "c4": "not positive", "c5": "positive"}
    acc = score_rows(tc_rows, outputs)["accuracy"]
    assert acc["strict"]["correct"] == 1  # only "positive" is an exact label
    assert acc["lenient"]["correct"] == 3  # Positive, the sentence, positive
    assert acc["lenient"]["ambiguous"] == 2  # hedged and negated answers are wrong


def test_headline_per_mode_and_rows_without_gold():
    rows = [row("a", "NER", "r1", ner_gold(("per", "Ann")), ["per"])]
    scores = score_rows(rows, {"a": 'Answer: {"per": ["Ann"]}'})
    assert headline(scores, "iepile") == {"ner_f1": 0.0}
    assert headline(scores, "strict") == {"ner_f1": 100.0}
    with pytest.raises(ValueError, match="mode"):
        headline(scores, "loose")
    bad = dict(rows[0], label=None)
    with pytest.raises(ValueError, match="test-mode"):
        score_f1([bad], {"a": "{}"})
