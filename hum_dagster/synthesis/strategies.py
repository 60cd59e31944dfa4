"""The one registry of compound strategies: name -> family, tasks, synthesiser, validators.

Everything that needs to know which compound strategies exist reads this module: the
Dagster partitions (one compound asset per strategy, partitioned over the sources it
applies to), the corpus ablations (``corpus.mix.VARIANTS`` drops whole families), the
asset checks (one per validator check name) and the CLI. No strategy name is spelled
anywhere else.

A strategy applies to a source when the source is a train split and one of the
instruction tasks the source yields (``records.DERIVED_TASKS``: an EE source yields EE,
EET and EEA rows) is in the strategy's ``tasks`` (or, with a live or replaying LLM, in
its ``llm_tasks``). Test and dev sources yield evaluation rows only: no strategy applies.

``combined`` (``synthesis.combined``) composes the others: each of its rows carries one
or more of them, listed in its ``strategies`` column, and the ablations drop a row when
any of its parts belongs to a dropped family (``corpus.mix.carries_any``).

Validators return ``records.Problem`` values whose ``check`` names the asset check they
feed; a check passes when its validators find nothing. Adding a validator to a strategy
is one line in ``STRATEGIES`` below (``Validator(check, description, function)``); the
Dagster layer makes one asset check per check name. No Dagster imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from hum_dagster.dictionary.model import SchemaDictionary
from hum_dagster.records import DERIVED_TASKS, Problem
from hum_dagster.synthesis.basic import validate_basic_row
from hum_dagster.synthesis.combined import combined_rows
from hum_dagster.synthesis.combined_checks import (
    combined_format_problems,
    combined_label_problems,
    row_parts,
    strategies_problems,
)
from hum_dagster.synthesis.combined_weights import families_for, load_combined_config
from hum_dagster.synthesis.formats import (
    FORMAT_CHECK,
    FORMAT_TASKS,
    FormatConfig,
    checked_format_rows,
    format_row_problems,
)
from hum_dagster.synthesis.guidelines import (
    GUIDED_TASKS,
    GuidelineConfig,
    GuidelineReport,
    synthesize_guidelines,
    validate_compound_row,
)
from hum_dagster.synthesis.own_answers import OWN_ANSWER_CHECK, check_own_answers, record_spans
from hum_dagster.synthesis.preferences import LLM_TASKS, PreferenceConfig, preference_rows
from hum_dagster.synthesis.preferences_llm import preference_step_report
from hum_dagster.synthesis.preferences_rules import RULE_TASKS

FAMILIES = ("guidelines", "paraphrase", "preference_rules", "format_variants", "combined")
BASIC = "basic"  # the strategy column of basic instructions

# Check names (each becomes one asset check on the assets whose validators emit it).
PARSE_CHECK = "outputs_parse_with_own_labels"
SPAN_CHECK = "spans_occur_in_input"
LABELS_CHECK = "outputs_match_own_labels"
OWN_INPUT_CHECK = "no_example_is_own_input"
STRATEGIES_CHECK = "row_carries_its_strategies"
# OWN_ANSWER_CHECK ("no_own_answer_in_guidelines") and FORMAT_CHECK
# ("outputs_follow_stated_format") are named where their validators live.

ERROR, WARN = "error", "warn"


@dataclass(frozen=True)
class ValidationContext:
    """What a validator may need besides the row: the basic rows of the same source
    (by instruction id), read from the stored ``basic_instructions`` partition."""

    base_rows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @cached_property
    def record_spans(self) -> Mapping[str, frozenset[str]]:
        """Each record's gold spans, from its basic rows (computed once per context)."""
        return record_spans(self.base_rows.values())


RowValidator = Callable[[Mapping[str, Any], ValidationContext], Iterable[Problem]]


@dataclass(frozen=True)
class Validator:
    """One check over stored rows: ``function(row, context)`` yields its Problems, each
    with ``check == self.check``. ``needs_base``: the check reads the basic rows too.
    ``severity`` error blocks downstream assets; warn only reports."""

    check: str
    description: str
    function: RowValidator
    needs_base: bool = False
    severity: str = ERROR
    # One pass that finds the Problems of this check and of others at once (each Problem
    # names its check). Validators naming the same ``shared`` function cost one call per
    # row in ``check_rows``: the label and own-input checks read the same parse.
    shared: RowValidator | None = None


@dataclass
class StrategyOutput:
    """Rows of one strategy (an iterable: guideline rows are a generator) and a function
    giving the JSON-able report once they are consumed."""

    rows: Iterable[dict[str, Any]]
    report: Callable[[], dict[str, Any]]


Synthesiser = Callable[
    [list[dict[str, Any]], SchemaDictionary, int, Any], StrategyOutput
]  # (basic rows, dictionary, seed, LLM runner or None)


@dataclass(frozen=True)
class Strategy:
    name: str
    family: str
    tasks: tuple[str, ...]  # instruction tasks it can rewrite without an LLM
    synthesise: Synthesiser
    validators: tuple[Validator, ...]
    llm_tasks: tuple[str, ...] = ()  # further tasks it rewrites with a live/replay LLM
    uses_llm: bool = False  # asks the LLM when one is configured (the `llm` pool)
    description: str = ""

    def applies_to(self, source_task: str, split: str = "train", llm: bool = False) -> bool:
        if split != "train":
            return False
        tasks = set(self.tasks) | (set(self.llm_tasks) if llm else set())
        return any(t in tasks for t in DERIVED_TASKS.get(source_task, (source_task,)))

    def checks(self) -> dict[str, Validator]:
        """Check name -> the first validator of that name (its description, severity)."""
        out: dict[str, Validator] = {}
        for validator in self.validators:
            out.setdefault(validator.check, validator)
        return out


# --------------------------------------------------------------------------- validators


def _problems(check: str, record: str, reasons: Iterable[str]) -> list[Problem]:
    return [Problem(check, record, reason) for reason in reasons]


def _only(check: str, shared: RowValidator) -> RowValidator:
    """The Problems of one check out of a shared pass."""

    def function(row: Mapping[str, Any], context: ValidationContext | None = None) -> list[Problem]:
        return [p for p in shared(row, context) if p.check == check]

    function.__doc__ = f"{shared.__doc__} (the {check} Problems only)"
    return function


def _two_checks(main: str, aside: str, find: Callable[[Mapping[str, Any], list[str]], list[str]],
                doc: str) -> RowValidator:
    """A shared pass for two checks from one finder: ``find(row, aside_list)`` returns the
    ``main`` check's reasons and puts the ``aside`` check's reasons in the list it is given
    (the two checks are told apart by where a reason went, never by its wording)."""

    def shared(row: Mapping[str, Any], _: ValidationContext | None = None) -> list[Problem]:
        other: list[str] = []
        record = row["instruction_id"]
        found = find(row, other)
        return _problems(main, record, found) + _problems(aside, record, other)

    shared.__doc__ = doc
    return shared


basic_row_problems = _two_checks(
    PARSE_CHECK, SPAN_CHECK, lambda row, spans: validate_basic_row(row, spans=spans),
    "Parse problems (the output parses and answers exactly its chunk's own schema labels) "
    "and span problems (every extracted span occurs in the instruction's input).",
)
basic_parse_problems = _only(PARSE_CHECK, basic_row_problems)
basic_span_problems = _only(SPAN_CHECK, basic_row_problems)

BASIC_VALIDATORS = (
    Validator(PARSE_CHECK, "Every output parses and uses exactly its own schema's labels.",
              basic_parse_problems, shared=basic_row_problems),
    Validator(SPAN_CHECK, "Every extracted span occurs in the instruction's input.",
              basic_span_problems, shared=basic_row_problems),
)


compound_row_problems = _two_checks(
    LABELS_CHECK, OWN_INPUT_CHECK, lambda row, own: validate_compound_row(row, own_input=own),
    "Label problems (outputs parse and use the instruction's own label names, variants and "
    "placeholders included, and their spans occur in the input) and own-input problems (no "
    "example shown in the instruction is the instruction's own input).",
)
label_problems = _only(LABELS_CHECK, compound_row_problems)
own_input_problems = _only(OWN_INPUT_CHECK, compound_row_problems)


def format_problems(row: Mapping[str, Any], context: ValidationContext) -> list[Problem]:
    """The instruction states the row's own style, layout and empty spelling once, in place
    of the JSON reply sentence, and the stored output reads back strictly, as stated, into
    the answer of its base instruction as stored in ``basic_instructions`` now (so it also
    fails when the basic partition changed under the compound one)."""
    record = row["instruction_id"]
    base = context.base_rows.get(row.get("base_instruction_id") or "")
    if base is None:
        return [Problem(FORMAT_CHECK, record,
                        f"base instruction {row.get('base_instruction_id')!r} is not in the "
                        "stored basic_instructions partition")]
    return _problems(FORMAT_CHECK, record, format_row_problems(row, base))


def own_answer_problems(row: Mapping[str, Any], context: ValidationContext) -> list[Problem]:
    """No gold span of the row's record appears in the part of the instruction the
    strategy added (descriptions, examples, typical values, rules, skeletons)."""
    return check_own_answers([row], context.record_spans)


_LABELS = Validator(
    LABELS_CHECK,
    "Outputs parse and use the instruction's own label names (variants and placeholders "
    "included); spans occur in the input.",
    label_problems,
    shared=compound_row_problems,
)
_OWN_INPUT = Validator(
    OWN_INPUT_CHECK, "No example in an instruction is the instruction's own input.",
    own_input_problems,
    shared=compound_row_problems,
)
_FORMAT = Validator(
    FORMAT_CHECK,
    "Format variants state their own layout once, in place of the JSON reply sentence, and "
    "their outputs read back strictly as stated into the stored base answer.",
    format_problems,
    needs_base=True,
)
_OWN_ANSWER = Validator(
    OWN_ANSWER_CHECK,
    "No gold span of a record appears in the guideline part of its compound instructions "
    "(descriptions, examples, typical values, rules).",
    own_answer_problems,
    needs_base=True,
)



combined_row_problems = _two_checks(
    LABELS_CHECK, OWN_INPUT_CHECK, lambda row, own: combined_label_problems(row, own_input=own),
    "A combined row's output (read back from its stated format, where it has one) parses "
    "and uses the instruction's own labels, its spans occur in the input (label problems); "
    "no example shown is its own input (own-input problems).",
)
combined_labels = _only(LABELS_CHECK, combined_row_problems)
combined_own_input = _only(OWN_INPUT_CHECK, combined_row_problems)


def _base_of(row: Mapping[str, Any], context: ValidationContext, check: str):
    base = context.base_rows.get(row.get("base_instruction_id") or "")
    if base is None:
        return None, [Problem(check, row["instruction_id"],
                              f"base instruction {row.get('base_instruction_id')!r} is not in "
                              "the stored basic_instructions partition")]
    return base, []


def combined_format(row: Mapping[str, Any], context: ValidationContext) -> list[Problem]:
    """Where a format variant is one of a combined row's parts: the wording states the
    guideline sentences, then its own layout; the output reads back into the base answer."""
    if "format_variants" not in row_parts(row):
        return []
    base, missing = _base_of(row, context, FORMAT_CHECK)
    if base is None:
        return missing
    return _problems(FORMAT_CHECK, row["instruction_id"], combined_format_problems(row, base))


def combined_strategies(row: Mapping[str, Any], context: ValidationContext) -> list[Problem]:
    base, missing = _base_of(row, context, STRATEGIES_CHECK)
    if base is None:
        return missing
    return _problems(STRATEGIES_CHECK, row["instruction_id"], strategies_problems(row, base))


_C_LABELS = Validator(
    LABELS_CHECK,
    "Outputs (read back from the stated format where a format variant is a part) parse and "
    "use the instruction's own label names; spans occur in the input.",
    combined_labels,
    shared=combined_row_problems,
)
_C_OWN_INPUT = Validator(
    OWN_INPUT_CHECK, "No example in an instruction is the instruction's own input.",
    combined_own_input,
    shared=combined_row_problems,
)
_C_FORMAT = Validator(
    FORMAT_CHECK,
    "Rows with a format variant state the guideline sentences of their parts, then their own "
    "layout once in place of the JSON reply sentence; outputs read back into the base answer.",
    combined_format,
    needs_base=True,
)
_C_STRATEGIES = Validator(
    STRATEGIES_CHECK,
    "Each strategy a row lists in `strategies` shows in its instruction (a description, "
    "examples, a stated format, a rule...).",
    combined_strategies,
    needs_base=True,
)

# --------------------------------------------------------------------------- synthesisers


def _guidelines(name: str) -> Synthesiser:
    def run(rows, dictionary, seed, runner) -> StrategyOutput:
        report = GuidelineReport(name)
        out = synthesize_guidelines(rows, dictionary, name, GuidelineConfig(seed=seed), report)
        return StrategyOutput(out, report.to_json)

    return run


REJECTIONS_KEPT = 500  # rejected relabellings kept in the partition's footer for inspection


def _preferences(rows, dictionary, seed, runner) -> StrategyOutput:
    descriptions = {
        e.label: e.descriptions[0].value
        for e in dictionary.entries.values()
        if e.parent is None and e.descriptions
    }
    result = preference_rows(rows, PreferenceConfig(seed=seed), runner, descriptions)
    report = {
        "rows_in": len(rows),
        "rows_out": len(result.rows),
        "skipped": result.skipped,
        "by_variant": result.counts_by_variant,
        "rejections_by_reason": result.rejections_by_reason(),
        "rejections": result.rejections[:REJECTIONS_KEPT],
        # what the LLM step sent, received and had rejected (metadata only: not in the
        # table's footer, so a re-run over a warm cache writes the same bytes)
        "llm_step": preference_step_report(
            result.llm_usage_hint, result.rejections, runner
        ).to_json(),
    }
    return StrategyOutput(result.rows, lambda: report)


def _label_descriptions(dictionary: SchemaDictionary) -> dict[str, str]:
    return {
        e.label: e.descriptions[0].value
        for e in dictionary.entries.values()
        if e.parent is None and e.descriptions
    }


def _combined(rows, dictionary, seed, runner) -> StrategyOutput:
    result = combined_rows(
        rows, dictionary, load_combined_config(seed=seed), runner, _label_descriptions(dictionary)
    )
    prefs = result.preference_reports or [preference_rows([], PreferenceConfig(seed=seed), runner)]
    report = {
        **result.report,
        "llm_step": preference_step_report(
            prefs[0].llm_usage_hint, prefs[0].rejections, runner
        ).to_json(),
    }
    return StrategyOutput(result.rows, lambda: report)


def _formats(rows, dictionary, seed, runner) -> StrategyOutput:
    out, report = checked_format_rows(rows, FormatConfig(seed=seed))
    return StrategyOutput(out, lambda: report)


_RULE_TASKS = tuple(sorted({t for tasks in RULE_TASKS.values() for t in tasks}))
_GUIDE = (_LABELS, _OWN_INPUT, _OWN_ANSWER)
_COMBINED_TASKS = tuple(
    sorted({t for t in (*GUIDED_TASKS, *FORMAT_TASKS, *_RULE_TASKS) if families_for(t)})
)


def _guideline(name: str, family: str, description: str) -> Strategy:
    return Strategy(name, family, GUIDED_TASKS, _guidelines(name), _GUIDE, description=description)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        _guideline("description", "guidelines", "schema items carry the label's description"),
        _guideline("examples", "guidelines", "positive and negative examples per label"),
        _guideline("output_format", "guidelines", "the instruction spells out the output structure"),
        _guideline("label_variants", "paraphrase", "a synonym replaces the label, output included"),
        _guideline("label_masking", "paraphrase", "labels become placeholders described in the schema"),
        _guideline("description_variants", "paraphrase", "another description of the label"),
        _guideline("representative_examples", "paraphrase", "frequent values of each label"),
        Strategy(
            "preference_rules", "preference_rules", _RULE_TASKS, _preferences,
            (_LABELS, _OWN_ANSWER),
            llm_tasks=LLM_TASKS, uses_llm=True,
            description="a new annotation rule for one label, and the output relabelled under it",
        ),
        Strategy(
            "format_variants", "format_variants", FORMAT_TASKS, _formats,
            (_FORMAT, _OWN_ANSWER),
            description="the same answer in another output format (JSON, text, markdown, code...)",
        ),
        Strategy(
            "combined", "combined", _COMBINED_TASKS, _combined,
            (_C_LABELS, _C_OWN_INPUT, _C_FORMAT, _OWN_ANSWER, _C_STRATEGIES),
            llm_tasks=LLM_TASKS, uses_llm=True,
            description="one or more strategies per row (description + examples, guidelines + "
            "a format variant, a preference rule with its labels' descriptions...), drawn per "
            "record with the weights of assets/rules/combined.json",
        ),
    )
}


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown compound strategy {name!r}; known: {sorted(STRATEGIES)}") from None


def in_families(families: Sequence[str]) -> tuple[str, ...]:
    """The strategy names of the given families, in registry order."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown strategy families {sorted(unknown)}; known: {FAMILIES}")
    return tuple(name for name, s in STRATEGIES.items() if s.family in families)


def applicable(source_task: str, split: str = "train", llm: bool = False) -> tuple[str, ...]:
    """The strategies that can make rows from a source of this task and split."""
    return tuple(name for name, s in STRATEGIES.items() if s.applies_to(source_task, split, llm))


def validate_rows(
    rows: Iterable[Mapping[str, Any]],
    validators: Sequence[Validator],
    context: ValidationContext | None = None,
) -> list[Problem]:
    """Every Problem the validators find in ``rows``."""
    return [p for found in check_rows(rows, validators, context).values() for p in found]


def check_rows(
    rows: Iterable[Mapping[str, Any]],
    validators: Sequence[Validator],
    context: ValidationContext | None = None,
) -> dict[str, list[Problem]]:
    """Check name -> the Problems the validators of that name find in ``rows``, in row
    order. Each row is read once, and validators sharing a ``shared`` pass (the label and
    own-input checks) cost one call of it."""
    context = context or ValidationContext()
    passes: dict[RowValidator, set[str]] = {}
    for validator in validators:
        if validator.shared is not None:
            passes.setdefault(validator.shared, set()).add(validator.check)
        else:
            passes.setdefault(validator.function, set()).add(validator.check)
    found: dict[str, list[Problem]] = {v.check: [] for v in validators}
    for row in rows:
        for function, checks in passes.items():
            for problem in function(row, context):
                if problem.check in checks:
                    found[problem.check].append(problem)
    return found
