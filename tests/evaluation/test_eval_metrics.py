"""Evaluation metrics against hand-computed cases (IEPile-compatible micro P/R/F1)."""

from __future__ import annotations

import json

import pytest

from hum_dagster.evaluation import metrics
from hum_dagster.evaluation.metrics import (
    normalise_text,
    parse_json_prediction,
    predicted_tuples,
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


def test_ner_chunks_merge_duplicates_and_unparseable():
    # record r1: gold {(per, Ann), (loc, Paris), (org, ACME)}; two chunks.
    # chunk 0 predicts per Ann twice (counts once) and a wrong loc; chunk 1 predicts
    # org ACME and per Ann again (merged: still once).
    # record r2: gold {(per, Bob)}; its only chunk does not parse -> no prediction.
    rows = [
        row(
            "a0",
            "NER",
            "r1",
            ner_gold(("per", "Ann"), ("loc", "Paris"), ("org", "ACME")),
            ["per", "loc"],
        ),
        row(
            "a1", "NER", "r1", ner_gold(("per", "Ann"), ("loc", "Paris"), ("org", "ACME")), ["org"]
        ),
        row("b0", "NER", "r2", ner_gold(("per", "Bob")), ["per"]),
    ]
    outputs = {
        "a0": '{"per": ["Ann", "Ann"], "loc": ["London"]}',
        "a1": '```json\n{"org": ["ACME"], "per": ["Ann"]}\n```',
        "b0": "Sorry, I cannot help with that.",
    }
    result = score_f1(rows, outputs)["ner_f1"]
    # pred = {(per,Ann),(loc,London),(org,ACME)} -> 3; gold 3 + 1 = 4; tp = 2
    assert result["strict"] == {
        "tp": 2,
        "gold": 4,
        "pred": 3,
        "P": approx(200 / 3),
        "R": approx(50.0),
        "F1": approx(2 * (200 / 3) * 50 / (200 / 3 + 50)),
    }
    assert result["records"] == 2 and result["chunks"] == 3
    assert result["parse_failures"] == 1 and result["missing"] == 0


def test_empty_gold_and_empty_prediction():
    rows = [
        row("x", "NER", "r1", ner_gold(), ["per"]),  # empty gold, predicts one: FP
        row("y", "NER", "r2", ner_gold(("per", "Ann")), ["per"]),  # gold, empty pred: FN
        row("z", "NER", "r3", ner_gold(), ["per"]),  # empty gold, empty pred: nothing
    ]
    outputs = {"x": '{"per": ["Zed"]}', "y": '{"per": []}', "z": '{"per": []}'}
    s = score_f1(rows, outputs)["ner_f1"]["strict"]
    assert (s["tp"], s["gold"], s["pred"]) == (0, 1, 1)
    assert s["P"] == 0.0 and s["R"] == 0.0 and s["F1"] == 0.0
    # nothing at all: zero denominators give 0, not an error
    s = score_f1([row("z", "NER", "r3", ner_gold(), ["per"])], {"z": '{"per": []}'})
    assert s["ner_f1"]["strict"]["F1"] == 0.0 and s["ner_f1"]["strict"]["gold"] == 0


def test_missing_generation_counts_as_no_prediction():
    rows = [row("a", "NER", "r1", ner_gold(("per", "Ann")), ["per"])]
    s = score_f1(rows, {})["ner_f1"]
    assert s["missing"] == 1 and s["parse_failures"] == 0 and s["strict"]["pred"] == 0


def test_re_tuples_and_normalised_mode():
    gold = {
        "relations": [
            {"head": "barack obama", "relation": "spouse", "tail": "michelle obama"},
            {"head": "paris", "relation": "country", "tail": "france"},
        ]
    }
    rows = [row("r", "RE", "r1", gold, ["spouse", "country"])]
    out = {
        "r": json.dumps(
            {
                "spouse": [{"subject": "Barack Obama", "object": "Michelle  Obama."}],
                "country": [{"subject": "paris", "object": "france"}, {"subject": "x"}, "junk"],
            }
        )
    }
    s = score_f1(rows, out)["re_f1"]
    assert (s["strict"]["tp"], s["strict"]["gold"], s["strict"]["pred"]) == (1, 2, 2)
    assert s["strict"]["F1"] == approx(50.0)
    assert (s["normalised"]["tp"], s["normalised"]["pred"]) == (2, 2)
    assert s["normalised"]["F1"] == approx(100.0)


def test_normalise_text():
    assert normalise_text("  The  U.S.A.,\tInc! ") == "the u s a inc"
    assert normalise_text("ＡＢＣ「北京」") == "abc 北京"


def test_event_trigger_and_argument_f1():
    gold = {
        "events": [
            {
                "event_type": "hire",
                "trigger": "hired",
                "arguments": [
                    {"role": "employer", "argument": "ACME"},
                    {"role": "employee", "argument": "Ann"},
                    {"role": "time", "argument": ""},
                ],
            },
            {
                "event_type": "fire",
                "trigger": "fired",
                "arguments": [{"role": "employee", "argument": "Bob"}],
            },
        ]
    }
    rows = [
        row("t0", "EET", "e1", gold, ["hire"]),
        row("t1", "EET", "e1", gold, ["fire", "quit"]),
        row(
            "a0",
            "EEA",
            "e1",
            gold,
            [{"event_type": "hire", "arguments": ["employer", "employee", "time"]}],
        ),
        row("a1", "EEA", "e1", gold, [{"event_type": "fire", "arguments": ["employee"]}]),
    ]
    outputs = {
        "t0": '{"hire": ["hired", "hired"]}',
        "t1": '{"fire": [], "quit": ["left"]}',
        # NAN arguments are ignored; a list value gives one tuple per element
        "a0": '{"hire": [{"employer": "ACME", "employee": ["Ann", "Carl"], "time": "NAN"}]}',
        "a1": "not json",
    }
    s = score_f1(rows, outputs)
    t = s["trigger_f1"]["strict"]
    assert (t["tp"], t["gold"], t["pred"]) == (1, 2, 2)  # (hire,hired) once, (quit,left)
    a = s["argument_f1"]["strict"]
    assert (a["tp"], a["gold"], a["pred"]) == (2, 3, 3)
    assert a["P"] == approx(200 / 3) and a["R"] == approx(200 / 3) and a["F1"] == approx(200 / 3)
    assert s["argument_f1"]["parse_failures"] == 1 and s["trigger_f1"]["parse_failures"] == 0


def test_ee_output_gives_both_kinds():
    value = {
        "hire": [
            {"trigger": "hired", "arguments": {"employer": "ACME", "time": "NAN"}},
            {"trigger": "NAN", "arguments": {}},
        ]
    }
    got = predicted_tuples("EE", value)
    assert got == {"trigger": {("hire", "hired")}, "argument": {("hire", "employer", "ACME")}}


def test_parse_json_prediction():
    assert parse_json_prediction("NER", 'Answer:\n```json\n{"a": ["x"]}\n``` done').value == {
        "a": ["x"]
    }
    assert parse_json_prediction("NER", 'prefix {"a": ["}"]} suffix {"b": 1}').value == {"a": ["}"]}
    bad = parse_json_prediction("NER", "[1, 2]")
    assert not bad.ok and "object" in bad.error
    assert not parse_json_prediction("NER", "").ok
    assert not parse_json_prediction("NER", None).ok
    assert parse_json_prediction("TC", '"positive"').value == "positive"


def test_parse_prediction_prefers_external_parser(monkeypatch):
    class FakeParsed:
        value = {"per": ["Ann"]}
        style = "text"
        ok = True
        error = None

    monkeypatch.setattr(
        metrics, "_external_parser", lambda: lambda task, text, schema: FakeParsed()
    )
    got = metrics.parse_prediction("NER", "per: Ann", ["per"])
    assert got.ok and got.value == {"per": ["Ann"]} and got.style == "text"
    assert metrics.parser_name() == "hum_dagster.synthesis.parser.parse_output"

    def broken(task, text, schema):
        raise RuntimeError("boom")

    monkeypatch.setattr(metrics, "_external_parser", lambda: broken)
    got = metrics.parse_prediction("NER", "x", ["per"])
    assert not got.ok and "boom" in got.error


@pytest.mark.parametrize(
    "answer, index",
    [
        ("B", 1),
        ("(b)", 1),
        ("Answer: C", 2),
        ("答案是A", 0),
        ("blue", 1),
        ("Blue.", 1),
        ("B. blue", 1),
        ("I think the answer is green", 2),
        ("E", None),
        ("red or blue", None),
    ],
)
def test_resolve_choice(answer, index):
    assert resolve_choice(answer, ["red", "blue", "green"]) == index


def test_resolve_choice_strict_and_contained_options():
    assert resolve_choice("blue.", ["red", "blue"], strict=True) is None
    assert resolve_choice("B", ["red", "blue"], strict=True) == 1
    # "good" is inside "not good": the longer option wins
    assert resolve_choice("it is not good", ["good", "not good"]) == 1


def test_mrc_and_tc_accuracy(monkeypatch):
    monkeypatch.setattr(metrics, "_external_parser", lambda: None)  # hand counts: JSON only
    mrc_gold = {"question": "q", "options": ["他", "她", "它"], "answers": ["她"]}
    rows = [
        row("m1", "MRC", "q1", mrc_gold, mrc_gold["options"]),
        row("m2", "MRC", "q2", mrc_gold, mrc_gold["options"]),
        row("m3", "MRC", "q3", mrc_gold, mrc_gold["options"]),
        row("m4", "MRC", "q4", mrc_gold, mrc_gold["options"]),
    ]
    outputs = {"m1": '{"answer": "她"}', "m2": "B", "m3": '{"answer": "它"}', "m4": "???"}
    r = score_choice(rows, outputs)["MRC"]
    assert (r["records"], r["correct"], r["parse_failures"], r["unresolved"]) == (4, 2, 2, 1)
    assert r["accuracy"] == approx(50.0) and r["from_raw_text"] == 2
    r = score_choice(rows, outputs, raw_text_fallback=False)["MRC"]
    assert r["correct"] == 1 and r["unresolved"] == 2

    tc_rows = [
        row("c1", "TC", "t1", {"label": "positive"}, ["negative", "positive"]),
        row(
            "c2",
            "TC",
            "t2",
            {"label": "negative"},
            [{"label": "negative", "description": "d"}, {"label": "positive", "description": "d"}],
        ),
        row("c3", "TC", "t3", {"label": "negative"}, ["negative", "positive"]),
    ]
    outputs = {
        "c1": '{"label": "Positive"}',
        "c2": "The review is negative.",
        "c3": '{"label": "positive"}',
    }
    result = score_rows(tc_rows, outputs)
    acc = result["accuracy"]
    assert acc["correct"] == 2 and acc["accuracy"] == approx(200 / 3)
    assert acc["correct_strict"] == 0  # "Positive" and a sentence are not exact labels
    assert result["parser"] in ("json", "hum_dagster.synthesis.parser.parse_output")


def test_rows_without_gold_are_rejected():
    r = row("a", "NER", "r1", ner_gold(), ["per"])
    r["label"] = None
    with pytest.raises(ValueError, match="test-mode"):
        score_f1([r], {"a": "{}"})


def test_with_the_project_parser_out_of_schema_labels_count():
    pytest.importorskip("hum_dagster.synthesis.parser")
    rows = [row("a", "NER", "r1", ner_gold(("per", "Ann")), ["per"])]
    # text format, plus a label outside the chunk's schema: a false positive as in IEPile
    s = score_f1(rows, {"a": "per: Ann\nloc: Paris"})["ner_f1"]["strict"]
    assert (s["tp"], s["gold"], s["pred"]) == (1, 1, 2)
    assert metrics.parser_name() == "hum_dagster.synthesis.parser.parse_output"
    s = score_f1(rows, {"a": "Sorry, I cannot help with that."})["ner_f1"]
    assert s["parse_failures"] == 1 and s["strict"]["pred"] == 0
