"""What ``hum run`` prints at the end, read back from the Dagster instance.

Everything comes from the event log: the latest materialization of each partition
(its metadata: records, quarantined, labels, instructions, corpus sizes, losses, the
Table 1), the latest evaluation of each asset check, and the failures of the backfill's
runs (each one readable line on the terminal: the ``dg.Failure`` description or the
innermost exception; the full stack traces go to the log file whose path is printed).
An error-severity check that failed counts as a failure; a warning is shown as one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from hum_dagster.defs.checks import evaluation_of

SOURCE_ASSETS = ("raw_sources", "source_quarantine", "basic_instructions", "schema_dictionary",
                 "compound_instructions")
CHECK_FAILED = "DagsterAssetCheckFailedError"  # a blocking check's step: reported as the check


@dataclass(frozen=True)
class Failure:
    """One failure: where (asset key string and partition, when known) and the line."""

    asset: str | None
    partition: str | None
    line: str


@dataclass
class Report:
    sources: list[dict] = field(default_factory=list)
    corpus: list[str] = field(default_factory=list)
    training: list[str] = field(default_factory=list)
    evaluation: list[str] = field(default_factory=list)
    problems: list[Failure] = field(default_factory=list)  # exit code 1
    warnings: list[str] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None


def _latest_meta(instance, key: dg.AssetKey, partition: str | None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    if not records:
        return {}
    return {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}


def _where(key: dg.AssetKey, partition: str | None) -> str:
    return f"{key.to_user_string()}[{partition}]" if partition else key.to_user_string()


def _innermost(error) -> str:
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}"


def run_failures(instance, graph, backfill_id: str, log) -> list[Failure]:
    """One failure per failed step (or failed run without a step failure) of the
    backfill's latest attempt at each partition; the stack traces are written to ``log``.
    A blocking check's failed step is left out: its check result says it."""
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    by_step = {k.to_python_identifier(): k for k in graph.materializable_asset_keys}
    runs = instance.get_runs(filters=RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    retried = {r.tags.get("dagster/parent_run_id") for r in runs}
    failures: list[Failure] = []
    for run in sorted(runs, key=lambda r: r.run_id):
        if run.status != DagsterRunStatus.FAILURE or run.run_id in retried:
            continue
        partition = run.tags.get("dagster/partition")
        if partition is None:
            dims = {k.split("/")[-1]: v for k, v in run.tags.items()
                    if k.startswith("dagster/partition/")}
            partition = "|".join(dims[d] for d in sorted(dims)) if dims else None
        explained = False
        for record in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
            event = record.dagster_event
            data = event.step_failure_data
            explained = True
            if data.error is not None and data.error.cls_name == CHECK_FAILED:
                continue
            key = by_step.get(event.step_key)
            name = key.to_user_string() if key else event.step_key
            if data.user_failure_data and data.user_failure_data.description:
                reason = data.user_failure_data.description
            else:
                reason = _innermost(data.error)
            where = f"{name}[{partition}]" if partition else name
            failures.append(Failure(name, partition, f"{where}: {reason}"))
            log.write(f"==== run {run.run_id} {where}\n{data.error.to_string() if data.error else reason}\n")
        if explained:
            continue
        for record in instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE):
            message = record.dagster_event.message or record.message or "run failed"
            error = getattr(record.dagster_event.event_specific_data, "error", None)
            names = ", ".join(k.to_user_string() for k in sorted(run.asset_selection or []))
            where = f"{names}[{partition}]" if partition else names
            failures.append(Failure(None, partition, f"run {run.run_id[:8]} ({where}): "
                                    f"{_innermost(error) if error else message.splitlines()[0]}"))
            log.write(f"==== run {run.run_id}\n{error.to_string() if error else message}\n")
            break
    return failures


def check_results(instance, graph, wanted: dict) -> tuple[list[Failure], list[str]]:
    """(failed error checks, failed warnings): the latest evaluation of each check on each
    partition ``hum run`` covers."""
    errors, warnings = [], []
    for key, partitions in sorted(wanted.items(), key=lambda kv: kv[0].to_user_string()):
        strs = {None if p is None else str(p) for p in partitions}
        for check_key in sorted(graph.get_check_keys_for_assets({key}), key=lambda c: c.name):
            records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=5000)
            seen = set()
            for record in records:
                if record.partition in seen or record.partition not in strs:
                    continue
                seen.add(record.partition)
                evaluation = evaluation_of(record)
                if evaluation is None or evaluation.passed:
                    continue
                meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
                line = f"{_where(key, record.partition)}: check {check_key.name} failed{_check_detail(meta)}"
                if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                    errors.append(Failure(key.to_user_string(), record.partition, line))
                else:
                    warnings.append(line)
    return errors, warnings


def _check_detail(meta: dict) -> str:
    if isinstance(meta.get("status"), str):
        return f": {meta['status']}"
    failures, first = meta.get("failures"), meta.get("first_problem")
    example = f"; e.g. {first}" if first else ""
    return f" ({failures} problems{example})" if failures else ""


def collect(instance, graph, wanted: dict, backfill_id: str | None, log_path: Path) -> Report:
    from dagster._core.storage.dagster_run import RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    report = Report(log_path=log_path)
    with open(log_path, "a", encoding="utf-8") as log:
        if backfill_id:
            report.problems += run_failures(instance, graph, backfill_id, log)
            runs = instance.get_runs(filters=RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
            counts: dict[str, int] = defaultdict(int)
            for run in runs:
                counts[run.status.value.lower()] += 1
            report.runs = dict(counts)
    errors, warnings = check_results(instance, graph, wanted)
    report.problems += errors
    report.warnings += warnings
    by_name = {k.to_user_string(): k for k in wanted}
    sources = [str(p) for p in wanted.get(dg.AssetKey("raw_sources"), [])]
    compound = [k for k in wanted if k.path[0] == "compound_instructions"]
    for source in sources:
        raw = _latest_meta(instance, dg.AssetKey("raw_sources"), source)
        row = {
            "source": source,
            "records": raw.get("records", ""),
            "quarantined": raw.get("quarantined", ""),
            "labels": _latest_meta(instance, dg.AssetKey("schema_dictionary"), source).get("labels", ""),
            "basic": _latest_meta(instance, dg.AssetKey("basic_instructions"), source).get("instructions", ""),
            "compound": sum(
                int(_latest_meta(instance, k, source).get("instructions", 0) or 0)
                for k in compound if source in {str(p) for p in wanted[k]}
            ),
        }
        bad = [f for f in report.problems if f.partition == source and f.asset
               and f.asset.split("/")[0] in SOURCE_ASSETS]
        row["status"] = "FAILED" if bad else "ok"
        report.sources.append(row)
    corpus_key = by_name.get("hum_corpus")
    for variant in wanted.get(corpus_key, []) if corpus_key else []:
        meta = _latest_meta(instance, corpus_key, str(variant))
        failed = [f for f in report.problems if f.asset == "hum_corpus" and f.partition == str(variant)]
        if failed or not meta:
            report.corpus.append(f"corpus {variant}: not built" + ("" if failed else " (an upstream partition failed)"))
            continue
        split = meta.get("split") or {}
        report.corpus.append(
            f"corpus {variant}: {meta.get('instructions', 0)} instructions ({split.get('train', 0)} "
            f"train, {split.get('validation', 0)} validation) from {meta.get('sources_mixed', '?')} sources"
        )
        report.corpus += corpus_mix_lines(meta)
    ckpt = by_name.get("finetuned_checkpoint")
    for partition in wanted.get(ckpt, []) if ckpt else []:
        meta = _latest_meta(instance, ckpt, str(partition))
        name = str(partition).replace("|", " x ")
        if not meta:
            report.training.append(f"{name}: not trained")
            continue
        first, last = meta.get("first_loss"), meta.get("final_loss") or meta.get("train_loss")
        losses = f", loss {first:.4f} -> {last:.4f}" if isinstance(first, float) and isinstance(last, float) else ""
        report.training.append(f"{name}: ok ({meta.get('stored_at', '')}{losses})")
    report_key = by_name.get("eval_report")
    if report_key:
        meta = _latest_meta(instance, report_key, None)
        if meta.get("table_1"):
            report.evaluation += str(meta["table_1"]).splitlines()
        if meta.get("chart"):
            report.evaluation.append(f"chart: {meta['chart']}")
    return report


def corpus_mix_lines(meta: dict) -> list[str]:
    """How a corpus partition was mixed, from its metadata: for ``full`` the mode and, per
    task, the rows available, wanted, used and what limited them; for an ablation what
    became of the compound rows it leaves out (the task mix of ``full``, no row twice)."""
    from hum_dagster.corpus.mix import format_task_table

    variant = meta.get("variant_replacements") or {}
    removed = int(variant.get("removed", 0) or 0)
    if variant.get("name", "full") != "full":
        if not removed:
            return ["  same rows as full (none of its strategies were in full)"]
        size = int(meta.get("instructions", 0) or 0)
        scaled = float(variant.get("scaled_to", 1.0) or 0.0)
        by_base = sum(int(variant.get(k, 0) or 0) for k in
                      ("replaced_by_base", "replaced_by_same_source", "replaced_by_same_task"))
        by_kept = int(variant.get("replaced_by_kept_strategy", 0) or 0)
        missing = int(variant.get("not_replaced", 0) or 0)
        line = (f"  task mix of full, no row twice: of its {removed:,} left-out compound rows "
                f"{by_base:,} became basic rows of the same task, {by_kept:,} rows of a kept "
                f"strategy, {missing:,} had no unused row of their task")
        if scaled < 1.0:
            line += (f"; every task cut to {scaled:.0%} of its rows in full: {size:,} of "
                     f"{int(variant.get('rows_in_full', 0) or 0):,} rows (see README, ablations)")
        return [line]
    rows = meta.get("mix_by_task") or []
    if not rows:
        return []
    total = meta.get("mix_target_total")
    mode = meta.get("mix_mode", "?")
    head = f"  mix {mode}"
    head += (f", total {total:,}" if isinstance(total, int) else "")
    if (meta.get("mix_settings") or {}).get("mix_compound") == "combined":
        head += ", compound rows from the combined strategy only"
    notes = [f"    {n}" for n in meta.get("limited_by") or []
             if "not reached" in n or n.startswith("total limited by")]
    return [head + " (per task: rows available, wanted at the target share, used):",
            *format_task_table(rows, "    "), *notes]


def show(report: Report, env: dict, home: Path, elapsed: float, backfill_id: str | None) -> int:
    say = print
    say()
    say(f"{'source':<28} {'records':>8} {'quarant.':>8} {'labels':>7} {'basic':>8} {'compound':>9}  status")
    for row in report.sources:
        say(f"{row['source']:<28} {row['records']!s:>8} {row['quarantined']!s:>8} {row['labels']!s:>7} "
            f"{row['basic']!s:>8} {row['compound']!s:>9}  {row['status']}")
    say()
    for line in report.corpus:
        say(line)
    if not report.sources or all(r["status"] != "ok" for r in report.sources):
        say("no source could be read: the corpus has nothing to mix")
    say("training:")
    for line in report.training or ["skipped (--skip-eval)"]:
        say(f"  {line}")
    say("evaluation:")
    for line in report.evaluation or ["skipped (--skip-eval, or no benchmark data: set HUM_SHARED_DATA)"]:
        say(f"  {line}")
    if report.warnings:
        say(f"warnings ({len(report.warnings)}):")
        for line in report.warnings:
            say(f"  warning: {line}")
    if report.problems:
        say(f"FAILED ({len(report.problems)}):")
        for failure in report.problems:
            say(f"  FAILED {failure.line}")
        say(f"stack traces:   {report.log_path}")
    root = env["HUM_STORAGE_ROOT"]
    say(f"outputs:        {root}")
    say(f"corpus export:  {root.rstrip('/')}/export/<variant> (hum_train.jsonl, "
        "hum_train.openai.jsonl, dataset_info.json, corpus_stats.png)")
    say("SQL (DuckDB):   hum sql \"select task, count(*) from basic_instructions group by task\"")
    say(f"Dagster home:   {env['DAGSTER_HOME']}  (open the UI with: hum dev)")
    if backfill_id:
        runs = ", ".join(f"{n} {s}" for s, n in sorted(report.runs.items()))
        say(f"backfill:       {backfill_id} ({runs})")
        say(f"UI:             http://127.0.0.1:3000/runs/b/{backfill_id}?tab=partitions  (after: hum dev)")
    ok = sum(1 for r in report.sources if r["status"] == "ok")
    say(f"{ok}/{len(report.sources)} sources ok, {len(report.problems)} failures, "
        f"{len(report.warnings)} warnings in {elapsed:.1f} s")
    return 1 if report.problems else 0

