"""The LLM side of preference rules: prompt, requests, response validator.

The prompt template is ``assets/prompts/preference_rule.json`` (``system``, ``user``,
``json_schema`` plus the strategy texts); its version is the first 12 hex digits of
the sha256 of the file's bytes, so editing it changes every cache key. For a sample
and one of its labels the LLM gets the label's description, the original annotation
rule, a modification strategy (with the exact modification where a rule-based
relabelling exists, so the two can be cross-checked), examples of the label, the
sample and its annotation; it answers
``{"description", "original_rule", "new_rule", "relabelled": <output structure>}``.

This module only builds ``LLMRequest`` values, checks the shape of answers and counts
the step (``preference_step_report``); the content checks (spans, labels, change) are
done in ``preferences`` for LLM and rule-based relabellings alike, and are this step's
gates: an LLM relabelling that fails one is rejected with its reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hum_dagster.llm.report import StepReport
from hum_dagster.llm.types import LLMRequest
from hum_dagster.llm.usage import reason_category
from hum_dagster.paths import ASSETS_DIR
from hum_dagster.store.jsonfile import read_json_object

PROMPTS_DIR = ASSETS_DIR / "prompts"
PREFERENCE_STEP = "synthesis.preference_rules"
PREFERENCE_TEMPLATE = "preference_rule"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}
ANSWER_KEYS = ("description", "original_rule", "new_rule", "relabelled")
MAX_RULE = 600
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class PreferencePrompt:
    name: str
    version: str
    system: str
    user: str
    reverse_note: str
    variant_line: str
    strategies: Mapping[str, str]
    json_schema: dict[str, Any]


def load_preference_prompt(path: str | Path | None = None) -> PreferencePrompt:
    path = Path(path) if path else PROMPTS_DIR / f"{PREFERENCE_TEMPLATE}.json"
    data = read_json_object(path, "prompt template")
    raw = path.read_bytes()
    for key in ("system", "user", "json_schema", "strategies", "reverse_note", "variant_line"):
        if key not in data:
            raise ValueError(f"{path}: prompt template lacks {key!r}")
    return PreferencePrompt(
        name=path.stem,
        version=hashlib.sha256(raw).hexdigest()[:12],
        system=data["system"],
        user=data["user"],
        reverse_note=data["reverse_note"],
        variant_line=data["variant_line"],
        strategies=dict(data["strategies"]),
        json_schema=data["json_schema"],
    )


def validate_preference_response(parsed: Any) -> str | None:
    """Validator for ``preference_rule`` answers (shape only): None when usable."""
    if not isinstance(parsed, dict):
        return "answer is not a JSON object"
    missing = [k for k in ANSWER_KEYS if k not in parsed]
    if missing:
        return f"answer lacks {', '.join(missing)}"
    for key in ("description", "original_rule", "new_rule"):
        value = parsed[key]
        if not isinstance(value, str) or not value.strip():
            return f"{key} must be a non-empty string"
    if len(parsed["new_rule"]) > MAX_RULE:
        return f"new_rule is longer than {MAX_RULE} characters"
    if not isinstance(parsed["relabelled"], dict | list):
        return "relabelled must be a JSON object in the sample's output structure"
    return None


@dataclass(frozen=True)
class PreferenceChoice:
    """One (row, label, strategy) the LLM is asked to write a rule for.

    ``variant`` and ``hint`` are the rule-based variant and its rule text when one
    exists for the same (row, label, strategy): the LLM is then asked for exactly
    that modification, and its relabelling is cross-checked against the rule's.
    """

    instruction_id: str
    label: str
    strategy: str
    variant: str | None = None
    hint: str | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def build_request(
    *,
    task: str,
    language: str,
    text: str,
    items: list[Any],
    output: Any,
    choice: PreferenceChoice,
    description: str | None,
    original_rule: str,
    examples: Sequence[str] = (),
    prompt: PreferencePrompt,
) -> LLMRequest:
    strategy = choice.strategy
    if strategy not in prompt.strategies:
        raise ValueError(f"prompt {prompt.name} has no text for strategy {strategy!r}")
    lang_name = LANGUAGE_NAMES.get(language, language)
    shown = [e for e in examples if isinstance(e, str) and e.strip()][:MAX_EXAMPLES]
    example_lines = "\n".join(f"- {e[:300]}" for e in shown) or "- (none)"
    user = prompt.user.format(
        task=task,
        language_name=lang_name,
        label=choice.label,
        description=description or "(none given)",
        original_rule=original_rule,
        strategy=strategy,
        strategy_text=prompt.strategies[strategy],
        variant_line=prompt.variant_line.format(hint=choice.hint) if choice.hint else "",
        examples=example_lines,
        input=text,
        schema=_dumps(items),
        output=_dumps(output),
        reverse_note=prompt.reverse_note.format(label=choice.label)
        if strategy == "reverse"
        else "",
    )
    return LLMRequest.chat(PREFERENCE_STEP, prompt, user)


LLM_FAILURE_REASON = "llm_failure"  # preferences.REJECT_LLM_FAILURE: counted as failed


def preference_step_report(
    usage_hint: Mapping[str, Any],
    rejections: Sequence[Mapping[str, Any]],
    runner: Any = None,
) -> StepReport:
    """The step report of ``synthesis.preference_rules`` from ``preference_rows``' result
    (``llm_usage_hint`` and ``rejections``) and the runner that ran it.

    Each answer of the LLM is one value: accepted when its relabelling became an
    instruction, rejected with the reason of the check that refused it
    (``label_not_in_schema``, ``span_not_in_input``, ``llm_disagrees_with_rule``...)."""
    mode = str(usage_hint.get("mode") or getattr(runner, "mode", "offline") or "offline")
    report = StepReport(PREFERENCE_STEP, mode=mode)
    if mode == "offline":
        return report
    report.model = str(getattr(runner, "served_model", "") or "")
    report.requests = int(usage_hint.get("requests") or 0)
    report.cached = int(usage_hint.get("cached") or 0)
    report.answered = int(usage_hint.get("responses") or 0) - report.cached
    for reason, n in sorted((usage_hint.get("failures_by_reason") or {}).items()):
        report.failures[reason_category(reason)] += int(n)
    if report.requests:  # only a run that asked: the runner's last usage is this step's
        report.count_usage(getattr(runner, "last_usage", None))
    elif getattr(getattr(runner, "config", None), "priced", False):
        report.cost_usd = 0.0  # nothing asked, at a known price
    for r in rejections:
        if r.get("source") != "llm":
            continue
        if r.get("reason") == LLM_FAILURE_REASON:
            if len(report.failure_sample) < report.sample_size:
                report.failure_sample.append(
                    {"label": r.get("label", ""), "reason": str(r.get("detail", ""))[:300]}
                )
            continue
        report.reject(
            str(r.get("reason")),
            {
                "kind": "relabelling",
                "label": r.get("label", ""),
                "value": r.get("variant", ""),
                "detail": str(r.get("detail", ""))[:300],
                "base_instruction_id": r.get("base_instruction_id", ""),
            },
        )
    report.accept(max(0, report.cached + report.answered - report.rejected))
    return report
