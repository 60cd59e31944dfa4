"""``hum plan``: the requests, tokens and cost of a live run, and GPU hours, before it runs.

Wired into ``hum`` by ``hum_dagster/cli/main.py``::

    from hum_dagster.cli import plan as plan_cli
    plan_cli.add_parser(sub)

The LLM settings are the run's (``HUM_LLM_*``, whatever ``HUM_LLM_MODE`` says: the plan
is for a live run); the cache is ``<storage root>/llm_cache`` (or ``HUM_LLM_CACHE_ROOT``).
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    plan = subparsers.add_parser(
        "plan",
        help="before a live run: LLM requests, cached answers, tokens and cost per step, "
        "training and evaluation GPU hours",
        description="For each LLM step, from the catalog and the response cache: the requests "
        "it would send, those the cache already answers, prompt tokens (the real prompts, "
        "counted with the tokenizer), completion tokens (the cache's mean per step, else "
        "max_tokens) and the cost at HUM_LLM_PRICES; then training and evaluation GPU hours "
        "at the given model sizes, with every assumption stated.",
    )
    plan.add_argument(
        "--catalog", help="source catalog YAML (default: $HUM_CATALOG or assets/catalog.yaml)"
    )
    plan.add_argument("--storage-root", help="folder or s3:// prefix (default: $HUM_STORAGE_ROOT)")
    plan.add_argument("--sources", nargs="*", help="only these catalog sources")
    plan.add_argument(
        "--tokenizer",
        default="smollm2-135m-instruct",
        help="a tokenizer.json, a folder with one, a .gguf, or smollm2-135m-instruct",
    )
    plan.add_argument("--seed", type=int, default=42)
    plan.add_argument(
        "--model-size",
        action="append",
        help="a size to plan training for: smollm2-135m, 8b, 70b, or NAME=PARAMS "
        "(e.g. qwen7b=7.6e9; no attention term then); default smollm2-135m and 8b",
    )
    plan.add_argument(
        "--benchmarks", help="benchmarks YAML (default: $HUM_BENCHMARKS or assets/benchmarks.yaml)"
    )
    plan.add_argument("--train-mfu", type=float, help="assumed training MFU (default 0.35)")
    plan.add_argument("--eval-mfu", type=float, help="assumed evaluation MFU (default 0.10)")
    plan.add_argument("--no-gpu", action="store_true", help="LLM steps only")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.set_defaults(func=cmd_plan)
    return plan


def _sizes(values: list[str] | None) -> dict[str, tuple[float, int, int]]:
    from hum_dagster.operations.plan import MODEL_SIZES

    out = {}
    for value in values or ["smollm2-135m", "8b"]:
        name, sep, params = value.partition("=")
        if sep:
            out[name] = (float(params), 0, 0)
        elif name.lower() in MODEL_SIZES:
            out[name.lower()] = MODEL_SIZES[name.lower()]
        else:
            raise SystemExit(
                f"unknown model size {value!r}: use {', '.join(MODEL_SIZES)} or NAME=PARAMS"
            )
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    import dataclasses

    from hum_dagster.cli.instance import hum_home, settings_env

    env = settings_env(hum_home(), {"HUM_CATALOG": args.catalog, "HUM_STORAGE_ROOT": args.storage_root})
    from hum_dagster.corpus.tokens import load_tokenizer
    from hum_dagster.defs.resources.llm import llm_resource_now
    from hum_dagster.defs.resources.settings import mix_config, read_catalogs
    from hum_dagster.operations.plan import Assumptions, make_plan, plan_json
    from hum_dagster.readers.catalog import CatalogError
    from hum_dagster.store import layout

    root = env["HUM_STORAGE_ROOT"]
    try:  # the corpus estimate mixes as the code location will (HUM_MIX_MODE, HUM_MIX_TOTAL)
        mix = mix_config(env.get("HUM_MIX_MODE") or "fill", env.get("HUM_MIX_TOTAL") or 0,
                         compound=env.get("HUM_MIX_COMPOUND") or "all", seed=args.seed)
    except ValueError as exc:
        print(f"hum plan: settings: {exc}", file=sys.stderr)
        return 2
    try:
        entries = read_catalogs(env["HUM_CATALOG"])
    except CatalogError as exc:
        print(f"hum plan: catalog error: {exc}", file=sys.stderr)
        return 2
    names = sorted(entries)
    if args.sources:
        unknown = sorted(set(args.sources) - set(names))
        if unknown:
            print(f"unknown sources: {', '.join(unknown)}; the catalog has {', '.join(names)}")
            return 2
        names = [n for n in names if n in args.sources]
    resource = llm_resource_now(env)
    config = resource.client_config()
    cache_root = resource.resolve_cache_root(layout.llm_cache_dir(root))
    assumptions = Assumptions()
    if args.train_mfu:
        assumptions = dataclasses.replace(assumptions, train_mfu=args.train_mfu)
    if args.eval_mfu:
        assumptions = dataclasses.replace(assumptions, eval_mfu=args.eval_mfu)
    benchmarks = []
    if not args.no_gpu:
        from hum_dagster.evaluation.benchmarks import load_benchmarks

        try:
            benchmarks = [b.entry for b in load_benchmarks(args.benchmarks).values()]
        except (OSError, ValueError) as exc:
            print(f"benchmarks not read ({exc}): evaluation left out", file=sys.stderr)
    plan = make_plan(
        [entries[n] for n in names],
        config,
        cache_root,
        load_tokenizer(args.tokenizer),
        seed=args.seed,
        assumptions=assumptions,
        models=_sizes(args.model_size),
        benchmarks=benchmarks,
        mix_config=mix,
        gpu=not args.no_gpu,
        examples=bool(resource.dictionary_examples),
    )
    print(plan_json(plan) if args.format == "json" else plan.to_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hum")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["plan", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
