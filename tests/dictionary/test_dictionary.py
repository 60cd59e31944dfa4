"""Schema dictionaries: seeds, mining, merging with provenance, LLM enrichment, rows."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from functools import cache

import pytest

from hum_dagster.dictionary import (
    DESCRIBE_STEP,
    SchemaDictionary,
    build_dictionary,
    load_seed_book,
    select_seeds,
)
from hum_dagster.dictionary.enrich import PROMPTS_DIR
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import load_catalog
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.records import NER
from hum_dagster.synthesis.outputs import spo_label

LABELLED = ("NER", "RE", "SPO", "EE", "KGE", "TC")


@cache
def _sample(name: str):
    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == name)
    return entry, read_source(entry)


def _sample_names() -> list[str]:
    return [e.name for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.task in LABELLED]


def _build(name: str, **kwargs):
    entry, result = _sample(name)
    pid = entry.option("pid2name")
    pid2name = load_pid2name(entry.resolve(pid)) if pid else None
    seeds = select_seeds(load_seed_book(), entry.name, entry.options or {})
    return build_dictionary(
        entry.name,
        entry.task,
        entry.language,
        result.records,
        result.schema,
        seeds,
        pid2name=pid2name,
        **kwargs,
    )


def _gold_values(entry_name: str) -> dict[str, set[str]]:
    """key -> every gold value (spans; pairs as 'subject → object') in the source."""
    entry, result = _sample(entry_name)
    out: dict[str, set[str]] = {}
    for r in result.records:
        g = r.gold
        if entry.task == NER:
            for e in g["entities"]:
                out.setdefault(e["type"], set()).add(e["text"])
        elif entry.task in ("RE", "SPO"):
            for rel in g["relations"]:
                key = (
                    rel["relation"]
                    if entry.task == "RE"
                    else spo_label(rel["head_type"], rel["relation"], rel["tail_type"])
                )
                out.setdefault(key, set()).add(f"{rel['head']} → {rel['tail']}")
        elif entry.task == "EE":
            for ev in g["events"]:
                out.setdefault(ev["event_type"], set()).add(ev["trigger"])
                for arg in ev["arguments"]:
                    out.setdefault(f"{ev['event_type']}/{arg['role']}", set()).add(arg["argument"])
    return out


def _vstr(value) -> str:
    if isinstance(value, dict):
        return f"{value['subject']} → {value['object']}"
    return value


# --------------------------------------------------------------------------- samples


@pytest.mark.parametrize("name", _sample_names())
def test_every_sample_label_has_seeded_descriptions_and_variants(name):
    d, report = _build(name)
    assert d.entries, name
    assert report.unseeded == []
    for key, e in d.entries.items():
        provs = {t.provenance for t in e.descriptions}
        if name == "re_en_fewrel":
            assert e.descriptions[0].provenance == "pid2name", key
        else:
            assert e.descriptions[0].provenance.startswith("seed:"), key
        assert provs <= {"pid2name", "mined"} | {p for p in provs if p.startswith("seed:")}
        assert len(e.variants) >= 2, key
        assert all(v.provenance.startswith("seed:") for v in e.variants)
        assert all(v.value != e.label for v in e.variants)
        for x in [*e.positives, *e.negatives]:
            assert x.provenance == "mined"
            assert x.text_id
        assert all(x.reason for x in e.negatives)
        assert all(c.provenance == "mined" for c in e.candidates)


@pytest.mark.parametrize(
    "name", ["ner_en_conll", "ner_zh_bioes", "re_zh_iepile", "ee_zh_iepile", "spo_zh_iepile"]
)
def test_negatives_are_never_gold_of_the_label_and_positives_are(name):
    d, _ = _build(name)
    gold = _gold_values(name)
    checked = 0
    for key, e in d.entries.items():
        values = gold.get(key, set())
        for x in e.negatives:
            assert _vstr(x.value) not in values, (key, x)
            checked += 1
        for x in e.positives:
            assert _vstr(x.value) in values, (key, x)
            probe = x.value["subject"] if isinstance(x.value, dict) else x.value
            assert probe in x.text
    assert checked > 0


def test_five_and_five_examples_where_the_data_has_enough():
    d, _ = _build("ner_en_conll")
    loc = d.get("location")
    assert len(loc.positives) == 5 and len(loc.negatives) == 5
    assert len({x.value for x in loc.positives}) == 5  # distinct values first
    kinds = {("boundary" if "boundary" in x.reason else "other") for x in loc.negatives}
    assert kinds == {"boundary", "other"}
    # misc has 3 instances: only those 3 positives, never padded
    assert len(d.get("misc").positives) == 3
    # typical values description is mined from the candidates, and comes after seeds
    descs = d.get("location").descriptions
    assert descs[-1].provenance == "mined" and descs[-1].value.startswith("Typical values: ")
    candidates = [c.value for c in d.get("location").candidates]
    assert len(candidates) == len(set(candidates)) >= 5


def test_ee_roles_are_entries_with_their_event_as_parent():
    d, _ = _build("ee_zh_iepile")
    role = d.get("时间", "组织关系-裁员")
    assert role is not None and role.kind == "role" and role.parent == "组织关系-裁员"
    assert role.descriptions[0].provenance == "seed:zh_ee_kge.yaml"
    assert d.get("组织关系-裁员").kind == "event_type"
    kge, _ = _build("kge_zh_iepile")
    assert kge.get("配偶", "人物").kind == "attribute"


def test_hard_negatives_come_first_with_their_reason():
    d, _ = _build("ner_en_conll", hard_negatives={"location": ["organisation"]})
    negatives = d.get("location").negatives
    org_spans = _gold_values("ner_en_conll")["organisation"]
    hard = [x for x in negatives if "easily mistaken" in x.reason]
    assert len(hard) == 2 and all(x.value in org_spans for x in hard)
    assert negatives[:2] == hard


def test_build_is_deterministic_and_independent_of_record_order():
    entry, result = _sample("ner_en_conll")
    seeds = select_seeds(load_seed_book(), entry.name)
    a, _ = build_dictionary(entry.name, "NER", "en", result.records, result.schema, seeds)
    shuffled = list(result.records)
    random.Random(7).shuffle(shuffled)
    b, _ = build_dictionary(entry.name, "NER", "en", shuffled, result.schema, seeds)
    assert a.to_bytes() == b.to_bytes()
    c, _ = build_dictionary(entry.name, "NER", "en", result.records, result.schema, seeds, seed=1)
    assert c.to_bytes() != a.to_bytes()  # the seed does shape the sampling


def test_rows_round_trip_and_views():
    d, report = _build("ee_zh_iepile")
    rows = d.to_rows()
    assert [r["key"] for r in rows] == sorted(d.entries)
    assert all(isinstance(r["descriptions"], str) for r in rows)
    back = SchemaDictionary.from_rows(rows)
    assert back.to_bytes() == d.to_bytes()
    md = d.to_markdown(2)
    assert md.count("**") == 4 and "seed:zh_ee_kge.yaml" in md
    cov = {c["key"]: c for c in report.coverage}
    assert cov["组织关系-裁员"]["has_descriptions"] and cov["组织关系-裁员"]["has_variants"]
    assert report.coverage_summary["labels"] == len(d.entries)


def test_select_seeds_by_option_by_name_and_by_prefix():
    book = load_seed_book()
    assert [s.name for s in select_seeds(book, "anything", {"dictionary": "crossner_science"})] == [
        "crossner_science"
    ]
    assert [s.name for s in select_seeds(book, "crossner_politics_dev")] == ["crossner_politics"]
    assert [s.name for s in select_seeds(book, "ner_en_conll")] == ["conll_en"]
    assert select_seeds(book, "no_such_source") == []
    with pytest.raises(ValueError, match="unknown label sets"):
        select_seeds(book, "x", {"dictionary": "nope"})


def test_crossner_seeds_cover_all_five_domains():
    book = load_seed_book()
    expected = {
        "crossner_politics": 9,
        "crossner_science": 17,
        "crossner_music": 13,
        "crossner_literature": 12,
        "crossner_ai": 14,
    }
    for name, n in expected.items():
        entries = book[name].entries
        assert len(entries) == n, name
        for label, seed in entries.items():
            assert len(seed.descriptions) >= 2 and len(seed.variants) >= 2, (name, label)


# --------------------------------------------------------------------------- real files


def test_crossner_politics_train(shared_data, tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "sources:\n  - name: crossner_politics\n    task: NER\n    language: en\n"
        f"    format: conll\n    location: {shared_data / 'crossner/politics/train.txt'}\n"
        "    options: {scheme: BIO}\n",
        encoding="utf-8",
    )
    entry = load_catalog(catalog)[0]
    result = read_source(entry)
    d, report = build_dictionary(
        entry.name,
        "NER",
        "en",
        result.records,
        result.schema,
        select_seeds(load_seed_book(), entry.name),
    )
    labels = {
        "person",
        "organisation",
        "location",
        "politician",
        "politicalparty",
        "election",
        "event",
        "country",
        "misc",
    }
    assert set(d.entries) == labels
    summary = report.coverage_summary
    assert summary["with_descriptions"] == summary["with_variants"] == 9
    assert summary["with_5_5_examples"] == 9
    gold = {}
    by_text = {}
    for r in result.records:
        by_text[r.text_id] = r
        for e in r.gold["entities"]:
            gold.setdefault(e["type"], set()).add(e["text"])
    for key, e in d.entries.items():
        assert e.descriptions[0].provenance == "seed:crossner.yaml"
        for x in e.positives:  # real spans of that label in their record
            record = by_text[x.text_id]
            assert any(g["type"] == key and g["text"] == x.value for g in record.gold["entities"])
            assert x.value in x.text
        for x in e.negatives:
            assert x.value not in gold[key]


def test_fewrel_descriptions_come_from_pid2name(shared_data, tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "sources:\n  - name: fewrel_val\n    task: RE\n    language: en\n    format: fewrel\n"
        f"    location: {shared_data / 'fewrel/val_wiki.json'}\n"
        f"    options: {{pid2name: {shared_data / 'fewrel/pid2name.json'}}}\n",
        encoding="utf-8",
    )
    entry = load_catalog(catalog)[0]
    result = read_source(entry)
    records = result.records[::20]  # a slice keeps the test fast; every relation stays
    pid2name = load_pid2name(str(shared_data / "fewrel/pid2name.json"))
    d, report = build_dictionary(
        entry.name,
        "RE",
        "en",
        records,
        result.schema,
        select_seeds(load_seed_book(), entry.name),
        pid2name=pid2name,
    )
    assert len(d.entries) == 16
    names = {v[0]: v[1] for v in pid2name.values()}
    for key, e in d.entries.items():
        assert e.descriptions[0] == type(e.descriptions[0])(names[key], "pid2name")
        assert e.descriptions[-1].provenance == "mined"
        assert len(e.variants) >= 2
        assert all(v.provenance == "seed:fewrel.yaml" for v in e.variants)
        assert len(e.positives) == 5 and len(e.negatives) == 5
    assert report.unseeded == []


# --------------------------------------------------------------------------- LLM


class FakeRunner:
    """Stands in for the real LLM runner only to check how results and failures are
    merged into a dictionary (the real runner is tested elsewhere, against a loopback
    server). It answers each request from a rule keyed by the label in the prompt."""

    def __init__(
        self, mode: str = "live", fail_labels: Sequence[str] = (), bad_labels: Sequence[str] = ()
    ):
        self.mode = mode
        self.fail_labels = set(fail_labels)
        self.bad_labels = set(bad_labels)
        self.calls: list[list[LLMRequest]] = []

    def run(self, requests, validate=None):
        self.calls.append(list(requests))
        out = []
        for req in requests:
            prompt = req.messages[-1]["content"]
            label = prompt.split('Label: "', 1)[1].split('"', 1)[0]
            key = hashlib.sha256(prompt.encode()).hexdigest()
            if label in self.fail_labels:
                out.append(LLMFailure(key=key, step=req.step, reason="rate_limited", attempts=3))
                continue
            parsed = (
                {"descriptions": "not a list", "synonyms": []}
                if label in self.bad_labels
                else {
                    "descriptions": [f"LLM says {label} is a label."],
                    "synonyms": [f"{label} (llm)"],
                }
            )
            if validate is not None and label not in self.bad_labels:
                assert validate(parsed) is None
            out.append(
                LLMResponse(
                    key=key,
                    step=req.step,
                    content=json.dumps(parsed),
                    parsed=parsed,
                    model="fake",
                    usage={"prompt_tokens": 10, "completion_tokens": 5},
                    cached=label == "misc",
                    created_at=0.0,
                )
            )
        return out


def test_llm_results_merge_with_provenance_and_failures_are_counted():
    runner = FakeRunner(fail_labels=["person"], bad_labels=["organisation"])
    d, report = _build("ner_en_conll", runner=runner)
    assert len(runner.calls) == 1
    requests = runner.calls[0]
    assert len(requests) == 4
    version = hashlib.sha256((PROMPTS_DIR / "describe_label.json").read_bytes()).hexdigest()[:12]
    for req in requests:
        assert req.step == DESCRIBE_STEP == "dictionary.describe"
        assert req.template == "describe_label" and req.template_version == version
        assert req.json_schema["required"] == ["descriptions", "synonyms"]
    loc = d.get("location")
    llm = [t for t in loc.descriptions if t.provenance.startswith("llm:")]
    assert [t.value for t in llm] == ["LLM says location is a label."]
    # order: seeds, then LLM, then mined
    provs = [t.provenance.split(":")[0] for t in loc.descriptions]
    assert provs == sorted(provs, key=["seed", "llm", "mined"].index)
    assert loc.variants[-1].value == "location (llm)"
    assert loc.variants[-1].provenance == llm[0].provenance
    assert not any(t.provenance.startswith("llm:") for t in d.get("person").descriptions)
    assert not any(t.provenance.startswith("llm:") for t in d.get("organisation").descriptions)
    usage = report.llm
    assert usage["requests"] == 4 and usage["responses"] == 2 and usage["cached"] == 1
    assert usage["failures_by_reason"] == {"invalid": 1, "rate_limited": 1}
    assert {f["label"] for f in usage["failures"]} == {"person", "organisation"}
    assert usage["values"] == 4 and usage["accepted"] == 4  # 2 answers x (description, synonym)
    assert len(usage["cache_keys"]) == 2
    # same answers, same bytes
    d2, _ = _build(
        "ner_en_conll", runner=FakeRunner(fail_labels=["person"], bad_labels=["organisation"])
    )
    assert d2.to_bytes() == d.to_bytes()


def test_offline_runner_or_none_never_asks():
    runner = FakeRunner(mode="offline")
    d, report = _build("ner_en_conll", runner=runner)
    assert runner.calls == []
    assert report.llm["mode"] == "offline" and report.llm["requests"] == 0
    base, _ = _build("ner_en_conll")
    assert d.to_bytes() == base.to_bytes()


def test_llm_scope_missing_only_asks_about_unseeded_labels():
    entry, result = _sample("ner_en_conll")
    runner = FakeRunner()
    build_dictionary(
        entry.name,
        "NER",
        "en",
        result.records,
        result.schema,
        [],
        runner=runner,
        llm_scope="missing",
    )
    assert len(runner.calls[0]) == 4  # no seeds: every label is missing
    runner = FakeRunner()
    _build("ner_en_conll", runner=runner, llm_scope="missing")
    assert runner.calls == []  # all seeded: nothing asked


def test_tasks_without_labels_get_an_empty_dictionary():
    from hum_dagster.dictionary import build_dictionary
    from hum_dagster.records import LabelSchema, Record

    record = Record("s", "MRC", "en", "A passage.", {"question": "q", "options": [], "answers": []}, "f:1")
    dictionary, report = build_dictionary("s", "MRC", "en", [record], LabelSchema())
    assert dictionary.entries == {}
    assert report.coverage_summary["labels"] == 0
