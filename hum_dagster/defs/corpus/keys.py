"""``corpus_keys/<table asset>``: each instruction table's corpus keys (``corpus.keys``),
made as soon as the table is written.

One keys asset per instruction asset (``basic_instructions`` and every
``compound_instructions/<strategy>``), on the same partitions definition and mapped by
identity, so an asset backfill runs a partition's keys in the run that writes its table
(no extra run), two such runs side by side, while the corpus run at the end reads the
keys instead of scanning every table again (and each corpus partition did so anew).

The keys depend on the corpus settings (seed, token limits, tokenizer, benchmark
index): ``hum_corpus`` uses a stored keys partition only where it was made from the
table it reads and under its own settings, and scans the others itself (it says how
many in ``keys_tables``), so stale keys cost time, never a wrong row.
"""

import json
import time

import dagster as dg

from hum_dagster.corpus.keys import (
    META_FINGERPRINT,
    META_TABLE_DIGEST,
    file_digest,
    keys_fingerprint,
    table_keys,
)
from hum_dagster.defs.corpus.setup import benchmark_index, corpus_config, corpus_tokenizer
from hum_dagster.defs.resources.settings import HumSettings
from hum_dagster.defs.synthesis.basic import basic_instructions
from hum_dagster.defs.synthesis.compound import compound_assets
from hum_dagster.store import fsio
from hum_dagster.store.tables import Table, TableRef

CORPUS_KEYS = "corpus_keys"


def keys_key(table: dg.AssetKey) -> dg.AssetKey:
    return dg.AssetKey([CORPUS_KEYS, *table.path])


def build_keys_asset(table_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    table_key = table_asset.key

    @dg.asset(
        key=keys_key(table_key),
        partitions_def=table_asset.partitions_def,
        group_name="corpus",
        kinds={"polars", "parquet"},
        description=f"The corpus keys of `{table_key.to_user_string()}`: per train-mode row "
        "its exact and near-duplicate keys, token counts, split and rank keys and "
        "contamination flag (no text), read by `hum_corpus` instead of scanning the table.",
        ins={"table": dg.AssetIn(key=table_key, partition_mapping=dg.IdentityPartitionMapping())},
        code_version="1",
    )
    def _keys(settings: HumSettings, table: TableRef) -> dg.MaterializeResult:
        started = time.perf_counter()
        config = corpus_config(settings)
        tokenizer = corpus_tokenizer(settings)
        index, index_status = benchmark_index()
        digest = file_digest(fsio.local_copy(table.path))
        scan: dict = {}
        frame = table_keys(table.scan(), config, tokenizer, index, report=scan)
        fingerprint = keys_fingerprint(config, tokenizer, index)
        seconds = time.perf_counter() - started
        return dg.MaterializeResult(
            value=Table(frame, {META_FINGERPRINT: fingerprint, META_TABLE_DIGEST: digest}),
            metadata={
                "train_rows": frame.height,
                "table_digest": digest,
                "settings": dg.MetadataValue.json(json.loads(fingerprint)),
                "decontamination": index_status,
                "timings_s": dg.MetadataValue.json(scan.get("timings_s", {})),
                "texts_tokenized": scan.get("texts_tokenized", 0),
                "rows_per_second": round(frame.height / seconds, 1) if seconds > 0 else 0.0,
                "dagster/row_count": frame.height,
            },
        )

    return _keys


keys_assets = [build_keys_asset(a) for a in (basic_instructions, *compound_assets)]
# instruction asset -> its keys asset
KEYS_OF = {a.key: keys_key(a.key) for a in (basic_instructions, *compound_assets)}
