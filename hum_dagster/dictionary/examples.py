"""LLM-written examples of a schema dictionary, as the paper builds them (step
``dictionary.examples``, prompt ``assets/prompts/label_examples.json``).

For each label the LLM is shown what the dictionary knows (descriptions, mined
instances, the other labels of its kind, its name variants) and writes five positive
examples, five negative examples with reasons, representative candidates, and a verdict
on each name variant: does a dataset that uses that name still annotate the same thing?

Every value goes through a gate before it reaches the dictionary; a refused value is
counted by reason in the step report and kept in its sample. The rules (reasons are the
stable keys of ``hum_dagster.dictionary.gates`` and the constants below):

- an **example** (positive or negative) has a text in the source's language
  (``wrong_language``) of at most ``MAX_EXAMPLE_TEXT`` characters (``too_long``) that is
  no JSON, schema key or placeholder (``json_or_schema_echo``, ``placeholder``) and is
  not an input text of the source copied out (``span_of_input``); its value is not
  empty (``empty_value``) and occurs in its text (``span_not_in_text``; a pair: both
  sides; a class example's value is its label, a class negative's another label);
- a **positive** is not a gold value of another label that is never one of this
  label (``other_label_value``);
- a **negative** is not a gold annotation of the label (``negative_is_gold``), not a
  swapped gold pair of a symmetric relation (``swapped_symmetric_pair``; the prompt
  never suggests reversing such a pair either) and says why it is not one
  (``no_reason``);
- an example already in the entry is not counted twice (``duplicate``);
- a **candidate** is a value (a span, or a pair for relations), no sentence
  (``sentence_not_name``), not the label's name (``same_as_label``), not a gold value of
  another label only (``other_label_value``);
- a **name variant** the describe step wrote (provenance ``llm:``) stays only when this
  step's answer says it keeps the meaning: ``meaning_changed`` when it says no,
  ``meaning_unconfirmed`` when it does not judge it or the request failed. Seeded
  variants are a reviewed list and stay; a "no" for one is reported
  (``disputed_seed_variants``), not acted on.

Accepted positives fill the entry after the seeded and mined ones, up to five; accepted
negatives do too, and take up to ``LLM_NEGATIVE_SLOTS`` places of the last mined ones
when the data filled all five (the data's near misses are boundaries, swapped pairs and
other labels; the LLM's are semantic ones it cannot show); candidates follow the mined ones, up to ``N_CANDIDATES``. Each
carries provenance ``"llm:<cache key>"`` and origin ``"<model> label_examples@<version>"``.
LLM-written examples have no text id: the guideline strategies keep them from a record
by its text and its gold spans (``synthesis.own_answers``), as curated examples.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.dictionary import gates as g
from hum_dagster.dictionary.enrich import (
    LANGUAGE_NAMES,
    PromptTemplate,
    llm_origin,
    run_requests,
    usable_response,
)
from hum_dagster.dictionary.mine import MINED, N_CANDIDATES, PAIR_KINDS, value_string
from hum_dagster.dictionary.model import (
    CLASS_LABEL,
    EVENT_TYPE,
    N_NEGATIVES,
    N_POSITIVES,
    RELATION,
    ROLE,
    SPO_LABEL,
    Example,
    LabelEntry,
    SchemaDictionary,
    Text,
)
from hum_dagster.llm.report import StepReport
from hum_dagster.llm.types import LLMRequest, LLMRunner

EXAMPLES_STEP = "dictionary.examples"
EXAMPLES_TEMPLATE = "label_examples"
MAX_EXAMPLE_TEXT = 400
MIN_COPIED_TEXT = 20  # an example text this long found in the inputs was copied
MAX_CANDIDATE_WORDS = 8
MAX_OTHERS_SHOWN = 15
MAX_VARIANTS_SHOWN = 10
LLM_NEGATIVE_SLOTS = 2  # of the 5 negatives, places a written one may take from mined ones

# Rejection reasons of this step (the others come from ``gates``).
OTHER_LABEL_VALUE = "other_label_value"
NO_REASON = "no_reason"
DUPLICATE = "duplicate"
MEANING_CHANGED = "meaning_changed"
MEANING_UNCONFIRMED = "meaning_unconfirmed"
VARIANT = "variant"
CANDIDATE = "candidate"

_VALUE_SHAPES = {
    "span": '"value" is the instance exactly as the sentence writes it.',
    "pair": '"value" is {"subject": ..., "object": ...}, both written exactly as in the '
    "sentence.",
    "class": '"text" is a short document of this class and "value" is the label itself.',
}


_SPAN_WHAT = {
    EVENT_TYPE: '"value" is the trigger word of the event, exactly as the sentence writes it.',
    ROLE: '"value" is the argument that fills this role, exactly as the sentence writes it.',
}


def _shape(kind: str) -> str:
    if kind == CLASS_LABEL:
        return _VALUE_SHAPES["class"]
    if kind in PAIR_KINDS:
        return _VALUE_SHAPES["pair"]
    return _SPAN_WHAT.get(kind, _VALUE_SHAPES["span"])


def validate_examples(parsed: Any) -> str | None:
    """The shape of a ``label_examples`` answer (a wrong shape is asked again): None
    when usable, else the reason. Each value then goes through the gates."""
    if not isinstance(parsed, dict):
        return "answer is not a JSON object"
    for name in ("positives", "negatives"):
        if not isinstance(parsed.get(name), list):
            return f"{name} must be a list"
    if not (parsed["positives"] or parsed["negatives"]):
        return "positives and negatives are both empty"
    for name in ("candidates", "variants"):
        if name in parsed and not isinstance(parsed[name], list):
            return f"{name} must be a list"
    return None


def examples_request(
    entry: LabelEntry,
    task: str,
    language: str,
    template: PromptTemplate,
    others: Sequence[str],
) -> LLMRequest:
    lang_name = LANGUAGE_NAMES.get(language, language)
    descriptions = [t.value for t in entry.descriptions if t.provenance != MINED][:3]
    positives = [
        f"- {json.dumps(x.value, ensure_ascii=False)} in: {x.text[:200]}"
        for x in entry.positives[:N_POSITIVES]
    ]
    reverse = entry.kind in (RELATION, SPO_LABEL) and not entry.symmetric
    user = template.user.format(
        task=task,
        language_name=lang_name,
        kind=entry.kind,
        parent_line=f'\nIt belongs to: "{entry.parent}".' if entry.parent else "",
        label=entry.label,
        descriptions="\n".join(f"- {d}" for d in descriptions) or "- (none)",
        positives="\n".join(positives) or "- (none)",
        others=", ".join(f'"{o}"' for o in others[:MAX_OTHERS_SHOWN]) or "(none)",
        variants="\n".join(f"- {t.value}" for t in entry.variants[:MAX_VARIANTS_SHOWN])
        or "- (none)",
        value_shape=_shape(entry.kind),
        reverse_hint=", the pair in the wrong direction" if reverse else "",
    )
    return LLMRequest.chat(EXAMPLES_STEP, template, user)


# --------------------------------------------------------------------------- gates


def _text_rules(kind: str, key: str, value: Any, text: Any, ctx: g.GateContext):
    """The rules on an example's text; (clean text, None) when it passes."""
    clean, rejected = g._common(kind, key, text)
    if rejected is not None:
        return None, g.Rejection(kind, key, value, rejected.reason, rejected.detail)
    assert clean is not None
    problem = g._wrong_language(clean, g._expects_cjk(ctx.language))
    if problem:
        return None, g.Rejection(kind, key, value, g.WRONG_LANGUAGE, problem)
    if len(clean) > MAX_EXAMPLE_TEXT:
        return None, g.Rejection(
            kind, key, value, g.TOO_LONG, f"longer than {MAX_EXAMPLE_TEXT} characters"
        )
    if len(clean) >= MIN_COPIED_TEXT and ctx.in_inputs(clean, bounded=False):
        return None, g.Rejection(
            kind, key, value, g.INPUT_SPAN, "an input text of the source copied out"
        )
    return clean, None


def _value_rules(kind: str, key: str, value: Any, part: Any) -> tuple[str | None, g.Rejection | None]:
    """The shared text rules on a value (a span or one side of a pair), all but the
    date-or-number one: dates and numbers are values of labels such as 出生日期."""
    clean, rejected = g._common(kind, key, part)
    if rejected is not None and rejected.reason == g.DATE_OR_NUMBER:
        return " ".join(str(part).split()), None
    if rejected is not None:
        return None, g.Rejection(kind, key, value, rejected.reason, rejected.detail)
    return clean, None


def _owners(ctx: g.GateContext, value: Any) -> set[str]:
    """The labels whose gold holds ``value`` (a span, or a pair)."""
    pair = g._pair(value)
    if pair is None:
        return set(ctx.values.get(g.norm(value), set()))
    form = (g.norm(pair[0]), g.norm(pair[1]))
    return {key for key, pairs in ctx.gold_pairs.items() if form in pairs}


def check_llm_example(
    item: Any,
    entry: LabelEntry,
    ctx: g.GateContext,
    *,
    negative: bool,
    labels: frozenset[str] = frozenset(),
) -> tuple[Example | None, g.Rejection | None]:
    """An LLM-written example as an ``Example`` (provenance to be set), or why not.
    ``labels``: the source's class labels (a class negative names one of the others)."""
    kind = g.NEGATIVE if negative else g.POSITIVE
    key = entry.key
    if not isinstance(item, Mapping):
        return None, g.Rejection(kind, key, item, g.NOT_TEXT, "an example is a JSON object")
    value = item.get("value")
    text, rejected = _text_rules(kind, key, value, item.get("text"), ctx)
    if rejected is not None:
        return None, rejected
    assert text is not None
    if isinstance(value, str):
        value = " ".join(value.split())
    elif g._pair(value) is not None:
        value = {
            "subject": " ".join(str(value["subject"]).split()),
            "object": " ".join(str(value["object"]).split()),
        }
    if entry.kind in PAIR_KINDS and g._pair(value) is None:
        return None, g.Rejection(
            kind, key, value, g.EMPTY_VALUE, "a relation example needs a subject and an object"
        )
    if entry.kind not in PAIR_KINDS and not isinstance(value, str):
        return None, g.Rejection(kind, key, value, g.EMPTY_VALUE, "the value must be text")
    for part in [*(g._pair(value) or ())] or [value]:
        if isinstance(part, str) and part.strip():
            _, junk = _value_rules(kind, key, value, part)
            if junk is not None:
                return None, junk
    found = g.check_example(
        {"text": text, "value": value}, entry, ctx, negative=negative, symmetric=entry.symmetric
    )
    if found is not None:
        return None, found
    reason = None
    if entry.kind == CLASS_LABEL:
        if negative and labels and g.norm(value) not in {g.norm(x) for x in labels}:
            return None, g.Rejection(
                kind, key, value, g.EMPTY_VALUE, "a class negative's value is another class"
            )
        if negative and g.norm(value) == g.norm(entry.label):
            return None, g.Rejection(
                kind, key, value, g.NEGATIVE_IS_GOLD, "a class negative labelled with its class"
            )
    else:
        spans = list(g._pair(value) or ()) or [value]
        missing = [s for s in spans if s not in text]
        if missing:  # positives were checked by check_example; this catches negatives
            return None, g.Rejection(
                kind, key, value, g.SPAN_NOT_IN_TEXT,
                f"{missing[0]!r} does not occur in the example text",
            )
        if not negative:
            owners = _owners(ctx, value)
            if owners and key not in owners:
                shown = ", ".join(sorted(owners)[:3])
                return None, g.Rejection(
                    kind, key, value, OTHER_LABEL_VALUE,
                    f"a gold value of {shown}, never of this label",
                )
    if negative:
        raw = item.get("reason")
        if not isinstance(raw, str) or not raw.strip():
            return None, g.Rejection(kind, key, value, NO_REASON, "a negative needs a reason")
        reason, junk = g._common(kind, key, raw)
        if junk is not None:
            return None, g.Rejection(kind, key, value, junk.reason, "the reason: " + junk.detail)
    return Example(text=text, value=value, provenance="", reason=reason), None


def check_candidate(value: Any, entry: LabelEntry, ctx: g.GateContext) -> tuple[str | None, g.Rejection | None]:
    """A candidate (a typical value) as its string form, or why not."""
    key = entry.key
    pair = g._pair(value)
    parts = list(pair) if pair is not None else [value]
    if entry.kind in PAIR_KINDS and pair is None:
        return None, g.Rejection(CANDIDATE, key, value, g.EMPTY_VALUE, "a relation value is a pair")
    for part in parts:
        clean, rejected = _value_rules(CANDIDATE, key, value, part)
        if rejected is not None:
            return None, rejected
        assert clean is not None
        problem = g._wrong_language(clean, g._expects_cjk(ctx.language))
        if problem:
            return None, g.Rejection(CANDIDATE, key, value, g.WRONG_LANGUAGE, problem)
        if (
            g._SENTENCE_END.search(clean)
            or len(g._EN_WORD.findall(clean)) > MAX_CANDIDATE_WORDS
            or len(g._CJK.findall(clean)) > 2 * g.MAX_SYNONYM_CJK
        ):
            return None, g.Rejection(
                CANDIDATE, key, value, g.NOT_A_NAME, "a sentence, not a value"
            )
    if pair is None and g._name_norm(value) == g._name_norm(entry.label):
        return None, g.Rejection(CANDIDATE, key, value, g.SAME_AS_LABEL, "the label itself")
    owners = _owners(ctx, value)
    if owners and entry.key not in owners:
        shown = ", ".join(sorted(owners)[:3])
        return None, g.Rejection(
            CANDIDATE, key, value, OTHER_LABEL_VALUE, f"a gold value of {shown}, never of this label"
        )
    if pair is not None:
        return value_string({"subject": pair[0].strip(), "object": pair[1].strip()}), None
    return " ".join(str(value).split()), None


# --------------------------------------------------------------------------- the step


@dataclass
class ExamplesUsage:
    """What the examples step did: its step report, failures by label, cache keys used,
    and the seeded variants the LLM said change the meaning (kept: seeds are reviewed)."""

    mode: str = "offline"
    report: StepReport = field(default_factory=lambda: StepReport(EXAMPLES_STEP))
    failures: list[dict[str, Any]] = field(default_factory=list)
    cache_keys: list[str] = field(default_factory=list)
    disputed_seed_variants: list[dict[str, str]] = field(default_factory=list)
    added: dict[str, int] = field(
        default_factory=lambda: {"positives": 0, "negatives": 0, "candidates": 0}
    )

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "mode": self.mode,
            "requests": r.requests,
            "values": r.values,
            "accepted": r.accepted,
            "rejected_by_reason": dict(sorted(r.rejections.items())),
            "added": dict(self.added),
            "failures": self.failures,
            "cache_keys": sorted(self.cache_keys),
            "disputed_seed_variants": self.disputed_seed_variants,
            "step_report": r.to_json(),
        }


def _example_form(x: Example) -> tuple[str, str]:
    return g.norm(x.text), g.norm(value_string(x.value))


def _judgements(answer: Mapping[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for item in answer.get("variants") or ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            verdict = item.get("keeps_meaning")
            if isinstance(verdict, bool):
                out.setdefault(g._name_norm(item["name"]), verdict)
    return out


def _confirm_variants(
    entry: LabelEntry, answer: Mapping[str, Any] | None, usage: ExamplesUsage, cache_key: str
) -> None:
    """Keep the LLM-written variants the answer says keep the meaning; report the rest."""
    judged = _judgements(answer or {})
    kept: list[Text] = []
    report = usage.report
    for t in entry.variants:
        verdict = judged.get(g._name_norm(t.value))
        if not t.provenance.startswith("llm:"):
            if verdict is False:
                usage.disputed_seed_variants.append(
                    {"label": entry.key, "variant": t.value, "provenance": t.provenance}
                )
            kept.append(t)
            continue
        if verdict is True:
            report.accept()
            kept.append(t)
            continue
        reason, detail = (
            (MEANING_CHANGED, "the LLM says this name changes what is annotated")
            if verdict is False
            else (MEANING_UNCONFIRMED, "no LLM verdict that this name keeps the meaning")
        )
        report.reject(
            reason,
            g.Rejection(VARIANT, entry.key, t.value, reason, detail).to_json()
            | {"cache_key": cache_key},
        )
    entry.variants = kept


def write_examples(
    dictionary: SchemaDictionary,
    entries: Sequence[LabelEntry],
    runner: LLMRunner | None,
    template: PromptTemplate | None,
    ctx: g.GateContext | None,
) -> ExamplesUsage:
    """Ask the LLM for examples, candidates and variant verdicts of each entry and merge
    what the gates accept into the entries (in place). Offline or no runner: nothing."""
    mode = getattr(runner, "mode", "offline") if runner is not None else "offline"
    usage = ExamplesUsage(mode=mode, report=StepReport(EXAMPLES_STEP, mode=mode))
    if runner is None or mode == "offline" or not entries or template is None or ctx is None:
        return usage
    by_kind: dict[str, list[str]] = {}
    for e in dictionary.entries.values():
        by_kind.setdefault(e.kind, []).append(e.label)
    class_labels = frozenset(
        e.label for e in dictionary.entries.values() if e.kind == CLASS_LABEL
    )
    requests = []
    for e in entries:
        others = sorted({o for o in by_kind.get(e.kind, []) if o != e.label})
        requests.append(examples_request(e, dictionary.task, dictionary.language, template, others))
    results = run_requests(runner, requests, validate_examples, usage)
    report = usage.report
    for entry, answer in zip(entries, results, strict=True):
        report.requests += 1
        result = usable_response(answer, validate_examples, entry.key, usage)
        if result is None:
            _confirm_variants(entry, None, usage, answer.key)
            continue
        if result.cached:
            report.cached += 1
        else:
            report.answered += 1
        provenance, origin = f"llm:{result.key}", llm_origin(result, template)
        used = _merge_answer(entry, result.parsed, ctx, usage, result.key, provenance, origin,
                             class_labels)
        _confirm_variants(entry, result.parsed, usage, result.key)
        if used:
            usage.cache_keys.append(result.key)
    return usage


def _merge_answer(
    entry: LabelEntry,
    answer: Mapping[str, Any],
    ctx: g.GateContext,
    usage: ExamplesUsage,
    cache_key: str,
    provenance: str,
    origin: str,
    class_labels: frozenset[str],
) -> bool:
    report = usage.report
    used = False
    for name, negative, limit in (
        ("positives", False, N_POSITIVES),
        ("negatives", True, N_NEGATIVES),
    ):
        target = entry.negatives if negative else entry.positives
        seen = {_example_form(x) for x in target}
        written: list[Example] = []
        for item in answer.get(name) or ():
            example, rejection = check_llm_example(
                item, entry, ctx, negative=negative, labels=class_labels
            )
            if example is not None and _example_form(example) in seen:
                rejection = g.Rejection(
                    g.NEGATIVE if negative else g.POSITIVE, entry.key, example.value,
                    DUPLICATE, "the entry holds this example already",
                )
            if rejection is not None:
                report.reject(rejection.reason, rejection.to_json() | {"cache_key": cache_key})
                continue
            assert example is not None
            report.accept()
            seen.add(_example_form(example))
            written.append(
                Example(
                    text=example.text, value=example.value, provenance=provenance,
                    reason=example.reason, origin=origin,
                )
            )
        # positives: the data's first, written ones fill up; negatives: written ones also
        # take up to LLM_NEGATIVE_SLOTS places from the last mined ones (semantic near
        # misses the data cannot show: "taught at", "engaged, never married")
        slots = limit - len(target)
        if negative:
            slots = max(slots, min(LLM_NEGATIVE_SLOTS, len(written)))
        take = written[: max(slots, 0)]
        if take:
            del target[limit - len(take) :]
            target.extend(take)
            usage.added[name] += len(take)
            used = True
    seen_c = {g.norm(t.value) for t in entry.candidates}
    for value in answer.get("candidates") or ():
        text, rejection = check_candidate(value, entry, ctx)
        if text is not None and g.norm(text) in seen_c:
            rejection = g.Rejection(
                CANDIDATE, entry.key, value, DUPLICATE, "the entry holds this value already"
            )
        if rejection is not None:
            report.reject(rejection.reason, rejection.to_json() | {"cache_key": cache_key})
            continue
        assert text is not None
        report.accept()
        seen_c.add(g.norm(text))
        if len(entry.candidates) < N_CANDIDATES:
            entry.candidates.append(Text(text, provenance, origin))
            usage.added["candidates"] += 1
            used = True
    return used
