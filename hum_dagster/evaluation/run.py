"""One evaluation: instructions for a benchmark, generations from a model, scores.

``evaluate_benchmark`` (one style) and ``evaluate_styles`` (several, one generation
pass) glue ``build_eval_instructions``, ``generate_for_rows`` and
``score_rows`` and returns the scores with their lineage (benchmark, style, builder,
seed, sample, model and decoding, parser, counts), ready for asset metadata. No Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from hum_dagster.evaluation.benchmarks import (
    Benchmark,
    CompoundBuilder,
    build_eval_instructions,
    describe_eval_instructions,
    get_benchmark,
)
from hum_dagster.evaluation.generate import Generator, generate_for_rows
from hum_dagster.evaluation.metrics import headline, score_rows
from hum_dagster.records import ReadResult


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
    """Scores and lineage; ``rows`` and ``outputs`` are returned too, for storage.
    ``read`` reuses an already-read benchmark source."""
    return evaluate_styles(
        benchmark, generator, [style], sample_size=sample_size, seed=seed,
        builders={style: compound_builder}, read=read,
    )[0]


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
    """``evaluate_benchmark`` for several styles with one generation pass over the
    instructions of all of them (one vLLM launch, not one per style); a result per
    style, in order. ``timings_s["generate"]`` is that shared pass."""
    if isinstance(benchmark, str):
        benchmark = get_benchmark(benchmark)
    builders = builders or {}
    built: list[tuple[str, list[dict[str, Any]], float]] = []
    for style in styles:
        start = time.perf_counter()
        rows = build_eval_instructions(
            benchmark, style, sample_size, seed, builders.get(style), read=read
        )
        built.append((style, rows, time.perf_counter() - start))
    start = time.perf_counter()
    outputs = generate_for_rows(generator, [r for _, rows, _ in built for r in rows], chunk=chunk)
    generate_s = time.perf_counter() - start
    results = []
    for style, rows, build_s in built:
        start = time.perf_counter()
        scores = score_rows(rows, outputs)
        mine = {r["instruction_id"] for r in rows}
        results.append({
            "benchmark": benchmark.name,
            "family": benchmark.family,
            "paper_name": benchmark.paper_name,
            "style": style,
            "builder": sorted({r["eval_builder"] for r in rows}),
            "seed": seed,
            "sample_size": sample_size or 0,
            "instructions": describe_eval_instructions(rows),
            "model": generator.metadata,
            "scores": scores,
            "headline": headline(scores),
            "timings_s": {
                "build": round(build_s, 3),
                "generate": round(generate_s, 3),
                "score": round(time.perf_counter() - start, 3),
            },
            "rows": rows,
            "outputs": {k: v for k, v in outputs.items() if k in mine},
        })
    return results
