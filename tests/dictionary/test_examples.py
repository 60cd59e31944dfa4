"""The paper's schema dictionary from the LLM (step ``dictionary.examples``): 5 positive
and 5 negative examples, candidates and variant verdicts per label, each value through a
gate that can say no (one test per rule, with the bad value it refuses), provenance and
origin on what is kept, the own-answer guard on guidelines built from it, and the real
runner against the loopback OpenAI-compatible server with plausible and junk answers."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import pytest
from openai_server import LoopbackOpenAI

sys.path.insert(0, str(Path(__file__).parent))
from answers_fewrel import DESCRIBE, JUNK, PLAUSIBLE, by_prompt, pair  # noqa: E402

from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds  # noqa: E402
from hum_dagster.dictionary import examples as ex  # noqa: E402
from hum_dagster.dictionary import gates as g  # noqa: E402
from hum_dagster.dictionary.enrich import PROMPTS_DIR, load_prompt  # noqa: E402
from hum_dagster.dictionary.gates import GateContext  # noqa: E402
from hum_dagster.dictionary.mine import collect_instances  # noqa: E402
from hum_dagster.dictionary.model import SchemaDictionary  # noqa: E402
from hum_dagster.llm import client as client_mod  # noqa: E402
from hum_dagster.llm.client import ClientConfig, OpenAIRunner  # noqa: E402
from hum_dagster.llm.report import StepReport  # noqa: E402
from hum_dagster.llm.types import LLMResponse  # noqa: E402
from hum_dagster.paths import ASSETS_DIR  # noqa: E402
from hum_dagster.readers import read_source  # noqa: E402
from hum_dagster.readers.catalog import load_catalog  # noqa: E402
from hum_dagster.readers.fewrel import load_pid2name  # noqa: E402
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic  # noqa: E402
from hum_dagster.synthesis.guidelines import GuidelineConfig, synthesize_guidelines  # noqa: E402
from hum_dagster.synthesis.own_answers import check_own_answers  # noqa: E402


@cache
def sample(name: str):
    entry = next(e for e in load_catalog(ASSETS_DIR / "catalog.yaml") if e.name == name)
    return entry, read_source(entry)


def build(name: str, **kwargs):
    entry, result = sample(name)
    pid = entry.option("pid2name")
    return build_dictionary(
        entry.name, entry.task, entry.language, result.records, result.schema,
        select_seeds(load_seed_book(), entry.name, entry.options or {}),
        pid2name=load_pid2name(entry.resolve(pid)) if pid else None, **kwargs,
    )


def context(name: str) -> tuple[SchemaDictionary, GateContext]:
    entry, result = sample(name)
    d, _ = build(name)
    ctx = GateContext.build(
        d, collect_instances(entry.task, result.records), [r.text for r in result.records]
    )
    return d, ctx


class ScriptedRunner:
    """A live runner answering each request from ``answers`` (label -> parsed JSON) by
    the label its prompt names and the step that asks."""

    mode = "live"

    def __init__(self, describe: dict, examples: dict):
        self.answers = {"dictionary.describe": describe, ex.EXAMPLES_STEP: examples}
        self.calls: list[list] = []

    def run(self, requests, validate=None):
        self.calls.append(list(requests))
        out = []
        for n, req in enumerate(requests):
            prompt = req.messages[-1]["content"]
            label = next(
                k for k in self.answers[req.step] if f'Label: "{k}"\n' in prompt
            ) if any(f'Label: "{k}"\n' in prompt for k in self.answers[req.step]) else None
            parsed = self.answers[req.step].get(label) if label else None
            if parsed is None:
                parsed = (
                    {"descriptions": ["-"], "synonyms": []}
                    if req.step == "dictionary.describe"
                    else {"positives": [], "negatives": [{"text": "x", "value": "y"}]}
                )
            out.append(LLMResponse(
                key=f"{req.step}-{n}-{label}", step=req.step, content=json.dumps(parsed),
                parsed=parsed, model="scripted-model", usage={}, cached=False, created_at=0.0,
            ))
        return out


# --------------------------------------------------------------------------- each gate


def _check(name: str, key: str, item, negative: bool):
    d, ctx = context(name)
    labels = frozenset(e.label for e in d.entries.values())
    return ex.check_llm_example(item, d.entries[key], ctx, negative=negative, labels=labels)


@pytest.mark.parametrize(
    "key, item, negative, reason",
    [
        ("spouse", {"text": "They married in 1931.", "value": pair("Clara Webb", "Jonah Hale")},
         False, g.SPAN_NOT_IN_TEXT),
        ("spouse", {"text": "Mara Lind met a friend.", "value": pair("Mara Lind", "Paul Ost"),
                    "reason": "a friend"}, True, g.SPAN_NOT_IN_TEXT),
        ("spouse", {"text": "Jonah Hale and Clara Webb wed in 1931.",
                    "value": pair("Jonah Hale", "Clara Webb"), "reason": "reversed"},
         True, g.SWAPPED_SYMMETRIC),
        ("spouse", {"text": "Ruth Adler's husband was Karl Adler.",
                    "value": pair("Ruth Adler", "Karl Adler"), "reason": "no"},
         True, g.NEGATIVE_IS_GOLD),
        ("spouse", {"text": "Mara Lind met Paul Ost.", "value": pair("Mara Lind", "Paul Ost")},
         True, ex.NO_REASON),
        ("spouse", {"text": "Paper Lanterns and Hana Sato were mentioned.",
                    "value": pair("Paper Lanterns", "Hana Sato")}, False, ex.OTHER_LABEL_VALUE),
        ("spouse", {"text": "Clara Webb married the painter Jonah Hale in a small ceremony in "
                    "1931 .", "value": pair("Clara Webb", "Jonah Hale")}, False, g.INPUT_SPAN),
        ("author", {"text": "《山月集》是诗人沈青禾的第一部诗集。", "value": pair("山月集", "沈青禾")},
         False, g.WRONG_LANGUAGE),
        ("author", {"text": '{"text": "a", "value": "b"}', "value": pair("a", "b")},
         False, g.JSON_ECHO),
        ("author", {"text": "example", "value": pair("a", "b")}, False, g.PLACEHOLDER),
        ("author", {"text": "Winter Letters was written by Anand Rao.", "value": "Anand Rao"},
         False, g.EMPTY_VALUE),
        ("author", {"text": "Long " * 90 + "Anand Rao wrote Winter Letters.",
                    "value": pair("Winter Letters", "Anand Rao"), "reason": "long"},
         True, g.TOO_LONG),
        ("author", "Winter Letters by Anand Rao", False, g.NOT_TEXT),
    ],
)
def test_example_gate_says_no_with_the_reason(key, item, negative, reason):
    example, rejection = _check("re_en_fewrel", key, item, negative)
    assert example is None and rejection is not None
    assert rejection.reason == reason, rejection


def test_a_swapped_pair_is_a_fine_negative_of_a_directed_relation():
    item = {"text": "Winter Letters was written by the poet Anand Rao.",
            "value": pair("Anand Rao", "Winter Letters"), "reason": "swapped"}
    example, rejection = _check("re_en_fewrel", "author", item, True)
    assert rejection is None and example.reason == "swapped"
    # the same swap of a gold spouse pair is refused (spouse is symmetric)
    d, _ = context("re_en_fewrel")
    assert d.entries["spouse"].symmetric and not d.entries["author"].symmetric


@pytest.mark.parametrize(
    "name, key, item, negative, reason",
    [
        ("ner_en_conll", "person", {"text": "The bank Lindqvist Holdings opened.",
                                    "value": "Lindqvist Holdings Ltd"}, False, g.SPAN_NOT_IN_TEXT),
        ("re_zh_iepile", "作者", {"text": "The poet wrote a book.", "value": pair("book", "poet")},
         False, g.WRONG_LANGUAGE),
        ("tc_en_csv", "positive", {"text": "A dull, lifeless film.", "value": "positive",
                                   "reason": "it is positive"}, True, g.NEGATIVE_IS_GOLD),
        ("tc_en_csv", "positive", {"text": "A warm and funny film.", "value": "negative"},
         False, g.SPAN_NOT_IN_TEXT),
    ],
)
def test_example_gate_on_other_tasks(name, key, item, negative, reason):
    if name not in {e.name for e in load_catalog(ASSETS_DIR / "catalog.yaml")}:
        pytest.skip(f"no sample {name}")
    example, rejection = _check(name, key, item, negative)
    assert rejection is not None and rejection.reason == reason, rejection


@pytest.mark.parametrize(
    "key, value, reason",
    [
        ("spouse", "The subject is married to the object.", g.EMPTY_VALUE),
        ("spouse", pair("Paper Lanterns", "Hana Sato"), ex.OTHER_LABEL_VALUE),
        ("spouse", pair("Mara Lind", "married in Lisbon to the composer Oskar Bell of Vienna."),
         g.NOT_A_NAME),
        ("spouse", pair("<subject>", "b"), g.PLACEHOLDER),
    ],
)
def test_candidate_gate_says_no_with_the_reason(key, value, reason):
    d, ctx = context("re_en_fewrel")
    text, rejection = ex.check_candidate(value, d.entries[key], ctx)
    assert text is None and rejection.reason == reason, rejection


def test_candidate_gate_on_spans():
    d, ctx = context("ner_en_conll")
    assert ex.check_candidate("person", d.entries["person"], ctx)[1].reason == g.SAME_AS_LABEL
    gold_org = next(iter(ctx.gold_spans["organisation"]))
    rejected = ex.check_candidate(gold_org, d.entries["person"], ctx)[1]
    assert rejected is not None and rejected.reason == ex.OTHER_LABEL_VALUE
    assert ex.check_candidate("Greta Lindqvist", d.entries["person"], ctx) == (
        "Greta Lindqvist", None
    )


def test_the_answer_shape_is_checked_before_the_gates():
    assert ex.validate_examples([]) == "answer is not a JSON object"
    assert ex.validate_examples({"positives": "x", "negatives": []}) == "positives must be a list"
    assert "both empty" in ex.validate_examples({"positives": [], "negatives": []})
    assert ex.validate_examples({"positives": [], "negatives": [{}], "variants": {}}) == (
        "variants must be a list"
    )
    assert ex.validate_examples(PLAUSIBLE["spouse"]) is None
    assert ex.validate_examples(DESCRIBE["spouse"]) == "positives must be a list"


# --------------------------------------------------------------------------- the step


def test_plausible_answers_fill_the_entries_with_provenance_and_origin():
    runner = ScriptedRunner(DESCRIBE, PLAUSIBLE)
    d, report = build("re_en_fewrel", runner=runner, llm_examples=True)
    assert [len(c) for c in runner.calls] == [4, 4]
    assert {r.step for r in runner.calls[1]} == {ex.EXAMPLES_STEP}
    version = load_prompt("label_examples").version
    assert all(r.template == "label_examples" and r.template_version == version
               for r in runner.calls[1])
    author = d.entries["author"]
    llm_pos = [x for x in author.positives if x.provenance.startswith("llm:")]
    assert [x.value for x in llm_pos] == [pair("The Glass Harbour", "Rita Ocampo"),
                                          pair("Winter Letters", "Anand Rao")]
    assert len(author.positives) == 5  # 3 mined + 2 written: the data left it short
    assert all(x.origin == f"scripted-model label_examples@{version}" for x in llm_pos)
    assert all(x.text_id == "" for x in llm_pos)
    assert [x.provenance for x in author.positives[:3]] == ["mined"] * 3  # data first
    # the data gave 5 negatives: the 2 written ones take the last 2 places
    assert len(author.negatives) == 5
    assert [x.provenance.split(":")[0] for x in author.negatives] == ["mined"] * 3 + ["llm"] * 2
    assert author.negatives[3].reason == "the translator, not the author"
    spouse_neg = d.entries["spouse"].negatives  # 3 written, at most 2 take mined places
    assert [x.provenance.split(":")[0] for x in spouse_neg] == ["mined"] * 3 + ["llm"] * 2
    assert author.candidates[-1].value == "Winter Letters → Anand Rao"
    assert author.candidates[-1].origin.startswith("scripted-model label_examples@")
    # variants: LLM synonyms stay only where confirmed; seeds stay
    spouse = {t.value: t.provenance.split(":")[0] for t in d.entries["spouse"].variants}
    assert spouse == {"married to": "seed", "husband or wife": "seed",
                      "marriage partner": "seed", "wedded partner": "llm"}  # consort: no
    sport = {t.value for t in d.entries["sport"].variants}
    assert "plays sport" in sport and "athletics" not in sport
    # describe values name their prompt and model too
    desc = [t for t in author.descriptions if t.provenance.startswith("llm:")]
    assert desc and desc[0].origin.startswith("scripted-model describe_label@")
    step = report.llm["examples"]["step_report"]
    assert step["requests"] == 4 and step["failed"] == 0
    assert step["rejected_by_reason"] == {ex.MEANING_CHANGED: 2}
    assert report.llm["examples"]["added"] == {"positives": 5, "negatives": 6, "candidates": 5}
    # the same answers give the same bytes; a round trip keeps the origin
    again, _ = build("re_en_fewrel", runner=ScriptedRunner(DESCRIBE, PLAUSIBLE),
                     llm_examples=True)
    assert again.to_bytes() == d.to_bytes()
    assert SchemaDictionary.from_rows(d.to_rows()).to_bytes() == d.to_bytes()


def test_variants_a_failed_or_silent_answer_does_not_confirm_are_dropped():
    runner = ScriptedRunner(DESCRIBE, JUNK)
    d, report = build("re_en_fewrel", runner=runner, llm_examples=True)
    assert not [t for e in d.entries.values() for t in e.variants if t.provenance.startswith("llm:")]
    usage = report.llm["examples"]
    reasons = usage["step_report"]["rejected_by_reason"]
    assert reasons[ex.MEANING_CHANGED] == 1  # "authored by" for author
    # unjudged: wedded partner, consort (spouse); penned by (author); and the synonyms of
    # sport and located, whose requests got no usable answer
    assert reasons[ex.MEANING_UNCONFIRMED] == 6
    # a "no" for a seeded variant is reported, the seed stays (a reviewed list)
    assert usage["disputed_seed_variants"] == [
        {"label": "author", "variant": "written by", "provenance": "seed:fewrel.yaml"}
    ]
    assert "written by" in {t.value for t in d.entries["author"].variants}


def test_offline_or_without_the_option_nothing_changes():
    base, _ = build("re_en_fewrel")
    off, report = build("re_en_fewrel", llm_examples=True)
    assert off.to_bytes() == base.to_bytes()
    assert report.llm["examples"]["requests"] == 0
    runner = ScriptedRunner(DESCRIBE, PLAUSIBLE)
    only_describe, report = build("re_en_fewrel", runner=runner)
    assert [len(c) for c in runner.calls] == [4] and "examples" not in report.llm
    assert not any(x.provenance.startswith("llm:") for e in only_describe.entries.values()
                   for x in e.positives)


def test_a_symmetric_relation_is_never_asked_for_a_reversed_pair():
    runner = ScriptedRunner(DESCRIBE, PLAUSIBLE)
    build("re_en_fewrel", runner=runner, llm_examples=True)
    prompts = {
        next(k for k in PLAUSIBLE if f'Label: "{k}"\n' in r.messages[-1]["content"]):
        r.messages[-1]["content"] for r in runner.calls[1]
    }
    assert "wrong direction" not in prompts["spouse"]
    assert "wrong direction" in prompts["author"]
    assert '"married to"' not in prompts["spouse"] and "- married to" in prompts["spouse"]


def test_written_examples_never_show_a_record_its_own_answer():
    """An LLM positive quoting a record's gold span (a real risk: a model asked for
    examples writes well-known pairs) must not appear in that record's guidelines."""
    entry, result = sample("re_en_fewrel")
    leaky = {k: dict(v) for k, v in PLAUSIBLE.items()}
    leaky["author"] = dict(leaky["author"], positives=[
        {"text": "Hana Sato wrote the novel Paper Lanterns and later a memoir.",
         "value": pair("Paper Lanterns", "Hana Sato")},  # a gold pair of the sample
        *PLAUSIBLE["author"]["positives"],
    ])
    d, _ = build("re_en_fewrel", runner=ScriptedRunner(DESCRIBE, leaky), llm_examples=True)
    written = [x for x in d.entries["author"].positives if x.provenance.startswith("llm:")]
    assert written[0].value == pair("Paper Lanterns", "Hana Sato")
    rows = list(synthesize_basic(result.records, result.schema, BasicConfig(mode="train")))
    made = list(synthesize_guidelines(rows, d, "examples", GuidelineConfig()))
    assert made
    assert check_own_answers(made, rows) == []
    own = [r for r in made if "Paper Lanterns" in json.loads(r["instruction"])["input"]]
    assert own and all("Hana Sato wrote the novel" not in r["instruction"] for r in own)
    shown = [r for r in made if "Hana Sato wrote the novel" in r["instruction"]]
    assert shown  # other records may see it


def test_the_step_reports_merge_for_the_asset():
    a = StepReport("dictionary.describe", mode="live", requests=4, answered=4, values=10,
                   accepted=8)
    a.rejections["fragment"] = 2
    b = StepReport(ex.EXAMPLES_STEP, mode="live", requests=4, answered=3, values=20,
                   accepted=5)
    b.failures["invalid"] = 1
    b.rejections["span_not_in_text"] = 15
    m = a.merged(b)
    assert m.step == "dictionary.describe+dictionary.examples"
    assert (m.requests, m.answered, m.failed, m.values, m.accepted) == (8, 7, 1, 30, 13)
    assert dict(m.rejections) == {"fragment": 2, "span_not_in_text": 15}
    verdict = m.verdict()  # one failure of 8 is past the default 10%: the partition fails
    assert verdict.level == "fail" and not verdict.failed_ok and not verdict.accepted_ok
    assert "1 of 8 requests failed" in verdict.reasons[0]
    assert "13 of 30 LLM values accepted" in verdict.reasons[1]


# --------------------------------------------------------------------------- loopback


@pytest.fixture
def server(monkeypatch):
    client_mod._STRUCTURED_LEARNT.clear()
    monkeypatch.setenv("HUM_EXAMPLES_KEY", "sk-examples-test")
    with LoopbackOpenAI() as s:
        yield s


def _live(server, tmp_path, answers):
    server.default = by_prompt(answers)
    config = ClientConfig(model="m", base_url=server.base_url, api_key_env="HUM_EXAMPLES_KEY",
                          structured_output="none", timeout_s=10, max_invalid_retries=0)
    return build("re_en_fewrel", runner=OpenAIRunner(config, str(tmp_path / "cache"), "live"),
                 llm_examples=True)


def test_loopback_plausible_answers(server, tmp_path):
    d, report = _live(server, tmp_path, PLAUSIBLE)
    assert len(server.chat_requests()) == 8  # 4 describe + 4 examples
    sent = [r.body["messages"][-1]["content"] for r in server.chat_requests()]
    assert sum("Name variants to judge" in p for p in sent) == 4
    step = report.llm["examples"]["step_report"]
    assert step["answered"] == 4 and step["failed"] == 0
    assert (step["values"], step["accepted"]) == (26, 24)
    assert step["rejected_by_reason"] == {ex.MEANING_CHANGED: 2}
    cov = {c["key"]: c for c in report.coverage}
    assert all(cov[k]["positives"] == 5 and cov[k]["negatives"] == 5 for k in cov)


def test_loopback_junk_answers_never_reach_the_dictionary(server, tmp_path):
    base, _ = build("re_en_fewrel")
    d, report = _live(server, tmp_path, JUNK)
    step = report.llm["examples"]["step_report"]
    assert step["requests"] == 4 and step["failed"] == 2  # sport, located: echo, no shape
    assert step["accepted"] == 0
    assert step["rejected_by_reason"] == {
        g.EMPTY_VALUE: 2, g.JSON_ECHO: 1, ex.MEANING_CHANGED: 1, ex.MEANING_UNCONFIRMED: 6,
        g.NEGATIVE_IS_GOLD: 1, ex.NO_REASON: 1, ex.OTHER_LABEL_VALUE: 2, g.PLACEHOLDER: 1,
        g.SPAN_NOT_IN_TEXT: 2, g.INPUT_SPAN: 1, g.SWAPPED_SYMMETRIC: 1, g.TOO_LONG: 1,
        g.WRONG_LANGUAGE: 1,
    }
    assert all(r["cache_key"] for r in step["rejected_sample"])
    for key, e in d.entries.items():
        b = base.entries[key]
        assert e.positives == b.positives and e.negatives == b.negatives
        assert e.candidates == b.candidates
        assert [t for t in e.variants] == [t for t in b.variants]  # LLM synonyms unconfirmed


def test_the_prompt_file_is_versioned_by_content():
    raw = (PROMPTS_DIR / "label_examples.json").read_bytes()
    import hashlib

    assert load_prompt("label_examples").version == hashlib.sha256(raw).hexdigest()[:12]


# --------------------------------------------------------------------------- FewRel 2.0


def _fewrel_file(path, relations: dict[str, list[tuple[str, str, str]]]):
    """A FewRel-format file keyed by relation name: (sentence, head, tail) per instance."""
    data = {}
    for rel, items in relations.items():
        data[rel] = []
        for sentence, head, tail in items:
            tokens = sentence.split()

            def at(span, tokens=tokens):
                words = span.split()
                for i in range(len(tokens)):
                    if tokens[i : i + len(words)] == words:
                        return [list(range(i, i + len(words)))]
                raise AssertionError(span)

            data[rel].append({"tokens": tokens, "h": [head, "x", at(head)],
                              "t": [tail, "y", at(tail)]})
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "source, relations, label, words",
    [
        ("fewrel_pubmed_val",
         {"gene_found_in_organism": [("the BRCA1 gene of Homo sapiens", "BRCA1", "Homo sapiens")],
          "causative_agent_of": [("Vibrio cholerae causes cholera", "Vibrio cholerae", "cholera")]},
         "gene_found_in_organism", "organism"),
        ("fewrel_semeval_val",
         {"Cause-Effect(e1,e2)": [("the fire caused the smoke", "fire", "smoke")],
          "Component-Whole(e2,e1)": [("the car has a large engine", "car", "engine")]},
         "Cause-Effect(e1,e2)", "causes the object (e2), its effect"),
    ],
)
def test_name_keyed_fewrel2_relations_get_a_reviewed_description(
    tmp_path, source, relations, label, words
):
    from hum_dagster.readers.catalog import CatalogEntry

    path = _fewrel_file(tmp_path / "val.json", relations)
    entry = CatalogEntry(name=source, task="RE", language="en", format="fewrel",
                         location=str(path))
    result = read_source(entry)
    assert len(result.records) == 2  # names such as Cause-Effect(e1,e2) read as labels
    seeds = select_seeds(load_seed_book(), source, {})
    d, report = build_dictionary(source, "RE", "en", result.records, result.schema, seeds)
    first = d.entries[label].description()
    assert first.provenance == "seed:fewrel2.yaml" and words in first.value
    assert d.entries[label].variants  # reviewed name variants
    assert report.unseeded == []
    # without the seed file the first description would be the mined "Typical values"
    bare, _ = build_dictionary(source, "RE", "en", result.records, result.schema, [])
    assert bare.entries[label].description().provenance == "mined"


def test_dates_and_numbers_are_values_not_junk():
    d, ctx = context("re_zh_iepile")
    birth = d.entries["出生日期"]
    gold = next(iter(ctx.gold_pairs["出生日期"]))  # e.g. ("许明远", "1978年")
    assert ex.check_candidate(pair(*gold), birth, ctx)[1] is None
    assert ex.check_candidate(pair("林晓", "1965年"), birth, ctx) == ("林晓 → 1965年", None)
    example, rejection = ex.check_llm_example(
        {"text": "作家林晓1965年出生于浙江绍兴。", "value": pair("林晓", "1965年")},
        birth, ctx, negative=False,
    )
    assert rejection is None and example.value == pair("林晓", "1965年")
    # a bare date as an example text is still junk
    _, rejection = ex.check_llm_example(
        {"text": "1965-03-02", "value": pair("1965", "03")}, birth, ctx, negative=False
    )
    assert rejection.reason == g.DATE_OR_NUMBER


def test_hum_plan_counts_the_examples_step_when_it_is_on():
    from hum_dagster.corpus.tokens import load_tokenizer
    from hum_dagster.operations.plan import plan_llm_steps

    try:
        tokenizer = load_tokenizer("smollm2-135m-instruct")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"SmolLM2 tokenizer unavailable: {exc}")
    entry, _ = sample("re_en_fewrel")
    config = ClientConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key_env="",
                          max_tokens=400, structured_output="none")
    off, _, _ = plan_llm_steps([entry], config, None, tokenizer)
    on, _, _ = plan_llm_steps([entry], config, None, tokenizer, examples=True)
    assert off["dictionary.describe"].requests == on["dictionary.describe"].requests == 4
    assert ex.EXAMPLES_STEP not in off or off[ex.EXAMPLES_STEP].requests == 0
    planned = on[ex.EXAMPLES_STEP]
    assert planned.requests == planned.to_send == 4
    assert planned.prompt_tokens > on["dictionary.describe"].prompt_tokens  # longer prompt
    assert planned.completion_tokens == 4 * 400


def test_fewrel2_seed_list_keeps_semeval_directions_apart():
    book = load_seed_book()
    semeval = book["fewrel_semeval"].entries
    assert len(semeval) == 17 and len(book["fewrel_pubmed"].entries) == 10
    for label, entry in semeval.items():
        desc = entry.descriptions[0]
        assert desc.startswith("the subject (e1)") and "(e2)" in desc, label
        assert not entry.symmetric  # SemEval's directed relations
        if label.endswith("(e1,e2)") and (other := label.replace("(e1,e2)", "(e2,e1)")) in semeval:
            assert semeval[other].descriptions[0] != desc
            assert not set(entry.variants) & set(semeval[other].variants), label
