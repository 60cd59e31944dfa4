"""Gates on LLM-written dictionary values: each rule says no to its junk (the values the
issue found accepted) and yes to good values; with the real LLM runner against a
loopback OpenAI-compatible server answering junk, no rejected value reaches the
dictionary or any compound instruction, and the step report counts them by reason."""

from __future__ import annotations

import json
from functools import cache

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
from hum_dagster.dictionary import gates as g
from hum_dagster.dictionary.gates import (
    GateContext,
    check_description,
    check_example,
    check_synonym,
)
from hum_dagster.dictionary.mine import collect_instances
from hum_dagster.dictionary.model import Example
from hum_dagster.llm import client as client_mod
from hum_dagster.llm.client import ClientConfig, OpenAIRunner
from hum_dagster.operations.plan import source_dictionary
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import load_catalog
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.guidelines import GuidelineConfig, synthesize_guidelines


@cache
def sample(name: str):
    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == name)
    return entry, read_source(entry)


def offline(name: str):
    entry, result = sample(name)
    return source_dictionary(entry, result)[0]


@cache
def context(name: str) -> GateContext:
    entry, result = sample(name)
    return GateContext.build(
        offline(name),
        collect_instances(entry.task, result.records),
        [r.text for r in result.records],
    )


def entry_of(name: str, key: str):
    return offline(name).entries[key]


# --------------------------------------------------------------------------- descriptions

# (source, label, value, reason): the accepted junk, and the other kinds
BAD_DESCRIPTIONS = [
    ("ner_en_conll", "location", "Kelmshire", g.ENTITY),
    ("ner_en_conll", "person", "Narodny Light Festival, Oslo", g.ENTITY),
    ("ner_en_conll", "location", "Leeds", g.ENTITY),  # a gold value
    ("ner_en_conll", "person", "Maria Okafor joined the board", g.INPUT_SPAN),
    ("ner_en_conll", "person", "organisation", g.LABEL_NAME),
    ("ner_en_conll", "person", "A named person.", g.FRAGMENT),
    ("ner_en_conll", "person", "x" * 10 + " is a word " + "y" * 400, g.TOO_LONG),
    ("ner_en_conll", "person", '{"descriptions": ["a person"]}', g.JSON_ECHO),
    ("ner_en_conll", "person", "synonyms", g.JSON_ECHO),
    ("ner_en_conll", "person", "Known descriptions: - (none)", g.JSON_ECHO),
    ("ner_en_conll", "person", "人物的名字，包括虚构人物。", g.WRONG_LANGUAGE),
    ("ner_en_conll", "person", 42, g.NOT_TEXT),
    ("ner_en_conll", "person", "   ", g.NOT_TEXT),
    ("re_zh_iepile", "作者", "{", g.JSON_ECHO),
    ("re_zh_iepile", "作者", "description1", g.PLACEHOLDER),
    ("re_zh_iepile", "作者", "描述2", g.PLACEHOLDER),
    ("re_zh_iepile", "作者", "2018-05-30T16:47:09.75,", g.DATE_OR_NUMBER),
    ("re_zh_iepile", "作者", "The author of a work.", g.WRONG_LANGUAGE),
    ("re_zh_iepile", "作者", "写作者", g.FRAGMENT),
    ("re_zh_iepile", "作者", "沈青禾", g.ENTITY),  # a gold value (an object of 作者)
    ("re_zh_iepile", "作者", "出版社", g.LABEL_NAME),
    # fluent sentences about something else (SmolLM2's commonest kind on FewRel and IEPile)
    (
        "ner_en_conll",
        "person",
        "This information can be extracted from one of the instances.",
        g.OFF_LABEL,
    ),
    (
        "ner_en_conll",
        "organisation",
        "Fiction novels and tales of the sea written long ago.",
        g.OFF_LABEL,
    ),
    ("re_zh_iepile", "出生地", "1823年，他作为批评家的名声在第二帝国时期达到顶峰。", g.OFF_LABEL),
    ("re_zh_iepile", "作者", "真正的生母是英照皇太后。", g.OFF_LABEL),
]
GOOD_DESCRIPTIONS = [
    ("ner_en_conll", "person", "A person, real or fictional, named in the text."),
    ("ner_en_conll", "location", "Geographical places such as cities, countries and regions."),
    (
        "ner_en_conll",
        "organisation",
        "Companies, agencies, institutions and other organised groups.",
    ),
    ("re_zh_iepile", "作者", "作品与创作它的作者之间的关系。"),
    ("re_zh_iepile", "出生日期", "人物与其出生日期之间的关系，例如1990年5月。"),
    ("re_zh_iepile", "出版社", "出版作品的机构，即其出版单位。"),  # half the label's characters
]


@pytest.mark.parametrize(("source", "label", "value", "reason"), BAD_DESCRIPTIONS)
def test_description_gate_says_no_with_the_reason(source, label, value, reason):
    rejection = check_description(value, entry_of(source, label), context(source))
    assert rejection is not None, value
    assert rejection.reason == reason, (value, rejection)
    assert rejection.kind == g.DESCRIPTION and rejection.label == label and rejection.detail


@pytest.mark.parametrize(("source", "label", "value"), GOOD_DESCRIPTIONS)
def test_description_gate_lets_sentences_about_the_label_through(source, label, value):
    assert check_description(value, entry_of(source, label), context(source)) is None


# --------------------------------------------------------------------------- synonyms

BAD_SYNONYMS = [
    ("ner_en_conll", "organisation", "Elena Petrova", g.LABEL_VALUE),  # a gold person
    ("ner_en_conll", "person", "Lindqvist and Aiko Mori", g.INPUT_SPAN),  # a piece of an input
    ("ner_en_conll", "organisation", "Ravi Kumaran", g.PROPER_NAME),  # a name the data lacks
    ("ner_en_conll", "location", "Chickentown", g.PROPER_NAME),
    ("ner_en_conll", "location", "harbour", g.PROPER_NAME),  # the inputs write it Harbour
    ("ner_en_conll", "organisation", "Maria Okafor", g.LABEL_VALUE),  # a gold person
    ("ner_en_conll", "organisation", "Leeds", g.LABEL_VALUE),  # a gold location
    ("ner_en_conll", "organisation", "person", g.OTHER_LABEL),  # another label's name
    ("ner_en_conll", "organisation", "Organisation", g.SAME_AS_LABEL),
    ("ner_en_conll", "person", "Maria", g.INPUT_SPAN),  # a capitalised span of an input
    ("ner_en_conll", "person", "A human being who is named in the text.", g.NOT_A_NAME),
    ("ner_en_conll", "person", "synonym1", g.PLACEHOLDER),
    ("ner_en_conll", "person", "<synonym>", g.PLACEHOLDER),
    ("ner_en_conll", "person", "[", g.JSON_ECHO),
    ("ner_en_conll", "person", "2024-01-01", g.DATE_OR_NUMBER),
    ("ner_en_conll", "person", "人物", g.WRONG_LANGUAGE),
    ("re_zh_iepile", "作者", "writer", g.WRONG_LANGUAGE),
    ("re_zh_iepile", "作者", "江南文艺出版社", g.LABEL_VALUE),
    ("re_zh_iepile", "作者", "导演", g.OTHER_LABEL),
    ("re_zh_iepile", "出生地", "停车协议", g.UNRELATED_NAME),  # SmolLM2's, for a place of death
]
GOOD_SYNONYMS = [
    ("ner_en_conll", "organisation", "company or agency"),
    ("ner_en_conll", "organisation", "institution"),
    ("ner_en_conll", "organisation", "Organization"),  # a common noun, capitalised
    ("ner_en_conll", "person", "human"),
    ("ner_en_conll", "location", "place name"),
    ("re_zh_iepile", "作者", "创作者"),
]


@pytest.mark.parametrize(("source", "label", "value", "reason"), BAD_SYNONYMS)
def test_synonym_gate_says_no_with_the_reason(source, label, value, reason):
    rejection = check_synonym(value, entry_of(source, label), context(source))
    assert rejection is not None, value
    assert rejection.reason == reason, (value, rejection)


@pytest.mark.parametrize(("source", "label", "value"), GOOD_SYNONYMS)
def test_synonym_gate_lets_label_names_through(source, label, value):
    assert check_synonym(value, entry_of(source, label), context(source)) is None


def test_an_accepted_synonym_is_not_given_to_a_second_label():
    ctx = GateContext.build(offline("ner_en_conll"))
    first = g.gate_answer(entry_of("ner_en_conll", "organisation"), [], ["institution"], ctx)
    second = g.gate_answer(entry_of("ner_en_conll", "location"), [], ["institution"], ctx)
    assert first.synonyms == ["institution"] and second.synonyms == []
    assert [r.reason for r in second.rejections] == [g.OTHER_LABEL]


# --------------------------------------------------------------------------- examples


def test_example_gate_applies_the_rules_of_mined_examples():
    ctx = context("re_en_fewrel")
    spouse = entry_of("re_en_fewrel", "spouse")
    text = "Clara Webb married the painter Jonah Hale in a small ceremony in 1931 ."
    gold = {"subject": "Clara Webb", "object": "Jonah Hale"}
    swapped = {"subject": "Jonah Hale", "object": "Clara Webb"}
    assert check_example(Example(text, gold, "llm:k"), spouse, ctx, negative=False) is None
    missing = check_example(
        Example(text, {"subject": "Clara Webb", "object": "Ada Stone"}, "llm:k"),
        spouse,
        ctx,
        negative=False,
    )
    assert missing is not None and missing.reason == g.SPAN_NOT_IN_TEXT
    assert check_example({"text": text, "value": gold}, spouse, ctx, negative=True).reason == (
        g.NEGATIVE_IS_GOLD
    )
    assert check_example({"text": text, "value": swapped}, spouse, ctx, negative=True) is None
    symmetric = check_example(
        {"text": text, "value": swapped}, spouse, ctx, negative=True, symmetric=True
    )
    assert symmetric is not None and symmetric.reason == g.SWAPPED_SYMMETRIC
    assert (
        check_example({"text": "", "value": gold}, spouse, ctx, negative=False).reason == g.NOT_TEXT
    )
    ner = context("ner_en_conll")
    person = entry_of("ner_en_conll", "person")
    assert check_example(
        {"text": "Maria Okafor spoke.", "value": "Maria Okafor"}, person, ner, negative=True
    ).reason == (g.NEGATIVE_IS_GOLD)
    assert check_example(
        {"text": "Ada spoke.", "value": "Bob"}, person, ner, negative=False
    ).reason == (g.SPAN_NOT_IN_TEXT)
    assert check_example(
        {"text": "Ada spoke.", "value": ""}, person, ner, negative=False
    ).reason == (g.EMPTY_VALUE)


@pytest.mark.parametrize(
    "name", ["ner_en_conll", "re_en_fewrel", "re_zh_iepile", "ee_zh_iepile", "tc_en_csv"]
)
def test_every_mined_example_passes_the_example_gate(name):
    """The gate and the miner agree: what the data gives is what the gate accepts, so an
    LLM-written example is held to exactly the mined examples' rules."""
    ctx = context(name)
    checked = 0
    for entry in offline(name).entries.values():
        for x in entry.positives:
            assert check_example(x, entry, ctx, negative=False) is None, (entry.key, x)
            checked += 1
        for x in entry.negatives:
            assert check_example(x, entry, ctx, negative=True) is None, (entry.key, x)
            checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- end to end

GOOD = {
    "person": {
        "descriptions": ["A person, real or fictional, named in the text."],
        "synonyms": ["person name", "named human"],
    },
}
JUNK = {  # what SmolLM2 wrote for the sample labels, in the run, and its kind
    "location": {
        "descriptions": ["Kelmshire", "{", "2018-05-30T16:47:09.75,"],
        "synonyms": ["Chickentown", "description1"],
    },
    "organisation": {
        "descriptions": ["Narodny Light Festival, Oslo"],
        "synonyms": ["Elena Petrova", "Ravi Kumaran", "corporate body"],
    },
    "misc": {
        "descriptions": ["description1", "Leeds"],
        "synonyms": ["person", "Lindqvist and Aiko Mori"],
    },
}
JUNK_STRINGS = {
    "Kelmshire",
    "2018-05-30T16:47:09.75,",
    "Chickentown",
    "description1",
    "Narodny Light Festival, Oslo",
    "Ravi Kumaran",
}  # the others occur in inputs


@pytest.fixture
def junk_server(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("HUM_GATES_KEY", "sk-gates-test")
    answers = [[f'Label: "{label}"', json.dumps(a)] for label, a in {**GOOD, **JUNK}.items()]
    with LoopbackOpenAI() as server:
        server.default = {"kind": "by_prompt", "answers": answers}
        yield server


def test_junk_from_a_real_runner_never_reaches_the_dictionary_or_instructions(
    junk_server, tmp_path
):
    entry, result = sample("ner_en_conll")
    config = ClientConfig(
        model="m",
        base_url=junk_server.base_url,
        api_key_env="HUM_GATES_KEY",
        structured_output="none",
        timeout_s=10,
    )
    runner = OpenAIRunner(config, str(tmp_path / "cache"), "live")
    dictionary, report = build_dictionary(
        entry.name,
        entry.task,
        entry.language,
        result.records,
        result.schema,
        select_seeds(load_seed_book(), entry.name, entry.options or {}),
        runner=runner,
    )
    assert len(junk_server.chat_requests()) == 4
    written = [
        t
        for e in dictionary.entries.values()
        for t in [*e.descriptions, *e.variants]
        if t.provenance.startswith("llm:")
    ]
    # "person name" passes the gates too, but the CoNLL seed file has it already: the value
    # stays once, with the seed's provenance
    assert {t.value for t in written} == {
        "A person, real or fictional, named in the text.",
        "named human",
        "corporate body",
    }
    person = next(e for e in dictionary.entries.values() if e.label == "person")
    assert "person name" in {v.value for v in person.variants}
    step = report.llm["step_report"]
    assert step["requests"] == 4 and step["answered"] == 4 and step["failed"] == 0
    assert step["values"] == 16 and step["accepted"] == 4
    assert step["rejected_by_reason"] == {
        g.DATE_OR_NUMBER: 1,
        g.ENTITY: 3,
        g.INPUT_SPAN: 1,
        g.JSON_ECHO: 1,
        g.LABEL_VALUE: 1,
        g.OTHER_LABEL: 1,
        g.PLACEHOLDER: 2,
        g.PROPER_NAME: 2,
    }
    kept = {(r["label"], r["value"], r["reason"]) for r in step["rejected_sample"]}
    assert ("organisation", "Elena Petrova", g.LABEL_VALUE) in kept
    assert all(r["cache_key"] for r in step["rejected_sample"])
    # rejected values never reach instructions: every guideline strategy, every row
    rows = list(synthesize_basic(result.records, result.schema, BasicConfig(mode="train")))
    made = 0
    for strategy in ("description", "label_variants", "description_variants", "label_masking"):
        for row in synthesize_guidelines(rows, dictionary, strategy, GuidelineConfig()):
            made += 1
            text = row["instruction"] + row["output"]
            assert not [j for j in JUNK_STRINGS if j in text], (strategy, row["instruction"])
    assert made > 0


# Hand-written good answers for labels of the shared real sources: the gates must let
# them through; the only refusals are the Chinese synonyms without a shared character,
# the trade-off the README states.
SHARED_GOOD = {
    "crossner_politics_train": {
        "politician": (
            [
                "A person who holds or seeks political office, such as a president or minister.",
                "Names of politicians, including heads of state and party leaders.",
            ],
            ["political figure", "statesman", "officeholder"],
        ),
        "election": (
            [
                "An election or referendum, named by the office, the country and the year.",
                "Votes held to choose representatives, such as general elections.",
            ],
            ["vote", "electoral contest", "poll"],
        ),
        "politicalparty": (
            [
                "An organised political group that fields candidates in elections.",
                "Names of political parties, such as the Labour Party.",
            ],
            ["political party", "party", "political organisation"],
        ),
        "country": (
            [
                "A sovereign state or nation named in the text.",
                "Names of countries, such as France or Japan.",
            ],
            ["nation", "state", "sovereign state"],
        ),
    },
    "fewrel_val": {
        "spouse": (
            [
                "The subject is married to the object: husband, wife or partner.",
                "Relates a person to the person they are married to.",
            ],
            ["married to", "husband or wife", "partner"],
        ),
        "crosses": (
            [
                "A bridge or tunnel crosses a river, road or other obstacle.",
                "Relates a structure to the obstacle it spans.",
            ],
            ["spans", "passes over", "bridges"],
        ),
        "main subject": (
            [
                "The primary topic that a work, such as a book or film, is about.",
                "Relates a creative work to what it mainly deals with.",
            ],
            ["topic", "subject matter", "theme"],
        ),
    },
    "iepile_kg": {
        "人物/出生地点": (
            ["人物出生的地点，通常是城市或国家。", "指某人的出生地，如北京、巴黎。"],
            ["出生地", "籍贯地", "降生地"],
        ),
        "人物/父母": (
            ["人物的父亲或母亲。", "与该人物具有亲子关系的长辈，即其父母。"],
            ["双亲", "父亲或母亲", "生父母"],
        ),
        "人物/别名": (
            ["人物除本名以外的其他称呼。", "某人的别称、笔名或绰号等别名。"],
            ["别称", "绰号", "笔名"],
        ),
        "人物/职务": (
            ["人物担任的职位或官职。", "某人所任的职务，例如校长、部长。"],
            ["职位", "官职", "头衔"],
        ),
    },
}


def test_good_answers_for_the_shared_sources_pass(shared_data, monkeypatch):
    monkeypatch.setenv("HUM_SHARED_DATA", str(shared_data))
    entries = {e.name: e for e in load_catalog(ASSETS_DIR / "catalog.shared.yaml")}
    refused = []
    values = 0
    for name, labels in SHARED_GOOD.items():
        entry = entries[name]
        result = read_source(entry)
        dictionary, _ = source_dictionary(entry, result)
        ctx = GateContext.build(
            dictionary,
            collect_instances(entry.task, result.records),
            [r.text for r in result.records],
        )
        for key, (descriptions, synonyms) in labels.items():
            for value in descriptions:
                values += 1
                if (r := check_description(value, dictionary.entries[key], ctx)) is not None:
                    refused.append((key, value, r.reason))
            for value in synonyms:
                values += 1
                if (r := check_synonym(value, dictionary.entries[key], ctx)) is not None:
                    refused.append((key, value, r.reason))
    assert values == 55
    assert set(refused) == {
        ("人物/父母", "双亲", g.UNRELATED_NAME),
        ("人物/别名", "绰号", g.UNRELATED_NAME),
        ("人物/职务", "头衔", g.UNRELATED_NAME),
    }
