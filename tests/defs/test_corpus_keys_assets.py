"""The ``corpus_keys/...`` assets: one per instruction asset, on its partitions; and which
stored keys ``hum_corpus`` takes (``defs.corpus.assets.stored_keys``): only those of the
table's bytes and of the corpus's settings, the other tables scanned, with the reason."""

from __future__ import annotations

import dagster as dg
import polars as pl

from hum_dagster.corpus.keys import META_FINGERPRINT, META_TABLE_DIGEST, file_digest
from hum_dagster.defs.corpus.assets import CORPUS_INS, KEYS_INS, hum_corpus, stored_keys
from hum_dagster.defs.corpus.keys import keys_assets, keys_key
from hum_dagster.defs.synthesis.basic import basic_instructions
from hum_dagster.defs.synthesis.compound import compound_assets
from hum_dagster.store.tables import Table, TableRef, write_table


def test_every_instruction_asset_has_keys_on_its_partitions():
    tables = {a.key: a for a in (basic_instructions, *compound_assets)}
    keys = {a.key: a for a in keys_assets}
    assert set(keys) == {keys_key(k) for k in tables}
    for key, table in tables.items():
        mine = keys[keys_key(key)]
        assert mine.partitions_def is table.partitions_def  # the same runs in a backfill
        assert set(mine.dependency_keys) == {key}
    # the corpus reads every table and its keys
    assert set(hum_corpus.dependency_keys) == set(CORPUS_INS.values()) | set(KEYS_INS.values())
    assert dg.AssetKey("corpus_keys") not in {k.path[0] for k in keys}


def _write(path, frame, meta=None) -> TableRef:
    write_table(str(path), Table(frame, meta or {}))
    return TableRef(str(path))


def test_the_corpus_takes_only_keys_of_its_table_and_settings(tmp_path):
    names = list(CORPUS_INS)
    basic, other = names[0], names[1]
    table = lambda n, x: _write(tmp_path / n, pl.DataFrame({"x": [x]}))  # noqa: E731
    t_a, t_b, t_c, t_d = table("a.parquet", 1), table("b.parquet", 2), table("c.parquet", 3), table(
        "d.parquet", 4
    )
    keys = pl.DataFrame({"_row": [0]})

    def keyed(name, of: TableRef, fingerprint="fp"):
        return _write(tmp_path / name, keys,
                      {META_FINGERPRINT: fingerprint, META_TABLE_DIGEST: file_digest(of.path)})

    k_a = keyed("ka.parquet", t_a)
    k_b = keyed("kb.parquet", t_b, fingerprint="other settings")
    k_c = keyed("kc.parquet", t_c)
    # table c was written again after its keys were made
    write_table(t_c.path, Table(pl.DataFrame({"x": [30]})))
    upstream = {n: {} for n in [*CORPUS_INS, *KEYS_INS]}
    upstream[basic] = {"s1": t_a, "s2": t_b, "s3": t_c}
    upstream[f"keys__{basic}"] = {"s1": k_a, "s2": k_b, "s3": k_c}
    upstream[other] = {"s1": t_d}  # no keys stored for it
    stored, why = stored_keys(upstream, "fp")
    assert len(stored) == 4
    assert stored[0] is not None and stored[0].collect().equals(keys)
    assert stored[1:] == [None, None, None]
    assert why == {
        "stored keys were made under other settings": 1,
        "stored keys are of another version of the table": 1,
        "no stored keys": 1,
    }
