"""The synthesis graph end to end on S3 (moto's server on loopback): sources read from
S3, every output, the LLM cache directory and the corpus export written to S3, and a
second run from S3 giving the same outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from hum_dagster.paths import DEFAULT_CATALOG

SOURCES = ("ner_en_conll", "re_zh_iepile", "tc_en_csv")


def _s3_catalog(fs, bucket: str, tmp_path) -> str:
    shipped = {s["name"]: s for s in yaml.safe_load(DEFAULT_CATALOG.read_text())["sources"]}
    entries = []
    for name in SOURCES:
        entry = dict(shipped[name])
        for key in ("location",):
            local = DEFAULT_CATALOG.parent / entry[key]
            fs.put_file(str(local), f"{bucket}/sources/{local.name}")
            entry[key] = f"s3://{bucket}/sources/{local.name}"
        options = dict(entry.get("options") or {})
        if "schema" in options:
            local = DEFAULT_CATALOG.parent / options["schema"]
            fs.put_file(str(local), f"{bucket}/sources/{local.name}")
            options["schema"] = f"s3://{bucket}/sources/{local.name}"
        entry["options"] = options
        entries.append(entry)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": entries}), encoding="utf-8")
    return str(path)


def _run(tmp_path, env_extra: dict, catalog: str, root: str, home: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra, HUM_HOME=home)
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "hum_dagster.cli.main", "run", "--catalog", catalog,
         "--storage-root", root, "--skip-eval", "--corpus-variants", "full"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_synthesis_graph_on_s3_and_rerun_from_s3(moto_s3, s3_bucket, tmp_path):
    import s3fs

    env = moto_s3
    fs = s3fs.S3FileSystem()
    bucket = s3_bucket.removeprefix("s3://")
    catalog = _s3_catalog(fs, bucket, tmp_path)
    root = f"{s3_bucket}/run"
    first = _run(tmp_path, env, catalog, root, str(tmp_path / "home1"))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"{len(SOURCES)}/{len(SOURCES)} sources ok" in first.stdout

    for name in SOURCES:
        for asset in ("raw_sources", "basic_instructions", "schema_dictionary"):
            assert fs.exists(f"{bucket}/run/{asset}/{name}.parquet"), (asset, name)
        assert fs.exists(f"{bucket}/run/compound_instructions/description/{name}.parquet")
    export = f"{bucket}/run/export/full"
    assert {"dataset_info.json", "hum_train.jsonl", "hum_train.openai.jsonl"} <= {
        p.rsplit("/", 1)[-1] for p in fs.ls(export)
    }
    assert not [p for p in fs.find(f"{bucket}/run") if ".tmp-" in p]  # nothing half-written
    before = {p: fs.cat_file(p) for p in fs.find(f"{bucket}/run") if p.endswith((".parquet", ".jsonl"))}

    # A second run from S3, on a fresh Dagster instance, gives the same bytes.
    second = _run(tmp_path, env, catalog, root, str(tmp_path / "home2"))
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    after = {p: fs.cat_file(p) for p in before}
    changed = sorted(p for p in before if before[p] != after[p])
    assert not changed, changed
