"""``hum_corpus``: the training corpus from every source's instructions, exported."""


import dagster as dg

from hum_dagster import fsio
from hum_dagster.corpus import CorpusConfig, build_corpus
from hum_dagster.defs.settings import HumSettings
from hum_dagster.export import export_alpaca
from hum_dagster.stats import count_table, markdown_table
from hum_dagster.storage import Table
from hum_dagster.warehouse import refresh_views, warehouse_path


@dg.asset(
    group_name="corpus",
    kinds={"polars", "parquet", "duckdb"},
    description="Train-mode basic and compound instructions of every source, de-duplicated, split into train and "
    "validation, exported as LlamaFactory alpaca JSONL with dataset_info.json.",
    ins={
        "basic_instructions": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "compound_instructions": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
    },
    code_version="1",
)
def hum_corpus(
    context: dg.AssetExecutionContext,
    settings: HumSettings,
    basic_instructions: dict[str, Table],
    compound_instructions: dict[str, Table],
):
    tables = [basic_instructions[k].df for k in sorted(basic_instructions)]
    tables += [compound_instructions[k].df for k in sorted(compound_instructions)]
    result = build_corpus(
        tables, CorpusConfig(seed=settings.seed, validation_fraction=settings.validation_fraction)
    )
    corpus = result.corpus
    export_dir = fsio.join(settings.storage_root, "export")
    exported = export_alpaca(corpus, export_dir)
    views = refresh_views(settings.storage_root)
    per_task = dict(corpus.group_by("task").len().sort("task").iter_rows()) if corpus.height else {}
    per_source = dict(corpus.group_by("source").len().sort("source").iter_rows()) if corpus.height else {}
    per_strategy = (
        dict(corpus.group_by("strategy").len().sort("strategy").iter_rows()) if corpus.height else {}
    )
    sample = corpus.head(3).select("source", "task", "instruction", "output").to_dicts()
    return dg.MaterializeResult(
        value=Table(corpus, {"hum.sources": ",".join(sorted(basic_instructions))}),
        metadata={
            "instructions": corpus.height,
            "train": exported.rows["train"],
            "validation": exported.rows["validation"],
            "input_rows": result.input_rows,
            "test_mode_rows_excluded": result.test_mode_rows,
            "duplicates_removed": result.duplicates_removed,
            "sources": dg.MetadataValue.json(sorted(basic_instructions)),
            "per_task": dg.MetadataValue.md(count_table(per_task, "task")),
            "per_source": dg.MetadataValue.md(count_table(per_source, "source")),
            "per_strategy": dg.MetadataValue.md(count_table(per_strategy, "strategy")),
            "export_dir": dg.MetadataValue.path(export_dir),
            "train_file": dg.MetadataValue.path(exported.files["train"]),
            "duckdb": dg.MetadataValue.path(warehouse_path(settings.storage_root)),
            "duckdb_views": dg.MetadataValue.json(views),
            "sample": dg.MetadataValue.md(
                markdown_table(sample, ["source", "task", "instruction", "output"], 300)
            ),
            "dagster/row_count": corpus.height,
        },
    )
