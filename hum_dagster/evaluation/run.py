"""One evaluation: instructions for benchmarks, generations from a model, scores.

``evaluate_suite`` builds the instructions of several benchmarks in several styles,
generates them in one pass (one vLLM launch for everything) and scores each
(benchmark, style) apart; ``evaluate_styles`` and ``evaluate_benchmark`` are the one-
benchmark forms. Each result carries its lineage (benchmark, style, builder, seed,
sample, model and decoding, counts) and ``record_counts``: how many records of the
benchmark file were read (``file_records``) and evaluated (``records``), so a reader
can see a score was made on the standard set in full. No Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.evaluation.benchmarks import (
    Benchmark,
    CompoundBuilder,
    build_eval_instructions,
    describe_eval_instructions,
    get_benchmark,
)
from hum_dagster.evaluation.generate import Generator, generate_for_rows
from hum_dagster.evaluation.metrics import DEFAULT_MODE, MODES, failure_rates, headline, score_rows
from hum_dagster.records import ReadResult


@dataclass
class SuiteItem:
    """One benchmark of a suite: its already-read source and style-C builders."""

    benchmark: Benchmark
    read: ReadResult | None = None
    builders: Mapping[str, CompoundBuilder | None] = field(default_factory=dict)


def evaluate_suite(
    items: Sequence[SuiteItem],
    generator: Generator,
    styles: Sequence[str],
    *,
    sample_size: int | None = None,
    seed: int = 42,
    chunk: int | None = 256,
) -> list[dict[str, Any]]:
    """A result per (benchmark, style), in order, from one generation pass over the
    instructions of all of them. ``timings_s["generate"]`` is that shared pass."""
    built: list[tuple[Benchmark, ReadResult, str, list[dict[str, Any]], float]] = []
    for item in items:
        read = item.read if item.read is not None else item.benchmark.read()
        for style in styles:
            start = time.perf_counter()
            rows = build_eval_instructions(
                item.benchmark, style, sample_size, seed, item.builders.get(style), read=read
            )
            built.append((item.benchmark, read, style, rows, time.perf_counter() - start))
    start = time.perf_counter()
    outputs = generate_for_rows(generator, [r for *_, rows, _ in built for r in rows], chunk=chunk)
    generate_s = time.perf_counter() - start
    results = []
    for benchmark, read, style, rows, build_s in built:
        start = time.perf_counter()
        scores = score_rows(rows, outputs)
        mine = {r["instruction_id"] for r in rows}
        described = describe_eval_instructions(rows)
        results.append({
            "benchmark": benchmark.name,
            "family": benchmark.family,
            "paper_name": benchmark.paper_name,
            "style": style,
            "builder": sorted({r["eval_builder"] for r in rows}),
            "seed": seed,
            "sample_size": sample_size or 0,
            "record_counts": {
                "file_records": len(read.records),
                "quarantined": len(read.quarantine),
                "records": described["records"],
                "full_set": not sample_size or described["records"] == len(read.records),
            },
            "instructions": described,
            "model": generator.metadata,
            "scores": scores,
            "headline": headline(scores, DEFAULT_MODE),
            "headlines": {mode: headline(scores, mode) for mode in MODES},
            "parse_failure_rates": {mode: failure_rates(scores, mode) for mode in MODES},
            "timings_s": {
                "build": round(build_s, 3),
                "generate": round(generate_s, 3),
                "score": round(time.perf_counter() - start, 3),
            },
            "rows": rows,
            "outputs": {k: v for k, v in outputs.items() if k in mine},
        })
    return results


def evaluate_styles(
    benchmark: Benchmark | str,
    generator: Generator,
    styles: Sequence[str],
    *,
    sample_size: int | None = None,
    seed: int = 42,
    builders: Mapping[str, CompoundBuilder | None] | None = None,
    read: ReadResult | None = None,
    chunk: int | None = 256,
) -> list[dict[str, Any]]:
    """``evaluate_suite`` for one benchmark: a result per style, in order."""
    if isinstance(benchmark, str):
        benchmark = get_benchmark(benchmark)
    item = SuiteItem(benchmark, read, dict(builders or {}))
    return evaluate_suite([item], generator, styles, sample_size=sample_size, seed=seed, chunk=chunk)


def evaluate_benchmark(
    benchmark: Benchmark | str,
    generator: Generator,
    *,
    style: str = "B",
    sample_size: int | None = None,
    seed: int = 42,
    compound_builder: CompoundBuilder | None = None,
    read: ReadResult | None = None,
) -> dict[str, Any]:
    """Scores and lineage of one style; ``rows`` and ``outputs`` are returned too."""
    return evaluate_styles(
        benchmark, generator, [style], sample_size=sample_size, seed=seed,
        builders={style: compound_builder}, read=read,
    )[0]
