"""General capability on an established harness: EleutherAI's lm-evaluation-harness.

Why lm-evaluation-harness (``lm-eval==0.4.13``, the ``harness`` extra) and not
OpenCompass, the paper's choice: lm-eval installs on top of our pinned stack as it is
(OpenCompass 0.5.4 would downgrade numpy to 1.26, datasets to 3.6 and fsspec to
2025.3, and pulls OpenCV and sentence-transformers); it takes a loaded transformers
model (so SmolLM2's GGUF, converted by ``evaluation.models``, and a LoRA adapter load
as they do for the NLU scores); a task is one YAML file over local JSON lines, which
runs offline; and it is a library call, so one small entry point runs it through the
same Pipes launchers as vLLM evaluation (subprocess, Kubernetes pod, ECS task).

``TABLE5``: the paper's general-capability dimensions (OpenCompass's: examination,
language, knowledge, understanding, reasoning) with the lm-eval tasks that cover them.
Not covered: code (HumanEval, MBPP run model-written code, which lm-eval only does
with ``confirm_run_unsafe_code``), and OpenCompass's Chinese CLUE sets (C3 is one of
our NLU benchmarks; CHID, AFQMC, CSL, OCNLI, CMNLI, EPRSTMT, LCSTS have no lm-eval
task), TyDiQA and Flores. Those tasks fetch their data from the Hugging Face hub: run
them where it is reachable or cached.

``SAMPLE_TASK``: ``assets/general/hum_general_sample.yaml``, 24 multiple-choice
questions written for this project: an offline smoke test of the path, not a
benchmark.

``run_harness`` loads the model, runs ``lm_eval.simple_evaluate`` and returns the
results with one primary figure per task (``primary``), averaged per dimension
(``dimensions``). No Dagster.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hum_dagster.paths import ASSETS_DIR

GENERAL_TASK_DIR = ASSETS_DIR / "general"
SAMPLE_TASK = "hum_general_sample"
HARNESS_ENTRY_MODULE = "hum_dagster.evaluation.harness_entry"

TABLE5: dict[str, tuple[str, ...]] = {
    "Examination": ("mmlu", "ceval-valid", "cmmlu", "agieval", "arc_challenge"),
    "Language": ("wic", "wsc273", "winogrande", "xwinograd_zh"),
    "Knowledge": ("boolq", "commonsense_qa", "triviaqa", "nq_open"),
    "Understanding": ("race", "openbookqa", "lambada_openai"),
    "Reasoning": ("hellaswag", "piqa", "social_iqa", "copa", "gsm8k", "bbh", "drop"),
}
NOT_COVERED = ("HumanEval", "MBPP", "CHID", "AFQMC", "CSL", "OCNLI", "CMNLI", "EPRSTMT",
               "LCSTS", "TyDiQA", "Flores")
# Preferred figure per task, first found wins (lm-eval keys are "<metric>,<filter>").
PRIMARY_METRICS = ("acc,none", "exact_match,strict-match", "exact_match,none", "em,none",
                   "f1,none", "acc_norm,none", "mcc,none")


def harness_command(python: str = "python") -> list[str]:
    """``python -m hum_dagster.evaluation.harness_entry``."""
    return [python, "-m", HARNESS_ENTRY_MODULE]


def resolve_tasks(spec: str | Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(task names, task -> dimension) for ``"sample"``, ``"table5"`` or task names
    (a list, or a comma-separated string)."""
    if isinstance(spec, str):
        if spec.strip() == "sample":
            return [SAMPLE_TASK], {SAMPLE_TASK: "Sample"}
        if spec.strip() == "table5":
            dims = {task: dim for dim, tasks in TABLE5.items() for task in tasks}
            return list(dims), dims
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    tasks = list(spec)
    if not tasks:
        raise ValueError("no general-capability tasks given")
    by_task = {task: dim for dim, names in TABLE5.items() for task in names}
    return tasks, {t: by_task.get(t, "Sample" if t == SAMPLE_TASK else "Other") for t in tasks}


def primary_figure(metrics: Mapping[str, Any]) -> tuple[str, float] | None:
    """(metric key, value in %) of a task's results, by ``PRIMARY_METRICS``."""
    for key in PRIMARY_METRICS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return key, 100.0 * float(value)
    return None


def summarise(results: Mapping[str, Any], dimensions: Mapping[str, str]) -> dict[str, Any]:
    """Primary figure per asked task and the mean per dimension, from lm-eval results."""
    per_task = results.get("results") or {}
    samples = results.get("n-samples") or {}
    primary: dict[str, dict[str, Any]] = {}
    for task in dimensions:
        figure = primary_figure(per_task.get(task) or {})
        if figure is None:
            continue
        n = samples.get(task) or {}
        primary[task] = {"metric": figure[0], "value": figure[1], "dimension": dimensions[task],
                         "samples": int(n.get("effective") or n.get("original") or 0)}
    dims: dict[str, list[float]] = {}
    for item in primary.values():
        dims.setdefault(item["dimension"], []).append(item["value"])
    return {
        "primary": primary,
        "dimensions": {d: sum(v) / len(v) for d, v in sorted(dims.items())},
        "missing_tasks": sorted(set(dimensions) - set(primary)),
    }


def local_task_configs(folders: Sequence[str | os.PathLike[str]]) -> dict[str, dict[str, Any]]:
    """Task configs (``task`` name -> dict) of the YAML files in ``folders`` whose
    ``dataset_kwargs.data_files`` are local: relative paths are made absolute against
    the YAML file's folder, so a task file and its data travel together."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.yaml")):
            try:
                config = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                continue  # tags such as !function: leave it to lm-eval's own loader
            if not isinstance(config, dict) or not isinstance(config.get("task"), str):
                continue
            files = (config.get("dataset_kwargs") or {}).get("data_files")
            if isinstance(files, dict):
                config["dataset_kwargs"]["data_files"] = {
                    split: str((path.parent / f).resolve()) if "://" not in str(f) else f
                    for split, f in files.items()
                }
            out[config["task"]] = config
    return out


def load_for_harness(model: str, adapter: str | None, *, storage_root: str | None, device: str):
    """A transformers model and tokenizer (``evaluation.models.load_model``), with a LoRA
    adapter merged in (lm-eval takes a plain ``PreTrainedModel``)."""
    from hum_dagster.evaluation.models import load_model

    loaded = load_model(model, storage_root=storage_root, device=device)
    model_obj = loaded.model
    if adapter:
        from peft import PeftModel

        model_obj = PeftModel.from_pretrained(model_obj, adapter).merge_and_unload()
    return model_obj.eval(), loaded.tokenizer, loaded.info


def run_harness(
    model: str,
    tasks: Sequence[str],
    dimensions: Mapping[str, str] | None = None,
    *,
    adapter: str | None = None,
    include_path: str | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
    storage_root: str | None = None,
    offline: bool = True,
    seed: int = 1234,
) -> dict[str, Any]:
    """lm-eval on ``model`` (a spec for ``evaluation.models.resolve_model``) with
    ``adapter``; ``include_path`` adds a folder of task YAML files (the shipped sample
    folder is always included). Returns ``{"summary", "results", "config"}``."""
    if offline:  # local task files only: never reach for the hub
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    model_obj, tokenizer, load_info = load_for_harness(
        model, adapter, storage_root=storage_root, device=device
    )
    lm = HFLM(pretrained=model_obj, tokenizer=tokenizer, batch_size=batch_size, device=device)
    paths = [str(GENERAL_TASK_DIR)] + ([include_path] if include_path else [])
    manager = TaskManager(include_path=include_path) if include_path else TaskManager()
    local = local_task_configs(paths)
    asked = [local.get(task, task) for task in tasks]
    dimensions = dict(dimensions or resolve_tasks(list(tasks))[1])
    loaded_s = time.perf_counter() - start
    results = simple_evaluate(
        model=lm, tasks=asked, num_fewshot=num_fewshot, limit=limit,
        task_manager=manager, log_samples=False, random_seed=seed, numpy_random_seed=seed,
        torch_random_seed=seed, fewshot_random_seed=seed,
    )
    if results is None:  # only on non-zero ranks of a distributed run
        raise RuntimeError("lm-eval returned no results")
    keep = {k: results[k] for k in ("results", "n-samples", "versions", "higher_is_better",
                                     "n-shot") if k in results}
    return {
        "summary": summarise(keep, dimensions),
        "results": keep,
        "config": {
            "harness": "lm-eval", "harness_version": _version(), "model": model,
            "adapter": adapter or "", "tasks": list(tasks), "limit": limit,
            "num_fewshot": num_fewshot, "batch_size": batch_size, "device": device,
            "load": load_info, "load_s": round(loaded_s, 3),
            "seconds": round(time.perf_counter() - start, 3),
        },
    }


def _version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
