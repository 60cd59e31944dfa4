"""Guideline compound instructions built from basic rows and schema dictionaries."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sample_sources import sample_rows, sample_source

from hum_dagster.dictionary import Example
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS
from hum_dagster.synthesis.guidelines import (
    GUIDELINE_STRATEGIES,
    OWN_INPUT,
    GuidelineConfig,
    run_guidelines,
    validate_compound_row,
)
from hum_dagster.synthesis.own_answers import check_own_answers

SOURCES = (
    "ner_en_conll",
    "ner_zh_iepile",
    "re_en_fewrel",
    "re_zh_iepile",
    "spo_zh_iepile",
    "ee_zh_iepile",
    "kge_zh_iepile",
    "tc_en_csv",
    "tc_zh_jsonl",
)


def _source(name: str):
    d, result = sample_source(name)
    return d, {mode: sample_rows(name, mode) for mode in ("train", "test")}, result


def _run(name: str, strategy: str, mode: str = "train", **config):
    d, rows, _ = _source(name)
    return run_guidelines(rows[mode], d, strategy, GuidelineConfig(**config))


def _keys(task: str, item) -> str:
    if isinstance(item, str):
        return item
    for field in ("label", "predicate", "event_type", "entity_type"):
        if field in item:
            return item[field]
    raise AssertionError(item)


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("mode", ["train", "test"])
def test_every_strategy_gives_valid_rows(name, mode):
    d, rows, _ = _source(name)
    by_id = {r["instruction_id"]: r for r in rows[mode]}
    config = GuidelineConfig(test_rows=mode == "test")  # test rows only for evaluation
    for strategy in GUIDELINE_STRATEGIES:
        out, report = run_guidelines(rows[mode], d, strategy, config)
        assert report.rows_in == len(rows[mode])
        assert report.rows_out == len(out) == report.rows_in - sum(report.skipped.values())
        assert out, (name, strategy)
        for row in out:
            assert tuple(row) == COMPOUND_COLUMNS
            assert row["strategy"] == strategy and row["mode"] == mode
            base = by_id[row["base_instruction_id"]]
            assert row["instruction_id"] != base["instruction_id"]
            assert row["label"] == base["label"] and row["record_id"] == base["record_id"]
            assert validate_compound_row(row) == [], (name, strategy, row["instruction"])
            inst = json.loads(row["instruction"])
            assert list(inst)[0] == "instruction" and list(inst)[-1] == "input"
            assert inst["input"] == json.loads(base["instruction"])["input"]
            assert json.loads(row["provenance"])["dictionary"] == name


@pytest.mark.parametrize("strategy", GUIDELINE_STRATEGIES)
def test_test_mode_rows_get_no_training_guidelines(strategy):
    d, rows, _ = _source("re_en_fewrel")
    out, report = run_guidelines(rows["test"], d, strategy)
    assert out == [] and report.skipped == {"test-mode row (evaluation only)": len(rows["test"])}
    mixed, _ = run_guidelines(rows["train"] + rows["test"], d, strategy)
    assert mixed and {r["mode"] for r in mixed} == {"train"}


def test_description_items_carry_the_seeded_description():
    out, _ = _run("ner_en_conll", "description")
    d, _, _ = _source("ner_en_conll")
    item = json.loads(out[0]["instruction"])["schema"][0]
    assert item["description"] == d.get(item["label"]).descriptions[0].value
    prov = json.loads(out[0]["provenance"])
    assert prov["descriptions"][item["label"]] == "seed:conll.yaml"
    assert "descriptions" in json.loads(out[0]["instruction"])["instruction"]


def test_description_variants_never_use_the_canonical_description():
    out, _ = _run("ee_zh_iepile", "description_variants")
    d, _, _ = _source("ee_zh_iepile")
    assert {r["task"] for r in out} == {"EE", "EET", "EEA"}
    for row in out:
        for item in json.loads(row["instruction"])["schema"]:
            entry = d.get(item.get("event_type") or item["label"])
            assert item["description"] != entry.descriptions[0].value
            assert item["description"] in [t.value for t in entry.descriptions[1:]]


@pytest.mark.parametrize(
    "name", ["ner_en_conll", "ner_zh_bioes", "re_zh_iepile", "ee_zh_iepile", "tc_en_csv"]
)
def test_label_variants_replace_labels_in_schema_and_output(name):
    d, rows, _ = _source(name)
    out, report = run_guidelines(rows["train"], d, "label_variants")
    by_id = {r["instruction_id"]: r for r in rows["train"]}
    for row in out:
        task = row["task"]
        schema = json.loads(row["instruction"])["schema"]
        prov = json.loads(row["provenance"])
        label_map = prov["label_map"]
        labels = [_keys(task, it) for it in schema]
        assert set(labels) == set(label_map)  # every label was replaced
        for new, old in label_map.items():
            assert new != old and new in [v.value for v in d.get(old).variants]
        output = json.loads(row["output"])
        base_output = json.loads(by_id[row["base_instruction_id"]]["output"])
        if task == "TC":
            assert output["label"] in labels and label_map[output["label"]] == base_output["label"]
        else:
            assert list(output) == labels
            assert [label_map[k] for k in output] == list(base_output)
        if task == "EE":  # roles were renamed inside the output too
            for key, events in output.items():
                item = next(it for it in schema if it["event_type"] == key)
                for ev in events:
                    assert set(ev["arguments"]) == set(item["arguments"])


def test_label_masking_uses_placeholders_consistently():
    for name in ("ner_zh_iepile", "tc_zh_jsonl", "ee_zh_iepile", "re_en_fewrel"):
        d, rows, _ = _source(name)
        config = GuidelineConfig(mask_ratio=0.5, test_rows=True)
        out, _ = run_guidelines(rows["test"], d, "label_masking", config)
        for row in out:
            task = row["task"]
            schema = json.loads(row["instruction"])["schema"]
            label_map = json.loads(row["provenance"])["label_map"]
            labels = [_keys(task, it) for it in schema]
            masked = [label for label in labels if label.startswith("LABEL_")]
            assert masked and sorted(masked) == sorted(label_map)
            assert masked == [f"LABEL_{i}" for i in range(1, len(masked) + 1)]
            for item in schema:
                if _keys(task, item) in label_map:
                    original = label_map[_keys(task, item)]
                    # the first description, unless it names the record's own answer
                    # (a masked event type's trigger list): then a later one
                    descriptions = [t.value for t in d.get(original).descriptions]
                    assert item["description"] in descriptions
                    if item["description"] != descriptions[0]:
                        assert check_own_answers([{**row, "instruction": json.dumps(
                            {**json.loads(row["instruction"]), "schema": [
                                {**it, "description": descriptions[0]} if it is item else it
                                for it in schema]}, ensure_ascii=False)}], rows["test"])
                    assert original not in labels
            output = json.loads(row["output"])
            if task == "TC":
                assert output["label"] in labels
            else:
                assert list(output) == labels


def test_examples_are_never_the_instructions_own_input():
    for name in SOURCES:
        d, rows, result = _source(name)
        text_ids = {r.text: r.text_id for r in result.records}
        for strategy in ("examples", "representative_examples"):
            out, _ = run_guidelines(rows["train"], d, strategy)
            for row in out:
                inst = json.loads(row["instruction"])
                shown = json.loads(row["provenance"]).get("example_text_ids", [])
                assert row["text_id"] not in shown
                for item in inst["schema"]:
                    for key in ("positive examples", "negative examples"):
                        for x in item.get(key, []):
                            assert x["text"] != inst["input"]
                            assert text_ids.get(x["text"]) != row["text_id"]
                    for x in item.get("examples", []):
                        assert x != inst["input"]


def test_examples_strategy_shape_and_instruction_sentence():
    out, _ = _run("ner_en_conll", "examples", n_positive=2, n_negative=1)
    inst = json.loads(out[0]["instruction"])
    assert "positive examples" in inst["instruction"]
    for item in inst["schema"]:
        assert 1 <= len(item["positive examples"]) <= 2 and len(item["negative examples"]) <= 1
        for x in item["negative examples"]:
            assert set(x) == {"text", "answer", "reason"}


def test_a_label_whose_only_examples_are_the_input_skips_the_row():
    d, rows, result = _source("ner_en_conll")
    row = rows["train"][0]
    own = next(r for r in result.records if r.record_id == row["record_id"])
    d2 = dataclasses.replace(d, entries=dict(d.entries))
    for key, entry in d.entries.items():
        mine = Example(text=own.text, value="x", provenance="mined", text_id=own.text_id)
        d2.entries[key] = dataclasses.replace(entry, positives=[mine], negatives=[])
    out, report = run_guidelines([row], d2, "examples")
    assert out == [] and report.skipped == {"no usable examples": 1}
    # by text id alone (different snippet text)
    for key, entry in d.entries.items():
        other = Example(text="some other text", value="x", provenance="mined", text_id=own.text_id)
        d2.entries[key] = dataclasses.replace(entry, positives=[other], negatives=[])
    out, report = run_guidelines([row], d2, "examples")
    assert out == [] and report.skipped == {"no usable examples": 1}


def test_rows_without_what_the_strategy_needs_are_skipped_by_reason():
    d, rows, _ = _source("ner_en_conll")
    bare = dataclasses.replace(
        d, entries={k: dataclasses.replace(e, variants=[]) for k, e in d.entries.items()}
    )
    out, report = run_guidelines(rows["train"], bare, "label_variants")
    assert out == [] and report.skipped == {"no variant": len(rows["train"])}
    empty = dataclasses.replace(d, entries={})
    out, report = run_guidelines(rows["train"], empty, "description")
    assert out == [] and report.skipped == {"no dictionary entry": len(rows["train"])}
    # output_format needs no dictionary
    out, report = run_guidelines(rows["train"], empty, "output_format")
    assert len(out) == len(rows["train"])
    mrc = dict(rows["train"][0], task="MRC")
    out, report = run_guidelines([mrc], d, "description")
    assert report.skipped == {"task has no label schema": 1}


def test_output_format_names_the_chunks_own_labels():
    for name in ("ner_en_conll", "ee_zh_iepile", "kge_zh_iepile", "re_zh_iepile"):
        out, _ = _run(name, "output_format")
        for row in out:
            inst = json.loads(row["instruction"])
            skeleton = inst["output_format"]
            assert list(skeleton) == list(json.loads(row["output"]))
            assert "output_format" in inst["instruction"]


def test_validator_catches_corrupted_rows():
    out, _ = _run("ner_en_conll", "label_variants")
    row = out[0]
    assert validate_compound_row(row) == []
    output = json.loads(row["output"])
    original = json.loads(row["provenance"])["label_map"]
    first_new = next(iter(output))
    corrupted = {original[first_new] if k == first_new else k: v for k, v in output.items()}
    problems = validate_compound_row(dict(row, output=json.dumps(corrupted)))
    assert any("is not a schema label" in p for p in problems)
    assert validate_compound_row(dict(row, output="{not json"))
    # an example that is the input itself
    ex, _ = _run("ner_en_conll", "examples")
    row = ex[0]
    inst = json.loads(row["instruction"])
    inst["schema"][0]["positive examples"][0]["text"] = inst["input"]
    bad = dict(
        row,
        instruction=json.dumps(inst, ensure_ascii=False),
        schema=json.dumps(inst["schema"], ensure_ascii=False),
    )
    problems = validate_compound_row(bad)
    assert any(OWN_INPUT in p for p in problems)
    prov = json.loads(row["provenance"])
    prov["example_text_ids"] = [row["text_id"]]
    problems = validate_compound_row(dict(row, provenance=json.dumps(prov)))
    assert any(OWN_INPUT in p for p in problems)


def test_deterministic_under_the_seed():
    for strategy in GUIDELINE_STRATEGIES:
        a, _ = _run("ner_zh_bioes", strategy)
        b, _ = _run("ner_zh_bioes", strategy)
        assert a == b
    a, _ = _run("re_zh_iepile", "label_variants", seed=1)
    b, _ = _run("re_zh_iepile", "label_variants", seed=2)
    assert [r["instruction"] for r in a] != [r["instruction"] for r in b]
    assert {r["base_instruction_id"] for r in a} == {r["base_instruction_id"] for r in b}
    assert [r["instruction_id"] for r in a] != [r["instruction_id"] for r in b]


def test_row_order_does_not_change_rows():
    d, rows, _ = _source("ee_zh_iepile")
    forward, _ = run_guidelines(rows["train"], d, "examples")
    backward, _ = run_guidelines(list(reversed(rows["train"])), d, "examples")
    assert sorted(forward, key=lambda r: r["instruction_id"]) == sorted(
        backward, key=lambda r: r["instruction_id"]
    )


def test_kge_output_format_says_attributes_not_found_are_left_out():
    out, _ = _run("kge_zh_iepile", "output_format")
    assert out
    for row in out:
        inst = json.loads(row["instruction"])
        skeleton = inst["output_format"]
        (etype,) = skeleton
        listed = set(next(iter(skeleton[etype].values())))
        output = json.loads(row["output"])
        found = {a for attrs in output[etype].values() for a in attrs}
        assert found <= listed
        assert "只写input中给出的属性" in inst["instruction"]
        if found != listed:  # the row keeps fewer keys than the skeleton shows, as stated
            assert "并非都必须出现" in inst["instruction"]
    ner, _ = _run("ner_en_conll", "output_format")
    assert "only the attributes" not in json.loads(ner[0]["instruction"])["instruction"]
