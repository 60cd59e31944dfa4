"""LLM enrichment of a schema dictionary (step ``dictionary.describe``).

Prompt templates are files in ``assets/prompts/`` (``<name>.json`` with ``system``,
``user`` and ``json_schema``); a template's version is the first 12 hex digits of the
sha256 of the file's bytes, so editing the file changes every cache key. This module
only builds ``LLMRequest`` values and reads results through the ``LLMRunner``
protocol; an offline runner (or none) means no request is built at all.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hum_dagster.dictionary.model import LabelEntry, Text
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse, LLMRunner
from hum_dagster.paths import ASSETS_DIR

PROMPTS_DIR = ASSETS_DIR / "prompts"
DESCRIBE_STEP = "dictionary.describe"
DESCRIBE_TEMPLATE = "describe_label"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (简体中文)"}
MAX_DESCRIPTION = 400


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


def validate_description(parsed: Any) -> str | None:
    """Validator for ``describe_label`` answers: None when usable, else the reason."""
    if not isinstance(parsed, dict):
        return "answer is not a JSON object"
    descriptions = parsed.get("descriptions")
    synonyms = parsed.get("synonyms")
    if not isinstance(descriptions, list) or not descriptions:
        return "descriptions must be a non-empty list"
    if not isinstance(synonyms, list):
        return "synonyms must be a list"
    for value in [*descriptions, *synonyms]:
        if not isinstance(value, str) or not value.strip():
            return "descriptions and synonyms must be non-empty strings"
    if any(len(d) > MAX_DESCRIPTION for d in descriptions):
        return f"a description is longer than {MAX_DESCRIPTION} characters"
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
    return LLMRequest(
        step=DESCRIBE_STEP,
        template=template.name,
        template_version=template.version,
        messages=(
            {"role": "system", "content": template.system},
            {"role": "user", "content": user},
        ),
        json_schema=template.json_schema,
    )


@dataclass
class LLMUsage:
    """What the LLM step did for one dictionary."""

    mode: str = "offline"
    requests: int = 0
    responses: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)  # key, label, reason, attempts
    cache_keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "requests": self.requests,
            "responses": self.responses,
            "cached": self.cached,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "failures_by_reason": dict(sorted(self.failures_by_reason.items())),
            "failures": self.failures,
        }


def _reason_class(reason: str) -> str:
    """``"invalid: descriptions must be ..."`` counts under ``"invalid"``."""
    return reason.split(":", 1)[0].strip() or reason


def enrich_with_llm(
    entries: Sequence[LabelEntry],
    task: str,
    language: str,
    runner: LLMRunner | None,
    template: PromptTemplate | None = None,
) -> tuple[dict[str, tuple[list[Text], list[Text]]], LLMUsage]:
    """Ask the LLM to describe each entry; returns key -> (descriptions, synonyms), each
    value with provenance ``"llm:<cache key>"``, and the usage. Offline: nothing asked."""
    usage = LLMUsage(mode=getattr(runner, "mode", "offline") if runner is not None else "offline")
    if runner is None or usage.mode == "offline" or not entries:
        return {}, usage
    template = template or load_prompt(DESCRIBE_TEMPLATE)
    requests = [describe_request(e, task, language, template) for e in entries]
    usage.requests = len(requests)
    results = runner.run(requests, validate_description)
    if len(results) != len(requests):
        raise RuntimeError(
            f"LLM runner returned {len(results)} results for {len(requests)} requests"
        )
    out: dict[str, tuple[list[Text], list[Text]]] = {}
    reasons: Counter[str] = Counter()
    for entry, result in zip(entries, results, strict=True):
        if isinstance(result, LLMFailure):
            reasons[_reason_class(result.reason)] += 1
            usage.failures.append(
                {
                    "key": result.key,
                    "label": entry.key,
                    "reason": result.reason,
                    "attempts": result.attempts,
                }
            )
            continue
        if not isinstance(result, LLMResponse):
            raise TypeError(f"LLM runner returned {type(result).__name__}, not a response")
        problem = validate_description(result.parsed)
        if problem is not None:  # a runner that skipped validation: count, do not use
            reasons["invalid"] += 1
            usage.failures.append(
                {
                    "key": result.key,
                    "label": entry.key,
                    "reason": f"invalid: {problem}",
                    "attempts": 1,
                }
            )
            continue
        usage.responses += 1
        usage.cached += int(result.cached)
        usage.prompt_tokens += int(result.usage.get("prompt_tokens", 0))
        usage.completion_tokens += int(result.usage.get("completion_tokens", 0))
        usage.cache_keys.append(result.key)
        provenance = f"llm:{result.key}"
        out[entry.key] = (
            [Text(d.strip(), provenance) for d in result.parsed["descriptions"]],
            [Text(s.strip(), provenance) for s in result.parsed["synonyms"]],
        )
    usage.failures_by_reason = dict(reasons)
    usage.cache_keys.sort()
    return out, usage
