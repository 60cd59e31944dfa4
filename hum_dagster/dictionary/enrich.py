"""LLM enrichment of a schema dictionary (step ``dictionary.describe``).

Prompt templates are files in ``assets/prompts/`` (``<name>.json`` with ``system``,
``user`` and ``json_schema``); a template's version is the first 12 hex digits of the
sha256 of the file's bytes, so editing the file changes every cache key. This module
only builds ``LLMRequest`` values and reads results through the ``LLMRunner``
protocol; an offline runner (or none) means no request is built at all.

An answer's shape is checked by ``validate_description`` (a wrong shape is asked again);
then every description and synonym in it goes through the gates of
``hum_dagster.dictionary.gates``: what a gate refuses never reaches the dictionary, and
the step report (``LLMUsage.report``) counts it by reason and keeps a sample.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hum_dagster.dictionary.gates import GateContext, gate_answer
from hum_dagster.dictionary.model import LabelEntry, SchemaDictionary, Text
from hum_dagster.llm.report import StepReport
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse, LLMRunner
from hum_dagster.llm.usage import reason_category
from hum_dagster.paths import ASSETS_DIR

PROMPTS_DIR = ASSETS_DIR / "prompts"
DESCRIBE_STEP = "dictionary.describe"
DESCRIBE_TEMPLATE = "describe_label"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    system: str
    user: str
    json_schema: dict[str, Any]


def load_prompt(name: str, directory: str | Path | None = None) -> PromptTemplate:
    path = Path(directory or PROMPTS_DIR) / f"{name}.json"
    raw = path.read_bytes()
    data = json.loads(raw.decode("utf-8"))
    for key in ("system", "user", "json_schema"):
        if key not in data:
            raise ValueError(f"{path}: prompt template lacks {key!r}")
    return PromptTemplate(
        name=name,
        version=hashlib.sha256(raw).hexdigest()[:12],
        system=data["system"],
        user=data["user"],
        json_schema=data["json_schema"],
    )


def llm_origin(result: LLMResponse, template: PromptTemplate) -> str:
    """Who wrote an LLM value: ``"<model> <template>@<version>"`` (the model the answer
    names, else the one asked)."""
    return f"{result.model or '?'} {template.name}@{template.version}"


def validate_description(parsed: Any) -> str | None:
    """Validator for ``describe_label`` answers (their shape; a wrong shape is asked
    again): None when usable, else the reason. Each value then goes through the gates."""
    if not isinstance(parsed, dict):
        return "answer is not a JSON object"
    descriptions = parsed.get("descriptions")
    synonyms = parsed.get("synonyms")
    if not isinstance(descriptions, list) or not descriptions:
        return "descriptions must be a non-empty list"
    if not isinstance(synonyms, list):
        return "synonyms must be a list"
    return None


def describe_request(
    entry: LabelEntry, task: str, language: str, template: PromptTemplate
) -> LLMRequest:
    lang_name = LANGUAGE_NAMES.get(language, language)
    descriptions = "\n".join(f"- {t.value}" for t in entry.descriptions) or "- (none)"
    positives = (
        "\n".join(
            f"- {json.dumps(x.value, ensure_ascii=False)} in: {x.text[:200]}"
            for x in entry.positives[:5]
        )
        or "- (none)"
    )
    parent_line = f'\nIt belongs to: "{entry.parent}".' if entry.parent else ""
    user = template.user.format(
        task=task,
        language_name=lang_name,
        kind=entry.kind,
        parent_line=parent_line,
        label=entry.label,
        descriptions=descriptions,
        positives=positives,
    )
    return LLMRequest.chat(DESCRIBE_STEP, template, user)


@dataclass
class LLMUsage:
    """What the LLM step did for one dictionary: the step report (requests, cache hits,
    failures, sent tokens, values accepted and rejected by the gates) plus the failures
    by label and the cache keys of the answers used."""

    mode: str = "offline"
    failures: list[dict[str, Any]] = field(default_factory=list)  # key, label, reason, attempts
    cache_keys: list[str] = field(default_factory=list)
    report: StepReport = field(default_factory=lambda: StepReport(DESCRIBE_STEP))

    @property
    def requests(self) -> int:
        return self.report.requests

    @property
    def responses(self) -> int:
        return self.report.cached + self.report.answered

    @property
    def cached(self) -> int:
        return self.report.cached

    @property
    def failures_by_reason(self) -> dict[str, int]:
        return dict(sorted(self.report.failures.items()))

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "mode": self.mode,
            "requests": r.requests,
            "responses": self.responses,
            "cached": r.cached,
            "failures_by_reason": self.failures_by_reason,
            "failures": self.failures,
            "values": r.values,
            "accepted": r.accepted,
            "rejected_by_reason": dict(sorted(r.rejections.items())),
            "rejected_sample": r.rejected_sample,
            "step_report": r.to_json(),
        }


def run_requests(runner, requests: list, validate, usage) -> list:
    """The runner's result for each request, its model and token counts in the step
    report; a runner that returns another number of results is an error."""
    results = runner.run(requests, validate)
    if len(results) != len(requests):
        raise RuntimeError(
            f"LLM runner returned {len(results)} results for {len(requests)} requests"
        )
    usage.report.model = str(getattr(runner, "served_model", "") or "")
    usage.report.count_usage(getattr(runner, "last_usage", None))
    return results


def usable_response(result, validate, label: str, usage) -> LLMResponse | None:
    """The response when it can be used; else None, with the failure counted in the
    step report (``usage.report``; ``usage`` is a step's usage record, with ``failures``) (by the leading word of its reason) and listed in ``usage.failures``.
    A response that fails ``validate`` (a runner that skipped validation) counts as
    ``invalid``."""
    if isinstance(result, LLMFailure):
        usage.report.failures[reason_category(result.reason)] += 1
        usage.failures.append({"key": result.key, "label": label, "reason": result.reason,
                               "attempts": result.attempts})
        return None
    if not isinstance(result, LLMResponse):
        raise TypeError(f"LLM runner returned {type(result).__name__}, not a response")
    problem = validate(result.parsed)
    if problem is not None:
        usage.report.failures["invalid"] += 1
        usage.failures.append({"key": result.key, "label": label,
                               "reason": f"invalid: {problem}", "attempts": 1})
        return None
    return result


def enrich_with_llm(
    entries: Sequence[LabelEntry],
    task: str,
    language: str,
    runner: LLMRunner | None,
    template: PromptTemplate | None = None,
    gates: GateContext | None = None,
) -> tuple[dict[str, tuple[list[Text], list[Text]]], LLMUsage]:
    """Ask the LLM to describe each entry; returns key -> (descriptions, synonyms) that
    passed the gates (``dictionary.gates``), each value with provenance
    ``"llm:<cache key>"``, and the usage. Offline: nothing asked.

    ``gates`` knows the source (labels, gold values, input texts); without it the gates
    know only ``entries``, so the value rules that need the data cannot say no."""
    mode = getattr(runner, "mode", "offline") if runner is not None else "offline"
    usage = LLMUsage(mode=mode, report=StepReport(DESCRIBE_STEP, mode=mode))
    if runner is None or mode == "offline" or not entries:
        return {}, usage
    if gates is None:
        known = SchemaDictionary(source="", task=task, language=language)
        known.entries = {e.key: e for e in entries}
        gates = GateContext.build(known)
    template = template or load_prompt(DESCRIBE_TEMPLATE)
    requests = [describe_request(e, task, language, template) for e in entries]
    results = run_requests(runner, requests, validate_description, usage)
    report = usage.report
    out: dict[str, tuple[list[Text], list[Text]]] = {}
    for entry, answer in zip(entries, results, strict=True):
        report.requests += 1
        result = usable_response(answer, validate_description, entry.key, usage)
        if result is None:
            continue
        if result.cached:
            report.cached += 1
        else:
            report.answered += 1
        gated = gate_answer(entry, result.parsed["descriptions"], result.parsed["synonyms"], gates)
        for rejection in gated.rejections:
            report.reject(rejection.reason, rejection.to_json() | {"cache_key": result.key})
        report.accept(len(gated.descriptions) + len(gated.synonyms))
        if not (gated.descriptions or gated.synonyms):
            continue
        usage.cache_keys.append(result.key)
        provenance = f"llm:{result.key}"
        origin = llm_origin(result, template)
        out[entry.key] = (
            [Text(d, provenance, origin) for d in gated.descriptions],
            [Text(v, provenance, origin) for v in gated.synonyms],
        )
    usage.cache_keys.sort()
    return out, usage
