"""One evaluation: instructions for a benchmark, generations from a model, scores.

``evaluate_benchmark`` glues ``build_eval_instructions``, ``generate_for_rows`` and
``score_rows`` and returns the scores with their lineage (benchmark, style, builder,
seed, sample, model and decoding, parser, counts), ready for asset metadata. No Dagster.
"""

from __future__ import annotations

import time
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
    if isinstance(benchmark, str):
        benchmark = get_benchmark(benchmark)
    start = time.perf_counter()
    rows = build_eval_instructions(benchmark, style, sample_size, seed, compound_builder, read=read)
    built = time.perf_counter()
    outputs = generate_for_rows(generator, rows)
    generated = time.perf_counter()
    scores = score_rows(rows, outputs)
    return {
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
            "build": round(built - start, 3),
            "generate": round(generated - built, 3),
            "score": round(time.perf_counter() - generated, 3),
        },
        "rows": rows,
        "outputs": outputs,
    }
