"""The ``base_eval`` pool: ``hum`` gives the instance its limit (keeping one a user set),
and with the real daemon and code server the base-model evaluations run one at a time
however many run slots are free."""

from __future__ import annotations

import time

import dagster as dg
import yaml

from hum_dagster.cli.instance import open_instance, prepare_instance, settings_env
from hum_dagster.cli.run import submit
from hum_dagster.cli.services import Services
from hum_dagster.defs.resources.pools import BASE_EVAL_POOL, ensure_pool_limits
from hum_dagster.paths import PROJECT_DIR


def _limits(instance) -> dict[str, tuple[int, bool]]:
    return {p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()}


def test_the_instance_gets_the_pool_limit_and_keeps_one_set_by_hand(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    prepare_instance(tmp_path / "eight", cores=8)
    eight = open_instance(tmp_path / "eight")
    assert _limits(eight)[BASE_EVAL_POOL] == (4, False)  # half the run slots
    eight.dispose()
    prepare_instance(tmp_path, cores=2)
    instance = open_instance(tmp_path)
    assert _limits(instance)[BASE_EVAL_POOL] == (1, False)
    instance.event_log_storage.set_concurrency_slots(BASE_EVAL_POOL, 3)  # as the CLI or UI would
    instance.dispose()
    again = open_instance(tmp_path)
    assert _limits(again)[BASE_EVAL_POOL] == (3, False)
    assert ensure_pool_limits(again) == {}
    again.dispose()


def test_only_the_base_model_evaluations_are_in_the_pool():
    graph = _graph()
    pooled = {key.to_user_string() for key in graph.get_all_asset_keys()
              if BASE_EVAL_POOL in (graph.get(key).pools or set())}
    assert pooled == {"eval_scores", "general_scores"}


def test_base_model_evaluations_never_share_the_run_slots(tmp_path, monkeypatch, shared_data):
    """Three evaluation partitions, three run slots (the pool's limit: 1). Without the pool
    the daemon dequeues all three at once; with it, each run is dequeued after the one
    before has ended. The model is an OpenAI-compatible endpoint (the loopback server) that
    answers after 2 s, so that each run lasts long enough for runs side by side to overlap.
    It has the default model's name, so the partition keys are those of this process's
    graph; the code server and the runs read its model list from ``HUM_MODELS``."""
    from openai_server import LoopbackOpenAI

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "hum"
    with LoopbackOpenAI() as server:
        server.latency = 2.0
        models = tmp_path / "models.yaml"
        models.write_text(yaml.safe_dump({"models": [{
            "name": "smollm2_base", "backend": "openai", "model": "test-model",
            "base_url": server.base_url, "api_key_env": "HUM_FAKE_KEY"}]}), encoding="utf-8")
        env = settings_env(home, {"HUM_STORAGE_ROOT": str(tmp_path / "storage")})
        env.update(HUM_MODELS=str(models), HUM_FAKE_KEY="k", HUM_SHARED_DATA=str(shared_data))
        prepare_instance(home, cores=3)
        instance = open_instance(home)
        graph = _graph()
        todo = {dg.AssetKey("eval_scores"): [
            dg.MultiPartitionKey({"model": "smollm2_base", "benchmark": b}) for b in ("c3", "fewrel", "imdb")]}
        config = {"resources": {"eval_settings": {"config": {"sample_size": 1, "max_new_tokens": 8}}}}
        with Services(home, env, project=PROJECT_DIR, daemon_interval=1):
            backfill = submit(instance, graph, todo, config)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill}))
                if len(records) == 3 and all(r.dagster_run.is_finished for r in records):
                    break
                time.sleep(1)
        assert server.chat_requests(), "the evaluations asked the endpoint nothing"
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill}))
    statuses = [r.dagster_run.status for r in records]
    assert statuses == [dg.DagsterRunStatus.SUCCESS] * 3, statuses
    # a run holds its slot from the moment the daemon dequeues it: so from dequeue to end
    spans = sorted((_dequeued(instance, r.dagster_run.run_id), r.end_time) for r in records)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans
    instance.dispose()


def _graph():
    from hum_dagster.definitions import defs

    return defs().get_repository_def().asset_graph


def _dequeued(instance, run_id: str) -> float:
    (event,) = [e for e in instance.all_logs(run_id)
                if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_STARTING"]
    return event.timestamp
