"""Preference-rule compound instructions (Hum's "preference rules").

For a basic train-mode row and one of its labels, a new annotation rule changes how
that label is annotated along one strategy, and the row's output is relabelled under
it. The rule goes into the instruction; the output follows it.

Two sources of relabellings:

- **rules** (``preferences_rules``): the strategies that gold labels decide exactly:
  ``numerical`` (first k / last by position), ``boundaries`` (strip or keep titles),
  ``granularity`` (a broader label: one label also covers another, which leaves the
  schema),
  ``punctuation`` (strip or keep quotes, book-title marks, units), ``nesting`` (outer or
  inner), ``reverse`` (swap subject and object, inverse relation name). The rule text
  comes from ``assets/templates/preferences.json``. This is what the offline profile
  makes.
- **the LLM** (``preferences_llm``), when a live or replaying runner is given: it gets
  the label's description, the original rule, the strategy (all six, ``granularity``
  included) and examples, and returns the description, the original rule, a new rule
  and the relabelled output. Where a rule-based relabelling exists for the same (row,
  label, strategy) the LLM is asked for that exact modification and the two are
  cross-checked: on agreement the LLM's rule wording is used (``cross_check: "agree"``),
  on disagreement the rule-based one is kept and ``llm_disagrees_with_rule`` counted.

Every relabelling is validated before it becomes an instruction (``check_relabel``):
the rule text is present, the output parses in the row's structure, its labels are
the schema's, its spans occur in the input, it differs from the original, and no other
label changed. Rejections are returned as dicts ``{base_instruction_id, strategy,
reason, detail, label, variant, source}``.

Output rows: ``INSTRUCTION_COLUMNS`` (``strategy = "preference_rules"``, a new
``instruction_id``) plus ``base_instruction_id``, ``variant`` and ``provenance`` (JSON:
``label, strategy, variant, source, cache_key, cross_check`` and, for ``reverse``,
``new_label``). The instruction is the JSON string ``{"instruction": <basic wording +
the rules sentence>, "schema": <items; reverse renames the label>, "rules": [{"label",
"rule"}], "input"}``.

Randomness: ``record_rng(seed, instruction_id, "pref:<strategy>")`` per strategy,
``"pref:select"`` for the per-row cap, ``"pref:rate"`` for row sampling.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any

from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse, LLMRunner
from hum_dagster.paths import TEMPLATES_DIR
from hum_dagster.records import EE, EEA, EET, KGE, NER, RE, SPO, canonical_json
from hum_dagster.store.jsonfile import read_json_object
from hum_dagster.synthesis.basic import validate_basic_row
from hum_dagster.synthesis.chunking import record_rng
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS
from hum_dagster.synthesis.label_hierarchy import LabelHierarchy, load_label_hierarchy
from hum_dagster.synthesis.outputs import output_key
from hum_dagster.synthesis.own_answers import leaked_spans, record_spans
from hum_dagster.synthesis.preferences_llm import (
    PreferenceChoice,
    PreferencePrompt,
    build_request,
    load_preference_prompt,
    validate_preference_response,
)
from hum_dagster.synthesis.preferences_rules import (
    RULE_STRATEGIES,
    RULE_TASKS,
    Candidate,
    InverseTable,
    load_inverse_table,
    merged_items,
    reversed_items,
    rule_candidates,
)

STRATEGY = "preference_rules"
PREFERENCE_STRATEGIES = (
    "numerical",
    "boundaries",
    "granularity",
    "punctuation",
    "nesting",
    "reverse",
)
LLM_TASKS = (NER, RE, SPO, EET, EE, EEA, KGE)
PAIR_TASKS = (RE, SPO)
WORDING_PATH = TEMPLATES_DIR / "preferences.json"

# Rejection reasons (stable keys).
REJECT_EMPTY_RULE = "empty_rule"
REJECT_FORMAT = "format"
REJECT_LABEL = "label_not_in_schema"
REJECT_SPAN = "span_not_in_input"
REJECT_UNCHANGED = "unchanged_output"
REJECT_OTHER_LABELS = "other_labels_changed"
REJECT_NOT_REVERSED = "reverse_not_swapped"
REJECT_NOT_MERGED = "merge_not_the_union"
REJECT_DISAGREE = "llm_disagrees_with_rule"
REJECT_LLM_FAILURE = "llm_failure"

# Why a row made nothing (counted, not rejections).
SKIP_MODE = "not_train_mode"
SKIP_TASK = "task_without_rules"
SKIP_BAD_ROW = "unparseable_row"
SKIP_SAMPLED = "not_sampled"
SKIP_NO_CANDIDATE = "no_applicable_strategy"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- wording


class PreferenceTemplates:
    """Rule wording (``assets/templates/preferences.json``) with a content version."""

    __slots__ = ("data", "version", "origin")

    def __init__(self, data: Mapping[str, Any], origin: str = "built-in"):
        for key in ("sentence", "items", "original", "rules"):
            if key not in data:
                raise ValueError(f"{origin}: preference templates lack {key!r}")
        self.data = data
        self.version = hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()[:12]
        self.origin = origin

    @staticmethod
    def _lang(table: Mapping[str, Any], language: str) -> Any:
        return table.get(language) if language in table else table["en"]

    def sentence(self, language: str) -> str:
        return self._lang(self.data["sentence"], language)

    def original_rule(self, task: str, language: str, label: str) -> str:
        table = self.data["original"].get(task) or self.data["original"]["default"]
        return self._lang(table, language).format(label=label)

    def rule_key(self, variant: str) -> str:
        if variant.startswith("numerical/first_k="):
            return "numerical/first" if variant == "numerical/first_k=1" else "numerical/first_k"
        return variant

    def rule(
        self, variant: str, task: str, language: str, label: str, params: Mapping[str, Any], rng
    ) -> str:
        key = self.rule_key(variant)
        if key not in self.data["rules"]:
            raise KeyError(f"{self.origin}: no rule wording for {key!r}")
        choices = self._lang(self.data["rules"][key], language)
        text = rng.choice(choices) if isinstance(choices, list) else choices
        items = self.data["items"].get(task) or self.data["items"]["NER"]
        item, plural = self._lang(items, language)
        values = {
            name: self._join(params.get(name) or (), language, quote=name != "marks")
            for name in ("modifiers", "marks", "units")
        }
        return text.format(
            label=label,
            item=item,
            items=plural,
            k=params.get("k", ""),
            inverse=params.get("inverse", ""),
            merged=params.get("merged", ""),
            **values,
        )

    @staticmethod
    def _join(values: Sequence[str], language: str, quote: bool = True) -> str:
        if language == "zh":
            return "、".join(f"“{v}”" if quote else v for v in values)
        return ", ".join(f'"{v}"' if quote else v for v in values)


def read_preference_templates(path: str | Path) -> PreferenceTemplates:
    return PreferenceTemplates(read_json_object(path, "preference templates"), origin=str(path))


@lru_cache(maxsize=1)
def _builtin_templates() -> PreferenceTemplates:
    return read_preference_templates(WORDING_PATH)


def load_preference_templates(path: str | Path | None = None) -> PreferenceTemplates:
    return _builtin_templates() if path is None else read_preference_templates(path)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class PreferenceConfig:
    """How preference-rule rows are made.

    ``strategies``: the strategies tried per row (rule-based where exact, LLM where a
    runner is live); ``llm_strategies``: those the LLM is asked for. ``max_per_row``
    caps the rows made from one basic row (None: one per applicable strategy);
    ``row_rate`` samples the basic rows used; ``max_k`` bounds ``numerical/first_k``.
    """

    seed: int = 42
    strategies: tuple[str, ...] = PREFERENCE_STRATEGIES
    llm_strategies: tuple[str, ...] = PREFERENCE_STRATEGIES
    max_per_row: int | None = 1
    row_rate: float = 1.0
    max_k: int = 3
    templates: PreferenceTemplates = field(default_factory=load_preference_templates)
    inverse: InverseTable = field(default_factory=load_inverse_table)
    hierarchy: LabelHierarchy = field(default_factory=load_label_hierarchy)
    prompt_path: str | None = None

    def __post_init__(self) -> None:
        for name in (*self.strategies, *self.llm_strategies):
            if name not in PREFERENCE_STRATEGIES:
                raise ValueError(f"unknown strategy {name!r}; expected {PREFERENCE_STRATEGIES}")
        if self.max_per_row is not None and self.max_per_row < 1:
            raise ValueError(f"max_per_row must be >= 1 or None, got {self.max_per_row}")
        if not 0.0 <= self.row_rate <= 1.0:
            raise ValueError(f"row_rate must lie in [0, 1], got {self.row_rate}")
        if self.max_k < 1:
            raise ValueError(f"max_k must be >= 1, got {self.max_k}")


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class ParsedRow:
    row: Mapping[str, Any]
    task: str
    language: str
    wording: str
    items: list[Any]
    text: str
    output: dict[str, Any]

    @property
    def instruction_id(self) -> str:
        return self.row["instruction_id"]

    def keys(self) -> list[str]:
        return [output_key(self.task, item) for item in self.items]


def parse_row(row: Mapping[str, Any]) -> ParsedRow:
    """The parts of a basic row; ValueError when it is not a labelled-task row."""
    try:
        inst = json.loads(row["instruction"])
        output = json.loads(row["output"])
        items, text, wording = inst["schema"], inst["input"], inst["instruction"]
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"row {row.get('instruction_id')!r}: not a basic row: {exc}") from None
    if not isinstance(output, dict) or not isinstance(items, list) or not isinstance(text, str):
        raise ValueError(f"row {row.get('instruction_id')!r}: unexpected instruction shape")
    return ParsedRow(row, row["task"], row.get("language") or "en", wording, items, text, output)


@dataclass(frozen=True)
class Relabel:
    """A candidate preference instruction: one label of one row under a new rule."""

    label: str
    strategy: str
    variant: str
    source: str  # "rule" | "llm"
    output: Any
    rule: Any
    new_label: str | None = None
    cache_key: str | None = None
    merged_label: str | None = None  # granularity/merge: the label folded into ``label``
    params: Mapping[str, Any] = field(default_factory=dict)


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_normal(v) for v in value), key=canonical_json)
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal up to the order of list elements and of object keys."""
    return canonical_json(_normal(a)) == canonical_json(_normal(b))


def _swap(pairs: Any) -> Any:
    if not isinstance(pairs, list):
        return pairs
    return [
        {"subject": p.get("object"), "object": p.get("subject")} if isinstance(p, dict) else p
        for p in pairs
    ]


def check_relabel(parsed: ParsedRow, relabel: Relabel) -> tuple[str, str] | None:
    """None when the relabelling may become an instruction, else (reason, detail)."""
    task = parsed.task
    if not isinstance(relabel.rule, str) or not relabel.rule.strip():
        return REJECT_EMPTY_RULE, "the new rule is empty"
    output = relabel.output
    if not isinstance(output, dict):
        return REJECT_FORMAT, f"output must be a JSON object, got {type(output).__name__}"
    items = parsed.items
    if relabel.new_label is not None:
        items = reversed_items(task, items, relabel.label, relabel.new_label)
    if relabel.merged_label is not None:
        items = merged_items(task, items, relabel.merged_label)
    try:
        allowed = [output_key(task, item) for item in items]
    except (KeyError, TypeError, ValueError) as exc:
        return REJECT_FORMAT, f"schema items are malformed: {exc}"
    extra = [k for k in output if k not in allowed]
    if extra:
        return REJECT_LABEL, f"labels not in the schema: {extra}"
    missing = [k for k in allowed if k not in output]
    if missing:
        return REJECT_FORMAT, f"schema labels missing from the output: {missing}"
    problems = validate_basic_row(
        {
            "task": task,
            "instruction": _dumps({"instruction": "", "schema": items, "input": parsed.text}),
            "schema": _dumps(items),
            "output": _dumps(output),
        }
    )
    if problems:
        spans = [p for p in problems if "does not occur in the input" in p]
        if spans:
            return REJECT_SPAN, "; ".join(spans[:3])
        return REJECT_FORMAT, "; ".join(problems[:3])
    original = parsed.output
    if relabel.new_label is None and same_value(output, original):
        return REJECT_UNCHANGED, "the relabelled output equals the original"
    for key, value in original.items():
        if key in (relabel.label, relabel.merged_label):
            continue
        if key not in output or not same_value(output[key], value):
            return (
                REJECT_OTHER_LABELS,
                f"label {key!r} changed but the rule is about {relabel.label!r}",
            )
    if relabel.merged_label is not None:
        union = [*(original.get(relabel.label) or []), *(original.get(relabel.merged_label) or [])]
        if not same_value(output[relabel.label], list(dict.fromkeys(union))):
            return (
                REJECT_NOT_MERGED,
                f"{relabel.label!r} does not hold its own and {relabel.merged_label!r}'s answers",
            )
    if relabel.new_label is not None and not same_value(
        output[relabel.new_label], _swap(original.get(relabel.label))
    ):
        return (
            REJECT_NOT_REVERSED,
            "pairs are not the original ones with subject and object swapped",
        )
    return None


def _instruction_id(base_id: str, variant: str, label: str, stamp: str) -> str:
    key = f"{base_id}|{STRATEGY}|{variant}|{label}|{stamp}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


def build_preference_row(
    parsed: ParsedRow,
    relabel: Relabel,
    templates: PreferenceTemplates,
    seed: int,
    *,
    cross_check: str | None = None,
    prompt_version: str | None = None,
) -> dict[str, Any]:
    """The compound row (``COMPOUND_COLUMNS``) of a checked relabelling."""
    row = parsed.row
    task, language = parsed.task, parsed.language
    items = parsed.items
    rule_label = relabel.label
    if relabel.new_label is not None:
        items = reversed_items(task, items, relabel.label, relabel.new_label)
        rule_label = relabel.new_label
    if relabel.merged_label is not None:
        items = merged_items(task, items, relabel.merged_label)
    keys = [output_key(task, item) for item in items]
    output = {k: relabel.output[k] for k in keys}
    sep = "" if language == "zh" else " "
    instruction = {
        "instruction": parsed.wording + sep + templates.sentence(language),
        "schema": items,
        "rules": [{"label": rule_label, "rule": relabel.rule.strip()}],
        "input": parsed.text,
    }
    base_id = parsed.instruction_id
    if relabel.source == "llm":
        template = f"{row.get('template')}+{STRATEGY}.{relabel.variant}@prompt:{prompt_version}"
    else:
        template = f"{row.get('template')}+{STRATEGY}.{relabel.variant}@{templates.version}"
    provenance = {
        "label": relabel.label,
        "strategy": relabel.strategy,
        "variant": relabel.variant,
        "source": relabel.source,
        "cache_key": relabel.cache_key,
        "cross_check": cross_check,
    }
    if relabel.new_label is not None:
        provenance["new_label"] = relabel.new_label
    if relabel.merged_label is not None:
        provenance["merged_label"] = relabel.merged_label
    out = {col: row.get(col) for col in INSTRUCTION_COLUMNS}
    out.update(
        instruction_id=_instruction_id(
            base_id, relabel.variant, relabel.label, f"{seed}|{templates.version}"
        ),
        strategy=STRATEGY,
        template=template,
        schema=(
            _dumps(items)
            if relabel.new_label is not None or relabel.merged_label is not None
            else row.get("schema")
        ),
        instruction=_dumps(instruction),
        output=_dumps(output),
        base_instruction_id=base_id,
        variant=relabel.variant,
        provenance=json.dumps(
            provenance, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        ),
        strategies=STRATEGY,
    )
    return out


# --------------------------------------------------------------------------- rule path


def rule_relabel(
    parsed: ParsedRow, candidate: Candidate, templates: PreferenceTemplates, rng: Random
) -> Relabel:
    """A rule-based candidate with its rule wording (one draw from ``rng``)."""
    rule = templates.rule(
        candidate.variant,
        parsed.task,
        parsed.language,
        candidate.label,
        candidate.params,
        rng,
    )
    return Relabel(
        label=candidate.label,
        strategy=candidate.strategy,
        variant=candidate.variant,
        source="rule",
        output=candidate.output,
        rule=rule,
        new_label=candidate.new_label,
        params=candidate.params,
        merged_label=candidate.merged_label,
    )


def _pick(candidates: list[Candidate], rng: Random) -> Candidate | None:
    """A label uniformly among those with candidates, then one of its variants."""
    if not candidates:
        return None
    labels = list(dict.fromkeys(c.label for c in candidates))
    label = labels[rng.randrange(len(labels))] if len(labels) > 1 else labels[0]
    mine = [c for c in candidates if c.label == label]
    return mine[rng.randrange(len(mine))] if len(mine) > 1 else mine[0]


def _llm_labels(parsed: ParsedRow, strategy: str) -> list[str]:
    """Labels the LLM may rewrite a rule for: those with a non-empty answer."""
    if strategy == "reverse" and parsed.task not in PAIR_TASKS:
        return []
    if strategy == "nesting" and parsed.task not in (NER, EET):
        return []
    labels = []
    for key, value in parsed.output.items():
        if not value:
            continue
        if strategy == "numerical" and isinstance(value, list) and len(value) < 2:
            continue
        labels.append(key)
    return labels


# --------------------------------------------------------------------------- LLM path


def build_preference_requests(
    rows: Iterable[Mapping[str, Any]] | Mapping[str, ParsedRow],
    descriptions: Mapping[str, str] | None,
    choices: Sequence[PreferenceChoice],
    *,
    templates: PreferenceTemplates | None = None,
    prompt: PreferencePrompt | None = None,
    examples: Mapping[str, Sequence[str]] | None = None,
) -> list[LLMRequest]:
    """One request per choice (same order). ``rows``: basic rows or parsed rows by id."""
    parsed = _by_id(rows)
    templates = templates or load_preference_templates()
    prompt = prompt or load_preference_prompt()
    descriptions = descriptions or {}
    examples = examples or {}
    requests = []
    for choice in choices:
        p = parsed[choice.instruction_id]
        requests.append(
            build_request(
                task=p.task,
                language=p.language,
                text=p.text,
                items=p.items,
                output=p.output,
                choice=choice,
                description=descriptions.get(choice.label),
                original_rule=templates.original_rule(p.task, p.language, choice.label),
                examples=examples.get(choice.label, ()),
                prompt=prompt,
            )
        )
    return requests


def _by_id(rows: Iterable[Mapping[str, Any]] | Mapping[str, ParsedRow]) -> dict[str, ParsedRow]:
    if isinstance(rows, Mapping):
        return dict(rows)
    return {row["instruction_id"]: parse_row(row) for row in rows}


@dataclass
class AppliedLLM:
    """What ``apply_llm_results`` made of the runner's answers (aligned with choices)."""

    relabels: list[Relabel | None]
    rejections: list[dict[str, Any]]
    usage: dict[str, Any]


def _rejection(
    base_id: str, strategy: str, reason: str, detail: str, label: str, variant: str, source: str
) -> dict[str, Any]:
    return {
        "base_instruction_id": base_id,
        "strategy": strategy,
        "reason": reason,
        "detail": detail,
        "label": label,
        "variant": variant,
        "source": source,
    }


def _usage(mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "requests": 0,
        "responses": 0,
        "cached": 0,
        "failures": 0,
        "failures_by_reason": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }


def apply_llm_results(
    rows: Iterable[Mapping[str, Any]] | Mapping[str, ParsedRow],
    choices: Sequence[PreferenceChoice],
    results: Sequence[LLMResponse | LLMFailure],
    *,
    mode: str = "live",
) -> AppliedLLM:
    """Check each answer (``check_relabel``); failures and invalid answers are rejected."""
    if len(results) != len(choices):
        raise ValueError(f"{len(results)} LLM results for {len(choices)} requests")
    parsed = _by_id(rows)
    usage = _usage(mode)
    usage["requests"] = len(choices)
    relabels: list[Relabel | None] = []
    rejections: list[dict[str, Any]] = []
    failures: Counter[str] = Counter()
    for choice, result in zip(choices, results, strict=True):
        p = parsed[choice.instruction_id]
        variant = choice.variant or f"{choice.strategy}/llm"
        if isinstance(result, LLMFailure):
            reason_class = result.reason.split(":", 1)[0].strip() or result.reason
            failures[reason_class] += 1
            rejections.append(
                _rejection(
                    choice.instruction_id,
                    choice.strategy,
                    REJECT_LLM_FAILURE,
                    f"{result.reason} (key {result.key}, {result.attempts} attempts)",
                    choice.label,
                    variant,
                    "llm",
                )
            )
            relabels.append(None)
            continue
        usage["responses"] += 1
        usage["cached"] += int(bool(result.cached))
        usage["prompt_tokens"] += int(result.usage.get("prompt_tokens", 0))
        usage["completion_tokens"] += int(result.usage.get("completion_tokens", 0))
        answer = result.parsed
        shape = validate_preference_response(answer)
        if shape is not None:
            rejections.append(
                _rejection(
                    choice.instruction_id,
                    choice.strategy,
                    REJECT_FORMAT,
                    shape,
                    choice.label,
                    variant,
                    "llm",
                )
            )
            relabels.append(None)
            continue
        output = answer["relabelled"]
        new_label = None
        if choice.strategy == "reverse" and isinstance(output, dict):
            added = [k for k in output if k not in p.output]
            removed = [k for k in p.output if k not in output]
            if removed == [choice.label] and len(added) == 1:
                new_label = added[0]
        relabel = Relabel(
            label=choice.label,
            strategy=choice.strategy,
            variant=variant,
            source="llm",
            output=output,
            rule=answer["new_rule"],
            new_label=new_label,
            cache_key=result.key,
        )
        problem = check_relabel(p, relabel)
        if problem is None and choice.strategy == "reverse" and new_label is None:
            problem = (REJECT_LABEL, "a reverse rule must rename the relation to its inverse")
        if problem is not None:
            rejections.append(
                _rejection(
                    choice.instruction_id,
                    choice.strategy,
                    problem[0],
                    problem[1],
                    choice.label,
                    variant,
                    "llm",
                )
            )
            relabels.append(None)
            continue
        relabels.append(relabel)
    usage["failures"] = sum(failures.values())
    usage["failures_by_reason"] = dict(sorted(failures.items()))
    return AppliedLLM(relabels, rejections, usage)


# --------------------------------------------------------------------------- main entry


@dataclass
class PreferenceResult:
    rows: list[dict[str, Any]]
    rejections: list[dict[str, Any]]
    counts_by_strategy: dict[str, int]
    llm_usage_hint: dict[str, Any]
    counts_by_variant: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def rejections_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(r["reason"] for r in self.rejections).items()))


@dataclass
class _Option:
    parsed: ParsedRow
    strategy: str
    rule: Relabel | None
    llm_label: str | None
    llm_index: int | None = None


def _is_live(runner: LLMRunner | None) -> bool:
    return runner is not None and getattr(runner, "mode", "offline") != "offline"


def preference_rows(
    basic_rows: Iterable[Mapping[str, Any]],
    config: PreferenceConfig | None = None,
    runner: LLMRunner | None = None,
    descriptions: Mapping[str, str] | None = None,
    examples: Mapping[str, Sequence[str]] | None = None,
) -> PreferenceResult:
    """Preference-rule rows (``COMPOUND_COLUMNS``) for the train-mode ``basic_rows``.

    Offline (``runner`` None or in offline mode): rule-based relabellings only, no LLM
    call. Otherwise the LLM is asked for every chosen (row, label, strategy) in
    ``config.llm_strategies``, all requests in one ``runner.run`` call.
    """
    config = config or PreferenceConfig()
    templates = config.templates
    live = _is_live(runner)
    skipped: Counter[str] = Counter()
    rejections: list[dict[str, Any]] = []
    options: list[_Option] = []

    basic_rows = list(basic_rows)
    # A rule's wording never quotes the record's own answer (a template's "subject and
    # object" where the FewRel entity is the word "object"): such a rule is not used.
    spans = record_spans(basic_rows)
    for row in basic_rows:
        if row.get("mode") != "train":
            skipped[SKIP_MODE] += 1
            continue
        task = row.get("task")
        rule_ok = any(task in RULE_TASKS.get(s, ()) for s in config.strategies)
        llm_ok = live and task in LLM_TASKS and bool(config.llm_strategies)
        if not (rule_ok or llm_ok):
            skipped[SKIP_TASK] += 1
            continue
        try:
            parsed = parse_row(row)
        except ValueError:
            skipped[SKIP_BAD_ROW] += 1
            continue
        iid = parsed.instruction_id
        if (
            config.row_rate < 1.0
            and record_rng(config.seed, iid, "pref:rate").random() >= config.row_rate
        ):
            skipped[SKIP_SAMPLED] += 1
            continue
        row_options: list[_Option] = []
        for strategy in config.strategies:
            rng = record_rng(config.seed, iid, f"pref:{strategy}")
            rule = None
            if strategy in RULE_STRATEGIES:
                cands = rule_candidates(
                    strategy,
                    parsed.task,
                    parsed.language,
                    parsed.text,
                    parsed.items,
                    parsed.output,
                    inverse=config.inverse,
                    max_k=config.max_k,
                    hierarchy=config.hierarchy,
                )
                chosen = _pick(cands, rng)
                if chosen is not None:
                    rule = rule_relabel(parsed, chosen, templates, rng)
                    own = spans.get(row.get("record_id"), frozenset())
                    if own and leaked_spans(own, [rule.rule]):
                        rule = None
            llm_label = None
            if live and task in LLM_TASKS and strategy in config.llm_strategies:
                if rule is not None:
                    llm_label = rule.label
                else:
                    eligible = _llm_labels(parsed, strategy)
                    if eligible:
                        llm_label = eligible[rng.randrange(len(eligible))]
            if rule is not None or llm_label is not None:
                row_options.append(_Option(parsed, strategy, rule, llm_label))
        if not row_options:
            skipped[SKIP_NO_CANDIDATE] += 1
            continue
        if config.max_per_row is not None and len(row_options) > config.max_per_row:
            pick = record_rng(config.seed, iid, "pref:select").sample(
                range(len(row_options)), config.max_per_row
            )
            row_options = [row_options[i] for i in sorted(pick)]
        options.extend(row_options)

    # The LLM, all at once.
    usage = _usage(getattr(runner, "mode", "offline") if runner is not None else "offline")
    applied: AppliedLLM | None = None
    prompt_version = None
    if live:
        choices: list[PreferenceChoice] = []
        for option in options:
            if option.llm_label is None:
                continue
            option.llm_index = len(choices)
            choices.append(
                PreferenceChoice(
                    option.parsed.instruction_id,
                    option.llm_label,
                    option.strategy,
                    variant=option.rule.variant if option.rule else None,
                    hint=option.rule.rule if option.rule else None,
                )
            )
        if choices:
            prompt = load_preference_prompt(config.prompt_path)
            prompt_version = prompt.version
            parsed_by_id = {o.parsed.instruction_id: o.parsed for o in options}
            requests = build_preference_requests(
                parsed_by_id,
                descriptions,
                choices,
                templates=templates,
                prompt=prompt,
                examples=examples,
            )
            results = runner.run(requests, validate_preference_response)
            applied = apply_llm_results(parsed_by_id, choices, results, mode=usage["mode"])
            rejections.extend(applied.rejections)
            usage = applied.usage

    # Merge, check, build.
    rows: list[dict[str, Any]] = []
    for option in options:
        parsed = option.parsed
        rule = option.rule
        if rule is not None:
            problem = check_relabel(parsed, rule)
            if problem is not None:
                rejections.append(
                    _rejection(
                        parsed.instruction_id,
                        option.strategy,
                        problem[0],
                        problem[1],
                        rule.label,
                        rule.variant,
                        "rule",
                    )
                )
                rule = None
        llm = None
        llm_attempted = applied is not None and option.llm_index is not None
        if llm_attempted:
            llm = applied.relabels[option.llm_index]
        chosen, cross = rule, None
        if rule is not None and llm is not None:
            agree = (
                llm.new_label == rule.new_label
                and llm.merged_label == rule.merged_label
                and same_value(llm.output, rule.output)
            )
            if agree:
                chosen, cross = llm, "agree"
            else:
                cross = "disagree"
                rejections.append(
                    _rejection(
                        parsed.instruction_id,
                        option.strategy,
                        REJECT_DISAGREE,
                        f"llm: {_dumps(llm.output.get(llm.new_label or llm.label))}; "
                        f"rule: {_dumps(rule.output.get(rule.new_label or rule.label))}",
                        rule.label,
                        rule.variant,
                        "llm",
                    )
                )
                # Keep the rule-based relabelling; record the LLM answer it beat.
                chosen = replace(rule, cache_key=llm.cache_key)
        elif rule is not None and llm_attempted:
            cross = "llm_rejected"
        elif llm is not None:
            chosen = llm
        if chosen is None:
            continue
        rows.append(
            build_preference_row(
                parsed,
                chosen,
                templates,
                config.seed,
                cross_check=cross,
                prompt_version=prompt_version,
            )
        )

    by_strategy = Counter(json.loads(r["provenance"])["strategy"] for r in rows)
    by_variant = Counter(r["variant"] for r in rows)
    return PreferenceResult(
        rows=rows,
        rejections=rejections,
        counts_by_strategy=dict(sorted(by_strategy.items())),
        llm_usage_hint=usage,
        counts_by_variant=dict(sorted(by_variant.items())),
        skipped=dict(sorted(skipped.items())),
    )
