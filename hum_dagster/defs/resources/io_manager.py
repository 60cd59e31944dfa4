"""An IO manager for ``Table`` values: one Parquet file per asset partition.

Why our own and not dagster-polars / dagster-duckdb-polars: both fail with the
polars 2.x and duckdb 2.0 we pin (see DESIGN.md), and what we need is small:
atomic writes, Parquet footer metadata, local or ``s3://`` roots.
"""

from __future__ import annotations

import dagster as dg

from hum_dagster.store import fsio
from hum_dagster.store.tables import LazyTable, Table, TableRef, read_table, write_table


class TableIOManager(dg.ConfigurableIOManager):
    """Stores ``<root>/<asset key path>/<partition>.parquet`` (``data.parquet`` if unpartitioned).

    A multi-dimensional partition becomes Hive-style folders, e.g.
    ``compound_instructions/source=ner_en/strategy=description.parquet``.
    """

    root: str

    def path_for(self, asset_key: dg.AssetKey, partition_key: str | None) -> str:
        if not partition_key:
            return fsio.join(self.root, *asset_key.path, "data.parquet")
        dims = getattr(partition_key, "keys_by_dimension", None)
        if dims:
            parts = [f"{dim}={value}" for dim, value in sorted(dims.items())]
            return fsio.join(self.root, *asset_key.path, *parts[:-1], f"{parts[-1]}.parquet")
        return fsio.join(self.root, *asset_key.path, f"{partition_key}.parquet")

    def handle_output(self, context: dg.OutputContext, obj: Table | LazyTable | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, Table | LazyTable):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a Table, got {type(obj)}")
        partition = context.partition_key if context.has_asset_partitions else None
        path = self.path_for(context.asset_key, partition)
        write_table(path, obj)
        context.add_output_metadata({"path": dg.MetadataValue.path(path)})

    def load_input(self, context: dg.InputContext) -> Table | dict[str, TableRef]:
        key = context.asset_key
        if not context.has_asset_partitions:
            return read_table(self.path_for(key, None))
        keys = list(context.asset_partition_keys)
        downstream_partitioned = context.has_partition_key if hasattr(context, "has_partition_key") else False
        if len(keys) == 1 and downstream_partitioned:
            return read_table(self.path_for(key, keys[0]))
        # Many upstream partitions: references to those that exist, read when used (``.df``)
        # or streamed (``.scan()``), so that a fan-in over millions of rows does not load
        # them all. A missing or failed partition must not stop the others: it is skipped
        # with a warning. Files appear atomically, so an existing one is complete.
        tables: dict[str, TableRef] = {}
        for partition in keys:
            path = self.path_for(key, partition)
            if fsio.exists(path):
                tables[partition] = TableRef(path)
            else:
                context.log.warning(f"{key.to_user_string()}[{partition}] not materialized; skipped")
        return tables
