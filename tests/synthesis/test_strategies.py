"""The strategy registry: one place for names, families, tasks, synthesisers and the
validators whose check names become asset checks."""

import json

import pytest

from hum_dagster.corpus.mix import VARIANTS
from hum_dagster.records import EE, IG, KGE, MRC, NER, OPENIE, TC, Problem
from hum_dagster.synthesis import formats, guidelines, preferences
from hum_dagster.synthesis.strategies import (
    BASIC_VALIDATORS,
    FAMILIES,
    STRATEGIES,
    ValidationContext,
    applicable,
    basic_parse_problems,
    basic_span_problems,
    in_families,
    strategy,
)


def test_registry_names_are_the_implementations_names():
    assert set(in_families(("guidelines", "paraphrase"))) == set(guidelines.GUIDELINE_STRATEGIES)
    assert in_families(("preference_rules",)) == (preferences.STRATEGY,)
    assert in_families(("format_variants",)) == (formats.STRATEGY,)
    assert {s.family for s in STRATEGIES.values()} == set(FAMILIES)
    with pytest.raises(KeyError, match="unknown compound strategy"):
        strategy("nope")
    with pytest.raises(ValueError, match="unknown strategy families"):
        in_families(("nope",))


def test_corpus_ablations_drop_whole_families():
    assert VARIANTS["full"] == ()
    assert set(VARIANTS["no_guidelines"]) == set(in_families(("guidelines", "paraphrase")))
    assert VARIANTS["no_format_variants"] == ("format_variants",)
    assert VARIANTS["no_preference_rules"] == ("preference_rules",)
    assert "combined" not in {s for v in VARIANTS.values() for s in v}  # dropped by its parts


def test_applicability_by_task_split_and_llm():
    assert applicable(IG) == ()
    # MRC and OpenIE take format variants only, alone or as a combined row's one part
    assert applicable(MRC) == ("format_variants", "combined") == applicable(OPENIE)
    assert "preference_rules" not in applicable(TC)
    assert "preference_rules" in applicable(NER)
    assert "preference_rules" in applicable(EE)  # via its EET rows (rule-based numerical)
    assert "preference_rules" not in applicable(KGE)  # rules need the LLM for KGE ...
    assert "preference_rules" in applicable(KGE, llm=True)  # ... which a live LLM gives
    assert applicable(NER, split="test") == () == applicable(NER, split="dev")


def _ner_row(output: dict) -> dict:
    return {
        "instruction_id": "i1", "task": NER,
        "instruction": json.dumps({"instruction": "x", "schema": ["person"], "input": "Ann met Bob."}),
        "schema": json.dumps(["person"]), "output": json.dumps(output),
    }


def test_basic_validators_route_by_check_name_not_by_wording():
    good = _ner_row({"person": ["Ann"]})
    assert basic_parse_problems(good) == [] == basic_span_problems(good)
    span = _ner_row({"person": ["Zed"]})
    assert basic_parse_problems(span) == []
    assert basic_span_problems(span) == [Problem("spans_occur_in_input", "i1", "entity 'Zed' does not occur in the input")]
    key = _ner_row({"person": [], "place": []})
    assert [p.check for p in basic_parse_problems(key)] == ["outputs_parse_with_own_labels"]
    assert basic_span_problems(key) == []
    assert {v.check for v in BASIC_VALIDATORS} == {"outputs_parse_with_own_labels", "spans_occur_in_input"}


def test_every_validator_emits_only_its_own_check_name():
    context = ValidationContext(base_rows={})
    bad = {**_ner_row({"person": ["Zed"], "x": []}), "variant": "json", "base_instruction_id": "b",
           "provenance": "{}", "language": "en", "text_id": "t"}
    for spec in STRATEGIES.values():
        for validator in spec.validators:
            for problem in validator.function(bad, context):
                assert problem.check == validator.check, (spec.name, validator.check)


def test_check_rows_gives_each_validators_own_problems_with_one_shared_pass(monkeypatch):
    """``check_rows`` (one step for all of an asset's checks) finds what each validator
    finds alone, and a pass shared by two checks runs once per row, not once per check."""
    from hum_dagster.synthesis import strategies

    rows = [
        _ner_row({"person": ["Ann"]}),
        {**_ner_row({"person": ["Zed"]}), "instruction_id": "i2"},
        {**_ner_row({"person": [], "place": []}), "instruction_id": "i3"},
        {**_ner_row({"person": ["Zed"], "x": []}), "instruction_id": "i4"},
    ]
    context = ValidationContext(base_rows={})
    found = strategies.check_rows(rows, BASIC_VALIDATORS, context)
    for validator in BASIC_VALIDATORS:
        alone = [p for row in rows for p in validator.function(row, context)]
        assert found[validator.check] == alone
    assert [p.record for p in found["spans_occur_in_input"]] == ["i2", "i4"]
    assert [p.record for p in found["outputs_parse_with_own_labels"]] == ["i3", "i4"]

    calls = []
    real = strategies.validate_basic_row

    def counting(row, spans=None):
        calls.append(row["instruction_id"])
        return real(row, spans=spans)

    monkeypatch.setattr(strategies, "validate_basic_row", counting)
    strategies.check_rows(rows, BASIC_VALIDATORS, context)
    assert calls == ["i1", "i2", "i3", "i4"]
    # a validator without a shared pass runs on its own; only the checks asked for come back
    only = strategies.check_rows(rows, BASIC_VALIDATORS[1:], context)
    assert set(only) == {"spans_occur_in_input"} and len(calls) == 8


def test_compound_validators_share_their_pass_and_keep_their_checks():
    for name in ("examples", "combined"):
        spec = STRATEGIES[name]
        shared = [v for v in spec.validators if v.shared is not None]
        assert {v.check for v in shared} == {"outputs_match_own_labels", "no_example_is_own_input"}
        assert len({v.shared for v in shared}) == 1
