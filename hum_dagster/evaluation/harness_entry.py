"""General-capability evaluation (lm-evaluation-harness) launched through Dagster Pipes.

Imports ``dagster_pipes`` (never ``dagster``; through ``pipes_entry``); lm-eval, torch and transformers are
imported inside ``run_harness``. Settings come from the Pipes extras when Dagster
launched the process, else from the command line::

    python -m hum_dagster.evaluation.harness_entry --model smollm2-135m-instruct \\
        --tasks hum_general_sample --output /tmp/general.json

- ``model``: a model folder, a ``.gguf`` file or ``smollm2-135m-instruct``; ``adapter``:
  a LoRA adapter folder (merged in); both local or ``s3://`` (copied to ``cache_dir``);
- ``tasks``: ``sample``, ``table5`` or comma-separated lm-eval task names;
  ``include_path``: a folder of extra task YAML files;
- ``limit`` (0: every document), ``num_fewshot`` (-1: the task's default),
  ``batch_size``, ``device``, ``storage_root`` (where converted models are kept),
  ``offline`` (true: no hub access);
- ``output``: where the results JSON is written (local or ``s3://``), atomically.

The asset materialization carries the primary figure per task and the dimension means.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from hum_dagster.evaluation.fetch import default_cache_dir, is_remote, local_copy
from hum_dagster.evaluation.harness import resolve_tasks, run_harness
from hum_dagster.evaluation.pipes_entry import pipes_main
from hum_dagster.store import fsio

KNOWN = ("model", "adapter", "tasks", "include_path", "limit", "num_fewshot", "batch_size",
         "device", "storage_root", "offline", "output", "cache_dir", "seed")


def parse_args(argv: Sequence[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--adapter")
    parser.add_argument("--tasks")
    parser.add_argument("--include-path", dest="include_path")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--num-fewshot", dest="num_fewshot", type=int)
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--device")
    parser.add_argument("--storage-root", dest="storage_root")
    parser.add_argument("--online", dest="offline", action="store_false", default=None)
    parser.add_argument("--output")
    parser.add_argument("--cache-dir", dest="cache_dir")
    parser.add_argument("--seed", type=int)
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}


def settings_from(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown harness settings {unknown}; known: {list(KNOWN)}")
    missing = [k for k in ("model", "tasks", "output") if not values.get(k)]
    if missing:
        raise ValueError(f"missing harness settings: {missing}")
    return dict(values)


def run(values: Mapping[str, Any]) -> dict[str, Any]:
    settings = settings_from(values)
    cache = settings.get("cache_dir") or default_cache_dir(settings.get("storage_root"))
    model = settings["model"]
    model = local_copy(model, cache) if is_remote(model) else model
    adapter = settings.get("adapter") or None
    if adapter:
        adapter = local_copy(adapter, cache)
    tasks, dims = resolve_tasks(settings["tasks"])
    limit = int(settings.get("limit") or 0) or None
    fewshot = settings.get("num_fewshot")
    fewshot = None if fewshot is None or int(fewshot) < 0 else int(fewshot)
    result = run_harness(
        model, tasks, dims, adapter=adapter, include_path=settings.get("include_path") or None,
        limit=limit, num_fewshot=fewshot, batch_size=int(settings.get("batch_size") or 8),
        device=settings.get("device") or None, storage_root=settings.get("storage_root"),
        offline=bool(settings.get("offline", True)), seed=int(settings.get("seed") or 1234),
    )
    result["config"]["model_spec"] = settings["model"]
    result["config"]["adapter_spec"] = settings.get("adapter") or ""
    fsio.write_bytes_atomic(
        settings["output"], json.dumps(result, ensure_ascii=False, default=str).encode("utf-8")
    )
    summary = result["summary"]
    return {
        "output": settings["output"],
        "tasks": json.dumps(tasks),
        "primary": json.dumps({t: round(v["value"], 4) for t, v in summary["primary"].items()}),
        "dimensions": json.dumps({d: round(v, 4) for d, v in summary["dimensions"].items()}),
        "missing_tasks": json.dumps(summary["missing_tasks"]),
        "seconds": result["config"]["seconds"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    cli = parse_args(argv if argv is not None else sys.argv[1:])
    return pipes_main(
        cli,
        lambda values, log: run(values),
        lambda values: f"lm-eval: {values.get('model')} on {values.get('tasks')}",
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
