"""A table's corpus keys made beforehand (``corpus.keys.table_keys``) and read by the
corpus instead of scanning the table: the same corpus, removed rows and report as a
scan, whichever tables have them; and they serve only the bytes and settings they were
made from (``keys.usable``)."""

from __future__ import annotations

import polars as pl
import pytest
from test_corpus_parallel_scan import comparable, config, index, tables, tokenizer  # noqa: F401

from hum_dagster.corpus.build import build_hum_corpus
from hum_dagster.corpus.decontam import BenchmarkIndex, DecontamConfig
from hum_dagster.corpus.keys import (
    StoredKeys,
    file_digest,
    keys_fingerprint,
    table_keys,
    usable,
)


def stored_keys(tmp_path, paths, cfg, tok, idx, which):
    """Per table: its keys written to Parquet and scanned back for the tables in
    ``which``, None for the others."""
    out = []
    for i, path in enumerate(paths):
        if i not in which:
            out.append(None)
            continue
        target = tmp_path / f"keys{i}.parquet"
        table_keys(pl.scan_parquet(path), cfg, tok, idx).write_parquet(target)
        out.append(pl.scan_parquet(target))
    return out


@pytest.mark.parametrize(("workers", "which"), [(1, {0, 1, 2, 3}), (1, {1, 3}), (2, {0, 2})])
def test_stored_keys_build_the_corpus_of_a_scan(tmp_path, tokenizer, index, workers, which):  # noqa: F811
    paths = tables(tmp_path)
    scanned = build_hum_corpus([pl.scan_parquet(p) for p in paths], config(1),
                               tokenizer=tokenizer, benchmark_index=index)
    keys = stored_keys(tmp_path, paths, config(1), tokenizer, index, which)
    built = build_hum_corpus([pl.scan_parquet(p) for p in paths], config(workers),
                             tokenizer=tokenizer, benchmark_index=index, stored_keys=keys)
    assert built.rows.equals(scanned.rows)
    assert built.removed.equals(scanned.removed)
    assert set(built.removed["reason"]) == {"near_duplicate", "exact_duplicate", "contaminated",
                                            "too_long"}
    assert built.report["keys_tables"] == {"stored": len(which)}
    assert "stored_keys_s" in built.report["timings_s"]
    # the distinct inputs are counted over stored and scanned tables alike
    assert built.report["decontam_distinct_inputs"] == scanned.report["decontam_distinct_inputs"]
    # what differs is what this run did: tables read, not scanned; fewer texts encoded
    measured = ("keys_tables", "texts_tokenized")
    if 3 in which:  # the table with the text over the token limit
        assert built.report["texts_tokenized"] < scanned.report["texts_tokenized"]
    assert comparable({k: v for k, v in built.report.items() if k not in measured}) == (
        comparable({k: v for k, v in scanned.report.items() if k not in measured})
    )


def test_a_table_without_train_rows_has_empty_keys(tmp_path, tokenizer, index):  # noqa: F811
    paths = tables(tmp_path)
    test_only = pl.read_parquet(paths[0]).with_columns(pl.lit("test").alias("mode")).lazy()
    empty = table_keys(test_only, config(1), tokenizer, index)
    assert empty.height == 0
    built = build_hum_corpus([test_only, pl.scan_parquet(paths[1])], config(1),
                             tokenizer=tokenizer, benchmark_index=index,
                             stored_keys=[empty, None])
    alone = build_hum_corpus([pl.scan_parquet(paths[1])], config(1), tokenizer=tokenizer,
                             benchmark_index=index)
    assert built.rows.height and built.rows.equals(alone.rows)


def test_keys_serve_only_their_table_and_settings(tmp_path, tokenizer, index):  # noqa: F811
    paths = tables(tmp_path)
    cfg = config(1)
    fp = keys_fingerprint(cfg, tokenizer, index)
    keys = StoredKeys(pl.LazyFrame(), fp, file_digest(paths[1]))
    assert usable(keys, fp, paths[1]) == (True, "")
    assert usable(None, fp, paths[1])[0] is False
    # another version of the table: its bytes changed
    ok, why = usable(keys, fp, paths[2])
    assert not ok and "another version of the table" in why
    # the settings the keys depend on
    other_index = BenchmarkIndex.build([("c3", "zh", "另一个基准文本里的一句话而已")], DecontamConfig())
    changed = [
        keys_fingerprint(config(1, seed=7), tokenizer, index),
        keys_fingerprint(config(1, max_input_tokens=900), tokenizer, index),
        keys_fingerprint(cfg, None, index),
        keys_fingerprint(cfg, tokenizer, other_index),
        keys_fingerprint(cfg, tokenizer, None),
    ]
    for other in changed:
        ok, why = usable(keys, other, paths[1])
        assert not ok and "other settings" in why
    assert len(set(changed)) == len(changed)
    # what does not change a key: the variant, the workers, the memory limit
    assert keys_fingerprint(config(2, variant="no_guidelines", memory_mb=64), tokenizer,
                            index) == fp
