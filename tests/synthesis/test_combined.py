"""Combined compound instructions: several strategies in one row, drawn per record."""

from __future__ import annotations

import json
import random
from collections import Counter
from functools import cache

import polars as pl
import pytest
from sample_sources import sample_rows, sample_source

from hum_dagster.corpus.mix import MixConfig, build_variant
from hum_dagster.corpus.strategy_mix import PAPER_COUNTS, strategy_mix
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS
from hum_dagster.synthesis.combined import combined_rows
from hum_dagster.synthesis.combined_weights import (
    FAMILY_SETS,
    CombinedConfig,
    draw_order,
    load_combined_config,
    options_for,
)
from hum_dagster.synthesis.formats import read_strict
from hum_dagster.synthesis.strategies import (
    FORMAT_CHECK,
    LABELS_CHECK,
    OWN_ANSWER_CHECK,
    OWN_INPUT_CHECK,
    STRATEGIES,
    STRATEGIES_CHECK,
    ValidationContext,
    validate_rows,
)

SOURCES = ("ner_en_conll", "ner_zh_bioes", "re_zh_iepile", "re_en_fewrel", "spo_zh_iepile",
           "ee_zh_iepile", "kge_zh_iepile", "tc_en_csv", "mrc_en_squad", "openie_en_carb")
PAPER_N = 1_261_658
VALIDATORS = STRATEGIES["combined"].validators


def _source(name: str):
    return sample_source(name)[0], sample_rows(name, "train")


def _config(**weights) -> CombinedConfig:
    base = load_combined_config()
    return CombinedConfig(
        weights.get("family_sets", base.family_sets),
        weights.get("guideline_forms", base.guideline_forms),
        weights.get("preference_guideline_forms", base.preference_guideline_forms),
    )


@cache
def _combined(name: str, family_sets: tuple = ()):
    d, rows = _source(name)
    config = _config(family_sets=dict(family_sets)) if family_sets else load_combined_config()
    return rows, combined_rows(rows, d, config)


def _context(rows) -> ValidationContext:
    return ValidationContext(base_rows={r["instruction_id"]: r for r in rows})


# --------------------------------------------------------------------------- weights


def test_default_weights_give_the_papers_marginals():
    target = load_combined_config().target_marginals()
    for family, count in PAPER_COUNTS.items():
        assert target[family] == pytest.approx(count / PAPER_N, abs=2e-5), family
    # the overlaps the paper's counts imply: shares sum to more than 1 by 33,673 rows
    assert sum(target.values()) - 1 == pytest.approx(33_673 / PAPER_N, abs=5e-5)


def test_weighted_draws_reproduce_the_weights():
    config = load_combined_config()
    options = options_for(config, "NER")  # NER takes every family
    firsts = Counter()
    for i in range(20_000):
        first = draw_order(options, random.Random(i))[0]
        firsts.update(set(first.family_set.split("+")))
    target = config.target_marginals()
    for family in ("guidelines", "format_variants", "preference_rules"):
        assert firsts[family] / 20_000 == pytest.approx(target[family], abs=0.006), family
    order = draw_order(options, random.Random(0))
    assert sorted(map(id, order)) == sorted(map(id, options))  # each option once


def test_options_follow_the_task():
    config = load_combined_config()
    assert {o.family_set for o in options_for(config, "MRC")} == {"format_variants"}
    kge = options_for(config, "KGE")
    assert "preference_rules" not in {o.family_set for o in kge}  # rules need the LLM for KGE
    assert "guidelines+preference_rules" in {o.family_set for o in options_for(config, "KGE", True)}
    # a renaming part joins other parts only where example answers hold no label names
    assert not [o for o in kge if o.form and "label_variants+" in o.form or
                o.form and "+label_variants" in o.form]
    assert any(o.form == "examples+label_variants" or o.form == "label_variants+examples"
               for o in options_for(config, "NER"))
    with_format = [o for o in options_for(config, "NER") if o.family_set == "guidelines+format_variants"]
    assert with_format and not any("output_format" in o.form or "label_" in o.form for o in with_format)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("family_sets", {"guidelines+nope": 1}, "unknown family sets"),
        ("family_sets", {"guidelines": -1}, "must be a number >= 0"),
        ("family_sets", {"guidelines": 0}, "sum to 0"),
        ("guideline_forms", {"description+nope": 1}, "unknown guideline strategies"),
        ("guideline_forms", {"label_masking+description": 1}, "does not combine with"),
        ("guideline_forms", {"examples+label_masking": 1}, "does not combine with"),
        ("guideline_forms", {"label_masking+label_variants": 1}, "at most one of"),
        ("guideline_forms", {"examples+examples": 1}, "names a strategy twice"),
        ("preference_guideline_forms", {"output_format": 1}, "keep the labels"),
    ],
)
def test_bad_weights_are_refused_in_one_line(field, value, message):
    with pytest.raises(ValueError, match=message) as info:
        _config(**{field: value})
    assert "\n" not in str(info.value)


def test_a_weights_file_names_itself_in_errors(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"family_sets": {"guidelines": 1}}))
    with pytest.raises(ValueError, match=f"{path}: combined-strategy weights lack"):
        load_combined_config(path)
    data = json.loads((ASSETS_DIR / "rules" / "combined.json").read_text())
    data["family_sets"]["format_variants"] = "many"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{path}: family_sets\['format_variants'\]"):
        load_combined_config(path)


# --------------------------------------------------------------------------- rows


@pytest.mark.parametrize("name", SOURCES)
def test_every_combined_row_passes_the_checks_of_its_parts(name):
    rows, result = _combined(name)
    assert result.rows, result.report
    assert validate_rows(result.rows, VALIDATORS, _context(rows)) == []
    for row in result.rows:
        assert tuple(row) == COMPOUND_COLUMNS
        assert row["strategy"] == "combined" and row["strategies"]
        assert json.loads(row["provenance"])["strategies"] == row["strategies"].split("+")
    # one row per train-mode basic row that can take a compound strategy
    assert result.report["rows_out"] == len({r["base_instruction_id"] for r in result.rows})


def test_description_plus_examples_carries_both():
    rows, result = _combined("ner_en_conll", (("guidelines", 1.0),))
    both = [r for r in result.rows if r["strategies"] == "description+examples"]
    assert both
    for row in both:
        inst = json.loads(row["instruction"])
        for item in inst["schema"]:
            assert item["description"] and "positive examples" in item
        assert "description of what its label covers" in inst["instruction"]
        assert "positive examples" in inst["instruction"]
        base = next(r for r in rows if r["instruction_id"] == row["base_instruction_id"])
        assert row["output"] == base["output"]


def test_guidelines_with_a_format_variant_state_both_and_read_back():
    rows, result = _combined("ner_en_conll", (("guidelines+format_variants", 1.0),))
    assert result.rows and result.report["by_strategies"]
    by_id = {r["instruction_id"]: r for r in rows}
    for row in result.rows:
        parts = row["strategies"].split("+")
        assert "format_variants" in parts and len(parts) >= 2, parts
        inst = json.loads(row["instruction"])
        prov = json.loads(row["provenance"])
        base = by_id[row["base_instruction_id"]]
        items = [it["label"] if isinstance(it, dict) else it for it in inst["schema"]]
        value = read_strict(prov["style"], "NER", row["output"], prov["empty"] or "blank",
                            prov["layout"], "en", (), items)
        assert value == json.loads(base["output"])
        assert "Reply with a JSON object" not in inst["instruction"]  # the format replaces it
        assert inst["format"] == prov["style"]


def test_preference_rules_with_their_descriptions():
    rows, result = _combined("re_en_fewrel", (("guidelines+preference_rules", 1.0),))
    assert result.rows, result.report
    for row in result.rows:
        assert row["strategies"] == "description+preference_rules"
        inst = json.loads(row["instruction"])
        assert inst["rules"] and inst["rules"][0]["rule"]
        described = [it for it in inst["schema"] if isinstance(it, dict)]
        assert described and all(it["description"] for it in described)
        ruled = inst["rules"][0]["label"]
        base = next(r for r in rows if r["instruction_id"] == row["base_instruction_id"])
        assert row["output"] != base["output"]  # relabelled under the rule
        assert ruled in json.loads(row["output"])


def test_a_record_whose_draw_cannot_be_made_takes_its_next_draw():
    # on this source some records draw a part their row cannot have (a representative
    # example that would be its own value, a preference rule no rule applies to): they
    # take their next draw, and every record still gets a row
    rows, result = _combined("re_zh_iepile")
    assert sum(result.report["fallbacks"].values()) >= 1
    assert result.report["rows_out"] == len(rows)


def test_deterministic_and_independent_of_row_order():
    d, rows = _source("ee_zh_iepile")
    first = combined_rows(rows, d).rows
    again = combined_rows(list(reversed(rows)), d).rows
    key = lambda r: r["instruction_id"]  # noqa: E731
    assert sorted(first, key=key) == sorted(again, key=key)
    other = combined_rows(rows, d, CombinedConfig(**{
        **{k: getattr(load_combined_config(), k) for k in
           ("family_sets", "guideline_forms", "preference_guideline_forms")}, "seed": 7}))
    assert [r["strategies"] for r in other.rows] != [r["strategies"] for r in first]


# --------------------------------------------------------------------------- checks fail


def _one(rows, parts: str, source: str, family_sets) -> dict:
    _, result = _combined(source, family_sets)
    return dict(next(r for r in result.rows if r["strategies"] == parts))


def _failed(row, rows) -> set[str]:
    return {p.check for p in validate_rows([row], VALIDATORS, _context(rows))}


def test_label_check_fails_on_a_foreign_label():
    _, rows = _source("ner_en_conll")
    row = _one(rows, "description+examples", "ner_en_conll", (("guidelines", 1.0),))
    output = json.loads(row["output"])
    output["planet"] = output.pop(next(iter(output)))
    assert LABELS_CHECK in _failed({**row, "output": json.dumps(output)}, rows)


def test_own_input_check_fails_when_an_example_is_the_input():
    _, rows = _source("ner_en_conll")
    row = _one(rows, "description+examples", "ner_en_conll", (("guidelines", 1.0),))
    inst = json.loads(row["instruction"])
    inst["schema"][0]["positive examples"][0]["text"] = inst["input"]
    bad = {**row, "instruction": json.dumps(inst), "schema": json.dumps(inst["schema"])}
    assert OWN_INPUT_CHECK in _failed(bad, rows)


def test_own_answer_check_fails_when_a_description_quotes_the_answer():
    _, rows = _source("ner_en_conll")
    row = _one(rows, "description+examples", "ner_en_conll", (("guidelines", 1.0),))
    span = next(v[0] for v in json.loads(row["output"]).values() if v)
    inst = json.loads(row["instruction"])
    inst["schema"][0]["description"] += f" For example {span}."
    bad = {**row, "instruction": json.dumps(inst), "schema": json.dumps(inst["schema"])}
    assert OWN_ANSWER_CHECK in _failed(bad, rows)


def test_format_check_fails_on_an_unstated_wording_or_a_changed_output():
    rows, result = _combined("ner_en_conll", (("guidelines+format_variants", 1.0),))
    row = dict(result.rows[0])
    inst = json.loads(row["instruction"])
    # the guideline sentences dropped from the wording
    lost = {**inst, "instruction": inst["instruction"].split(" Each schema item")[0]}
    assert FORMAT_CHECK in _failed({**row, "instruction": json.dumps(lost)}, rows)
    # an output that is not the base answer in the stated format
    assert FORMAT_CHECK in _failed({**row, "output": row["output"] + "\nextra line"}, rows)
    # the base row missing from the stored basic partition
    assert {p.check for p in validate_rows([row], VALIDATORS, ValidationContext())} >= {FORMAT_CHECK}


def test_strategies_check_fails_when_a_listed_part_is_not_shown():
    _, rows = _source("ner_en_conll")
    row = _one(rows, "description+examples", "ner_en_conll", (("guidelines", 1.0),))
    assert STRATEGIES_CHECK in _failed({**row, "strategies": "description+examples+format_variants"}, rows)
    assert STRATEGIES_CHECK in _failed({**row, "strategies": "description+nope"}, rows)
    inst = json.loads(row["instruction"])
    for item in inst["schema"]:
        item.pop("positive examples"), item.pop("negative examples")
    bad = {**row, "instruction": json.dumps(inst), "schema": json.dumps(inst["schema"])}
    assert STRATEGIES_CHECK in _failed(bad, rows)


# --------------------------------------------------------------------------- corpus


def _pool() -> pl.DataFrame:
    def row(i, strategy, strategies, base=None):
        return {"instruction_id": f"i{i}", "base_instruction_id": base, "source": "s",
                "task": "NER", "strategy": strategy, "strategies": strategies}

    rows = [row(i, "basic", None) for i in range(40)]
    rows += [row(100, "combined", "description+format_variants", "i0"),
             row(101, "combined", "description+preference_rules", "i1"),
             row(102, "combined", "format_variants", "i2"),
             row(103, "description", "description", "i3"),
             row(104, "combined", "examples+label_variants", "i4")]
    return pl.DataFrame(rows)


@pytest.mark.parametrize(
    ("variant", "dropped"),
    [
        ("no_format_variants", {"i100", "i102"}),
        ("no_guidelines", {"i100", "i101", "i103", "i104"}),
        ("no_preference_rules", {"i101"}),
    ],
)
def test_ablations_drop_combined_rows_carrying_any_dropped_part(variant, dropped):
    pool = _pool()
    config = MixConfig(kind_shares={"basic": 0.5, "compound": 0.5}, task_shares={"NER": 1.0})
    full = build_variant(pool, "full", config).rows["instruction_id"].to_list()
    assert {f"i{i}" for i in range(100, 105)} <= set(full)
    result = build_variant(pool, variant, config)
    ids = set(result.rows["instruction_id"].to_list())
    assert not ids & dropped
    assert {f"i{i}" for i in range(100, 105)} - dropped <= ids
    assert result.report["variant"]["removed"] == len(dropped)


def test_strategy_mix_counts_overlaps_against_the_scaled_paper():
    mix = strategy_mix(_pool())
    assert mix["compound_rows"] == 5
    fam = mix["families"]
    assert fam["guidelines"]["rows"] == 4  # 100, 101, 103, 104
    assert fam["format_variants"]["rows"] == 2
    assert fam["preference_rules"]["rows"] == 1
    assert mix["overlap"] == 2 == mix["rows_with_several_families"]
    assert fam["guidelines"]["paper_scaled"] == round(1_152_470 * 5 / PAPER_N)
    assert mix["family_sets"]["format_variants+guidelines"]["rows"] == 1
    assert set(FAMILY_SETS) >= {"guidelines", "format_variants"}
    # a frame without the strategies column counts by strategy alone
    assert strategy_mix(_pool().drop("strategies"))["families"]["guidelines"]["rows"] == 1


def test_label_variants_with_examples_name_the_variants_in_reasons():
    _, rows = _source("re_zh_iepile")
    d, _ = _source("re_zh_iepile")
    forms = {"examples+label_variants": 1.0}
    result = combined_rows(rows, d, _config(family_sets={"guidelines": 1.0}, guideline_forms=forms))
    assert result.rows
    renamed = 0
    for row in result.rows:
        base = next(r for r in rows if r["instruction_id"] == row["base_instruction_id"])
        old = json.loads(base["instruction"])["schema"]
        new = [it["label"] for it in json.loads(row["instruction"])["schema"]]
        gone = [o for o, n in zip(old, new, strict=True) if o != n]
        for item in json.loads(row["instruction"])["schema"]:
            for example in item["negative examples"]:
                reason = example.get("reason", "")
                assert not [g for g in gone if g in reason and not any(g in n for n in new)]
                renamed += any(n in reason for n in new)
    assert renamed  # some reasons name a (renamed) label of the schema


def test_rows_with_a_rule_relabelling_draw_preference_rules_often_enough():
    # half the records have a rule-based relabelling (two persons and a place: numerical,
    # granularity), half none (one person): the preference share stays the configured one
    from hum_dagster.dictionary.model import SchemaDictionary
    from hum_dagster.records import LabelSchema, Record

    def record(i: int) -> Record:
        if i % 2:
            text, spans = f"Ann{i} left early.", [(f"Ann{i}", "person")]
        else:
            text = f"Ann{i} and Bob{i} met in Oslo{i}."
            spans = [(f"Ann{i}", "person"), (f"Bob{i}", "person"), (f"Oslo{i}", "location")]
        gold = {"entities": [{"text": t, "type": y, "start": None} for t, y in spans]}
        return Record("src", "NER", "en", text, gold, f"r#{i}")

    schema = LabelSchema(types=["person", "location"])
    rows = list(synthesize_basic([record(i) for i in range(1000)], schema, BasicConfig(mode="train")))
    config = _config(family_sets={"format_variants": 0.8, "preference_rules": 0.2})
    result = combined_rows(rows, SchemaDictionary(source="src", task="NER", language="en"), config)
    assert result.report["preference_feasible_by_task"]["NER"] == pytest.approx(0.5)
    assert result.report["preference_boost_by_task"]["NER"] == pytest.approx(0.8 / 0.3, rel=1e-4)
    share = result.report["achieved_marginals"]["preference_rules"]
    assert share == pytest.approx(0.2, abs=0.04)  # without the boost: about 0.1
    assert validate_rows(result.rows, VALIDATORS, _context(rows)) == []
    with_rule = {r["base_instruction_id"] for r in result.rows if "preference_rules" in r["strategies"]}
    assert all("Bob" in next(b for b in rows if b["instruction_id"] == i)["instruction"]
               for i in with_rule)
