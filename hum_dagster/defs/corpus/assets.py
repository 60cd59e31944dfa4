"""``hum_corpus``: the mixed, cleaned training corpus, one partition per ablation variant."""

import json
import shutil
import tempfile
import time
from contextlib import contextmanager

import dagster as dg
import polars as pl

from hum_dagster.corpus.build import build_hum_corpus
from hum_dagster.corpus.charts import corpus_stats, sample_token_lengths, write_chart
from hum_dagster.corpus.export import export_corpus
from hum_dagster.corpus.mix import TASK_COLUMNS
from hum_dagster.corpus.strategy_mix import strategy_mix
from hum_dagster.defs.corpus.inputs import input_problems
from hum_dagster.defs.corpus.partitions import corpus_partitions
from hum_dagster.defs.corpus.setup import benchmark_index, corpus_config, corpus_tokenizer
from hum_dagster.defs.metadata import count_table, markdown_table
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.synthesis.compound import compound_assets
from hum_dagster.plotting import markdown_image
from hum_dagster.store import layout
from hum_dagster.store.tables import LazyTable, TableRef
from hum_dagster.store.warehouse import refresh_views, warehouse_path
from hum_dagster.synthesis.columns import COMPOUND_COLUMNS, instruction_frame

BASIC_KEY = dg.AssetKey("basic_instructions")
# input name -> upstream asset: the basic instructions and one compound asset per strategy
CORPUS_INS = {
    "basic_instructions": BASIC_KEY,
    **{"__".join(a.key.path): a.key for a in compound_assets},
}


@dg.asset(
    partitions_def=corpus_partitions,
    group_name="corpus",
    kinds={"polars", "parquet", "duckdb"},
    description="Basic and compound train-mode instructions, de-duplicated (exact and near), "
    "cut to token limits, decontaminated against the evaluation sets, mixed toward the "
    "paper's proportions (55% basic / 45% compound; the task mix): by default every usable "
    "row, water-filled toward the shares when a total is set, exact in strict mode (the "
    "metadata says per task what was available, wanted and used), split and exported (LlamaFactory "
    "alpaca + dataset_info.json, OpenAI chat JSONL). Partitions: the full corpus and the "
    "paper's ablations, whose removed compound rows are replaced by basic ones.",
    ins={
        name: dg.AssetIn(key=key, partition_mapping=dg.AllPartitionMapping())
        for name, key in CORPUS_INS.items()
    },
    code_version="4",
)
def hum_corpus(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    **upstream: dict[str, TableRef],
):
    variant = context.partition_key
    config = corpus_config(settings, variant)
    mix_config = config.mix
    graph = context.job_def.asset_layer.asset_graph
    wanted = {
        key: (
            list(graph.get(key).partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)),
            upstream[name],
        )
        for name, key in CORPUS_INS.items()
    }
    problems, inputs = input_problems(context, wanted)
    if problems:
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise dg.Failure(
            description=f"the corpus is not built: {len(problems)} input partition(s) cannot "
            "be used: " + "; ".join(shown),
            metadata={"unusable_inputs": dg.MetadataValue.json(problems)},
            allow_retries=False,
        )
    # Parquet scans, read slice by slice: the instruction texts are never all in memory.
    tables = [
        refs[k].scan() for name in CORPUS_INS for refs in [upstream[name]] for k in sorted(refs)
    ]
    tokenizer = corpus_tokenizer(settings)
    index, index_status = benchmark_index()
    corpus = build_hum_corpus(tables, config, tokenizer=tokenizer, benchmark_index=index)
    directory = layout.export_dir(settings.storage_root, variant)
    # The export's sorted buckets are kept in a temp folder and become the stored table
    # (streamed into one Parquet file by the IO manager, which then removes them).
    parts_dir = tempfile.mkdtemp(prefix="hum-corpus-parts-")
    after = {}  # seconds of the phases after the build, beside its own timings
    try:
        with _timed(after, "export_s"):
            exported = export_corpus(tables, corpus.rows, directory, table_dir=parts_dir)
        with _timed(after, "stats_s"):
            stats = corpus_stats(corpus.rows, sample_token_lengths(tables, corpus.rows, tokenizer))
        chart = layout.corpus_chart(settings.storage_root, variant)
        with _timed(after, "chart_s"):
            chart_png = write_chart(chart, stats, f"Hum corpus ({variant})")
        with _timed(after, "views_s"):
            views = refresh_views(settings.storage_root)
        frame = (
            pl.scan_parquet(exported.table_parts) if exported.table_parts
            else _empty_corpus_table().lazy()
        )
        head = frame.head(3).collect()
    except BaseException:
        shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    report = corpus.report
    removed = (
        dict(corpus.removed.group_by("reason").len().sort("reason").iter_rows())
        if corpus.removed.height else {}
    )
    mix = report.get("mix", {})
    return dg.MaterializeResult(
        # The footer keeps the report without wall-clock timings, so the same inputs give
        # the same bytes on every run; timings go to the run's metadata.
        value=LazyTable(frame, {"hum.corpus_report": json.dumps(
            _without_timings(report), ensure_ascii=False, default=str, sort_keys=True
        )}, cleanup=lambda: shutil.rmtree(parts_dir, ignore_errors=True)),
        metadata={
            "instructions": corpus.rows.height,
            "variant": variant,
            "split": dg.MetadataValue.json(report.get("split", {})),
            "removed_by_reason": dg.MetadataValue.json(removed),
            "achieved_mix": dg.MetadataValue.json(mix.get("achieved", mix)),
            "mix_mode": mix.get("mode", ""),
            # what the settings asked (hum run re-mixes a corpus made under others)
            "mix_settings": dg.MetadataValue.json(
                {"mix_mode": mix_config.mode, "mix_total": mix_config.total or 0,
                 "mix_compound": mix_config.compound}
            ),
            "mix_target_total": mix.get("target_total", 0),
            # per task: available, wanted (its share of the total), used, what limited it
            "mix_by_task": dg.MetadataValue.json(mix.get("per_task", [])),
            "mix_by_task_table": dg.MetadataValue.md(
                markdown_table(mix.get("per_task", []), list(TASK_COLUMNS))
            ),
            "limited_by": dg.MetadataValue.json(mix.get("limited", []) + mix.get("notes", [])),
            "variant_replacements": dg.MetadataValue.json(mix.get("variant", {})),
            "per_task": dg.MetadataValue.md(count_table(stats.get("by_task", {}), "task")),
            "per_strategy": dg.MetadataValue.md(count_table(stats.get("by_strategy", {}), "strategy")),
            "strategy_mix": dg.MetadataValue.json(strategy_mix(corpus.rows)),
            "per_format": dg.MetadataValue.md(count_table(stats.get("by_variant", {}), "variant")),
            "token_lengths": dg.MetadataValue.json(
                {k: stats[k] for k in ("input_tokens", "output_tokens") if k in stats}
            ),
            "chart": dg.MetadataValue.md(markdown_image(chart_png, f"Hum corpus ({variant})")),
            "chart_path": dg.MetadataValue.path(chart),
            "export_dir": dg.MetadataValue.path(directory),
            "export_files": dg.MetadataValue.json(exported.files),
            "duckdb": dg.MetadataValue.path(warehouse_path(settings.storage_root)),
            "duckdb_views": dg.MetadataValue.json(views),
            "sample": dg.MetadataValue.md(markdown_table(
                head.select("source", "task", "strategy", "instruction", "output").to_dicts(),
                ["source", "task", "strategy", "instruction", "output"], 300,
            )),
            "timings_s": dg.MetadataValue.json({**_timings(report), **after}),
            # the per-row keys on disk (HUM_CORPUS_WORKDIR), before DuckDB's spill files
            "work_folder_mb": round(report.get("keys_bytes", 0) / 2**20, 1),
            # the process's peak RSS after each phase of the build (MB)
            "memory_mb": dg.MetadataValue.json(report.get("memory_mb", {})),
            "scan_workers": report.get("scan_workers", 1),
            "decontamination": index_status,
            "inputs": dg.MetadataValue.md(markdown_table(inputs, ["source", "raw_sources", "run"])),
            "sources_mixed": len(inputs),
            "dagster/row_count": corpus.rows.height,
        },
    )


@contextmanager
def _timed(into: dict, key: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        into[key] = round(time.perf_counter() - started, 2)


def _empty_corpus_table() -> pl.DataFrame:
    return instruction_frame([], COMPOUND_COLUMNS).with_columns(
        pl.lit(None, pl.Int64).alias("rank"), pl.lit(None, pl.String).alias("split")
    )


def _is_timing(key: str) -> bool:
    return key.endswith("_s") or key in ("timings", "seconds")


# Report keys that vary from run to run on the same input besides the timings: the work
# folder's size (its Parquet batches follow the input's order and the scan's workers),
# the peak RSS per phase and how many processes scanned (a setting: the rows and the
# rest of the report are the same for any number).
MEASURED_KEYS = ("keys_bytes", "memory_mb", "scan_workers")


def _without_timings(value):
    if isinstance(value, dict):
        return {
            k: _without_timings(v) for k, v in value.items()
            if not _is_timing(str(k)) and k not in MEASURED_KEYS
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _timings(value, prefix: str = "") -> dict:
    found = {}
    if isinstance(value, dict):
        for k, v in value.items():
            if k in MEASURED_KEYS:  # metadata entries of their own
                continue
            if _is_timing(str(k)) and isinstance(v, int | float):
                found[f"{prefix}{k}"] = v
            else:
                found.update(_timings(v, f"{prefix}{k}."))
    return found
