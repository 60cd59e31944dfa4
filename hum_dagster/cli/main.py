"""The ``hum`` command: run the main job, open the UI, convert IEPile files, query SQL."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from hum_dagster.paths import PROJECT_DIR

HUM_HOME = Path(os.environ.get("HUM_HOME", PROJECT_DIR / ".hum"))


def prepare_instance() -> Path:
    """Point DAGSTER_HOME at a persistent local instance (``.hum/dagster_home``)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(HUM_HOME / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(PROJECT_DIR / "resources" / "dagster.yaml", config)
    return home


def _apply_settings(args: argparse.Namespace) -> None:
    if getattr(args, "catalog", None):
        os.environ["HUM_CATALOG"] = str(Path(args.catalog).resolve())
    if getattr(args, "storage_root", None):
        root = args.storage_root
        os.environ["HUM_STORAGE_ROOT"] = root if "://" in root else str(Path(root).resolve())
    os.environ.setdefault("HUM_STORAGE_ROOT", str(HUM_HOME / "storage"))


def cmd_run(args: argparse.Namespace) -> int:
    """Materialize every source partition, then the corpus, on a persistent instance."""
    _apply_settings(args)
    os.environ.setdefault("HUM_EVAL_SAMPLE_SIZE", str(args.eval_sample_size))
    os.environ.setdefault("HUM_EVAL_MAX_NEW_TOKENS", str(args.eval_max_new_tokens))
    os.environ.setdefault("HUM_TRAIN_OVERRIDES", json.dumps({"max_steps": args.train_steps}))
    home = prepare_instance()
    import dagster as dg

    from hum_dagster.definitions import defs
    from hum_dagster.defs.resources.settings import catalog, storage_root
    from hum_dagster.defs.synthesis.partitions import COMPOUND_STRATEGIES

    instance = dg.DagsterInstance.get()
    sources = sorted(catalog())
    if args.sources:
        unknown = sorted(set(args.sources) - set(sources))
        if unknown:
            print(f"unknown sources: {', '.join(unknown)}; the catalog has {', '.join(sources)}")
            return 2
        sources = [s for s in sources if s in args.sources]
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    job = defs.resolve_job_def("synthesize_source")
    compound_job = defs.resolve_job_def("synthesize_compound")
    started = time.perf_counter()
    rows = []
    for name in sources:
        result = job.execute_in_process(
            partition_key=name, instance=instance, raise_on_error=False, run_config=quiet
        )
        counts = _materialization_counts(result)
        compound, compound_failed = 0, []
        if result.success:
            for strategy in COMPOUND_STRATEGIES:
                key = dg.MultiPartitionKey({"source": name, "strategy": strategy})
                run = compound_job.execute_in_process(
                    partition_key=key, instance=instance, raise_on_error=False, run_config=quiet
                )
                if run.success:
                    meta = _materialization_counts(run).get("compound_instructions", {})
                    compound += int(meta.get("instructions", 0))
                else:
                    compound_failed.append(f"{strategy}: {_failure(run)}")
        counts["compound_instructions"] = {"instructions": compound}
        failure = _failure(result) if not result.success else "; ".join(compound_failed)
        ok = result.success and not compound_failed
        rows.append((name, ok, counts, failure))
        print(f"  {name:<28} {'ok' if ok else 'FAILED'}", flush=True)
    from hum_dagster.corpus.mix import VARIANTS

    corpora = {}
    for variant in VARIANTS:
        corpora[variant] = defs.resolve_job_def("build_corpus").execute_in_process(
            partition_key=variant, instance=instance, raise_on_error=False, run_config=quiet
        )
        print(f"  corpus {variant:<24} {'ok' if corpora[variant].success else 'FAILED'}", flush=True)
    if args.skip_eval:
        training, evaluation = ["skipped (--skip-eval)"], ["skipped (--skip-eval)"]
    else:
        variants = list(VARIANTS) if args.all_variants else ["full"]
        trained, training = _run_training(defs, instance, quiet, variants)
        evaluation = _run_evaluation(defs, instance, quiet, trained)
    elapsed = time.perf_counter() - started

    root = storage_root()
    print()
    print(f"{'source':<28} {'records':>8} {'quarant.':>8} {'labels':>7} {'basic':>8} {'compound':>9}")
    for name, ok, counts, failure in rows:
        raw = counts.get("raw_sources", {})
        if raw:
            basic = counts.get("basic_instructions", {})
            labels = counts.get("schema_dictionary", {}).get("labels", 0)
            compound = counts.get("compound_instructions", {}).get("instructions", 0)
            print(f"{name:<28} {raw.get('records', 0):>8} {raw.get('quarantined', 0):>8} {labels:>7} "
                  f"{basic.get('instructions', 0):>8} {compound:>9}")
        if not ok:
            print(f"{name:<28} FAILED: {failure}")
    failed = [name for name, ok, _, _ in rows if not ok]
    print()
    for variant, corpus in corpora.items():
        if corpus.success:
            meta = corpus.get_asset_materialization_events()[0].materialization.metadata
            split = meta["split"].value
            print(f"corpus {variant}: {meta['instructions'].value} instructions "
                  f"({split.get('train', 0)} train, {split.get('validation', 0)} validation)")
        else:
            print(f"corpus {variant}: FAILED: {_failure(corpus)}")
    print("training:")
    for line in training:
        print(f"  {line}")
    print("evaluation:")
    for line in evaluation:
        print(f"  {line}")
    print(f"outputs:        {root}")
    print(f"corpus export:  {root.rstrip('/')}/export/<variant> (hum_train.jsonl, "
          "hum_train.openai.jsonl, dataset_info.json, corpus_stats.png)")
    print("SQL (DuckDB):   hum sql \"select task, count(*) from basic_instructions group by task\"")
    print(f"Dagster home:   {home}  (open the UI with: hum dev)")
    print(f"{len(sources) - len(failed)}/{len(sources)} sources ok in {elapsed:.1f} s")
    eval_failed = any("FAILED" in line for line in [*training, *evaluation])
    corpus_failed = any(not c.success for c in corpora.values())
    return 1 if failed or corpus_failed or eval_failed else 0


def _run_training(defs, instance, quiet, variants: list[str]) -> tuple[list[str], list[str]]:
    """Prepare each base model, LoRA-train it on each corpus variant; (trained model names
    for evaluation, summary lines)."""
    import dagster as dg

    from hum_dagster.defs.evaluation.assets import finetuned_model_name
    from hum_dagster.defs.training.assets import base_model_specs

    trained, lines = [], []
    for base in sorted(base_model_specs()):
        prepared = defs.resolve_job_def("prepare_base_model").execute_in_process(
            partition_key=base, instance=instance, raise_on_error=False, run_config=quiet
        )
        if not prepared.success:
            lines.append(f"base model {base}: FAILED: {_failure(prepared)}")
            continue
        for variant in variants:
            key = dg.MultiPartitionKey({"base_model": base, "corpus_variant": variant})
            run = defs.resolve_job_def("finetune").execute_in_process(
                partition_key=key, instance=instance, raise_on_error=False, run_config=quiet
            )
            print(f"  train {base} on {variant:<20} {'ok' if run.success else 'FAILED'}", flush=True)
            if not run.success:
                lines.append(f"{base} x {variant}: FAILED: {_failure(run)}")
                continue
            meta = run.get_asset_materialization_events()[0].materialization.metadata
            loss = meta.get("final_loss") or meta.get("train_loss")
            where = meta["stored_at"].value if "stored_at" in meta else ""
            first = meta.get("first_loss")
            losses = f", loss {first.value:.4f} -> {loss.value:.4f}" if loss and first else ""
            lines.append(f"{base} x {variant}: ok ({where}{losses})")
            trained.append(finetuned_model_name(base, variant))
    return trained, lines


def _run_evaluation(defs, instance, quiet, trained: list[str]) -> list[str]:
    """Score the listed models and the checkpoints trained now on every benchmark, then
    the report; lines for the summary."""
    import dagster as dg

    from hum_dagster.defs.evaluation.assets import benchmarks, finetuned_models, listed_models
    from hum_dagster.paths import shared_data_dir

    if not shared_data_dir().is_dir():
        return [f"skipped: benchmark data not found at {shared_data_dir()} (set HUM_SHARED_DATA)"]
    job = defs.resolve_job_def("evaluate_model")
    lines = []
    runs = [(job, dg.MultiPartitionKey({"model": m, "benchmark": b}), f"{m} x {b}")
            for m, spec in sorted(listed_models().items()) if not spec.adapter for b in sorted(benchmarks())]
    checkpoint_job = defs.resolve_job_def("evaluate_checkpoint")  # every benchmark at once
    for model in sorted(trained):
        base, variant = finetuned_models()[model]
        key = dg.MultiPartitionKey({"base_model": base, "corpus_variant": variant})
        runs.append((checkpoint_job, key, f"{model} x all benchmarks"))
    for run_job, key, name in runs:
        result = run_job.execute_in_process(
            partition_key=key, instance=instance, raise_on_error=False, run_config=quiet
        )
        if not result.success:
            lines.append(f"{name}: FAILED: {_failure(result)}")
        print(f"  eval {name:<40} {'ok' if result.success else 'FAILED'}", flush=True)
    report = defs.resolve_job_def("build_eval_report").execute_in_process(
        instance=instance, raise_on_error=False, run_config=quiet
    )
    if not report.success:
        return [*lines, f"report: FAILED: {_failure(report)}"]
    for event in report.get_asset_materialization_events():
        table = event.materialization.metadata.get("table_1")
        if table is not None:
            lines.extend(table.value.splitlines())
        chart = event.materialization.metadata.get("chart")
        if chart is not None:
            lines.append(f"chart: {chart.value}")
    return lines


def _materialization_counts(result) -> dict[str, dict]:
    counts: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        values = {}
        for key, value in mat.metadata.items():
            raw = getattr(value, "value", value)
            if isinstance(raw, int | float | str):
                values[key] = raw
        counts[mat.asset_key.to_user_string()] = values
    return counts


def _failure(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            error = data.error
            while error.cause is not None:  # the user code's exception, not Dagster's wrapper
                error = error.cause
            return f"{error.cls_name}: {error.message.strip()}"
    return "" if result.success else "run failed"


def cmd_dev(args: argparse.Namespace) -> int:
    """Start ``dagster dev`` on the same instance and storage as ``hum run``."""
    _apply_settings(args)
    prepare_instance()
    dagster = shutil.which("dagster") or str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-m", "hum_dagster.definitions", *args.dagster_args]
    os.execv(dagster, command)
    return 0


def duckdb_message(exc: Exception) -> str:
    """DuckDB's error in one line: the message and its hint, without the SQL excerpt."""
    head = str(exc).split("\n\n", 1)[0]
    return " ".join(part.strip() for part in head.splitlines() if part.strip())


def cmd_sql(args: argparse.Namespace) -> int:
    """Run SQL against the DuckDB views over the outputs."""
    _apply_settings(args)
    import duckdb

    from hum_dagster.store.warehouse import VIEWS, connect, refresh_views

    root = os.environ["HUM_STORAGE_ROOT"]
    try:
        views = refresh_views(root)
        con = connect(root)
    except (duckdb.Error, OSError) as exc:
        print(f"hum sql: error: cannot open the outputs under {root}: {duckdb_message(exc)}",
              file=sys.stderr)
        return 2
    try:
        result = con.execute(args.query)
        columns = [d[0] for d in result.description] if result.description else []
        rows = result.fetchall()
    except duckdb.Error as exc:
        known = ", ".join(views) if views else f"none yet (tables: {', '.join(VIEWS)})"
        print(f"hum sql: error: {duckdb_message(exc)} (views: {known})", file=sys.stderr)
        return 2
    finally:
        con.close()
    print("\t".join(columns))
    for row in rows:
        print("\t".join("" if v is None else str(v) for v in row))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hum", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize every source and the corpus (embedded default)")
    run.add_argument("--catalog", help="source catalog YAML (default: $HUM_CATALOG or assets/catalog.yaml)")
    run.add_argument("--storage-root", help="folder or s3:// prefix (default: $HUM_STORAGE_ROOT or .hum/storage)")
    run.add_argument("--sources", nargs="*", help="only these catalog sources")
    run.add_argument("--skip-eval", action="store_true",
                     help="stop after the corpus (no training, no evaluation)")
    run.add_argument("--all-variants", action="store_true",
                     help="train and evaluate every corpus variant (default: the full corpus only)")
    run.add_argument("--train-steps", type=int, default=10,
                     help="LoRA optimizer steps in the embedded run (default 10)")
    run.add_argument("--eval-sample-size", type=int, default=2,
                     help="records per benchmark in the embedded run (default 2)")
    run.add_argument("--eval-max-new-tokens", type=int, default=48,
                     help="generated tokens per instruction in the embedded run (default 48)")
    run.set_defaults(func=cmd_run)

    dev = sub.add_parser(
        "dev", help="open the Dagster UI on the instance `hum run` uses (other flags go to dagster dev)"
    )
    dev.add_argument("--catalog")
    dev.add_argument("--storage-root")
    dev.set_defaults(func=cmd_dev)

    sql = sub.add_parser("sql", help="query the outputs with DuckDB SQL")
    sql.add_argument("query")
    sql.add_argument("--storage-root")
    sql.set_defaults(func=cmd_sql)

    from hum_dagster.cli import audit as audit_cli

    audit_cli.add_parser(sub)
    from hum_dagster.cli import score as score_cli
    score_cli.add_parser(sub)
    from hum_dagster.cli import plan as plan_cli
    plan_cli.add_parser(sub)

    sub.add_parser("convert", help="IEPile-compatible converter (see `hum convert --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:
        from hum_dagster.cli.convert import main as convert_main

        return convert_main(argv[1:])
    args, extra = build_parser().parse_known_args(argv)
    if extra and args.command != "dev":
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = extra
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
