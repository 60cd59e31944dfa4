"""An IO manager for ``Table`` values: one Parquet file per asset partition.

Why our own and not dagster-polars / dagster-duckdb-polars: both fail with the
polars 2.x and duckdb 2.0 we pin (see DESIGN.md), and what we need is small:
atomic writes, Parquet footer metadata, local or ``s3://`` roots. The paths are
``hum_dagster.store.layout``'s.
"""

from __future__ import annotations

import dagster as dg

from hum_dagster.store import fsio, layout
from hum_dagster.store.tables import LazyTable, Table, TableRef, read_table, write_table


class TableIOManager(dg.ConfigurableIOManager):
    """Stores ``<root>/<asset key path>/<partition>.parquet`` (``data.parquet`` if unpartitioned).

    A multi-dimensional partition becomes Hive-style folders, e.g.
    ``eval_scores/benchmark=imdb/model=smollm2_base.parquet``. An input annotated
    ``TableRef`` is handed over unread (a check that needs only the row count).
    """

    root: str  # HUM_STORAGE_ROOT

    def path_for(self, asset_key: dg.AssetKey, partition_key: str | None) -> str:
        dims = getattr(partition_key, "keys_by_dimension", None)
        return layout.table_path(self.root, asset_key.path, dims or partition_key or None)

    def handle_output(self, context: dg.OutputContext, obj: Table | LazyTable | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, Table | LazyTable):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a Table, got {type(obj)}")
        partition = context.partition_key if context.has_asset_partitions else None
        path = self.path_for(context.asset_key, partition)
        write_table(path, obj)
        context.add_output_metadata({"path": dg.MetadataValue.path(path)})

    def load_input(self, context: dg.InputContext) -> Table | TableRef | dict[str, TableRef]:
        key = context.asset_key
        lazy = getattr(context.dagster_type, "typing_type", None) is TableRef
        if not context.has_asset_partitions:
            path = self.path_for(key, None)
            return TableRef(path) if lazy else read_table(path)
        keys = list(context.asset_partition_keys)
        # The same partition (identity mapping): that table. Anything else is a fan-in
        # (all partitions, even when only one exists): references by partition.
        same = context.has_partition_key and len(keys) == 1 and str(keys[0]) == str(context.partition_key)
        if same:
            path = self.path_for(key, keys[0])
            if lazy:
                if not fsio.exists(path):
                    raise FileNotFoundError(f"{key.to_user_string()}[{keys[0]}] is not stored: {path}")
                return TableRef(path)
            return read_table(path)
        # Many upstream partitions: references to those that exist, read when used (``.df``)
        # or streamed (``.scan()``), so that a fan-in over millions of rows does not load
        # them all. Which of them may be used is the asset's decision (the corpus refuses
        # failed, blocked or outdated ones); files appear atomically, so an existing one is
        # complete.
        tables: dict[str, TableRef] = {}
        for partition in keys:
            path = self.path_for(key, partition)
            if fsio.exists(path):
                tables[partition] = TableRef(path)
        return tables
