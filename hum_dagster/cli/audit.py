"""``hum audit``: lineage and staleness of the outputs, as Markdown or JSON tables.

Wired into ``hum`` by ``hum_dagster/cli/main.py``::

    from hum_dagster.cli import audit as audit_cli
    audit_cli.add_parser(sub)
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    audit = subparsers.add_parser(
        "audit",
        help="lineage audit: sources, dictionary entries, templates, LLM responses, staleness",
        description="Which sources (files and versions), schema-dictionary entries, template "
        "versions and cached LLM responses produced the corpus, a checkpoint or a score; "
        "instructions per source x task x strategy; which materializations are stale and why.",
    )
    audit.add_argument(
        "target",
        nargs="?",
        default="corpus",
        help="corpus (default) | instructions | checkpoint:<model>|<variant> | "
        "score:<model>|<benchmark>",
    )
    audit.add_argument("--format", choices=("md", "json"), default="md")
    audit.add_argument("--storage-root", help="folder or s3:// prefix (default: $HUM_STORAGE_ROOT)")
    audit.add_argument("--catalog")
    audit.add_argument(
        "--section",
        action="append",
        help="only these sections (sources, contributions, templates, "
        "dictionary_entries, llm_responses, stale, missing, materializations)",
    )
    audit.add_argument("--limit", type=int, default=None, help="rows per Markdown table")
    audit.add_argument(
        "--no-event-log",
        action="store_true",
        help="outputs only: skip the Dagster instance (staleness, missing partitions)",
    )
    audit.add_argument("--output", help="also write <output>.md and <output>.json")
    audit.set_defaults(func=cmd_audit)
    return audit


TARGETS = ("corpus", "instructions", "checkpoint:<model>|<variant>", "score:<model>|<benchmark>")
SECTIONS = (
    "sources", "contributions", "templates", "dictionary_entries", "llm_responses", "stale",
    "missing", "materializations", "score", "checkpoint",
)  # fmt: skip


def target_problem(target: str) -> str | None:
    """Why ``target`` is not an audit target (naming the valid ones), or None."""
    if target in ("corpus", "instructions"):
        return None
    kind, sep, partition = target.partition(":")
    if kind in ("checkpoint", "score") and sep:
        left, bar, right = partition.partition("|")
        if left and bar and right:
            return None
        shape = TARGETS[2] if kind == "checkpoint" else TARGETS[3]
        return f"target {target!r} must look like {shape}"
    return f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}"


def cmd_audit(args: argparse.Namespace) -> int:
    problem = target_problem(args.target)
    if problem is None and args.section:
        unknown = sorted(set(args.section) - set(SECTIONS))
        if unknown:
            problem = f"unknown sections {unknown}; valid sections: {', '.join(SECTIONS)}"
    if problem is not None:
        print(f"hum audit: error: {problem}", file=sys.stderr)
        return 2

    from hum_dagster.cli.instance import hum_home, open_instance, settings_env
    from hum_dagster.operations.audit import lineage, render_markdown

    home = hum_home()
    env = settings_env(home, {"HUM_CATALOG": args.catalog, "HUM_STORAGE_ROOT": args.storage_root})
    root = env["HUM_STORAGE_ROOT"]
    if args.no_event_log:
        audit = lineage(root, args.target)
    else:
        from hum_dagster.definitions import defs
        from hum_dagster.defs.operations.audit import full_audit

        instance = open_instance(home)
        audit = full_audit(instance, defs().resolve_asset_graph(), root, args.target)
    if args.section:
        audit.sections = [s for s in audit.sections if s.title in set(args.section)]
    if args.output:
        from hum_dagster.defs.operations.audit import write_audit

        write_audit(audit, args.output)
    if args.format == "json":
        json.dump(audit.to_json(), sys.stdout, ensure_ascii=False, indent=1, default=str)
        print()
    else:
        print(render_markdown(audit, args.limit))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hum")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
