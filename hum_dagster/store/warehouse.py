"""A DuckDB database with views over the Parquet outputs, for SQL over instructions."""

from __future__ import annotations

import os

import duckdb

from hum_dagster.store import fsio, layout
from hum_dagster.store.layout import VIEWS, warehouse_path

__all__ = ["VIEWS", "connect", "refresh_views", "warehouse_path"]


def connect(storage_root: str, database: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; ``s3://`` roots are read through the fsspec filesystem."""
    database = database or warehouse_path(storage_root)
    os.makedirs(os.path.dirname(database) or ".", exist_ok=True)
    con = duckdb.connect(database)
    if "://" in storage_root:
        fs, _ = fsio.filesystem(storage_root)
        con.register_filesystem(fs)
    return con


def refresh_views(storage_root: str, database: str | None = None) -> list[str]:
    """(Re)create a view per output whose Parquet files exist; return the view names."""
    database = database or warehouse_path(storage_root)
    # One writer at a time: DuckDB refuses a second process's connection while another
    # holds the file (concurrent corpus runs each refresh the views).
    with fsio.exclusive(f"{database}.lock"):
        return _refresh(storage_root, database)


def _refresh(storage_root: str, database: str) -> list[str]:
    con = connect(storage_root, database)
    created = []
    try:
        for view, folder in VIEWS.items():
            directory = layout.table_dir(storage_root, folder)
            fs, path = fsio.filesystem(directory)
            if not fs.exists(path) or not fs.glob(f"{path}/**/*.parquet"):
                con.execute(f"DROP VIEW IF EXISTS {view}")
                continue
            pattern = fsio.join(directory, "**", "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE OR REPLACE VIEW {view} AS "
                f"SELECT * FROM read_parquet('{pattern}', union_by_name = true, filename = true, hive_partitioning = false)"
            )
            created.append(view)
    finally:
        con.close()
    return created
