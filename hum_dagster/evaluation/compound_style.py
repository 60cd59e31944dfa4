"""Style C for evaluation: label descriptions from the schema dictionary.

The dictionary of a benchmark is built from its label schema, the curated seed files
and (FewRel) ``pid2name.json`` only, never mined from the evaluation records: examples
mined from the test set would leak its answers into the instructions. A row whose
labels have no description in the dictionary falls back to the built-in descriptions
made from label names, so every evaluated record is kept.
"""

from __future__ import annotations

from typing import Any

from hum_dagster.dictionary import SchemaDictionary, build_dictionary, load_seed_book, select_seeds
from hum_dagster.evaluation.benchmarks import Benchmark, label_name_descriptions
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.records import LabelSchema
from hum_dagster.synthesis.guidelines import GuidelineConfig, run_guidelines

STRATEGY = "description"


def benchmark_dictionary(benchmark: Benchmark, schema: LabelSchema, seed: int = 42) -> SchemaDictionary:
    entry = benchmark.entry
    seeds = select_seeds(load_seed_book(), entry.name, entry.options)
    pid2name = load_pid2name(entry.resolve(entry.option("pid2name"))) if entry.option("pid2name") else None
    dictionary, _ = build_dictionary(
        entry.name, entry.task, entry.language, [], schema, seeds, pid2name=pid2name, seed=seed
    )
    return dictionary


class DictionaryStyle:
    """A ``CompoundBuilder`` for ``build_eval_instructions(style="C")``."""

    builder_name = f"schema_dictionary:{STRATEGY}"

    def __init__(self, dictionary: SchemaDictionary, seed: int = 42):
        self.dictionary = dictionary
        self.seed = seed
        self.fallbacks = 0  # rows that got label-name descriptions instead

    def __call__(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        config = GuidelineConfig(seed=self.seed, test_rows=True)  # evaluation rows, on purpose
        described, _ = run_guidelines(rows, self.dictionary, STRATEGY, config)
        by_base = {row["base_instruction_id"]: row for row in described}
        out = []
        for row in rows:
            new = by_base.get(row["instruction_id"])
            if new is None:
                self.fallbacks += 1
                new = label_name_descriptions([row])[0]
            out.append(new)
        return out
