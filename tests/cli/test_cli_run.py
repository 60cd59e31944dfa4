"""`hum run` in a temporary directory: one asset backfill on a persistent instance run by
the daemon and code server it starts; one bad source; readable errors; re-runs do only
what is missing, failed or stale; a killed run is marked failed and the next run resumes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from hum_dagster.defs.synthesis.partitions import compound_partitions
from hum_dagster.paths import DEFAULT_CATALOG
from hum_dagster.synthesis.strategies import applicable


def _entries(names: list[str]) -> list[dict]:
    shipped = {s["name"]: s for s in yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))["sources"]}
    out = []
    for name in names:
        source = json.loads(json.dumps(shipped[name]))
        source["location"] = str((DEFAULT_CATALOG.parent / source["location"]).resolve())
        for key, value in list(source.get("options", {}).items()):
            if key in ("schema", "pid2name"):
                source["options"][key] = str((DEFAULT_CATALOG.parent / value).resolve())
        out.append(source)
    return out


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUM_", "DAGSTER_"))}
    env["HUM_HOME"] = str(tmp_path / "hum")
    env.update(extra)
    return env


def hum(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "hum_dagster.cli.main", *args],
        cwd=tmp_path, env=env or _env(tmp_path), capture_output=True, text=True, timeout=timeout,
    )


def _instance(tmp_path: Path) -> DagsterInstance:
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "hum" / "dagster_home")))


def test_catalog_errors_are_one_readable_line(tmp_path):
    bad = tmp_path / "catalog.yaml"
    bad.write_text("sources:\n  - name: x\n    task: NER\n", encoding="utf-8")
    proc = hum(tmp_path, "run", "--catalog", str(bad), "--skip-eval", timeout=120)
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "missing" in lines[0], lines
    assert "Traceback" not in proc.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("sources: []\n", encoding="utf-8")
    proc = hum(tmp_path, "run", "--catalog", str(empty), "--skip-eval", timeout=120)
    assert proc.returncode == 2 and "lists no sources" in proc.stdout, proc.stdout + proc.stderr
    proc = hum(tmp_path, "run", "--catalog", str(DEFAULT_CATALOG), "--sources", "nope", timeout=120)
    assert proc.returncode == 2 and "unknown sources: nope" in proc.stdout
    proc = hum(tmp_path, "run", "--corpus-variants", "full", "nope", "--skip-eval", timeout=120)
    assert proc.returncode == 2 and "unknown corpus variants: nope" in proc.stdout, proc.stdout


def test_corpus_variants_limit_the_planned_corpus_partitions():
    from argparse import Namespace

    from hum_dagster.cli.run import planned_partitions
    from hum_dagster.corpus.mix import VARIANTS
    from hum_dagster.definitions import defs

    graph = defs().get_repository_def().asset_graph
    instance = DagsterInstance.ephemeral()
    corpus = dg.AssetKey("hum_corpus")
    args = Namespace(skip_eval=True, all_variants=False, corpus_variants=["full"])
    assert planned_partitions(graph, instance, [], [], args)[corpus] == ["full"]
    args.corpus_variants = None
    assert sorted(planned_partitions(graph, instance, [], [], args)[corpus]) == sorted(VARIANTS)
    from hum_dagster.defs.synthesis.partitions import sync_partitions
    from hum_dagster.readers.catalog import load_catalog

    entries = load_catalog(str(DEFAULT_CATALOG))
    sync_partitions(instance, entries)
    names = [e.name for e in entries]
    args.synthesis_only = True
    wanted = {k.path[0] for k in planned_partitions(graph, instance, names, [], args)}
    assert "hum_corpus" not in wanted and "compound_instructions" in wanted


def test_hum_dev_keeps_dash_h_for_dagster():
    from hum_dagster.cli.main import build_parser

    args, extra = build_parser().parse_known_args(["dev", "-h", "0.0.0.0", "-p", "3001"])
    assert args.command == "dev" and extra == ["-h", "0.0.0.0", "-p", "3001"]
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_known_args(["dev", "--help"])
    assert exc.value.code == 0


@pytest.mark.slow
def test_hum_run_is_one_backfill_isolates_a_broken_source_and_reruns_only_what_is_missing(tmp_path):
    good = _entries(["ner_en_conll", "tc_en_csv"])
    broken_file = tmp_path / "broken.json"
    broken_file.write_bytes(b'{"text": "ok", "relation": []}\n\xff\xfe not utf-8\n')
    broken = {"name": "broken_source", "task": "RE", "language": "en", "format": "iepile",
              "location": str(broken_file)}
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"sources": [*good, broken]}), encoding="utf-8")
    storage = tmp_path / "storage"

    proc = hum(tmp_path, "run", "--catalog", str(catalog), "--storage-root", str(storage), "--skip-eval")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # one source failed
    failed = [line for line in out.splitlines() if line.strip().startswith("FAILED ")]
    assert any("raw_sources[broken_source]" in line and str(broken_file) in line for line in failed), out
    assert "2/3 sources ok" in out
    assert "skipped (--skip-eval)" in out
    assert "Traceback" not in out  # stack traces go to the log whose path is printed
    log = re.search(r"stack traces:\s+(\S+)", out).group(1)
    assert "Traceback" in Path(log).read_text() or "Stack Trace" in Path(log).read_text()
    backfill = re.search(r"backfill:\s+(\w+)", out).group(1)
    assert f"/runs/b/{backfill}" in out
    for source in good:
        assert (storage / "basic_instructions" / f"{source['name']}.parquet").exists()
    # the corpus is a fan-in over every source: it is not built while one fails, and says so
    assert not (storage / "export" / "full" / "dataset_info.json").exists()
    assert "corpus full: not built" in out

    instance = _instance(tmp_path)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill}))
    # a source's compound strategies that share a partitions definition share one run
    compound = [
        sorted(k.path[-1] for k in r.asset_selection)
        for r in runs
        if r.tags.get("dagster/partition") == "ner_en_conll"
        and any(k.path[0] == "compound_instructions" for k in r.asset_selection)
    ]
    groups: dict[str, list[str]] = {}
    for strategy in applicable("NER"):
        groups.setdefault(compound_partitions[strategy].name, []).append(strategy)
    assert sorted(compound) == sorted(sorted(g) for g in groups.values())
    assert len(compound) == 3 < len(applicable("NER"))
    # ordinary runs of the code location: a job origin (the UI's job pages and timeline)
    assert all(r.remote_job_origin is not None for r in runs)
    assert {r.remote_job_origin.location_name for r in runs} == {"hum_dagster"}
    records = instance.fetch_materializations(dg.AssetKey("basic_instructions"), limit=10).records
    assert {r.partition_key for r in records} == {s["name"] for s in good}
    before = {r.partition_key: r.storage_id for r in records}

    # the source is fixed: the next run materializes it and what depends on it, nothing else
    shutil.copyfile(DEFAULT_CATALOG.parent / "samples" / "iepile_re_zh.json", broken_file)
    broken["options"] = {"schema": str(DEFAULT_CATALOG.parent / "samples" / "iepile_re_zh.schema.json")}
    catalog.write_text(yaml.safe_dump({"sources": [*good, broken]}), encoding="utf-8")
    again = hum(tmp_path, "run", "--catalog", str(catalog), "--storage-root", str(storage), "--skip-eval")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "3/3 sources ok" in out
    info = json.loads((storage / "export" / "full" / "dataset_info.json").read_text())
    assert "hum_train" in info
    records = instance.fetch_materializations(dg.AssetKey("basic_instructions"), limit=10).records
    after = {}
    for r in records:
        after.setdefault(r.partition_key, r.storage_id)
    assert {k: after[k] for k in before} == before  # the good sources were not redone
    assert "broken_source" in after
    # and a third run finds nothing to do
    third = hum(tmp_path, "run", "--catalog", str(catalog), "--storage-root", str(storage), "--skip-eval")
    assert third.returncode == 0 and "everything is up to date" in third.stdout, third.stdout
    instance.dispose()


@pytest.mark.slow
def test_a_killed_run_is_marked_failed_and_the_next_run_resumes(tmp_path):
    """`hum run` is killed (SIGKILL) while a run talks to a slow LLM endpoint (loopback
    server): its code server, daemon and run processes die with it. Run monitoring (the pid
    health check of LocalRunLauncher) marks the run failed: the next `hum run`'s daemon, or
    the dying one if it ticks in its last seconds. The next backfill finishes the job."""
    from openai_server import LoopbackOpenAI

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"sources": _entries(["ner_en_conll"])}), encoding="utf-8")
    answer = json.dumps({"descriptions": ["A label of the sample data."], "synonyms": ["tag"]})
    with LoopbackOpenAI() as server:
        rule = json.dumps({"description": "A person.", "original_rule": "Annotate names.",
                           "new_rule": "Annotate full names only.", "relabelled": {}})
        # dictionary prompts get a description, preference-rule prompts a rule of the right
        # shape: every LLM request is answered, so only the kill can fail the run
        server.default = {"kind": "by_prompt", "answers": [["Modification strategy", rule]],
                          "otherwise": answer}
        server.latency = 30.0  # the run is still waiting for answers when it is killed
        env = _env(tmp_path, HUM_LLM_MODE="live", HUM_LLM_BASE_URL=server.base_url,
                   HUM_LLM_MODEL="test-model", HUM_LLM_API_KEY_ENV="HUM_FAKE_KEY", HUM_FAKE_KEY="k",
                   HUM_LLM_MIN_ACCEPTED_PCT="0")  # the gates judge canned answers: not tested here
        args = [sys.executable, "-m", "hum_dagster.cli.main", "run", "--catalog", str(catalog),
                "--storage-root", str(tmp_path / "storage"), "--skip-eval"]
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            killed = _started_run_talking_to_the_llm(tmp_path, server)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        instance = _instance(tmp_path)
        time.sleep(5)  # the services notice their parent is gone and end (SIGKILL)
        # left STARTED, unless the dying daemon's run monitoring got to it in its last 2 s
        assert instance.get_run_by_id(killed).status in (dg.DagsterRunStatus.STARTED,
                                                         dg.DagsterRunStatus.FAILURE)
        server.latency = 0.0
        again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert (tmp_path / "storage" / "schema_dictionary" / "ner_en_conll.parquet").exists()
        run = instance.get_run_by_id(killed)
        assert run.status == dg.DagsterRunStatus.FAILURE, run.status
        messages = [e.message for e in instance.all_logs(killed) if e.message]
        assert any("is gone" in m for m in messages), "\n".join(messages[-8:])
        instance.dispose()


def _started_run_talking_to_the_llm(tmp_path: Path, server, timeout: float = 240) -> str:
    """The id of the STARTED run while the LLM is being asked."""
    deadline = time.monotonic() + timeout
    home = tmp_path / "hum" / "dagster_home"
    while time.monotonic() < deadline:
        if server.chat_requests() and (home / "dagster.yaml").exists():
            instance = _instance(tmp_path)
            runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            instance.dispose()
            if runs:
                return runs[0].run_id
        time.sleep(0.2)
    raise AssertionError("no run talked to the LLM in time")
