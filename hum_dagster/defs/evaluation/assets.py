"""Evaluation assets: NLU scores, the Table-1 report, general capability and its report.

- ``eval_scores`` (listed model x benchmark): zero-shot scores of a model of
  ``assets/models.yaml`` in styles B and C. It depends on no checkpoint: base-model
  scores never wait for training.
- ``finetuned_eval_scores`` (base model x corpus variant, the partitions of
  ``finetuned_checkpoint``): the scores of one fine-tuned checkpoint on every benchmark,
  in one generation pass (one vLLM launch); it depends on exactly its own checkpoint.
- ``eval_report``: Table 1 over both (metadata ``table_1`` in the report mode and
  ``table_1_<mode>`` for every mode, ``chart_image``, ``averages``, ``record_counts``);
  the check ``finetuned_not_below_base`` warns on a fine-tuned score below its base
  model's and on comparisons without signal.
- ``general_scores`` (listed model) and ``finetuned_general_scores`` (checkpoint):
  lm-evaluation-harness (``hum_dagster.evaluation.harness_entry``) launched through
  ``EvalSettings.launcher`` (subprocess, Kubernetes pod, ECS task); ``general_report``
  lays them out by the paper's Table 5 dimensions; the check ``general_not_below_base``
  warns when a checkpoint loses more than ``general_tolerance`` points on a dimension.

Backends per model: ``transformers`` and ``openai`` generate in the asset's process;
``vllm`` runs ``hum_dagster.evaluation.vllm_entry`` through Dagster Pipes: the prompts go
to ``<storage root>/eval_runs/...`` as JSONL and the generations come back in the same
folder. Fine-tuned checkpoints (``<base>_hum_<variant>``) use
``EvalSettings.finetuned_backend``; their adapter (and, for vLLM, the stored base model)
is found under the run's ``HumSettings.storage_root``.
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
from hum_dagster.defs.resources.pools import BASE_EVAL_POOL
from hum_dagster.defs.resources.settings import HumSettings, base_model_specs
from hum_dagster.defs.training.assets import finetuned_checkpoint
from hum_dagster.defs.training.partitions import training_partitions
from hum_dagster.evaluation.benchmarks import Benchmark, load_benchmarks
from hum_dagster.evaluation.compound_style import DictionaryStyle, benchmark_dictionary
from hum_dagster.evaluation.fetch import default_cache_dir
from hum_dagster.evaluation.generate import DecodingConfig
from hum_dagster.evaluation.harness import NOT_COVERED, TABLE5, harness_command
from hum_dagster.evaluation.metrics import MODES
from hum_dagster.evaluation.registry import ModelSpec, load_models, make_generator
from hum_dagster.evaluation.report import (
    BELOW_BASE_CHECK,
    chart_markdown,
    chart_png,
    comparison_problems,
    result_rows,
    table_one,
)
from hum_dagster.evaluation.run import SuiteItem, evaluate_suite
from hum_dagster.records import Problem, SourceError
from hum_dagster.store import fsio
from hum_dagster.store.layout import base_model_dir, checkpoint_dir
from hum_dagster.store.tables import Table, TableRef

GENERAL_BELOW_BASE_CHECK = "general_not_below_base"
FINETUNED_BACKENDS = ("transformers", "vllm")
EVAL_RUNS_DIR = "eval_runs"
GENERAL_RUNS_DIR = "general_runs"
REPORT_FRAME_SCHEMA = {
    "model": pl.String, "benchmark": pl.String, "family": pl.String, "style": pl.String,
    "metric": pl.String, "mode": pl.String, "value": pl.Float64,
    "parse_failure_rate": pl.Float64, "records": pl.Int64,
}


# --------------------------------------------------------------------------- models


@cache
def listed_models() -> dict[str, ModelSpec]:
    """The models of ``assets/models.yaml`` (``HUM_MODELS``)."""
    return load_models()


def finetuned_model_name(base: str, variant: str) -> str:
    return f"{base}_hum_{variant}"


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
    """The listed models plus one per fine-tuned checkpoint partition (base x variant);
    a fine-tuned model's ``adapter`` here is relative to the storage root, which only
    the run knows (``model_for_run`` gives the spec to load), and its ``base`` is the
    listed model with the same weights and no adapter."""
    listed = listed_models()
    by_spec = {spec.model: name for name, spec in listed.items() if not spec.adapter}
    out = dict(listed)
    specs = base_model_specs()
    for name, (base, variant) in finetuned_models().items():
        out[name] = ModelSpec(
            name=name, backend="transformers", model=specs[base],
            adapter=f"checkpoints/{base}/{variant}/adapter", base=by_spec.get(specs[base]),
        )
    return out


def base_of() -> dict[str, str]:
    """Model -> the model it was fine-tuned from, for the comparisons."""
    return {name: spec.base for name, spec in models().items() if spec.base}


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


def checkpoint_model(partition_key: Any) -> str:
    """The fine-tuned model name of a ``finetuned_checkpoint`` partition key."""
    keys = partition_key.keys_by_dimension
    return finetuned_model_name(keys["base_model"], keys["corpus_variant"])


@cache
def benchmarks() -> dict[str, Benchmark]:
    return load_benchmarks()


eval_partitions = dg.MultiPartitionsDefinition(
    {
        "model": dg.StaticPartitionsDefinition(sorted(listed_models())),
        "benchmark": dg.StaticPartitionsDefinition(sorted(benchmarks())),
    }
)
general_partitions = dg.StaticPartitionsDefinition(sorted(listed_models()))


# --------------------------------------------------------------------------- settings


class EvalSettings(dg.ConfigurableResource):
    """How much to evaluate and how to decode (the paper: temperature 0.2, top-p 0.95),
    how to score and report, which backend serves the fine-tuned checkpoints, where
    vLLM and the general-capability harness run.

    ``sample_size`` 0 (the default) scores every record of each benchmark file, the
    standard test sets in full. ``report_mode``: the scoring mode of ``table_1``
    (``iepile``, ``strict`` or ``lenient``; all three are in the metadata).
    ``general_tasks``: ``sample`` (the shipped offline sample task), ``table5`` (the
    paper's Table 5 dimensions on lm-eval tasks; needs their data from the hub or its
    cache) or comma-separated lm-eval task names. ``launcher`` is set in code
    (``EvalSettings(launcher=EvalLauncher(kind="k8s", ...))``); left out, vLLM and the
    harness run in a local subprocess."""

    sample_size: int = 0  # records per benchmark (seeded); 0: all of them
    styles: list[str] = ["B", "C"]
    temperature: float = 0.2
    top_p: float = 0.95
    greedy: bool = False
    max_new_tokens: int = 256
    batch_size: int = 8
    seed: int = 42
    report_mode: str = "iepile"
    no_signal_failure_rate: float = 0.5  # above it a comparison says "no signal"
    finetuned_backend: str = "transformers"  # or "vllm" for <base>_hum_<variant> models
    vllm_tensor_parallel_size: int = 0  # 0: the launcher's GPUs on k8s/ecs, 1 in a subprocess
    vllm_max_model_len: int = 0  # 0: the model's
    benchmarks: list[str] = []  # checkpoints: the benchmarks to score (empty: all)
    general_tasks: str = "sample"
    general_limit: int = 0  # documents per task; 0: all
    general_num_fewshot: int = -1  # -1: the task's default
    general_include_path: str = ""  # a folder of extra lm-eval task YAML files
    general_tolerance: float = 1.0  # points a checkpoint may lose on a dimension
    launcher: EvalLauncher | None = None  # where vllm and the harness run (None: subprocess)

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

    def mode(self) -> str:
        if self.report_mode not in MODES:
            raise dg.Failure(f"report_mode {self.report_mode!r} is not one of {MODES}",
                             allow_retries=False)
        return self.report_mode


def file_versions(paths: list[str]) -> dict[str, str]:
    """sha256 (first 16 hex) of each benchmark file: the version a score was made on."""
    return {os.path.basename(p): hashlib.sha256(fsio.read_bytes(p)).hexdigest()[:16] for p in paths}


# --------------------------------------------------------------------------- NLU scores


def _generator(context, spec: ModelSpec, workdir: str, settings: HumSettings,
               eval_settings: EvalSettings, llm: LLMResource):
    vllm: dict[str, Any] = {}
    if spec.backend == "vllm":
        launcher = eval_settings.eval_launcher()

        def run_vllm(extras: dict[str, Any]) -> dict[str, Any]:
            context.log.info(f"vLLM for {spec.name} through Pipes ({launcher.kind}): {extras['instructions']}")
            reported = launcher.launch(context, extras).get_materialize_result()
            return {k: getattr(v, "value", v) for k, v in (reported.metadata or {}).items()}

        vllm = {
            "vllm_launch": run_vllm,
            "vllm_workdir": workdir,
            "vllm_options": eval_settings.vllm_options(spec, launcher, settings.storage_root),
        }
    generator = make_generator(
        spec, eval_settings.decoding(), storage_root=settings.storage_root,
        cache_root=fsio.join(settings.storage_root, LLM_CACHE_DIR), llm_mode=llm.mode,
        batch_size=eval_settings.batch_size, **vllm,
    )
    if vllm:
        generator.launcher = eval_settings.eval_launcher().kind
    return generator, bool(vllm)


def _score_model(context, spec: ModelSpec, benches: list[Benchmark], settings: HumSettings,
                 eval_settings: EvalSettings, llm: LLMResource) -> dg.MaterializeResult:
    """Generate and score ``spec`` on ``benches``: the stored table and its metadata."""
    if spec.adapter and not fsio.exists(fsio.join(spec.adapter, "adapter_config.json")):
        raise dg.Failure(
            f"model '{spec.name}' needs its fine-tuned adapter at {spec.adapter}: materialize "
            "finetuned_checkpoint for that base model and corpus variant first",
            allow_retries=False,
        )
    mode = eval_settings.mode()
    items, versions = [], {}
    for bench in benches:
        try:
            read = bench.read()
        except SourceError as exc:
            raise dg.Failure(f"benchmark '{bench.name}' cannot be read: {exc}", allow_retries=False) from exc
        versions[bench.name] = file_versions(read.files)
        builders = {
            style: DictionaryStyle(benchmark_dictionary(bench, read.schema, eval_settings.seed))
            if style == "C" else None
            for style in eval_settings.styles
        }
        items.append(SuiteItem(bench, read, builders))
    suite = benches[0].name if len(benches) == 1 else "all"
    workdir = fsio.join(settings.storage_root, EVAL_RUNS_DIR, spec.name, suite, context.run_id)
    generator, out_of_process = _generator(context, spec, workdir, settings, eval_settings, llm)
    evaluated = evaluate_suite(  # one generation pass for every benchmark and style
        items, generator, eval_settings.styles, sample_size=eval_settings.sample_size or None,
        seed=eval_settings.seed, chunk=None if out_of_process else 256,
    )
    builders_of = {item.benchmark.name: item.builders for item in items}
    results, frames = [], []
    for result in evaluated:
        rows, outputs = result.pop("rows"), result.pop("outputs")
        builder = builders_of[result["benchmark"]].get(result["style"])
        result["fallback_rows"] = builder.fallbacks if builder else 0
        results.append(result)
        frames.append(pl.DataFrame({
            "benchmark": [result["benchmark"]] * len(rows),
            "style": [result["style"]] * len(rows),
            "instruction_id": [r["instruction_id"] for r in rows],
            "record_id": [r["record_id"] for r in rows],
            "task": [r["task"] for r in rows],
            "instruction": [r["instruction"] for r in rows],
            "gold": [r["label"] for r in rows],
            "generation": [outputs.get(r["instruction_id"]) for r in rows],
        }, schema={"benchmark": pl.String, "style": pl.String, "instruction_id": pl.String,
                   "record_id": pl.String, "task": pl.String, "instruction": pl.String,
                   "gold": pl.String, "generation": pl.String}))
    lineage = {
        "model": spec.name, "backend": spec.backend, "model_spec": spec.model, "adapter": spec.adapter,
        "benchmarks": [b.name for b in benches], "benchmark_files": versions,
        "decoding": eval_settings.decoding().as_metadata(), "sample_size": eval_settings.sample_size,
        "seed": eval_settings.seed, "report_mode": mode,
    }
    if len(benches) == 1:
        lineage["benchmark"] = benches[0].name
        lineage["benchmark_files"] = versions[benches[0].name]
    stored = {"lineage": lineage,
              "results": [{k: v for k, v in r.items() if k != "model"} | {"generator": r["model"]}
                          for r in results]}
    headline = {r["style"]: r["headlines"][mode] for r in results} if len(benches) == 1 else {
        b.name: {r["style"]: r["headlines"][mode] for r in results if r["benchmark"] == b.name}
        for b in benches}
    return dg.MaterializeResult(
        value=Table(pl.concat(frames), {"hum.eval": json.dumps(stored, ensure_ascii=False, default=str)}),
        metadata={
            "scores": dg.MetadataValue.md(scores_markdown(results)),
            "headline": dg.MetadataValue.json(headline),
            "record_counts": dg.MetadataValue.json({r["benchmark"]: r["record_counts"] for r in results}),
            "lineage": dg.MetadataValue.json(lineage),
            "generator": dg.MetadataValue.json(_jsonable(results[0]["model"]) if results else {}),
            "instructions": sum(f.height for f in frames),
            "timings_s": dg.MetadataValue.json({f"{r['benchmark']} {r['style']}": r["timings_s"] for r in results}),
        },
    )


def scores_markdown(results: list[dict[str, Any]]) -> str:
    """One line per benchmark, style and metric: records, missing, and per mode the
    score and parse-failure rate."""
    lines = []
    for r in results:
        for metric, value in sorted(r["scores"].items()):
            if not isinstance(value, dict) or "records" not in value:
                continue
            line: dict[str, Any] = {"benchmark": r["benchmark"], "style": r["style"], "metric": metric,
                                    "records": value["records"], "missing": value.get("missing", 0)}
            for mode in MODES:
                figures = value[mode]
                line[mode] = f"{figures.get('F1', figures.get('accuracy', 0.0)):.2f}"
                line[f"{mode} parse failures"] = f"{100 * figures['parse_failure_rate']:.0f}%"
            lines.append(line)
    columns = ["benchmark", "style", "metric", "records", "missing"]
    columns += [c for m in MODES for c in (m, f"{m} parse failures")]
    return markdown_table(lines, columns)


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


@dg.asset(
    partitions_def=eval_partitions,
    pool=BASE_EVAL_POOL,  # at most half the run slots: see defs/resources/pools.py
    group_name="evaluation",
    kinds={"pytorch", "polars"},
    description="Zero-shot scores of one listed model on one benchmark, in basic (B) and "
    "compound (C) instruction styles and three scoring modes, with the generations and every "
    "score's lineage. Depends on no checkpoint: base models never wait for training.",
    code_version="2",
)
def eval_scores(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    eval_settings: EvalSettings,
    llm: LLMResource,
):
    keys = context.partition_key.keys_by_dimension
    spec = model_for_run(keys["model"], settings.storage_root, eval_settings.finetuned_backend)
    return _score_model(context, spec, [benchmarks()[keys["benchmark"]]], settings, eval_settings, llm)


@dg.asset(
    partitions_def=training_partitions,
    deps=[finetuned_checkpoint],  # the same partition: this checkpoint and no other
    group_name="evaluation",
    kinds={"pytorch", "polars"},
    description="Zero-shot scores of one fine-tuned checkpoint (base model x corpus variant) "
    "on every benchmark in styles B and C, in one generation pass.",
    code_version="1",
)
def finetuned_eval_scores(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    eval_settings: EvalSettings,
    llm: LLMResource,
):
    try:
        spec = model_for_run(checkpoint_model(context.partition_key), settings.storage_root,
                             eval_settings.finetuned_backend)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    names = eval_settings.benchmarks or sorted(benchmarks())
    unknown = sorted(set(names) - set(benchmarks()))
    if unknown:
        raise dg.Failure(f"EvalSettings.benchmarks {unknown} are not benchmarks; known: "
                         f"{sorted(benchmarks())}", allow_retries=False)
    return _score_model(context, spec, [benchmarks()[b] for b in names], settings, eval_settings, llm)


# --------------------------------------------------------------------------- Table 1


def report_results(tables: dict[str, TableRef]) -> list[dict[str, Any]]:
    """The stored results of ``eval_scores``/``finetuned_eval_scores`` partitions, one per
    (model, benchmark, style, mode), as ``result_rows`` takes them."""
    out = []
    for key in sorted(tables):
        stored = json.loads(tables[key].meta["hum.eval"])
        for r in stored["results"]:
            if "headlines" not in r:  # stored by code version 1 (one mode): re-materialize
                continue
            records = {m: v["records"] for m, v in r["scores"].items() if isinstance(v, dict) and "records" in v}
            for mode in MODES:
                out.append({"model": stored["lineage"]["model"], "benchmark": r["benchmark"],
                            "family": r.get("family"), "style": r["style"], "mode": mode,
                            "headline": r["headlines"][mode],
                            "failure_rates": r["parse_failure_rates"][mode], "records": records})
    return out


@dg.asset(
    group_name="evaluation",
    kinds={"polars", "matplotlib"},
    description="The Hum paper's Table 1: models x benchmarks x B/C with averages over B and "
    "over C, the parse-failure rate under every score, the records each column was scored on, "
    "and a chart on a 0-100 axis.",
    ins={
        "eval_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "finetuned_eval_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
    },
    code_version="2",
)
def eval_report(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    eval_settings: EvalSettings,
    eval_scores: dict[str, TableRef],
    finetuned_eval_scores: dict[str, TableRef],
):
    mode = eval_settings.mode()
    tables = {**{f"listed|{k}": v for k, v in eval_scores.items()},
              **{f"finetuned|{k}": v for k, v in finetuned_eval_scores.items()}}
    rows = result_rows(report_results(tables))
    by_mode = {m: [r for r in rows if r["mode"] == m] for m in MODES}
    markdown, averages = table_one(by_mode[mode], mode)
    metadata: dict[str, Any] = {
        "table_1": dg.MetadataValue.md(markdown),
        "averages": dg.MetadataValue.json(averages),
        "partitions": len(tables),
        "report_mode": mode,
    }
    for m in MODES:
        metadata[f"table_1_{m}"] = dg.MetadataValue.md(table_one(by_mode[m], m)[0])
    counts: dict[str, dict[str, int]] = {}
    for r in by_mode[mode]:
        counts.setdefault(r["benchmark"], {})[r["metric"]] = r["records"]
    metadata["record_counts"] = dg.MetadataValue.json(counts)
    if by_mode[mode]:
        png = chart_png(by_mode[mode], f"Zero-shot NLU (mode {mode}): basic (B) and compound (C)")
        chart_path = fsio.join(settings.storage_root, "reports", "eval_report.png")
        fsio.write_bytes_atomic(chart_path, png)
        metadata["chart"] = dg.MetadataValue.path(chart_path)
        metadata["chart_image"] = dg.MetadataValue.md(chart_markdown(png))
    frame = pl.DataFrame(rows, schema=REPORT_FRAME_SCHEMA) if rows else pl.DataFrame(schema=REPORT_FRAME_SCHEMA)
    return dg.MaterializeResult(value=Table(frame, {"hum.table_one": markdown}), metadata=metadata)


def problems_result(problems: list[Problem], check: str, severity=dg.AssetCheckSeverity.WARN,
                    **metadata: Any) -> dg.AssetCheckResult:
    """The result of ``check`` from the problems routed to it (by name): passed when none."""
    mine = [p for p in problems if p.check == check]
    meta: dict[str, Any] = {"problems": len(mine), **metadata}
    if mine:
        meta["findings"] = dg.MetadataValue.md(markdown_table([p.to_row() for p in mine[:200]],
                                                              ["record", "reason"]))
    return dg.AssetCheckResult(check_name=check, passed=not mine, severity=severity, metadata=meta)


@dg.asset_check(
    asset=eval_report,
    name=BELOW_BASE_CHECK,
    description="A fine-tuned checkpoint never scores below its base model on any benchmark, "
    "metric and style; warns 'no signal' where both score 0 or more than "
    "EvalSettings.no_signal_failure_rate of either side's generations are unparsable.",
)
def finetuned_not_below_base(eval_report: Table, eval_settings: EvalSettings) -> dg.AssetCheckResult:
    mode = eval_settings.mode()
    rows = [r for r in eval_report.df.to_dicts() if r["mode"] == mode]
    problems = comparison_problems(rows, base_of(), failure_threshold=eval_settings.no_signal_failure_rate)
    no_signal = sum(p.reason.startswith("no signal") for p in problems)
    return problems_result(problems, BELOW_BASE_CHECK, mode=mode, no_signal=no_signal,
                           below_base=len(problems) - no_signal)


# --------------------------------------------------------------------------- general capability


def _general(context, spec: ModelSpec, settings: HumSettings, eval_settings: EvalSettings) -> dg.MaterializeResult:
    if spec.backend not in ("transformers", "vllm"):
        raise dg.Failure(
            f"model '{spec.name}' is served through an OpenAI-compatible endpoint: general "
            "capability needs its weights (a transformers or vllm model)",
            allow_retries=False,
        )
    if spec.adapter and not fsio.exists(fsio.join(spec.adapter, "adapter_config.json")):
        raise dg.Failure(f"model '{spec.name}' needs its fine-tuned adapter at {spec.adapter}: "
                         "materialize finetuned_checkpoint first", allow_retries=False)
    launcher = eval_settings.eval_launcher()
    output = fsio.join(settings.storage_root, GENERAL_RUNS_DIR, spec.name, context.run_id, "results.json")
    extras: dict[str, Any] = {
        "model": spec.model, "tasks": eval_settings.general_tasks, "output": output,
        "limit": eval_settings.general_limit, "num_fewshot": eval_settings.general_num_fewshot,
        "batch_size": eval_settings.batch_size, "storage_root": settings.storage_root,
        "offline": eval_settings.general_tasks == "sample", "seed": eval_settings.seed,
    }
    if spec.adapter:
        extras["adapter"] = spec.adapter
    if eval_settings.general_include_path:
        extras["include_path"] = eval_settings.general_include_path
    if launcher.kind == "subprocess":
        extras["cache_dir"] = default_cache_dir(settings.storage_root)
    context.log.info(f"lm-eval for {spec.name} through Pipes ({launcher.kind}): {eval_settings.general_tasks}")
    invocation = launcher.launch(context, extras, command=harness_command(launcher.python_for_kind()))
    reported = invocation.get_materialize_result()
    if not fsio.exists(output):
        raise dg.Failure(f"the harness finished without its results at {output}")
    data = json.loads(fsio.read_bytes(output))
    summary = data["summary"]
    lines = [{"model": spec.name, "task": t, "dimension": v["dimension"], "metric": v["metric"],
              "value": v["value"], "samples": v["samples"]} for t, v in sorted(summary["primary"].items())]
    frame = pl.DataFrame(lines, schema={"model": pl.String, "task": pl.String, "dimension": pl.String,
                                        "metric": pl.String, "value": pl.Float64, "samples": pl.Int64})
    stored = {"model": spec.name, "summary": summary, "config": data["config"]}
    metadata: dict[str, Any] = {k: getattr(v, "value", v) for k, v in (reported.metadata or {}).items()}
    metadata.update({
        "scores": dg.MetadataValue.md(markdown_table(
            [{**line, "value": f"{line['value']:.2f}"} for line in lines],
            ["task", "dimension", "metric", "value", "samples"])),
        "dimensions": dg.MetadataValue.json(summary["dimensions"]),
        "missing_tasks": dg.MetadataValue.json(summary["missing_tasks"]),
        "launcher": launcher.kind,
        "results": dg.MetadataValue.path(output),
    })
    return dg.MaterializeResult(value=Table(frame, {"hum.general": json.dumps(stored, default=str)}),
                                metadata=metadata)


@dg.asset(
    partitions_def=general_partitions,
    pool=BASE_EVAL_POOL,
    group_name="evaluation",
    kinds={"pytorch"},
    description="General capability of one listed model on lm-evaluation-harness tasks "
    "(EvalSettings.general_tasks), launched through Dagster Pipes like vLLM evaluation.",
    code_version="1",
)
def general_scores(context: dg.AssetExecutionContext, settings: HumSettings, eval_settings: EvalSettings):
    return _general(context, model_for_run(context.partition_key, settings.storage_root), settings,
                    eval_settings)


@dg.asset(
    partitions_def=training_partitions,
    deps=[finetuned_checkpoint],
    group_name="evaluation",
    kinds={"pytorch"},
    description="General capability of one fine-tuned checkpoint (its adapter merged into the "
    "base model) on the same harness tasks.",
    code_version="1",
)
def finetuned_general_scores(context: dg.AssetExecutionContext, settings: HumSettings,
                             eval_settings: EvalSettings):
    spec = model_for_run(checkpoint_model(context.partition_key), settings.storage_root, "transformers")
    return _general(context, spec, settings, eval_settings)


def general_rows(tables: dict[str, TableRef]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(tables):
        rows.extend(tables[key].df.to_dicts())
    return rows


def table_five(rows: list[dict[str, Any]]) -> str:
    """Models x dimensions (mean of the dimension's tasks) and the average, then models x
    tasks: the paper's Table 5 layout, on the tasks that ran."""
    models_ = sorted({r["model"] for r in rows})
    dims = [d for d in (*TABLE5, "Sample", "Other") if any(r["dimension"] == d for r in rows)]
    tasks = sorted({(r["dimension"], r["task"]) for r in rows}, key=lambda x: (dims.index(x[0]), x[1]))
    lines = []
    for model in models_:
        mine = [r for r in rows if r["model"] == model]
        line: dict[str, Any] = {"model": model}
        means = []
        for d in dims:
            values = [r["value"] for r in mine if r["dimension"] == d]
            if values:
                means.append(sum(values) / len(values))
                line[d] = f"{means[-1]:.2f}"
        line["Avg"] = f"{sum(means) / len(means):.2f}" if means else "–"
        for _, t in tasks:
            found = [r for r in mine if r["task"] == t]
            line[t] = f"{found[0]['value']:.2f}" if found else "–"
        lines.append(line)
    first = markdown_table(lines, ["model", *dims, "Avg"])
    second = markdown_table(lines, ["model", *(t for _, t in tasks)])
    return (f"General capability (lm-evaluation-harness, %), by dimension:\n\n{first}\n\n"
            f"By task:\n\n{second}\n\nNot covered: {', '.join(NOT_COVERED)}.")


def general_problems(rows: list[dict[str, Any]], bases: dict[str, str], tolerance: float) -> list[Problem]:
    """A fine-tuned model more than ``tolerance`` points below its base model on a
    dimension (the mean of the tasks both ran), or no such pair at all."""
    mean: dict[tuple[str, str], list[float]] = {}
    by_task = {(r["model"], r["task"]): r for r in rows}
    for (model, task), r in by_task.items():
        base = bases.get(model)
        if base is None or (base, task) not in by_task:
            continue
        mean.setdefault((model, r["dimension"]), []).append(r["value"] - by_task[(base, task)]["value"])
    problems = []
    for (model, dim), deltas in sorted(mean.items()):
        delta = sum(deltas) / len(deltas)
        if delta < -tolerance:
            problems.append(Problem(GENERAL_BELOW_BASE_CHECK, f"{model} vs {bases[model]}: {dim}",
                                    f"below base by {-delta:.2f} points (tolerance {tolerance:.2f})"))
    if not mean:
        problems.append(Problem(GENERAL_BELOW_BASE_CHECK, "report",
                                "no signal: no fine-tuned model ran the tasks its base model ran"))
    return problems


@dg.asset(
    group_name="evaluation",
    kinds={"polars"},
    description="The paper's Table 5 beside Table 1: general capability of the base models "
    "and their checkpoints, by dimension and by task.",
    ins={
        "general_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "finetuned_general_scores": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
    },
    code_version="1",
)
def general_report(general_scores: dict[str, TableRef], finetuned_general_scores: dict[str, TableRef]):
    rows = general_rows({**{f"l|{k}": v for k, v in general_scores.items()},
                         **{f"f|{k}": v for k, v in finetuned_general_scores.items()}})
    markdown = table_five(rows)
    frame = pl.DataFrame(rows, schema={"model": pl.String, "task": pl.String, "dimension": pl.String,
                                       "metric": pl.String, "value": pl.Float64, "samples": pl.Int64})
    return dg.MaterializeResult(
        value=Table(frame, {"hum.table_five": markdown}),
        metadata={"table_5": dg.MetadataValue.md(markdown), "models": len({r["model"] for r in rows})},
    )


@dg.asset_check(
    asset=general_report,
    name=GENERAL_BELOW_BASE_CHECK,
    description="Hum costs no general capability: no checkpoint is more than "
    "EvalSettings.general_tolerance points below its base model on any dimension (warns).",
)
def general_not_below_base(general_report: Table, eval_settings: EvalSettings) -> dg.AssetCheckResult:
    problems = general_problems(general_report.df.to_dicts(), base_of(), eval_settings.general_tolerance)
    return problems_result(problems, GENERAL_BELOW_BASE_CHECK, tolerance=eval_settings.general_tolerance)


# Tuples, not lists: a defs-folder loader collects module-level lists of definitions.
EVALUATION_ASSETS = (eval_scores, finetuned_eval_scores, eval_report, general_scores,
                     finetuned_general_scores, general_report)
EVALUATION_CHECKS = (finetuned_not_below_base, general_not_below_base)
