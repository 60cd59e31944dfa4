"""`hum run` in a temporary directory: a persistent instance, outputs, one bad source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from hum_dagster.paths import DEFAULT_CATALOG


def test_hum_run_persists_runs_and_isolates_a_broken_source(tmp_path):
    shipped = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))["sources"]
    good = [dict(s) for s in shipped[:2]]
    for source in good:
        source["location"] = str((DEFAULT_CATALOG.parent / source["location"]).resolve())
        for key, value in list(source.get("options", {}).items()):
            if key in ("schema", "pid2name"):
                source["options"][key] = str((DEFAULT_CATALOG.parent / value).resolve())
    broken_file = tmp_path / "broken.json"
    broken_file.write_bytes(b'{"text": "ok", "relation": []}\n\xff\xfe not utf-8\n')
    broken = {"name": "broken_source", "task": "RE", "language": "en", "format": "iepile",
              "location": str(broken_file)}
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"sources": [*good, broken]}), encoding="utf-8")

    env = dict(os.environ)
    env.pop("DAGSTER_HOME", None)
    env["HUM_HOME"] = str(tmp_path / "hum")
    proc = subprocess.run(
        [sys.executable, "-m", "hum_dagster.cli.main", "run", "--catalog", str(catalog),
         "--storage-root", str(tmp_path / "storage"), "--skip-eval"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # one source failed
    assert "broken_source" in out and "FAILED" in out
    assert str(broken_file) in out  # the error names the file
    assert "2/3 sources ok" in out
    assert "skipped (--skip-eval)" in out
    for source in good:
        assert (tmp_path / "storage" / "basic_instructions" / f"{source['name']}.parquet").exists()
    info = json.loads((tmp_path / "storage" / "export" / "full" / "dataset_info.json").read_text())
    assert "hum_train" in info
    assert (tmp_path / "storage" / "hum.duckdb").exists()

    # The runs live in the persistent instance that `hum dev` opens afterwards.
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "hum" / "dagster_home")))
    records = instance.fetch_materializations(dg.AssetKey("basic_instructions"), limit=10).records
    assert {r.partition_key for r in records} == {s["name"] for s in good}
    assert instance.get_latest_materialization_event(dg.AssetKey("hum_corpus")) is not None
