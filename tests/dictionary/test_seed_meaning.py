"""The curated seeds keep each label's meaning: descriptions quote no sample input and
agree with what the data labels, name variants are synonyms, symmetric relations get
no swapped-pair negatives."""

from __future__ import annotations

import json
import re

import pytest

from hum_dagster.dictionary import SchemaDictionary, build_dictionary, load_seed_book, select_seeds
from hum_dagster.dictionary.seeds import load_seed_file
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import load_catalog
from hum_dagster.records import LabelSchema, Record

QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')


def _sample_texts() -> str:
    parts = []
    for entry in load_catalog(ASSETS_DIR / "catalog.yaml"):
        for record in read_source(entry).records:
            parts.append(record.text)
            parts.append(json.dumps(record.gold, ensure_ascii=False))
    return "\n".join(parts).casefold()


def _descriptions(entry, where):
    for d in entry.descriptions:
        yield where, d
    for role, sub in entry.roles.items():
        yield from _descriptions(sub, f"{where}/{role}")


def test_seed_descriptions_quote_no_sample_input():
    samples = _sample_texts()
    found = []
    for seed_set in load_seed_book().values():
        entries = [*seed_set.entries.items(), *((f"roles/{k}", v) for k, v in seed_set.role_defaults.items())]
        for label, entry in entries:
            for where, text in _descriptions(entry, f"{seed_set.provenance}:{label}"):
                for a, b in QUOTED.findall(text):
                    if (a or b).casefold() in samples:
                        found.append((where, a or b))
    assert not found, sorted(set(found))


@pytest.mark.parametrize(
    "seed_set, label, parent, wrong",
    [
        ("spo_zh_iepile", "国家_首都_城市", None, "首府"),  # a provincial capital
        ("kge_zh_iepile", "所属组织", "人物", "工作单位"),  # an employer, not a school
        ("kge_zh_iepile", "配偶", "人物", "伴侣"),  # a partner need not be married
        ("kge_zh_iepile", "籍贯", "人物", "老家"),  # a home town, not the ancestral home
        ("re_zh_iepile", "出生地", None, "籍贯所在地"),
        ("re_zh_iepile", "毕业院校", None, "就读院校"),  # attended, not graduated
        ("crossner_politics", "country", None, "state"),  # a US state is no country
        ("crossner_politics", "election", None, "poll"),  # an opinion poll
        ("re_en_fewrel", "voice type", None, "vocal range"),
    ],
)
def test_removed_variants_that_changed_the_meaning_stay_removed(seed_set, label, parent, wrong):
    book = load_seed_book()
    name = seed_set if seed_set in book else None
    seeds = [book[name]] if name else select_seeds(book, seed_set)
    entries = [s.entry(label, parent) for s in seeds]
    entries = [e for e in entries if e is not None]
    assert entries and all(wrong not in e.variants for e in entries)


def test_conll_location_covers_countries_as_its_data_does():
    """CoNLL-2003 has no country type: "Canada" is a location in the sample, so its
    location description must not exclude countries (CrossNER's does, rightly)."""
    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == "ner_en_conll")
    result = read_source(entry)
    canada = [
        e for r in result.records for e in r.gold["entities"] if e["text"] == "Canada"
    ]
    assert canada and {e["type"] for e in canada} == {"location"}
    (conll,) = select_seeds(load_seed_book(), "ner_en_conll")
    location = conll.entry("location")
    assert "countries" in location.descriptions[0] and "not a country" not in location.descriptions[0]
    (politics,) = select_seeds(load_seed_book(), "crossner_politics")
    assert "not a country" in politics.entry("location").descriptions[0]


def test_symmetric_must_be_a_boolean(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("language: en\nlabels:\n  spouse: {symmetric: yes please}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="symmetric must be true or false"):
        load_seed_file(path)


def _spouse_records() -> list[Record]:
    texts = [("Ann Ode married Bo Lind in May.", "Ann Ode", "Bo Lind"),
             ("Cy Moss and his wife Di Park moved.", "Cy Moss", "Di Park"),
             ("Ed Roe wed Flo Tan.", "Ed Roe", "Flo Tan")]
    return [
        Record("s", "RE", "en", t, {"relations": [{"head": h, "relation": "spouse", "tail": o}]}, f"f:{i}")
        for i, (t, h, o) in enumerate(texts)
    ]


def _swapped(entry) -> list:
    positives = {(x.value["subject"], x.value["object"]) for x in entry.positives}
    return [x for x in entry.negatives if (x.value["object"], x.value["subject"]) in positives]


def test_symmetric_relations_never_get_swapped_pair_negatives():
    schema = LabelSchema(roles=["spouse"])
    seeds = select_seeds(load_seed_book(), "re_en_fewrel")
    d, _ = build_dictionary("s", "RE", "en", _spouse_records(), schema, seeds)
    spouse = d.get("spouse")
    assert spouse.symmetric
    assert _swapped(spouse) == []
    again = SchemaDictionary.from_rows(d.to_rows())  # the mark survives the table
    assert all(again.entries[k].symmetric == e.symmetric for k, e in d.entries.items())
    # without the mark, the same data gets one: the test can fail
    d_plain, _ = build_dictionary("s", "RE", "en", _spouse_records(), schema, [])
    assert not d_plain.get("spouse").symmetric and _swapped(d_plain.get("spouse"))


def test_every_symmetric_seed_relation_is_left_out_of_the_inverse_table():
    from hum_dagster.synthesis.preferences_rules import load_inverse_table

    table = load_inverse_table()
    book = load_seed_book()
    symmetric = {
        label
        for s in book.values()
        for label, e in s.entries.items()
        if e.symmetric and s.language == "en"
    }
    assert {"spouse", "sibling"} <= symmetric
    for label in symmetric:
        assert table.inverse(label, "en") is None, label
