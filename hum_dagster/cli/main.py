"""The ``hum`` command: run the main job, open the UI, convert IEPile files, query SQL."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from hum_dagster.cli import audit as audit_cli
from hum_dagster.cli import run as run_cli
from hum_dagster.cli.instance import hum_home, open_instance, settings_env
from hum_dagster.paths import PROJECT_DIR


def dev_workspace(home: Path) -> Path:
    """A workspace file for ``dagster dev``: the code location, named as ``hum run``'s."""
    import yaml

    path = home / "workspace-dev.yaml"
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "hum_dagster.definitions", "working_directory": str(PROJECT_DIR),
        "location_name": "hum_dagster"}}]}), encoding="utf-8")
    return path


def cmd_dev(args: argparse.Namespace) -> int:
    """``dagster dev`` on the instance and settings ``hum run`` uses; other flags (``-h``
    host, ``-p`` port, ...) go to ``dagster dev``."""
    home = hum_home()
    env = settings_env(home, {"HUM_CATALOG": args.catalog, "HUM_STORAGE_ROOT": args.storage_root})
    open_instance(home)  # the instance folder and its pool limits
    dagster = shutil.which("dagster") or str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-w", str(dev_workspace(home)), *args.dagster_args]
    os.chdir(home)  # so that dagster dev loads no .env over the settings given here
    os.execve(dagster, command, env)
    return 0


def duckdb_message(exc: Exception) -> str:
    """DuckDB's error in one line: the message and its hint, without the SQL excerpt."""
    head = str(exc).split("\n\n", 1)[0]
    return " ".join(part.strip() for part in head.splitlines() if part.strip())


def cmd_sql(args: argparse.Namespace) -> int:
    """Run SQL against the DuckDB views over the outputs."""
    env = settings_env(hum_home(), {"HUM_STORAGE_ROOT": args.storage_root})
    import duckdb

    from hum_dagster.store.warehouse import VIEWS, connect, refresh_views

    root = env["HUM_STORAGE_ROOT"]
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

    run_cli.add_parser(sub)

    dev = sub.add_parser(
        "dev", add_help=False,
        help="open the Dagster UI on the instance `hum run` uses (other flags, -h included, "
        "go to dagster dev)",
    )
    dev.add_argument("--help", action="help", help="show this help and exit")
    dev.add_argument("--catalog")
    dev.add_argument("--storage-root")
    dev.set_defaults(func=cmd_dev)

    sql = sub.add_parser("sql", help="query the outputs with DuckDB SQL")
    sql.add_argument("query")
    sql.add_argument("--storage-root")
    sql.set_defaults(func=cmd_sql)

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
