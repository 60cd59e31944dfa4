"""``eval_scores`` (model x benchmark) and ``eval_report`` (the Table-1 comparison).

Backends per model (``assets/models.yaml``): ``transformers`` and ``openai`` generate in
the asset's process; ``vllm`` runs ``hum_dagster.evaluation.vllm_entry`` through Dagster
Pipes with ``EvalSettings.launcher`` (an ``EvalLauncher``: a subprocess here, a pod or
an ECS task on a GPU node): the prompts go to ``<storage root>/eval_runs/...`` as JSONL,
the path rides in the Pipes extras, the generations come back in the same folder and
are scored like any other backend's. Fine-tuned checkpoints (``<base>_hum_<variant>``)
use ``EvalSettings.finetuned_backend``; their adapter (and, for vLLM, the stored base
model) is found under the run's ``HumSettings.storage_root``.
"""

import dataclasses
import hashlib
import json
import os
from functools import cache
from typing import Any

import dagster as dg
import polars as pl

from hum_dagster.corpus.mix import VARIANTS as CORPUS_VARIANTS
from hum_dagster.defs.metadata import markdown_table
from hum_dagster.defs.resources.launchers import EvalLauncher
from hum_dagster.defs.resources.llm import LLM_CACHE_DIR, LLMResource
from hum_dagster.defs.resources.settings import HumSettings, base_model_specs
from hum_dagster.defs.training.assets import finetuned_checkpoint
from hum_dagster.evaluation.benchmarks import Benchmark, load_benchmarks
from hum_dagster.evaluation.compound_style import DictionaryStyle, benchmark_dictionary
from hum_dagster.evaluation.fetch import default_cache_dir
from hum_dagster.evaluation.generate import DecodingConfig
from hum_dagster.evaluation.registry import ModelSpec, load_models, make_generator
from hum_dagster.evaluation.report import below_base, chart_png, result_rows, table_one
from hum_dagster.evaluation.run import evaluate_styles
from hum_dagster.records import SourceError
from hum_dagster.store import fsio
from hum_dagster.store.layout import base_model_dir, checkpoint_dir
from hum_dagster.store.tables import Table, TableRef

BELOW_BASE_CHECK = "finetuned_not_below_base"
FINETUNED_BACKENDS = ("transformers", "vllm")
EVAL_RUNS_DIR = "eval_runs"


@cache
def finetuned_models() -> dict[str, tuple[str, str]]:
    """``{model name: (base model partition, corpus variant)}`` of the fine-tuned checkpoints."""
    return {
        finetuned_model_name(base, variant): (base, variant)
        for base in base_model_specs()
        for variant in CORPUS_VARIANTS
    }


@cache
def models() -> dict[str, ModelSpec]:
    """The listed models plus one per fine-tuned checkpoint partition (base x variant).

    The names (partition keys) are static; a fine-tuned model's ``adapter`` here is
    relative to the storage root, which only the run knows: ``model_for_run`` gives the
    spec to load."""
    listed = load_models()
    by_spec = {spec.model: name for name, spec in listed.items() if not spec.adapter}
    out = dict(listed)
    specs = base_model_specs()
    for name, (base, variant) in finetuned_models().items():
        out[name] = ModelSpec(
            name=name, backend="transformers", model=specs[base],
            adapter=f"checkpoints/{base}/{variant}/adapter", base=by_spec.get(specs[base]),
        )
    return out


def model_for_run(name: str, storage_root: str, finetuned_backend: str = "transformers") -> ModelSpec:
    """The spec of ``name`` for a run on ``storage_root``: a listed model as listed; a
    fine-tuned one with its adapter under ``<storage root>/checkpoints/`` and, with the
    ``vllm`` backend, the stored base model (``base_models``) it was trained from."""
    spec = models()[name]
    finetuned = finetuned_models().get(name)
    if finetuned is None:
        return spec
    if finetuned_backend not in FINETUNED_BACKENDS:
        raise ValueError(f"finetuned_backend {finetuned_backend!r} is not one of {FINETUNED_BACKENDS}")
    base, variant = finetuned
    adapter = fsio.join(checkpoint_dir(storage_root, base, variant), "adapter")
    if finetuned_backend == "vllm":
        return dataclasses.replace(
            spec, backend="vllm", model=base_model_dir(storage_root, base), adapter=adapter
        )
    return dataclasses.replace(spec, adapter=adapter)


def finetuned_model_name(base: str, variant: str) -> str:
    return f"{base}_hum_{variant}"


@cache
def benchmarks() -> dict[str, Benchmark]:
    return load_benchmarks()


eval_partitions = dg.MultiPartitionsDefinition(
    {
        "model": dg.StaticPartitionsDefinition(sorted(models())),
        "benchmark": dg.StaticPartitionsDefinition(sorted(benchmarks())),
    }
)


class EvalSettings(dg.ConfigurableResource):
    """How much to evaluate and how to decode (the paper: temperature 0.2, top-p 0.95),
    which backend serves the fine-tuned checkpoints and where vLLM runs.

    ``launcher`` is set in code (``EvalSettings(launcher=EvalLauncher(kind="k8s", ...))``);
    left out, vLLM runs in a local subprocess."""

    sample_size: int = 50  # records per benchmark (seeded); 0: all
    styles: list[str] = ["B", "C"]
    temperature: float = 0.2
    top_p: float = 0.95
    greedy: bool = False
    max_new_tokens: int = 256
    batch_size: int = 8
    seed: int = 42
    finetuned_backend: str = "transformers"  # or "vllm" for <base>_hum_<variant> models
    vllm_tensor_parallel_size: int = 0  # 0: the launcher's GPUs on k8s/ecs, 1 in a subprocess
    vllm_max_model_len: int = 0  # 0: the model's
    launcher: EvalLauncher | None = None  # where the vllm backend runs (None: subprocess)

    def eval_launcher(self) -> EvalLauncher:
        return self.launcher or EvalLauncher()

    def vllm_options(self, spec: ModelSpec, launcher: EvalLauncher, storage_root: str) -> dict[str, Any]:
        """Engine settings from these settings and the launcher (the model's own
        ``vllm:`` settings win where they say something)."""
        options: dict[str, Any] = {}
        if self.vllm_tensor_parallel_size:
            options["tensor_parallel_size"] = self.vllm_tensor_parallel_size
        elif launcher.kind != "subprocess" and "tensor_parallel_size" not in spec.vllm:
            options["tensor_parallel_size"] = launcher.gpus
        if self.vllm_max_model_len:
            options["max_model_len"] = self.vllm_max_model_len
        if launcher.kind == "subprocess":  # a pod or task keeps its copies under its $HUM_HOME
            options["cache_dir"] = default_cache_dir(storage_root)
        return options

    def decoding(self) -> DecodingConfig:
        return DecodingConfig(
            temperature=self.temperature, top_p=self.top_p, greedy=self.greedy,
            max_new_tokens=self.max_new_tokens, seed=self.seed,
        )


def file_versions(paths: list[str]) -> dict[str, str]:
    """sha256 (first 16 hex) of each benchmark file: the version a score was made on."""
    return {os.path.basename(p): hashlib.sha256(fsio.read_bytes(p)).hexdigest()[:16] for p in paths}


@dg.asset(
    partitions_def=eval_partitions,
    group_name="evaluation",
    kinds={"pytorch", "polars"},
    description="Zero-shot scores of one model on one benchmark, in basic (B) and compound (C) "
    "instruction styles, with the generations and every score's lineage.",
    deps=[dg.AssetDep(finetuned_checkpoint, partition_mapping=dg.AllPartitionMapping())],
    code_version="1",
)
def eval_scores(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    eval_settings: EvalSettings,
    llm: LLMResource,
):
    keys = context.partition_key.keys_by_dimension
    try:
        spec = model_for_run(keys["model"], settings.storage_root, eval_settings.finetuned_backend)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    bench = benchmarks()[keys["benchmark"]]
    if spec.adapter and not fsio.exists(fsio.join(spec.adapter, "adapter_config.json")):
        raise dg.Failure(
            f"model '{spec.name}' needs its fine-tuned adapter at {spec.adapter}: materialize "
            "finetuned_checkpoint for that base model and corpus variant first",
            allow_retries=False,
        )
    try:
        read = bench.read()
    except SourceError as exc:
        raise dg.Failure(f"benchmark '{bench.name}' cannot be read: {exc}", allow_retries=False) from exc
    versions = file_versions(read.files)
    decoding = eval_settings.decoding()
    vllm: dict[str, Any] = {}
    if spec.backend == "vllm":
        launcher = eval_settings.eval_launcher()

        def run_vllm(extras: dict[str, Any]) -> dict[str, Any]:
            context.log.info(f"vLLM for {spec.name} through Pipes ({launcher.kind}): {extras['instructions']}")
            reported = launcher.launch(context, extras).get_materialize_result()
            return {k: getattr(v, "value", v) for k, v in (reported.metadata or {}).items()}

        vllm = {
            "vllm_launch": run_vllm,
            "vllm_workdir": fsio.join(settings.storage_root, EVAL_RUNS_DIR, spec.name, bench.name, context.run_id),
            "vllm_options": eval_settings.vllm_options(spec, launcher, settings.storage_root),
        }
    generator = make_generator(
        spec, decoding, storage_root=settings.storage_root,
        cache_root=fsio.join(settings.storage_root, LLM_CACHE_DIR), llm_mode=llm.mode,
        batch_size=eval_settings.batch_size, **vllm,
    )
    if vllm:
        generator.launcher = launcher.kind
    sample = eval_settings.sample_size or None
    builders = {
        style: DictionaryStyle(benchmark_dictionary(bench, read.schema, eval_settings.seed)) if style == "C" else None
        for style in eval_settings.styles
    }
    evaluated = evaluate_styles(  # one generation pass for all styles (one vLLM launch)
        bench, generator, eval_settings.styles, sample_size=sample, seed=eval_settings.seed,
        builders=builders, read=read, chunk=None if vllm else 256,
    )
    results, frames = [], []
    for result in evaluated:
        style, builder = result["style"], builders[result["style"]]
        rows, outputs = result.pop("rows"), result.pop("outputs")
        result["fallback_rows"] = builder.fallbacks if builder else 0
        results.append(result)
        frames.append(pl.DataFrame({
            "style": [style] * len(rows),
            "instruction_id": [r["instruction_id"] for r in rows],
            "record_id": [r["record_id"] for r in rows],
            "task": [r["task"] for r in rows],
            "instruction": [r["instruction"] for r in rows],
            "gold": [r["label"] for r in rows],
            "generation": [outputs.get(r["instruction_id"]) for r in rows],
        }))
    lineage = {
        "model": spec.name, "backend": spec.backend, "model_spec": spec.model, "adapter": spec.adapter,
        "benchmark": bench.name, "benchmark_files": versions, "decoding": decoding.as_metadata(),
        "sample_size": eval_settings.sample_size, "seed": eval_settings.seed,
    }
    summary = [
        {"style": r["style"], **{k: round(v, 2) for k, v in r["headline"].items()},
         "parse_failure_rate": _parse_failure_rate(r["scores"])}
        for r in results
    ]
    stored = {"lineage": lineage, "results": [{k: v for k, v in r.items() if k != "model"} | {"generator": r["model"]} for r in results]}
    columns = sorted({k for row in summary for k in row})
    return dg.MaterializeResult(
        value=Table(pl.concat(frames), {"hum.eval": json.dumps(stored, ensure_ascii=False, default=str)}),
        metadata={
            "scores": dg.MetadataValue.md(markdown_table(summary, columns)),
            "headline": dg.MetadataValue.json({r["style"]: r["headline"] for r in results}),
            "lineage": dg.MetadataValue.json(lineage),
            "generator": dg.MetadataValue.json(_jsonable(results[0]["model"]) if results else {}),
            "instructions": sum(f.height for f in frames),
            "timings_s": dg.MetadataValue.json({r["style"]: r["timings_s"] for r in results}),
        },
    )


def _parse_failure_rate(scores: dict) -> float:
    chunks = failures = 0
    for value in scores.values():
        if isinstance(value, dict) and "parse_failures" in value:
            failures += value["parse_failures"]
            chunks += value.get("chunks") or value.get("records") or 0
    return round(failures / chunks, 4) if chunks else 0.0


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


@dg.asset(
    group_name="evaluation",
    kinds={"polars", "matplotlib"},
    description="The Hum paper's Table 1 layout: models x benchmarks x B/C with averages, as a "
    "Markdown table and a chart image.",
    ins={"eval_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
    check_specs=[dg.AssetCheckSpec(BELOW_BASE_CHECK, asset="eval_report",
                                   description="A fine-tuned checkpoint never scores below its base "
                                   "model on any benchmark (warns).")],
    code_version="1",
)
def eval_report(context: dg.AssetExecutionContext, settings: HumSettings, eval_scores: dict[str, TableRef]):
    results = []
    for key in sorted(eval_scores):
        stored = json.loads(eval_scores[key].meta["hum.eval"])
        for r in stored["results"]:
            results.append({"model": stored["lineage"]["model"], "benchmark": r["benchmark"],
                            "style": r["style"], "headline": r["headline"]})
    rows = result_rows(results)
    markdown, averages = table_one(rows)
    bases = {name: spec.base for name, spec in models().items() if spec.base}
    worse = below_base(rows, bases)
    chart_path = fsio.join(settings.storage_root, "reports", "eval_report.png")
    if rows:
        fsio.write_bytes_atomic(chart_path, chart_png(rows))
    frame = pl.DataFrame(rows, schema={"model": pl.String, "benchmark": pl.String, "style": pl.String,
                                       "metric": pl.String, "value": pl.Float64})
    return dg.MaterializeResult(
        value=Table(frame, {"hum.table_one": markdown}),
        metadata={
            "table_1": dg.MetadataValue.md(markdown),
            "averages": dg.MetadataValue.json(averages),
            "chart": dg.MetadataValue.path(chart_path),
            "partitions": len(eval_scores),
        },
        check_results=[dg.AssetCheckResult(
            check_name=BELOW_BASE_CHECK, passed=not worse, severity=dg.AssetCheckSeverity.WARN,
            metadata={"cells_below_base": dg.MetadataValue.md(
                markdown_table(worse, ["model", "base", "benchmark", "metric", "style", "value", "base_value"]))},
        )],
    )
