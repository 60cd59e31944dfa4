"""Preference-rule instructions: rule-based strategies, validation, the LLM path."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse
from hum_dagster.records import NER, RE, LabelSchema, Record
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, INSTRUCTION_COLUMNS
from hum_dagster.synthesis.guidelines import validate_compound_row
from hum_dagster.synthesis.own_answers import check_own_answers
from hum_dagster.synthesis.preferences import (
    REJECT_DISAGREE,
    REJECT_EMPTY_RULE,
    REJECT_FORMAT,
    REJECT_LABEL,
    REJECT_LLM_FAILURE,
    REJECT_NOT_MERGED,
    REJECT_NOT_REVERSED,
    REJECT_OTHER_LABELS,
    REJECT_SPAN,
    REJECT_UNCHANGED,
    STRATEGY,
    PreferenceChoice,
    PreferenceConfig,
    Relabel,
    apply_llm_results,
    build_preference_requests,
    check_relabel,
    parse_row,
    preference_rows,
)
from hum_dagster.synthesis.preferences_llm import validate_preference_response
from hum_dagster.synthesis.preferences_rules import (
    load_inverse_table,
    read_inverse_table,
    rule_candidates,
)

# --------------------------------------------------------------------------- helpers


def ner(text: str, *spans: tuple[str, str], language: str = "en") -> Record:
    gold = {"entities": [{"text": t, "type": y, "start": None} for t, y in spans]}
    return Record("src", "NER", language, text, gold, "test#0")


def rel(task: str, text: str, *triples: tuple, language: str = "en") -> Record:
    if task == "SPO":
        relations = [
            {"head": h, "head_type": ht, "relation": r, "tail": t, "tail_type": tt}
            for h, ht, r, t, tt in triples
        ]
    else:
        relations = [{"head": h, "relation": r, "tail": t} for h, r, t in triples]
    return Record("src", task, language, text, {"relations": relations}, "test#0")


def basic_rows(records: list[Record], schema: LabelSchema, mode: str = "train") -> list[dict]:
    return list(synthesize_basic(records, schema, BasicConfig(mode=mode)))


def one_row(record: Record, schema: LabelSchema) -> dict:
    rows = basic_rows([record], schema)
    assert len(rows) == 1
    return rows[0]


def candidates(strategy: str, row: dict, **kwargs):
    p = parse_row(row)
    return rule_candidates(strategy, p.task, p.language, p.text, p.items, p.output, **kwargs)


def by_variant(cands, label: str | None = None) -> dict[str, Any]:
    return {c.variant: c for c in cands if label is None or c.label == label}


NER_EN = LabelSchema(types=["person", "organization", "location", "distance", "work"])
NER_ZH = LabelSchema(types=["人物", "组织", "地点", "金额", "作品"])


# --------------------------------------------------------------------------- numerical


def test_numerical_first_k_and_last_keep_position_order():
    text = "Apple, Google and Microsoft met in Paris."
    row = one_row(
        ner(
            text,
            ("Microsoft", "organization"),
            ("Apple", "organization"),
            ("Google", "organization"),
            ("Paris", "location"),
        ),
        NER_EN,
    )
    got = by_variant(candidates("numerical", row), "organization")
    assert set(got) == {"numerical/first_k=1", "numerical/first_k=2", "numerical/last"}
    assert got["numerical/first_k=1"].output["organization"] == ["Apple"]
    assert got["numerical/first_k=2"].output["organization"] == ["Apple", "Google"]
    assert got["numerical/last"].output["organization"] == ["Microsoft"]
    # Only the targeted label changes; a label with one value has no numerical rule.
    assert got["numerical/last"].output["location"] == ["Paris"]
    assert not by_variant(candidates("numerical", row), "location")
    # max_k bounds first_k.
    assert "numerical/first_k=2" not in by_variant(candidates("numerical", row, max_k=1))


def test_numerical_on_relation_pairs():
    text = "Ann is the parent of Bob, and Carl is the parent of Dan."
    schema = LabelSchema(roles=["parent", "spouse"])
    row = one_row(rel("RE", text, ("Carl", "parent", "Dan"), ("Ann", "parent", "Bob")), schema)
    got = by_variant(candidates("numerical", row), "parent")
    assert got["numerical/first_k=1"].output["parent"] == [{"subject": "Ann", "object": "Bob"}]
    assert got["numerical/last"].output["parent"] == [{"subject": "Carl", "object": "Dan"}]


# --------------------------------------------------------------------------- boundaries


def test_boundaries_strip_title_en_and_zh():
    row = one_row(
        ner("President Bush met Dr. Smith.", ("President Bush", "person"), ("Dr. Smith", "person")),
        NER_EN,
    )
    got = by_variant(candidates("boundaries", row), "person")
    strip = got["boundaries/strip_title"]
    assert strip.output["person"] == ["Bush", "Smith"]
    assert strip.params["modifiers"] == ["President", "Dr."]

    row_zh = one_row(
        ner(
            "王小明教授和习近平主席会面。",
            ("王小明教授", "人物"),
            ("习近平主席", "人物"),
            language="zh",
        ),
        NER_ZH,
    )
    got = by_variant(candidates("boundaries", row_zh), "人物")
    assert got["boundaries/strip_title"].output["人物"] == ["王小明", "习近平"]


def test_boundaries_keep_title_only_where_the_title_is_written():
    text = "Dr. Smith spoke first; later Smith left with Jones."
    row = one_row(ner(text, ("Smith", "person"), ("Jones", "person")), NER_EN)
    keep = by_variant(candidates("boundaries", row), "person")["boundaries/keep_title"]
    # "Smith" occurs with and without the title: both forms; "Jones" has no title.
    assert keep.output["person"] == ["Dr. Smith", "Smith", "Jones"]
    assert keep.params["modifiers"] == ["Dr."]
    for span in keep.output["person"]:
        assert span in text


def test_boundaries_keep_title_never_quotes_the_records_own_answer():
    """FewRel "military rank": the title next to the name is the relation's object. A
    rule quoting it ("a title ... ('Captain') belongs to the span") would show the record's
    answer (68 rows of one FewRel partition failed no_own_answer_in_guidelines)."""
    schema = LabelSchema(roles=["military rank", "sibling"])
    text = "Later Captain Manoj Pandey was honoured."
    own = one_row(rel(RE, text, ("Manoj Pandey", "military rank", "Captain")), schema)
    assert "boundaries/keep_title" in by_variant(candidates("boundaries", own))  # a rule ...
    config = PreferenceConfig(strategies=("boundaries",))
    assert preference_rows([own], config).rows == []  # ... that is not used
    # The same title where it is not an answer still gives the variant.
    other_text = "Later Captain Manoj Pandey met Ravi."
    other = one_row(rel(RE, other_text, ("Manoj Pandey", "sibling", "Ravi")), schema)
    keep = by_variant(candidates("boundaries", other))["boundaries/keep_title"]
    assert keep.params["modifiers"] == ["Captain"]


def test_boundaries_not_applicable_without_titles():
    row = one_row(ner("Smith met Jones.", ("Smith", "person"), ("Jones", "person")), NER_EN)
    assert candidates("boundaries", row) == []
    # A single Chinese character left after stripping is not a name: no candidate.
    row_zh = one_row(ner("王教授来了。", ("王教授", "人物"), language="zh"), NER_ZH)
    assert "boundaries/strip_title" not in by_variant(candidates("boundaries", row_zh))


def test_boundaries_only_for_person_labels():
    text = "They met at Dr. Annie Besant Park with Dr. Rao."
    row = one_row(ner(text, ("Dr. Annie Besant Park", "location"), ("Dr. Rao", "person")), NER_EN)
    cands = candidates("boundaries", row)
    assert {c.label for c in cands} == {"person"}
    assert by_variant(cands)["boundaries/strip_title"].output["location"] == [
        "Dr. Annie Besant Park"
    ]


def test_boundaries_on_spo_follow_argument_types():
    text = "《平凡的世界》的作者路遥先生生于陕西。"
    schema = LabelSchema(types=["图书作品_作者_人物"])
    row = one_row(
        rel("SPO", text, ("平凡的世界", "图书作品", "作者", "路遥先生", "人物"), language="zh"),
        schema,
    )
    strip = by_variant(candidates("boundaries", row))["boundaries/strip_title"]
    assert strip.output["作者"] == [{"subject": "平凡的世界", "object": "路遥"}]


def test_boundaries_on_relation_subjects():
    text = "President Obama was born in Honolulu."
    schema = LabelSchema(roles=["place of birth"])
    row = one_row(rel("RE", text, ("President Obama", "place of birth", "Honolulu")), schema)
    strip = by_variant(candidates("boundaries", row))["boundaries/strip_title"]
    assert strip.output["place of birth"] == [{"subject": "Obama", "object": "Honolulu"}]


# --------------------------------------------------------------------------- punctuation


def test_punctuation_marks_zh_and_en():
    text = "他读了《红楼梦》和《三国演义》。"
    row = one_row(ner(text, ("《红楼梦》", "作品"), ("三国演义", "作品"), language="zh"), NER_ZH)
    got = by_variant(candidates("punctuation", row), "作品")
    assert got["punctuation/strip_marks"].output["作品"] == ["红楼梦", "三国演义"]
    assert got["punctuation/keep_marks"].output["作品"] == ["《红楼梦》", "《三国演义》"]

    row_en = one_row(ner('They flew to "Paris" twice.', ('"Paris"', "location")), NER_EN)
    strip = by_variant(candidates("punctuation", row_en))["punctuation/strip_marks"]
    assert strip.output["location"] == ["Paris"]


def test_punctuation_units():
    text = "The road is 30 km long and cost 5000元, about 3万元 more; growth was 12%."
    row = one_row(
        ner(text, ("30 km", "distance"), ("5000元", "distance"), ("3万元", "distance")), NER_EN
    )
    strip = by_variant(candidates("punctuation", row))["punctuation/strip_units"]
    # Magnitudes stay: 3万元 loses only 元.
    assert strip.output["distance"] == ["30", "5000", "3万"]
    assert set(strip.params["units"]) == {"km", "元"}

    row_keep = one_row(ner(text, ("12", "distance")), NER_EN)
    keep = by_variant(candidates("punctuation", row_keep))["punctuation/keep_units"]
    assert keep.output["distance"] == ["12%"]


def test_punctuation_keep_units_ignores_pieces_of_longer_numbers():
    # "30" occurs only inside "130 km": not the whole number, no unit to take in.
    row = one_row(ner("It is 130 km away, or 30 minutes.", ("30", "distance")), NER_EN)
    keep = by_variant(candidates("punctuation", row))["punctuation/keep_units"]
    assert keep.output["distance"] == ["30 minutes"]


# --------------------------------------------------------------------------- nesting


def test_nesting_outer_and_inner_zh():
    text = "北京大学附属医院很有名。"
    row = one_row(
        ner(
            text,
            ("北京大学附属医院", "组织"),
            ("北京大学", "组织"),
            ("北京", "地点"),
            language="zh",
        ),
        NER_ZH,
    )
    cands = candidates("nesting", row)
    # 北京 lies only inside a longer entity: outer drops it, from its own label only.
    outer_loc = by_variant(cands, "地点")["nesting/outer"]
    assert outer_loc.output["地点"] == []
    assert outer_loc.output["组织"] == ["北京大学附属医院", "北京大学"]
    org = by_variant(cands, "组织")
    assert org["nesting/outer"].output["组织"] == ["北京大学附属医院"]
    assert org["nesting/inner"].output["组织"] == ["北京大学"]


def test_nesting_needs_true_nesting():
    # 北京大学 also stands on its own: in flat data that is a separate mention, so
    # neither the outer nor the inner rule applies to 组织.
    text = "北京大学附属医院和北京大学都很有名。"
    row = one_row(
        ner(text, ("北京大学附属医院", "组织"), ("北京大学", "组织"), language="zh"), NER_ZH
    )
    assert by_variant(candidates("nesting", row), "组织") == {}
    row_en = one_row(
        ner(
            "James M. Cox lost; Cox later retired.",
            ("James M. Cox", "person"),
            ("Cox", "person"),
        ),
        NER_EN,
    )
    assert candidates("nesting", row_en) == []


def test_nesting_outer_drops_nested_mention_of_same_label():
    text = "Bank of China opened."
    row = one_row(ner(text, ("Bank of China", "organization"), ("China", "organization")), NER_EN)
    outer = by_variant(candidates("nesting", row), "organization")["nesting/outer"]
    assert outer.output["organization"] == ["Bank of China"]


# --------------------------------------------------------------------------- reverse


def test_reverse_re_en_swaps_and_renames():
    text = "Ann is the parent of Bob."
    schema = LabelSchema(roles=["parent", "spouse"])
    row = one_row(rel("RE", text, ("Ann", "parent", "Bob")), schema)
    (cand,) = candidates("reverse", row)
    assert cand.new_label == "child"
    assert cand.output == {"child": [{"subject": "Bob", "object": "Ann"}], "spouse": []}


def test_reverse_spo_zh_renames_predicate_and_swaps_types():
    text = "《平凡的世界》的作者是路遥。"
    schema = LabelSchema(types=["图书作品_作者_人物", "人物_丈夫_人物"])
    row = one_row(
        rel("SPO", text, ("平凡的世界", "图书作品", "作者", "路遥", "人物"), language="zh"), schema
    )
    (cand,) = candidates("reverse", row)
    assert cand.new_label == "作品"
    assert cand.output["作品"] == [{"subject": "路遥", "object": "平凡的世界"}]
    result = preference_rows([row], PreferenceConfig(strategies=("reverse",)))
    (out,) = result.rows
    inst = json.loads(out["instruction"])
    item = next(i for i in inst["schema"] if i["predicate"] == "作品")
    assert item == {"subject_type": "人物", "predicate": "作品", "object_type": "图书作品"}
    assert json.loads(out["schema"]) == inst["schema"]
    assert inst["rules"][0]["label"] == "作品"
    assert "作者" in inst["rules"][0]["rule"]
    assert json.loads(out["provenance"])["new_label"] == "作品"


def test_a_rule_whose_wording_quotes_the_records_answer_is_not_used():
    """The reverse rule says "the subject and the object exchange places"; where the
    record's subject is the word "object" (FewRel), that rule would quote its answer."""
    schema = LabelSchema(roles=["part of", "sibling"])
    config = PreferenceConfig(strategies=("reverse",))
    leaky = one_row(rel("RE", "An object whose methods run.", ("methods", "part of", "object")),
                    schema)
    assert candidates("reverse", leaky)  # the rule exists for this row ...
    assert preference_rows([leaky], config).rows == []  # ... and is not used
    clean = one_row(rel("RE", "A class whose methods run.", ("methods", "part of", "class")),
                    schema)
    (row,) = preference_rows([clean], config).rows
    assert check_own_answers([row], [clean]) == []


def test_reverse_skipped_without_inverse_or_when_inverse_in_schema():
    schema = LabelSchema(roles=["spouse", "parent", "child"])
    row = one_row(rel("RE", "Ann married Bob.", ("Ann", "spouse", "Bob")), schema)
    assert candidates("reverse", row) == []  # no inverse for a symmetric relation
    row2 = one_row(rel("RE", "Ann is the parent of Bob.", ("Ann", "parent", "Bob")), schema)
    assert candidates("reverse", row2) == []  # "child" is already a schema label


def test_inverse_table_reads_pairs_and_one_way(tmp_path):
    table = load_inverse_table()
    assert table.inverse("parent", "en") == "child"
    assert table.inverse("child", "en") == "parent"
    assert table.inverse("父亲", "zh") == "子女"
    assert table.inverse("子女", "zh") is None  # one way only
    assert table.inverse("capital of", "zh") == "capital"  # falls back to other languages
    bad = tmp_path / "inv.yaml"
    bad.write_text("en:\n  pairs:\n    - [a]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"en\.pairs\[0\]"):
        read_inverse_table(bad)


# --------------------------------------------------------------------------- rows


def test_rows_shape_columns_and_provenance():
    rows = basic_rows(
        [
            ner(
                "President Bush met Dr. Smith.",
                ("President Bush", "person"),
                ("Dr. Smith", "person"),
            )
        ],
        NER_EN,
    )
    result = preference_rows(rows, PreferenceConfig(strategies=("boundaries",)))
    (out,) = result.rows
    base = rows[0]
    assert tuple(out) == COMPOUND_COLUMNS
    assert out["strategy"] == STRATEGY
    assert out["variant"] == "boundaries/strip_title"
    assert out["base_instruction_id"] == base["instruction_id"]
    assert out["instruction_id"] != base["instruction_id"]
    for col in ("source", "record_id", "text_id", "task", "language", "mode", "schema"):
        assert out[col] == base[col]
    inst = json.loads(out["instruction"])
    assert list(inst) == ["instruction", "schema", "rules", "input"]
    basic_inst = json.loads(base["instruction"])
    assert inst["instruction"].startswith(basic_inst["instruction"] + " ")
    assert '"rules"' in inst["instruction"]
    assert inst["rules"] == [{"label": "person", "rule": inst["rules"][0]["rule"]}]
    assert '"President"' in inst["rules"][0]["rule"]
    assert json.loads(out["output"])["person"] == ["Bush", "Smith"]
    prov = json.loads(out["provenance"])
    assert prov["source"] == "rule" and prov["cross_check"] is None
    assert prov["label"] == "person" and prov["strategy"] == "boundaries"
    assert "cache_key" in prov and prov["cache_key"] is None
    assert result.counts_by_strategy == {"boundaries": 1}


def test_only_train_mode_rows_and_per_row_cap():
    record = ner(
        'President Bush met Dr. Smith in "Paris".',
        ("President Bush", "person"),
        ("Dr. Smith", "person"),
        ('"Paris"', "location"),
    )
    test_rows = basic_rows([record], NER_EN, mode="test")
    assert preference_rows(test_rows).rows == []
    assert preference_rows(test_rows).skipped == {"not_train_mode": len(test_rows)}
    train = basic_rows([record], NER_EN)
    assert len(preference_rows(train, PreferenceConfig(max_per_row=1)).rows) == 1
    every = preference_rows(train, PreferenceConfig(max_per_row=None)).rows
    # no granularity: the label hierarchy lists no person/location pair
    assert {r["variant"].split("/")[0] for r in every} == {"numerical", "boundaries", "punctuation"}
    assert len({r["instruction_id"] for r in every}) == len(every)


def _corpus() -> list[dict]:
    records = []
    for i in range(30):
        records.append(
            ner(
                f"President Bush{i} met Dr. Smith{i} and Jones{i} in “Paris{i}” about {i}0 km away.",
                (f"President Bush{i}", "person"),
                (f"Dr. Smith{i}", "person"),
                (f"Jones{i}", "person"),
                (f"“Paris{i}”", "location"),
                (f"{i}0 km", "distance"),
            )
        )
    return basic_rows(records, NER_EN)


def test_deterministic_under_the_seed_and_any_order():
    rows = _corpus()
    config = PreferenceConfig(seed=7)
    first = preference_rows(rows, config).rows
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    again = preference_rows(shuffled, config).rows
    key = {r["instruction_id"]: r for r in first}
    assert key == {r["instruction_id"]: r for r in again}
    other = preference_rows(rows, PreferenceConfig(seed=8)).rows
    variants = [(r["base_instruction_id"], r["variant"], r["instruction"]) for r in first]
    other_variants = [(r["base_instruction_id"], r["variant"], r["instruction"]) for r in other]
    assert variants != other_variants  # the seed matters
    assert len({r["variant"] for r in first}) >= 3  # and the choice varies over rows


# --------------------------------------------------------------------------- validation


def _ner_row() -> dict:
    return one_row(
        ner(
            "Apple and Google met in Paris.",
            ("Apple", "organization"),
            ("Google", "organization"),
            ("Paris", "location"),
        ),
        NER_EN,
    )


def _relabel(output: Any, rule: Any = "Only the first organization.", **kw) -> Relabel:
    return Relabel("organization", "numerical", "numerical/first_k=1", "rule", output, rule, **kw)


def test_check_relabel_accepts_a_sound_relabelling():
    p = parse_row(_ner_row())
    good = dict(p.output, organization=["Apple"])
    assert check_relabel(p, _relabel(good)) is None


@pytest.mark.parametrize(
    ("change", "rule", "reason"),
    [
        ({"organization": ["Amazon"]}, "r", REJECT_SPAN),
        ({}, "r", REJECT_UNCHANGED),
        ({"organization": ["Apple"], "company": ["Apple"]}, "r", REJECT_LABEL),
        ({"organization": ["Apple"]}, "  ", REJECT_EMPTY_RULE),
        ({"organization": ["Apple"]}, None, REJECT_EMPTY_RULE),
        ({"organization": ["Apple"], "location": []}, "r", REJECT_OTHER_LABELS),
        ({"organization": "Apple"}, "r", REJECT_FORMAT),
    ],
)
def test_check_relabel_rejects(change, rule, reason):
    p = parse_row(_ner_row())
    output = dict(p.output, **change)
    problem = check_relabel(p, _relabel(output, rule))
    assert problem is not None and problem[0] == reason, problem


def test_check_relabel_rejects_missing_label_and_non_object():
    p = parse_row(_ner_row())
    missing = {k: v for k, v in p.output.items() if k != "location"}
    missing["organization"] = ["Apple"]
    assert check_relabel(p, _relabel(missing))[0] == REJECT_FORMAT
    assert check_relabel(p, _relabel(["Apple"]))[0] == REJECT_FORMAT


def test_check_relabel_reverse_must_swap_pairs():
    schema = LabelSchema(roles=["parent", "spouse"])
    p = parse_row(one_row(rel("RE", "Ann is the parent of Bob.", ("Ann", "parent", "Bob")), schema))
    unswapped = {"child": [{"subject": "Ann", "object": "Bob"}], "spouse": []}
    relabel = Relabel("parent", "reverse", "reverse", "llm", unswapped, "r", new_label="child")
    assert check_relabel(p, relabel)[0] == REJECT_NOT_REVERSED


# --------------------------------------------------------------------------- LLM path


class FakeRunner:
    """Stands in for the real runner only to test how responses and failures are
    validated and merged; the real runner is tested against a loopback server elsewhere.

    ``answer(request)`` returns the parsed JSON answer, or a string: the reason of an
    ``LLMFailure``. Answers that fail ``validate`` become ``invalid: ...`` failures, as
    the real runner reports them after its retries.
    """

    def __init__(self, answer: Callable[[LLMRequest], Any], mode: str = "live"):
        self.mode = mode
        self.answer = answer
        self.calls: list[list[LLMRequest]] = []

    def run(self, requests: Sequence[LLMRequest], validate=None):
        self.calls.append(list(requests))
        out: list[LLMResponse | LLMFailure] = []
        for i, request in enumerate(requests):
            key = f"key{len(self.calls)}-{i}"
            answer = self.answer(request)
            if isinstance(answer, str):
                out.append(LLMFailure(key, request.step, answer, 3))
                continue
            problem = validate(answer) if validate else None
            if problem is not None:
                out.append(LLMFailure(key, request.step, f"invalid: {problem}", 3))
                continue
            out.append(
                LLMResponse(
                    key,
                    request.step,
                    json.dumps(answer, ensure_ascii=False),
                    answer,
                    "fake-model",
                    {"prompt_tokens": 10, "completion_tokens": 5},
                    False,
                    0.0,
                )
            )
        return out


def _user(request: LLMRequest) -> str:
    return request.messages[-1]["content"]


def _strategy(request: LLMRequest) -> str:
    return re.search(r"Modification strategy: (\w+)", _user(request)).group(1)


def _answer(relabelled: Any, rule: str = "New rule.") -> dict:
    return {
        "description": "Companies and institutions.",
        "original_rule": "Annotate all organizations.",
        "new_rule": rule,
        "relabelled": relabelled,
    }


def test_llm_valid_relabel_accepted_and_requests_carry_the_context():
    row = _ner_row()
    p = parse_row(row)
    descriptions = {"organization": "Firms.", "location": "Places."}
    examples = {"organization": ["Intel hired staff."], "location": ["Rain in Oslo."]}
    asked: list[str] = []

    def answer(request):
        assert _strategy(request) == "granularity"
        # the rule is about one label, chosen per record: narrow that one
        label = re.search(r'Label: "(\w+)"', _user(request)).group(1)
        asked.append(label)
        return _answer(dict(p.output, **{label: p.output[label][1:]}), "Only the later mentions.")

    runner = FakeRunner(answer)
    config = PreferenceConfig(strategies=("granularity",), llm_strategies=("granularity",))
    result = preference_rows(
        [row], config, runner, descriptions=descriptions, examples=examples
    )
    (out,) = result.rows
    (label,) = asked
    assert out["variant"] == "granularity/llm"
    prov = json.loads(out["provenance"])
    assert prov["source"] == "llm" and prov["cache_key"] == "key1-0"
    assert json.loads(out["instruction"])["rules"][0]["rule"] == "Only the later mentions."
    assert json.loads(out["output"])[label] == p.output[label][1:]
    assert "@prompt:" in out["template"]
    (request,) = runner.calls[0]
    assert request.json_schema["required"] == [
        "description",
        "original_rule",
        "new_rule",
        "relabelled",
    ]
    assert request.template == "preference_rule" and len(request.template_version) == 12
    assert descriptions[label] in _user(request)
    assert "Apple and Google met in Paris." in _user(request)
    assert f"- {examples[label][0]}" in _user(request)
    assert "Required modification" not in _user(request)  # no rule variant to reproduce
    assert result.llm_usage_hint["responses"] == 1
    assert result.llm_usage_hint["prompt_tokens"] == 10


def test_llm_invalid_answers_and_failures_are_rejected_with_reason():
    rows = [_ner_row()]
    p = parse_row(rows[0])
    answers = iter(
        [
            _answer(dict(p.output, organization=["Amazon"])),  # span not in input
            "rate_limited",  # runner failure
            {"new_rule": "x"},  # wrong shape -> invalid after retries
        ]
    )
    runner = FakeRunner(lambda request: next(answers))
    choices = [
        PreferenceChoice(p.instruction_id, "organization", s)
        for s in ("granularity", "numerical", "boundaries")
    ]
    requests = build_preference_requests(rows, None, choices)
    results = runner.run(requests, validate_preference_response)
    applied = apply_llm_results(rows, choices, results)
    assert applied.relabels == [None, None, None]
    reasons = [(r["strategy"], r["reason"], r["source"]) for r in applied.rejections]
    assert reasons == [
        ("granularity", REJECT_SPAN, "llm"),
        ("numerical", REJECT_LLM_FAILURE, "llm"),
        ("boundaries", REJECT_LLM_FAILURE, "llm"),
    ]
    assert "Amazon" in applied.rejections[0]["detail"]
    assert applied.usage["failures_by_reason"] == {"invalid": 1, "rate_limited": 1}
    for rejection in applied.rejections:
        assert rejection["base_instruction_id"] == p.instruction_id


def test_llm_disagreement_keeps_the_rule_and_is_counted():
    row = _ner_row()
    p = parse_row(row)
    config = PreferenceConfig(strategies=("numerical",), llm_strategies=("numerical",))
    offline = preference_rows([row], config).rows[0]
    rule_org = json.loads(offline["output"])["organization"]
    wrong = ["Google"] if rule_org == ["Apple"] else ["Apple"]

    def answer(request):
        assert "Required modification" in _user(request)  # the rule's variant is asked for
        return _answer(dict(p.output, organization=wrong), "LLM wording.")

    result = preference_rows([row], config, FakeRunner(answer))
    (out,) = result.rows
    assert out["output"] == offline["output"]
    assert out["instruction"] == offline["instruction"]
    prov = json.loads(out["provenance"])
    assert prov["source"] == "rule" and prov["cross_check"] == "disagree"
    assert prov["cache_key"] == "key1-0"
    assert result.rejections_by_reason() == {REJECT_DISAGREE: 1}


def test_llm_agreement_uses_llm_wording_and_records_it():
    row = _ner_row()
    p = parse_row(row)
    config = PreferenceConfig(strategies=("numerical",), llm_strategies=("numerical",))
    offline = preference_rows([row], config).rows[0]
    rule_out = json.loads(offline["output"])

    runner = FakeRunner(lambda request: _answer(dict(p.output, **rule_out), "LLM wording."))
    (out,) = preference_rows([row], config, runner).rows
    prov = json.loads(out["provenance"])
    assert prov["cross_check"] == "agree" and prov["source"] == "llm"
    assert json.loads(out["instruction"])["rules"][0]["rule"] == "LLM wording."
    assert out["instruction_id"] == offline["instruction_id"]


def test_llm_rejected_answer_falls_back_to_the_rule():
    row = _ner_row()
    config = PreferenceConfig(strategies=("numerical",), llm_strategies=("numerical",))
    (out,) = preference_rows([row], config, FakeRunner(lambda r: "server_error")).rows
    prov = json.loads(out["provenance"])
    assert prov["source"] == "rule" and prov["cross_check"] == "llm_rejected"


def test_llm_reverse_rename_detected():
    schema = LabelSchema(roles=["parent", "spouse"])
    row = one_row(rel("RE", "Ann is the parent of Bob.", ("Ann", "parent", "Bob")), schema)
    good = {"child": [{"subject": "Bob", "object": "Ann"}], "spouse": []}
    config = PreferenceConfig(strategies=("reverse",), llm_strategies=("reverse",))
    runner = FakeRunner(lambda r: _answer(good, "child is the inverse of parent."))
    (out,) = preference_rows([row], config, runner).rows
    assert json.loads(out["provenance"])["cross_check"] == "agree"
    assert json.loads(out["schema"]) == ["child", "spouse"]

    bad = {"kid": [{"subject": "Bob", "object": "Ann"}], "spouse": []}
    result = preference_rows([row], config, FakeRunner(lambda r: _answer(bad)))
    assert result.rejections_by_reason() == {REJECT_DISAGREE: 1}
    assert json.loads(result.rows[0]["provenance"])["new_label"] == "child"


def test_offline_runner_is_never_called():
    def answer(request):
        raise AssertionError("offline runner was called")

    runner = FakeRunner(answer, mode="offline")
    result = preference_rows([_ner_row()], PreferenceConfig(), runner)
    assert runner.calls == []
    assert result.rows and all(json.loads(r["provenance"])["source"] == "rule" for r in result.rows)
    assert result.llm_usage_hint["mode"] == "offline"
    assert result.llm_usage_hint["requests"] == 0


def test_all_preference_rows_pass_the_basic_validator_shape():
    from hum_dagster.synthesis.basic import validate_basic_row

    result = preference_rows(_corpus(), PreferenceConfig(max_per_row=None))
    assert result.rows
    for out in result.rows:
        inst = json.loads(out["instruction"])
        assert validate_basic_row({**out, "schema": json.dumps(inst["schema"])}) == []
        assert set(INSTRUCTION_COLUMNS) <= set(out)


# --------------------------------------------------------------------------- granularity


POLITICS = LabelSchema(types=["person", "politician", "location", "organisation"])


def _two_label_row() -> dict:
    return one_row(
        ner(
            "Merkel met Ann Lee and Bob Hale in Paris.",
            ("Merkel", "politician"),
            ("Ann Lee", "person"),
            ("Bob Hale", "person"),
            ("Paris", "location"),
        ),
        POLITICS,
    )


def test_granularity_merge_folds_a_narrower_label_into_its_broader_one():
    p = parse_row(_two_label_row())
    cands = rule_candidates("granularity", NER, "en", p.text, p.items, p.output)
    # only the pair the label hierarchy lists: a politician is a person; a location is
    # neither a person nor covers one
    assert [(c.label, c.merged_label) for c in cands] == [("person", "politician")]
    (merge,) = cands
    assert merge.variant == "granularity/merge"
    assert merge.output["person"] == ["Merkel", "Ann Lee", "Bob Hale"]  # text order
    assert "politician" not in merge.output and merge.output["location"] == ["Paris"]
    # a narrower label without answers gives no rule
    empty = dict(p.output, politician=[])
    assert rule_candidates("granularity", NER, "en", p.text, p.items, empty) == []
    assert rule_candidates("granularity", RE, "en", p.text, p.items, p.output) == []


def test_label_hierarchy_errors_name_the_file(tmp_path):
    from hum_dagster.synthesis.label_hierarchy import read_label_hierarchy

    path = tmp_path / "h.yaml"
    path.write_text("en:\n  person: politician\n")
    with pytest.raises(ValueError, match=f"{path}: en.person: expected a list"):
        read_label_hierarchy(path)
    path.write_text("en:\n  person: [Person]\n")
    with pytest.raises(ValueError, match="cannot cover itself"):
        read_label_hierarchy(path)
    path.write_text("zh:\n  人物: [政治人物]\n")
    assert read_label_hierarchy(path).covers("人物", "政治人物", "en")  # any language


def test_granularity_rows_drop_the_folded_label_and_pass_the_checks():
    row = _two_label_row()
    config = PreferenceConfig(strategies=("granularity",))
    (out,) = preference_rows([row], config).rows
    inst = json.loads(out["instruction"])
    prov = json.loads(out["provenance"])
    merged, label = prov["merged_label"], prov["label"]
    assert merged not in [it for it in inst["schema"]] and merged not in json.loads(out["output"])
    assert json.loads(out["schema"]) == inst["schema"]
    rule = inst["rules"][0]["rule"]
    assert f'"{label}"' in rule and f'"{merged}"' in rule
    assert validate_compound_row(out) == []
    assert check_own_answers([out], [row]) == []


def test_check_relabel_rejects_a_merge_that_is_not_the_union():
    p = parse_row(_two_label_row())
    base = dict(label="person", strategy="granularity", variant="granularity/merge",
                source="rule", rule="Person covers politician.", merged_label="politician")
    good = {k: v for k, v in p.output.items() if k != "politician"}
    good["person"] = ["Merkel", "Ann Lee", "Bob Hale"]
    assert check_relabel(p, Relabel(output=good, **base)) is None
    short = dict(good, person=["Ann Lee", "Bob Hale"])
    assert check_relabel(p, Relabel(output=short, **base))[0] == REJECT_NOT_MERGED
    kept = dict(good, politician=["Merkel"])
    assert check_relabel(p, Relabel(output=kept, **base))[0] == REJECT_LABEL
