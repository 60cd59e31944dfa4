"""``build_dictionary``: mined data + curated seeds + LLM answers, merged per field value.

Order of values in each field (the first description is the canonical one):

- descriptions: seeds (in the order given; pid2name after curated seeds), then the
  LLM's, then the mined "typical values" description;
- variants: seeds, then pid2name names (sources labelled by pid), then LLM synonyms;
  never the label itself, nor another label's name of the same kind;
- positives: curated seed examples, then mined ones, up to 5; negatives and
  candidates: mined; with ``llm_examples``, the LLM's examples and candidates
  (``dictionary.examples``) fill up what the data leaves short (5 and 5, 10 candidates),
  and the LLM's synonyms stay only where that step confirms they keep the meaning.

Duplicates (case-insensitive, whitespace-trimmed) keep their first provenance. The
same records, seeds, options and LLM answers give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hum_dagster.dictionary.enrich import (
    DESCRIBE_TEMPLATE,
    LLMUsage,
    enrich_with_llm,
    load_prompt,
)
from hum_dagster.dictionary.examples import EXAMPLES_TEMPLATE, write_examples
from hum_dagster.dictionary.gates import GateContext
from hum_dagster.dictionary.mine import (
    MINED,
    collect_instances,
    label_inventory,
    mine_entry,
)
from hum_dagster.dictionary.model import (
    N_POSITIVES,
    ROLE,
    Example,
    LabelEntry,
    SchemaDictionary,
    Text,
)
from hum_dagster.dictionary.seeds import PID2NAME, SeedSet, pid2name_seeds
from hum_dagster.llm.types import LLMRunner
from hum_dagster.records import IG, MRC, OPENIE, LabelSchema, Record

# Tasks without a label inventory (passages and questions, open triples, chat).
UNLABELLED_TASKS = (MRC, OPENIE, IG)


@dataclass
class DictionaryReport:
    source: str
    seeds: list[str]  # label sets used, with their provenance
    llm: dict[str, Any]
    coverage_summary: dict[str, Any]
    coverage: list[dict[str, Any]] = field(default_factory=list)
    unseeded: list[str] = field(default_factory=list)  # labels no seed knows

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "seeds": self.seeds,
            "llm": self.llm,
            "coverage_summary": self.coverage_summary,
            "coverage": self.coverage,
            "unseeded": self.unseeded,
        }


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def _add_texts(target: list[Text], values: Iterable[Text], exclude: set[str] | None = None) -> None:
    seen = {_norm(t.value) for t in target}
    for t in values:
        n = _norm(t.value)
        if not n or n in seen or (exclude is not None and n in exclude):
            continue
        seen.add(n)
        target.append(t)


def build_dictionary(
    source: str,
    task: str,
    language: str,
    records: Iterable[Record],
    label_schema: LabelSchema,
    seeds: Sequence[SeedSet] = (),
    hard_negatives: Mapping[str, Sequence[str]] | None = None,
    runner: LLMRunner | None = None,
    pid2name: Mapping[str, Sequence[str]] | None = None,
    seed: int = 42,
    prompts_dir: str | Path | None = None,
    llm_scope: str = "all",
    llm_examples: bool = False,
) -> tuple[SchemaDictionary, DictionaryReport]:
    """The schema dictionary of one source and a report (LLM usage, coverage).

    ``seeds`` are the label sets chosen for the source (``select_seeds``);
    ``pid2name`` is FewRel's ``{pid: (name, description)}`` (``load_pid2name``), whose
    descriptions get provenance ``"pid2name"``. ``runner`` is None or offline: no LLM.
    ``llm_scope``: "all" asks the LLM about every label, "missing" only about labels
    without a seeded description. ``llm_examples``: also ask the LLM, per label asked
    about, for 5 positive and 5 negative examples, candidates and a verdict on each name
    variant (``dictionary.examples``; its report is ``report.llm["examples"]``).
    """
    if llm_scope not in ("all", "missing"):
        raise ValueError(f"llm_scope must be 'all' or 'missing', got {llm_scope!r}")
    if task in UNLABELLED_TASKS:  # nothing to describe: an empty dictionary, not an error
        empty = SchemaDictionary(source=source, task=task, language=language)
        return empty, DictionaryReport(source, [], {}, empty.coverage_summary())
    records = list(records)
    seed_sets = list(seeds)
    if pid2name:
        seed_sets.append(pid2name_seeds(pid2name, language))
    refs = label_inventory(task, label_schema, records)
    instances = collect_instances(task, records)
    by_kind: dict[str, list] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref)

    dictionary = SchemaDictionary(source=source, task=task, language=language)
    mined_typical: dict[str, Text] = {}
    unseeded: list[str] = []
    for ref in refs:
        siblings = by_kind[ref.kind]
        if ref.kind != ROLE and ref.parent is not None:
            siblings = [s for s in siblings if s.parent == ref.parent]
        symmetric = any(
            (s := seed_set.entry(ref.label, ref.parent)) is not None and s.symmetric
            for seed_set in seed_sets
        )
        mined = mine_entry(
            ref, instances, siblings, language, source, seed, hard_negatives, symmetric
        )
        entry = LabelEntry(
            label=ref.label, kind=ref.kind, parent=ref.parent, symmetric=symmetric
        )
        same_kind_names = {_norm(s.label) for s in siblings}
        exclude_variants = same_kind_names | {_norm(ref.label)}
        seeded = False
        for seed_set in seed_sets:
            seed_entry = seed_set.entry(ref.label, ref.parent)
            if seed_entry is None:
                continue
            prov = seed_set.provenance
            if seed_set.name != PID2NAME and (seed_entry.descriptions or seed_entry.variants):
                seeded = True
            _add_texts(entry.descriptions, (Text(d, prov) for d in seed_entry.descriptions))
            _add_texts(
                entry.variants, (Text(v, prov) for v in seed_entry.variants), exclude_variants
            )
            for x in seed_entry.examples:
                if len(entry.positives) < N_POSITIVES:
                    entry.positives.append(
                        Example(text=str(x["text"]), value=x["value"], provenance=prov)
                    )
        if seed_sets and not seeded:
            unseeded.append(ref.key)
        seen_pos = {(x.text, str(x.value)) for x in entry.positives}
        for x in mined.positives:
            if len(entry.positives) >= N_POSITIVES:
                break
            if (x.text, str(x.value)) not in seen_pos:
                entry.positives.append(x)
        entry.negatives = list(mined.negatives)
        entry.candidates = list(mined.candidates)
        if mined.typical is not None:
            mined_typical[ref.key] = mined.typical
        dictionary.entries[ref.key] = entry

    # The LLM sees seeds and mined examples; its answers come after seeds.
    ask = [
        e
        for _, e in sorted(dictionary.entries.items())
        if llm_scope == "all" or not any(t.provenance != MINED for t in e.descriptions)
    ]
    template = None
    if runner is not None and getattr(runner, "mode", "offline") != "offline" and ask:
        template = load_prompt(DESCRIBE_TEMPLATE, prompts_dir)
    gates = None
    if template is not None:  # what the LLM's values are checked against
        gates = GateContext.build(dictionary, instances, (r.text for r in records))
    answers, usage = enrich_with_llm(ask, task, language, runner, template, gates)
    for key, entry in dictionary.entries.items():
        descriptions, synonyms = answers.get(key, ([], []))
        _add_texts(entry.descriptions, descriptions)
        same_kind_names = {
            _norm(e.label) for e in dictionary.entries.values() if e.kind == entry.kind
        }
        _add_texts(entry.variants, synonyms, same_kind_names)
        if key in mined_typical:
            _add_texts(entry.descriptions, [mined_typical[key]])

    llm_report = usage.to_json() | {"cache_keys": usage.cache_keys}
    if llm_examples:
        live = runner is not None and getattr(runner, "mode", "offline") != "offline"
        examples_template = load_prompt(EXAMPLES_TEMPLATE, prompts_dir) if live and ask else None
        if examples_template is not None and gates is None:
            gates = GateContext.build(dictionary, instances, (r.text for r in records))
        examples = write_examples(
            dictionary, ask if examples_template is not None else [], runner,
            examples_template, gates,
        )
        llm_report["examples"] = examples.to_json()
    report = DictionaryReport(
        source=source,
        seeds=[f"{s.name} ({s.provenance})" for s in seed_sets],
        llm=llm_report,
        coverage_summary=dictionary.coverage_summary(),
        coverage=dictionary.coverage(),
        unseeded=unseeded,
    )
    return dictionary, report


__all__ = ["DictionaryReport", "LLMUsage", "build_dictionary"]
