"""``hum run``: the main job as one Dagster asset backfill.

1. The catalog is read (one readable line and exit 2 if it cannot be), and the
   instance's dynamic partitions are made to match it (sources, the compound partitions
   of the strategies that apply to each, base models).
2. A code server and the daemon start (``cli.services``); their logs go to
   ``<HUM_HOME>/logs/``.
3. The plan: every partition of every asset of the embedded default (``--skip-eval``
   stops after the corpus; training and evaluation cover the ``full`` corpus unless
   ``--all-variants``), keeping those that are missing, failed, stale (code version,
   an upstream re-materialized, a source file changed) or whose error check failed, and
   everything downstream of them.
4. One asset backfill over the plan, with the flags as run config; its runs are queued
   runs of the code location. ``hum run`` follows it (done / failed / running per
   stage), then prints the summary (``cli.summary``), the backfill id and the UI link,
   and stops the services.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import defaultdict

from hum_dagster.cli.instance import hum_home, open_instance, remember, settings_env
from hum_dagster.paths import PROJECT_DIR, shared_data_dir

TERMINAL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
TRIGGER = "hum-run"
EVALUATION_ASSETS = (
    "eval_scores", "finetuned_eval_scores", "eval_report",
    "general_scores", "finetuned_general_scores", "general_report",
)
CHECKPOINT_ASSETS = (  # partitioned like the checkpoints: base model x corpus variant
    "finetuned_checkpoint", "llamafactory_config", "finetuned_eval_scores",
    "finetuned_general_scores",
)
TRAINING_ASSETS = ("base_models", "finetuned_checkpoint", "llamafactory_config")


def add_parser(subparsers) -> argparse.ArgumentParser:
    run = subparsers.add_parser(
        "run", help="materialize every asset of the embedded default as one Dagster backfill"
    )
    run.add_argument("--catalog", help="source catalog YAML (default: $HUM_CATALOG or assets/catalog.yaml)")
    run.add_argument("--storage-root", help="folder or s3:// prefix (default: $HUM_STORAGE_ROOT or .hum/storage)")
    run.add_argument("--sources", nargs="*", help="only these catalog sources")
    run.add_argument("--skip-eval", action="store_true",
                     help="stop after the corpus (no training, no evaluation)")
    run.add_argument("--synthesis-only", action="store_true",
                     help="stop after the compound instructions (no corpus, training or "
                     "evaluation): e.g. to fill an LLM cache once for later replays")
    run.add_argument("--corpus-variants", nargs="+", metavar="VARIANT",
                     help="build only these corpus partitions (default: every variant: full, "
                     "no_guidelines, no_preference_rules, no_format_variants)")
    run.add_argument("--all-variants", action="store_true",
                     help="train and evaluate every corpus variant (default: the full corpus only)")
    run.add_argument("--train-steps", type=int, default=4,
                     help="LoRA optimizer steps of the training smoke test "
                     "(resources/training/smoke.yaml; default 4)")
    run.add_argument("--eval-sample-size", type=int, default=1,
                     help="records per benchmark in the embedded run (default 1)")
    run.add_argument("--eval-max-new-tokens", type=int, default=48,
                     help="generated tokens per instruction in the embedded run (default 48)")
    run.add_argument("--mix-mode", choices=("fill", "strict"),
                     help="the corpus mix (default: $HUM_MIX_MODE or fill): fill uses every "
                     "usable row (with --mix-total, water-filled toward the paper's task "
                     "shares); strict keeps the paper's shares exact, so the scarcest task "
                     "bounds the corpus")
    run.add_argument("--mix-compound", choices=("all", "combined"),
                     help="where the corpus's compound rows come from (default: "
                     "$HUM_MIX_COMPOUND or all): every compound asset, or only the combined "
                     "strategy's rows (one per record, strategies at the paper's counts)")
    run.add_argument("--mix-total", type=int,
                     help="corpus size asked of the mix (default: $HUM_MIX_TOTAL or 0: no total)")
    run.add_argument("--timeout", type=float, default=0,
                     help="give up after this many seconds (default: never)")
    run.set_defaults(func=cmd_run)
    return run


def run_config(args: argparse.Namespace, env: dict[str, str]) -> dict:
    """The flags as the backfill's run config (resource config of every run)."""
    root, catalog = env["HUM_STORAGE_ROOT"], env["HUM_CATALOG"]
    return {"resources": {
        "settings": {"config": {"storage_root": root, "catalog": catalog, **mix_settings(env)}},
        "io_manager": {"config": {"root": root}},
        "training_launcher": {"config": {
            "training_config": "smoke.yaml",
            "config_overrides_json": json.dumps({
                "max_steps": args.train_steps, "save_steps": args.train_steps,
                "eval_steps": args.train_steps,
            }),
        }},
        "eval_settings": {"config": {
            "sample_size": args.eval_sample_size, "max_new_tokens": args.eval_max_new_tokens,
        }},
    }}


def mix_settings(env: dict[str, str]) -> dict:
    """``settings.mix_mode`` and ``mix_total`` from ``HUM_MIX_MODE`` / ``HUM_MIX_TOTAL``
    (the flags set them); ``ValueError`` with one line when either is bad."""
    from hum_dagster.defs.resources.settings import mix_config

    config = mix_config(env.get("HUM_MIX_MODE") or "fill", env.get("HUM_MIX_TOTAL") or 0,
                        compound=env.get("HUM_MIX_COMPOUND") or "all")
    return mix_settings_of(config)


def mix_settings_of(config) -> dict:
    """The settings a corpus is mixed under, as its metadata ``mix_settings`` holds them."""
    return {"mix_mode": config.mode, "mix_total": config.total or 0,
            "mix_compound": config.compound}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _say(text: str = "") -> None:
    print(text, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    home = hum_home()
    env = settings_env(home, {"HUM_CATALOG": args.catalog, "HUM_STORAGE_ROOT": args.storage_root})
    if getattr(args, "mix_mode", None):
        env["HUM_MIX_MODE"] = args.mix_mode
    if getattr(args, "mix_total", None) is not None:
        env["HUM_MIX_TOTAL"] = str(args.mix_total)
    if getattr(args, "mix_compound", None):
        env["HUM_MIX_COMPOUND"] = args.mix_compound
    try:
        mix = mix_settings(env)
    except ValueError as exc:
        _say(f"hum run: settings: {exc}")
        return 2
    from hum_dagster.readers.catalog import CatalogError, load_catalog

    catalog = env["HUM_CATALOG"]
    try:
        entries = {e.name: e for e in load_catalog(catalog)}
    except CatalogError as exc:
        _say(f"hum run: catalog error: {exc}")
        return 2
    if args.sources:
        unknown = sorted(set(args.sources) - set(entries))
        if unknown:
            _say(f"hum run: unknown sources: {', '.join(unknown)}; the catalog {catalog} has "
                 f"{', '.join(sorted(entries)) or 'none'}")
            return 2
        entries = {k: v for k, v in entries.items() if k in args.sources}
    if not entries:
        _say(f"hum run: the catalog {catalog} lists no sources: nothing to synthesize "
             "(add entries under `sources:`)")
        return 2
    from hum_dagster.corpus.mix import VARIANTS

    unknown = sorted(set(getattr(args, "corpus_variants", None) or ()) - set(VARIANTS))
    if unknown:
        _say(f"hum run: unknown corpus variants: {', '.join(unknown)}; expected "
             f"{', '.join(VARIANTS)}")
        return 2
    remember(home, env)
    started = time.perf_counter()
    instance = open_instance(home)
    from hum_dagster.defs.resources.settings import base_model_specs
    from hum_dagster.defs.synthesis.partitions import sync_partitions
    from hum_dagster.defs.training.partitions import BASE_MODELS

    sync_partitions(instance, entries.values(), llm=env.get("HUM_LLM_MODE", "offline") != "offline")
    bases = sorted(base_model_specs(env.get("HUM_BASE_MODELS", "")))
    have = set(instance.get_dynamic_partitions(BASE_MODELS))
    if set(bases) - have:
        instance.add_dynamic_partitions(BASE_MODELS, [b for b in bases if b not in have])
    _cancel_leftovers(instance)

    from hum_dagster.cli import summary
    from hum_dagster.cli.services import ServiceError, Services
    from hum_dagster.definitions import defs

    graph = defs().get_repository_def().asset_graph
    wanted = planned_partitions(graph, instance, sorted(entries), bases, args)
    todo, reasons = plan(graph, instance, wanted, mix)
    log_path = home / "logs" / f"hum-run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not todo:
        _say("everything is up to date: no partition is missing, failed or stale")
        report = summary.collect(instance, graph, wanted, None, log_path)
        return summary.show(report, env, home, time.perf_counter() - started, None)
    _say(f"{sum(len(p) for p in todo.values())} partitions of {len(todo)} assets to materialize "
         f"({_reasons_line(reasons)})")
    backfill_id = None
    services = Services(home, env, project=PROJECT_DIR)
    signal.signal(signal.SIGTERM, _interrupt)  # a kill ends like Ctrl-C: cancel, stop services
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        services.start()
        backfill_id = submit(instance, graph, todo, run_config(args, env))
        _say(f"backfill {backfill_id} submitted; following it (Ctrl-C cancels it)")
        outcome = follow(instance, graph, backfill_id, todo, services, args.timeout)
    except ServiceError as exc:
        _say(f"hum run: {exc}")
        return 1
    except KeyboardInterrupt:
        if backfill_id:
            _cancel(instance, backfill_id)
        _say("hum run: interrupted; the backfill was canceled")
        return 130
    finally:
        services.stop()
    report = summary.collect(instance, graph, wanted, backfill_id, log_path)
    if outcome:
        report.problems.insert(0, summary.Failure(None, None, outcome))
    code = summary.show(report, env, home, time.perf_counter() - started, backfill_id)
    _say(f"services' logs:  {services.log('daemon')}, {services.log('code_server')}")
    return code


# -- the plan --------------------------------------------------------------------------------


def planned_partitions(graph, instance, sources: list[str], bases: list[str], args) -> dict:
    """asset key -> the partitions ``hum run`` covers (before dropping the current ones)."""
    import dagster as dg

    from hum_dagster.corpus.mix import VARIANTS
    from hum_dagster.defs.evaluation.assets import benchmarks, listed_models

    chosen = set(sources)
    bench_data = shared_data_dir().is_dir()  # the benchmarks are the real shared files
    wanted: dict = {}
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        name = key.path[0]
        if name in (*TRAINING_ASSETS, *EVALUATION_ASSETS, "lineage_audit") and (
            args.skip_eval or getattr(args, "synthesis_only", False)
        ):
            continue
        if name == "hum_corpus" and getattr(args, "synthesis_only", False):
            continue
        pdef = node.partitions_def
        if pdef is None:
            wanted[key] = [None]
            continue
        keys = list(pdef.get_partition_keys(dynamic_partitions_store=instance))
        if name in ("raw_sources", "source_quarantine", "basic_instructions", "schema_dictionary",
                    "compound_instructions"):
            keys = [k for k in keys if k in chosen]
        elif name == "base_models":
            keys = [k for k in keys if k in bases]
        elif name == "hum_corpus" and getattr(args, "corpus_variants", None):
            keys = [k for k in keys if k in args.corpus_variants]
        elif name in CHECKPOINT_ASSETS:
            if name in ("finetuned_eval_scores", "finetuned_general_scores") and not bench_data:
                continue
            variants = list(VARIANTS) if args.all_variants else ["full"]
            keys = [k for k in keys if k.keys_by_dimension["base_model"] in bases
                    and k.keys_by_dimension["corpus_variant"] in variants]
        elif name in ("eval_scores", "general_scores"):
            if name == "eval_scores" and not bench_data:
                continue
            listed = {n for n, spec in listed_models().items() if not spec.adapter}
            keys = [k for k in keys if (k.keys_by_dimension["model"] if name == "eval_scores" else k)
                    in listed and (name != "eval_scores"
                                   or k.keys_by_dimension["benchmark"] in benchmarks())]
        if keys:
            wanted[key] = keys
    if dg.AssetKey("eval_report") in wanted and dg.AssetKey("eval_scores") not in wanted:
        wanted.pop(dg.AssetKey("eval_report"))
    if dg.AssetKey("general_report") in wanted and dg.AssetKey("general_scores") not in wanted:
        wanted.pop(dg.AssetKey("general_report"))
    return wanted


def plan(graph, instance, wanted: dict, mix: dict | None = None) -> tuple[dict, dict]:
    """(asset key -> partitions to materialize, reason -> count): missing, failed, stale
    or error-check-failed partitions of ``wanted``, corpus partitions mixed under other
    settings than ``mix`` (``mix_mode``, ``mix_total``), and everything in ``wanted``
    downstream of them."""
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.definitions.partitions.context import partition_loading_context

    from hum_dagster.defs.checks import failed_attempt
    from hum_dagster.defs.operations.audit import latest_by_partition, materialization_audit

    reasons: dict[str, int] = defaultdict(int)
    chosen: set = set()
    keys = list(wanted)
    _, stale = materialization_audit(instance, graph, keys)
    stale_set = {(r["asset"], str(r["partition"])) for r in stale.rows}
    for key in keys:
        latest = latest_by_partition(instance, key)
        checks = _failed_checks(instance, graph, key)
        for partition in wanted[key]:
            text = None if partition is None else str(partition)
            record = latest.get(text)
            if record is None:
                why = "missing"
            elif failed_attempt(instance, key, text, record.storage_id):
                why = "failed"
            elif (key.to_user_string(), str(text)) in stale_set:
                why = "stale"
            elif text in checks:
                why = "check failed"
            elif mix is not None and key.path == ["hum_corpus"] and _mixed_as(record) != mix:
                why = "mix settings changed"
            else:
                continue
            reasons[why] += 1
            chosen.add(AssetKeyPartitionKey(key, partition))
    # downstream closure within what hum run covers
    with partition_loading_context(dynamic_partitions_store=instance):
        frontier = list(chosen)
        allowed = {(k, None if p is None else str(p)) for k, ps in wanted.items() for p in ps}
        by_str = {(k, None if p is None else str(p)): p for k, ps in wanted.items() for p in ps}
        while frontier:
            item = frontier.pop()
            for child in graph.get_children_partitions(item.asset_key, item.partition_key):
                ident = (child.asset_key, None if child.partition_key is None else str(child.partition_key))
                if ident not in allowed:
                    continue
                full = AssetKeyPartitionKey(child.asset_key, by_str[ident])
                if full not in chosen:
                    chosen.add(full)
                    reasons["downstream"] += 1
                    frontier.append(full)
    todo: dict = defaultdict(list)
    for item in chosen:
        todo[item.asset_key].append(item.partition_key)
    return dict(todo), dict(reasons)


def _mixed_as(record) -> dict:
    """The mix settings a corpus materialization was made with (its metadata)."""
    meta = record.asset_materialization.metadata if record.asset_materialization else {}
    value = getattr(meta.get("mix_settings"), "value", None)
    return value if isinstance(value, dict) else {}


def _failed_checks(instance, graph, key) -> set:
    """Partitions of ``key`` whose latest evaluation of an error-severity check failed."""
    import dagster as dg

    from hum_dagster.defs.checks import evaluation_of

    failed = set()
    for check_key in graph.get_check_keys_for_assets({key}):
        records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1000)
        seen = set()
        for record in records:
            if record.partition in seen:
                continue
            seen.add(record.partition)
            evaluation = evaluation_of(record)
            if evaluation is not None and not evaluation.passed and (
                evaluation.severity == dg.AssetCheckSeverity.ERROR
            ):
                failed.add(record.partition)
    return failed


def _reasons_line(reasons: dict) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]))


# -- the backfill ----------------------------------------------------------------------------


def submit(instance, graph, todo: dict, config: dict) -> str:
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    with partition_loading_context(dynamic_partitions_store=instance):
        subset = AssetGraphSubset.from_asset_partition_set(
            {AssetKeyPartitionKey(k, p) for k, ps in todo.items() for p in ps}, graph
        )
    backfill_id = make_new_backfill_id()
    instance.add_backfill(PartitionBackfill.from_asset_graph_subset(
        backfill_id=backfill_id,
        backfill_timestamp=time.time(),
        tags={"hum/trigger": TRIGGER},
        dynamic_partitions_store=instance,
        asset_graph_subset=subset,
        title="hum run",
        description="hum run: every missing, failed or stale partition of the embedded default",
        run_config=config,
    ))
    return backfill_id


def _cancel(instance, backfill_id: str) -> None:
    from dagster._core.execution.backfill import BulkActionStatus

    backfill = instance.get_backfill(backfill_id)
    if backfill is not None and backfill.status == BulkActionStatus.REQUESTED:
        instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELING))


def _cancel_leftovers(instance) -> None:
    """A previous ``hum run`` that was killed leaves its backfill requested: cancel it, so
    that its runs and this one's do not race."""
    from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

    for backfill in instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])):
        if backfill.tags.get("hum/trigger") == TRIGGER:
            instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELED))


STAGES = (
    ("sources", ("raw_sources", "source_quarantine")),
    ("dictionary", ("schema_dictionary",)),
    ("basic", ("basic_instructions",)),
    ("compound", ("compound_instructions",)),
    ("corpus", ("hum_corpus",)),
    ("training", TRAINING_ASSETS),
    ("eval", EVALUATION_ASSETS),
    ("audit", ("lineage_audit",)),
)


def _stage(key) -> str:
    for stage, names in STAGES:
        if key.path[0] in names:
            return stage
    return key.path[0]


def progress(instance, backfill_id: str, todo: dict, since_storage: int) -> dict:
    """stage -> {total, done, failed, running, queued} over the backfill's runs."""
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    counts: dict = {}
    done_by_key = {}
    for key in todo:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=since_storage), limit=10000
        ).records
        done_by_key[key] = {r.partition_key for r in records}
    runs = instance.get_runs(filters=RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    active: dict = defaultdict(lambda: {"running": set(), "queued": set(), "failed": set()})
    for run in runs:
        state = (
            "running" if run.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING)
            else "queued" if run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED)
            else "failed" if run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
            else None
        )
        if state is None:
            continue
        partition = run.tags.get("dagster/partition")
        for key in run.asset_selection or ():
            active[key][state].add(partition)
    for key, partitions in todo.items():
        stage = counts.setdefault(_stage(key), {"total": 0, "done": 0, "failed": 0, "running": 0, "queued": 0})
        strs = {None if p is None else str(p) for p in partitions}
        done = strs & done_by_key[key]
        stage["total"] += len(strs)
        stage["done"] += len(done)
        for state in ("running", "queued", "failed"):
            stage[state] += len((strs - done) & active[key][state])
    return counts


def _progress_line(elapsed: float, counts: dict) -> str:
    parts = []
    for stage, _ in STAGES:
        c = counts.get(stage)
        if not c:
            continue
        extra = "".join(
            f" {c[s]} {s}" for s in ("running", "queued", "failed") if c[s]
        )
        parts.append(f"{stage} {c['done']}/{c['total']}{extra}")
    return f"  {elapsed:5.0f}s  " + " | ".join(parts)


def follow(instance, graph, backfill_id: str, todo: dict, services, timeout: float) -> str | None:
    """Poll the backfill until it ends; print a progress line whenever the counts change.
    Returns a problem line when it did not end by itself (a service died, a timeout)."""
    since = _storage_before(instance)
    started = time.monotonic()
    last = None
    while True:
        backfill = instance.get_backfill(backfill_id)
        counts = progress(instance, backfill_id, todo, since)
        if counts != last:
            _say(_progress_line(time.monotonic() - started, counts))
            last = counts
        if backfill.status.value in TERMINAL and not _active_runs(instance, backfill_id):
            return None
        dead = services.dead()
        if dead:
            return f"the {dead} stopped before the backfill ended; see {services.log(dead)}"
        if timeout and time.monotonic() - started > timeout:
            _cancel(instance, backfill_id)
            return f"gave up after {timeout:.0f} s (--timeout); the backfill was canceled"
        time.sleep(1.0)


def _active_runs(instance, backfill_id: str) -> int:
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    return instance.get_runs_count(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id},
                                              statuses=IN_PROGRESS_RUN_STATUSES))


def _storage_before(instance) -> int:
    return instance.event_log_storage.get_maximum_record_id() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hum")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

