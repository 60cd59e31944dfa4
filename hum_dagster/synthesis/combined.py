"""Combined compound instructions: one instruction carrying several strategies at once.

The paper's compound instructions overlap: of 1,261,658, 1,152,470 carry guidelines,
108,091 format variants and 34,770 preference rules, and its best evaluation style is a
label description together with examples. The ``combined`` strategy makes one row per
train-mode basic row, its strategies drawn per record (``record_rng(seed, instruction
id, "combined")``) from ``CombinedConfig`` (``assets/rules/combined.json``):

1. a **family set**: ``guidelines``, ``format_variants``, ``preference_rules``,
   ``guidelines+format_variants`` or ``guidelines+preference_rules`` ("guidelines"
   covers the guideline and paraphrase families of the registry);
2. where the set holds guidelines, a **guideline form**: one or more guideline
   strategies, e.g. ``description+examples``, ``label_variants+examples``.

The default family-set weights are the paper's counts split so that the expected
marginals are the paper's (guidelines 91.35%, format variants 8.57%, preference rules
2.76% of compound rows): no row carries a format variant and a preference rule (a
relabelled answer in another format is not built), so the overlaps sum to
1,152,470 + 108,091 + 34,770 - 1,261,658 = 33,673 rows; half the preference rows
(17,385) state their labels' descriptions, the other 16,288 overlap rows are
guidelines with a format variant. The split of the overlap and the guideline-form
weights are this project's choice (the paper gives neither).

A draw the record cannot take (its task has no such strategy; the dictionary lacks a
variant; the part fails a check) gives way to the record's next draw: the options are
ordered once per record by weighted sampling without replacement, so the first option
is a weighted draw and each fallback a weighted draw among the rest. Offline, where
rule-based relabellings exist for a share q of a task's rows only, those are made
first and the rows that have one draw a preference rule with probability p/q (p: the
configured share), so the share of rows with a preference rule stays p where q > p.
The report gives the achieved marginals next to the targets.

How parts combine (each part made by its own synthesiser, then merged):

- guideline forms: schema items merged item by item (a renaming part, label variants
  or masking, first: its names win; the other parts add their keys: description,
  positive/negative examples, typical values), the strategies' sentences appended to
  the basic wording in the same order (``merge_order``: renaming, descriptions, the
  rest in registry order), extra keys (``output_format``) kept. A renaming
  part combines with others only for NER, RE and EET, whose examples answer with spans
  (no label names); the negative examples' reasons then name the variants. Masking is
  not combined with descriptions (it carries its own) nor examples (their reasons
  would name the masked labels).
- guidelines + format variant: the guideline schema, the format row's output; the
  wording is the basic task sentence, the guideline sentences, then the format
  statement in place of the JSON reply sentence. Only forms that keep the basic answer
  (no renaming, no ``output_format`` skeleton, which would contradict the format).
- guidelines + preference rule: the preference row (its rule, its relabelled output)
  with the description of every label the rule left as it was (not a reversed
  relation's new name), and the description sentence after the rules sentence.

Every combined row names its parts in ``strategies`` (``"description+examples"``,
registry order, ``+``-joined) and passes the checks of each part
(``synthesis.combined_checks``, wrapped as validators by ``synthesis.strategies``); a
row that fails one is dropped before it is stored and its record takes its next draw.
The weights and draws live in ``synthesis.combined_weights``. No Dagster imports.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.dictionary.model import SchemaDictionary
from hum_dagster.synthesis.chunking import record_rng
from hum_dagster.synthesis.columns import INSTRUCTION_COLUMNS
from hum_dagster.synthesis.combined_checks import (
    combined_format_problems,
    combined_label_problems,
    combined_own_answer_problems,
    row_parts,
    strategies_problems,
)
from hum_dagster.synthesis.combined_weights import (
    FORMATS,
    GUIDELINES,
    PREFERENCES,
    RENAMING,
    STRATEGY,
    CombinedConfig,
    Option,
    draw_order,
    families_for,
    load_combined_config,
    merge_order,
    options_for,
)
from hum_dagster.synthesis.formats import (
    FormatConfig,
    format_sentence,
    format_variant_rows,
    load_format_wording,
)
from hum_dagster.synthesis.guidelines import (
    FLAT_TASKS,
    GUIDELINE_STRATEGIES,
    GuidelineConfig,
    GuidelineReport,
    load_guideline_wording,
    synthesize_guidelines,
)
from hum_dagster.synthesis.own_answers import record_spans
from hum_dagster.synthesis.preferences import PreferenceConfig, preference_rows
from hum_dagster.synthesis.templates import join_parts, load_templates


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- merging


class _Fail(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _inst(row: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(row["instruction"])


def _described(subs: Any) -> bool:
    return isinstance(subs, list) and any(isinstance(s, dict) for s in subs)


def _merged_items(task: str, insts: list[dict[str, Any]], n: int) -> list[Any]:
    items = []
    for j in range(n):
        merged: dict[str, Any] | None = None
        for inst in insts:
            item = inst["schema"][j]
            if isinstance(item, str):
                if task not in FLAT_TASKS:
                    raise _Fail("schema items of different shapes")
                item = {"label": item}
            if merged is None:
                merged = dict(item)
                continue
            for key, value in item.items():
                if key not in merged:
                    merged[key] = value
                elif merged[key] != value and _described(value) and not _described(merged[key]):
                    merged[key] = value  # described roles/attributes win over bare names
        assert merged is not None
        items.append(merged["label"] if task in FLAT_TASKS and set(merged) == {"label"} else merged)
    return items


@dataclass
class _Guided:
    items: list[Any]
    extras: dict[str, Any]
    sentences: list[str]
    output: str


def _guided(base: Mapping[str, Any], parts: tuple[str, ...],
            rows: Mapping[str, Mapping[str, Any]], wording) -> _Guided:
    task, language = base["task"], base.get("language") or "en"
    ordered = merge_order(parts)
    insts = [_inst(rows[s]) for s in ordered]
    n = len(_inst(base)["schema"])
    if any(len(i["schema"]) != n for i in insts):
        raise _Fail("parts have schemas of different lengths")
    extras: dict[str, Any] = {}
    for inst in insts:
        for key, value in inst.items():
            if key not in ("instruction", "schema", "input"):
                extras.setdefault(key, value)
    sentences = [s for s in (wording.sentence(p, language, task) for p in ordered) if s]
    renaming = [s for s in ordered if s in RENAMING]
    output = rows[renaming[0]]["output"] if renaming else base["output"]
    items = _merged_items(task, insts, n)
    if renaming:
        old = [it if isinstance(it, str) else it.get("label") for it in _inst(base)["schema"]]
        new = [it if isinstance(it, str) else it.get("label") for it in insts[0]["schema"]]
        _rename_reasons(items, {o: w for o, w in zip(old, new, strict=True) if o and w and o != w})
    return _Guided(items, extras, sentences, output)


def _rename_reasons(items: list[Any], names: Mapping[str, str]) -> None:
    """Negative examples' reasons name labels ("this is labelled misc here, not
    location"): under label variants they name the variants, as the schema does."""
    if not names:
        return
    pattern = re.compile("|".join(re.escape(k) for k in sorted(names, key=len, reverse=True)))
    for item in items:
        if not isinstance(item, dict):
            continue
        for example in item.get("negative examples") or ():
            if isinstance(example, dict) and isinstance(example.get("reason"), str):
                example["reason"] = pattern.sub(lambda m: names[m.group(0)], example["reason"])


def _sep(language: str) -> str:
    return "" if language == "zh" else " "


def _merge_provenance(rows: Iterable[Mapping[str, Any]], parts: tuple[str, ...]) -> str:
    prov: dict[str, Any] = {}
    for row in rows:
        data = json.loads(row.get("provenance") or "{}")
        for key, value in data.items():
            if key in ("example_text_ids", "cache_keys"):
                prov[key] = sorted(set(prov.get(key, [])) | set(value or []))
            elif isinstance(prov.get(key), dict) and isinstance(value, dict):
                prov[key] = {**prov[key], **value}
            else:
                prov.setdefault(key, value)
    prov["strategies"] = list(parts)
    return json.dumps(prov, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _instruction_id(base_id: str, parts: str, stamp: str) -> str:
    key = f"{base_id}|{STRATEGY}|{parts}|{stamp}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


def build_combined_row(
    base: Mapping[str, Any],
    option: Option,
    guideline_rows: Mapping[str, Mapping[str, Any]],
    format_row: Mapping[str, Any] | None,
    preference_row: Mapping[str, Any] | None,
    stamp: str,
    templates=None,
    guideline_wording=None,
    format_wording_=None,
) -> dict[str, Any]:
    """The combined row of ``base`` under ``option`` from its parts' rows (each made by
    its own synthesiser for ``base``); ``_Fail`` when they cannot be combined."""
    parts = option.parts
    gparts = tuple(p for p in parts if p in GUIDELINE_STRATEGIES)
    missing = [p for p in gparts if p not in guideline_rows]
    if missing:
        raise _Fail(f"no {missing[0]} row")
    if FORMATS in parts and format_row is None:
        raise _Fail("no format_variants row")
    if PREFERENCES in parts and preference_row is None:
        raise _Fail("no preference_rules row")
    task, language = base["task"], base.get("language") or "en"
    sep = _sep(language)
    base_inst = _inst(base)
    text = base_inst["input"]
    used: list[Mapping[str, Any]] = [guideline_rows[p] for p in gparts]
    guided = (
        _guided(base, gparts, guideline_rows, guideline_wording or load_guideline_wording())
        if gparts else None
    )
    variant = None
    if FORMATS in parts:
        used.append(format_row)
        finst = _inst(format_row)
        fprov = json.loads(format_row["provenance"])
        variant = format_row.get("variant")
        if guided is None:
            inst, output = finst, format_row["output"]
        else:
            task_text = (templates or load_templates()).task_part(
                task, language, base_inst["instruction"]
            )
            if task_text is None:
                raise _Fail("the basic wording has no reply sentence a format could replace")
            stated = format_sentence(
                finst["format"], task, language, fprov["empty"] or "blank",
                format_wording_ or load_format_wording(), int(fprov["layout"]),
            )
            head = sep.join([task_text, *guided.sentences])
            inst = {"instruction": join_parts(head, stated, language), "schema": guided.items,
                    **guided.extras, "input": text, "format": finst["format"]}
            output = format_row["output"]
    elif PREFERENCES in parts:
        used.append(preference_row)
        pinst = _inst(preference_row)
        variant = preference_row.get("variant")
        output = preference_row["output"]
        if guided is None:
            inst = pinst
        else:
            # a label the rule left as it was gets its description; a renamed (reverse)
            # one stays bare; one a granularity merge folded away is gone
            described = {
                _dumps(b): g for b, g in zip(base_inst["schema"], guided.items, strict=True)
            }
            items = [described.get(_dumps(p), p) for p in pinst["schema"]]
            inst = {"instruction": sep.join([pinst["instruction"], *guided.sentences]),
                    "schema": items, "rules": pinst["rules"], "input": text}
    else:
        assert guided is not None
        inst = {"instruction": sep.join([base_inst["instruction"], *guided.sentences]),
                "schema": guided.items, **guided.extras, "input": text}
        output = guided.output
    joined = "+".join(parts)
    out = {col: base.get(col) for col in INSTRUCTION_COLUMNS}
    out.update(
        instruction_id=_instruction_id(base["instruction_id"], joined, stamp),
        strategy=STRATEGY,
        template=f"{base.get('template')}+{STRATEGY}:{joined}",
        schema=_dumps(inst["schema"]),
        instruction=_dumps(inst),
        output=output,
        base_instruction_id=base["instruction_id"],
        variant=variant,
        provenance=_merge_provenance(used, parts),
        strategies=joined,
    )
    return out


# --------------------------------------------------------------------------- synthesis


@dataclass
class CombinedResult:
    rows: list[dict[str, Any]]
    report: dict[str, Any]
    preference_reports: list[Any] = field(default_factory=list)  # PreferenceResult values


def _row_ok(row, base, spans) -> str | None:
    """The first check a freshly built row fails (None: it passes them all)."""
    own: list[str] = []
    if combined_label_problems(row, own_input=own):
        return "outputs_match_own_labels"
    if own:
        return "no_example_is_own_input"
    if combined_format_problems(row, base):
        return "outputs_follow_stated_format"
    if combined_own_answer_problems(row, spans):
        return "no_own_answer_in_guidelines"
    if strategies_problems(row, base):
        return "row_carries_its_strategies"
    return None


def _boosts(
    config: CombinedConfig, capable: list[Mapping[str, Any]], made: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per task: the share ``q`` of rows that have a rule-based relabelling, and the factor
    ``b`` on their preference options' weights that keeps the task's share of rows with a
    preference rule at its configured ``p``: a row with one draws a preference option
    with probability p/q, i.e. b = (1 - p) / (q - p) (every preference option when q <= p)."""
    by_task: dict[str, list[bool]] = {}
    for row in capable:
        by_task.setdefault(row["task"], []).append(row["instruction_id"] in made)
    feasible, boosts = {}, {}
    for task, flags in sorted(by_task.items()):
        q = sum(flags) / len(flags)
        options = options_for(config, task)
        total = sum(o.weight for o in options)
        p = sum(o.weight for o in options if PREFERENCES in o.parts) / total if total else 0.0
        feasible[task] = round(q, 6)
        if q > 0 and p > 0:
            boosts[task] = round((1 - p) / (q - p), 6) if q > p else 1e9
    return feasible, boosts


def combined_rows(
    rows: Iterable[Mapping[str, Any]],
    dictionary: SchemaDictionary,
    config: CombinedConfig | None = None,
    runner: Any = None,
    descriptions: Mapping[str, str] | None = None,
) -> CombinedResult:
    """One combined row per train-mode basic row that can take any option (see the
    module docstring). ``runner``: the LLM for the preference part (None: rules only)."""
    config = config or load_combined_config()
    rows = rows if isinstance(rows, list) else list(rows)
    live = runner is not None and getattr(runner, "mode", "offline") != "offline"
    by_id = {r["instruction_id"]: r for r in rows}
    spans = record_spans(rows)
    stamp = config.stamp()
    skipped: Counter = Counter()
    train = [r for r in rows if r.get("mode") == "train"]
    if len(rows) > len(train):
        skipped["not a train-mode row"] += len(rows) - len(train)
    pref_results = []
    # Offline, rule-based relabellings exist for some rows only: they are made first for
    # every row that could take one, and those rows draw a preference rule more often,
    # so that the share of rows with one stays the configured one (``_boosts``).
    known_prefs: dict[str, dict[str, Any]] | None = None
    boosts: dict[str, float] = {}
    feasible: dict[str, float] = {}
    if not live:
        capable = [r for r in train if PREFERENCES in families_for(r["task"])]
        result = preference_rows(capable, PreferenceConfig(seed=config.seed), None, descriptions)
        pref_results.append(result)
        known_prefs = {r["base_instruction_id"]: r for r in result.rows}
        feasible, boosts = _boosts(config, capable, known_prefs)
    plans: dict[str, list[Option]] = {}
    for row in train:
        iid, task = row["instruction_id"], row["task"]
        options = options_for(config, task, live)
        if known_prefs is not None:
            if iid in known_prefs:
                b = boosts.get(task, 1.0)
                options = [Option(o.family_set, o.form, o.weight * b)
                           if PREFERENCES in o.parts else o for o in options]
            else:
                options = [o for o in options if PREFERENCES not in o.parts]
        if not options:
            skipped["task takes no compound strategy"] += 1
            continue
        plans[iid] = draw_order(options, record_rng(config.seed, iid, STRATEGY))
    cursor = dict.fromkeys(plans, 0)
    done: dict[str, dict[str, Any]] = {}
    fallbacks: Counter = Counter()  # why a draw gave way to the next
    first_draw: Counter = Counter()
    templates, gwording, fwording = load_templates(), load_guideline_wording(), load_format_wording()
    rounds = 0
    while True:
        pending = [i for i in plans if i not in done and cursor[i] < len(plans[i])]
        if rounds > 0 and known_prefs is None:  # the LLM is asked once, in the first round
            for i in pending:
                while cursor[i] < len(plans[i]) and PREFERENCES in plans[i][cursor[i]].parts:
                    cursor[i] += 1
                    fallbacks["preference rule not made"] += 1
            pending = [i for i in pending if cursor[i] < len(plans[i])]
        if not pending:
            break
        current = {i: plans[i][cursor[i]] for i in pending}
        if rounds == 0:
            first_draw.update("+".join(o.parts) for o in current.values())
        need: dict[str, set[str]] = {}
        for i, option in current.items():
            for p in option.parts:
                need.setdefault(p, set()).add(i)
        guideline: dict[str, dict[str, dict[str, Any]]] = {}
        for part in GUIDELINE_STRATEGIES:
            if part in need:
                made = synthesize_guidelines(
                    rows, dictionary, part, GuidelineConfig(seed=config.seed),
                    GuidelineReport(part), only=need[part],
                )
                guideline[part] = {r["base_instruction_id"]: r for r in made}
        formats: dict[str, dict[str, Any]] = {}
        if FORMATS in need:
            made = format_variant_rows(
                [by_id[i] for i in sorted(need[FORMATS])], FormatConfig(seed=config.seed, per_row=1)
            )
            formats = {r["base_instruction_id"]: r for r in made}
        prefs: dict[str, dict[str, Any]] = known_prefs or {}
        if PREFERENCES in need and known_prefs is None:
            result = preference_rows(
                [by_id[i] for i in sorted(need[PREFERENCES])],
                PreferenceConfig(seed=config.seed), runner, descriptions,
            )
            pref_results.append(result)
            prefs = {r["base_instruction_id"]: r for r in result.rows}
        for i, option in current.items():
            base = by_id[i]
            parts_rows = {p: guideline[p][i] for p in option.parts if p in guideline and i in guideline[p]}
            try:
                row = build_combined_row(
                    base, option, parts_rows, formats.get(i), prefs.get(i), stamp,
                    templates, gwording, fwording,
                )
                failed = _row_ok(row, base, spans)
                if failed:
                    raise _Fail(f"fails {failed}")
            except _Fail as fail:
                fallbacks[fail.reason] += 1
                cursor[i] += 1
                continue
            done[i] = row
        rounds += 1
    out = [done[i] for i in plans if i in done]
    for i in plans:
        if i not in done:
            skipped["no option could be made"] += 1
    n = len(out)
    carried = Counter(
        fam for r in out
        for fam in {GUIDELINES if p in GUIDELINE_STRATEGIES else p for p in row_parts(r)}
    )
    report = {
        "rows_in": len(rows),
        "rows_out": n,
        "skipped": dict(sorted(skipped.items())),
        "by_strategies": dict(sorted(Counter(r["strategies"] for r in out).items())),
        "first_draws": dict(sorted(first_draw.items())),
        "fallbacks": dict(sorted(fallbacks.items())),
        "rows_on_first_draw": sum(1 for i in done if cursor[i] == 0),
        "target_marginals": config.target_marginals(),
        "achieved_marginals": {f: round(carried[f] / n, 6) if n else 0.0
                               for f in (GUIDELINES, FORMATS, PREFERENCES)},
        "rounds": rounds,
        "weights": config.origin,
        "preference_feasible_by_task": feasible,
        "preference_boost_by_task": boosts,
    }
    return CombinedResult(out, report, pref_results)


__all__ = [
    "CombinedResult",
    "build_combined_row",
    "combined_rows",
]
