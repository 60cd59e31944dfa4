"""The vllm evaluation backend wired end to end: ``finetuned_eval_scores`` writes the prompts to
storage, launches the real ``hum_dagster.evaluation.vllm_entry`` through the real
``PipesSubprocessClient``, reads the generations back and scores them.

The only stand-in is the ``vllm`` module itself (``tests/fakes/vllm``, put on the
subprocess's ``PYTHONPATH``): there is no GPU and no vLLM here. The fake records what
reached it (prompts, sampling settings, LoRA adapter, engine settings) and answers each
prompt from a map the test writes, so the scores are known in advance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from hum_dagster.defs.evaluation.assets import (
    EvalSettings,
    finetuned_eval_scores,
    finetuned_model_name,
)
from hum_dagster.defs.resources.io_manager import TableIOManager
from hum_dagster.defs.resources.launchers import EvalLauncher
from hum_dagster.defs.resources.llm import LLMResource
from hum_dagster.defs.resources.settings import HumSettings, base_model_specs
from hum_dagster.defs.training.partitions import BASE_MODELS
from hum_dagster.evaluation.benchmarks import build_eval_instructions, get_benchmark
from hum_dagster.evaluation.compound_style import DictionaryStyle, benchmark_dictionary
from hum_dagster.store.tables import read_table

FAKES = Path(__file__).parents[1] / "fakes"
BENCH = "imdb"
SAMPLE = 4
SEED = 42
WRONG = '{"label": "no idea"}'


def expected_rows(seed: int = SEED) -> dict[str, list[dict]]:
    """The instructions eval_scores builds (same functions, same seed), per style."""
    bench = get_benchmark(BENCH)
    read = bench.read()
    builder = DictionaryStyle(benchmark_dictionary(bench, read.schema, seed))
    return {
        "B": build_eval_instructions(bench, "B", SAMPLE, seed, None, read=read),
        "C": build_eval_instructions(bench, "C", SAMPLE, seed, builder, read=read),
    }


def write_answers(path: Path, rows: dict[str, list[dict]]) -> dict[str, str]:
    """Style B: the first two records answered right, the rest wrong (50%); style C:
    all right (100%). Keyed by prompt text, as the fake vLLM sees them."""
    answers = {}
    for style, style_rows in rows.items():
        for i, row in enumerate(style_rows):
            right = style == "C" or i < 2
            answers[row["instruction"]] = row["label"] if right else WRONG
    path.write_text(json.dumps(answers), encoding="utf-8")
    return answers


def fake_env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(FAKES), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "PYTHONPATH": path,
        "HUM_FAKE_VLLM_LOG": str(tmp_path / "fake_vllm.jsonl"),
        "HUM_FAKE_VLLM_ANSWERS": str(tmp_path / "answers.json"),
    }


def fake_calls(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "fake_vllm.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


ADAPTER_CONFIG = {"r": 8, "lora_alpha": 16, "peft_type": "LORA", "target_modules": ["q_proj"]}


def checkpoint_key(base: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"base_model": base, "corpus_variant": "full"})


def instance_with(base: str) -> dg.DagsterInstance:
    """An ephemeral instance with ``base`` registered as a base-model partition (dynamic)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BASE_MODELS, [base])
    return instance


def materialize(root: str, eval_settings: EvalSettings, base: str):
    """``finetuned_eval_scores`` of ``base``'s full checkpoint (``eval_settings`` names
    the benchmarks: BENCH)."""
    instance = instance_with(base)
    result = dg.materialize(
        [finetuned_eval_scores],
        partition_key=checkpoint_key(base),
        instance=instance,
        resources={
            "io_manager": TableIOManager(root=root),
            "settings": HumSettings(storage_root=root),
            "eval_settings": eval_settings,
            "llm": LLMResource(mode="offline"),
        },
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    return event.materialization.metadata, messages


@pytest.fixture()
def finetuned() -> tuple[str, str]:
    base = sorted(base_model_specs())[0]
    return base, finetuned_model_name(base, "full")


def test_finetuned_checkpoint_through_vllm_pipes_subprocess(tmp_path, shared_data, finetuned):
    base, model = finetuned
    root = tmp_path / "storage"
    base_dir = root / "base_models" / base
    base_dir.mkdir(parents=True)
    (base_dir / "config.json").write_text("{}")
    adapter = root / "checkpoints" / base / "full" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG))
    rows = expected_rows()
    answers = write_answers(tmp_path / "answers.json", rows)

    launcher = EvalLauncher(env=fake_env(tmp_path))
    settings = EvalSettings(
        sample_size=SAMPLE, styles=["B", "C"], max_new_tokens=48, seed=SEED,
        finetuned_backend="vllm", launcher=launcher, benchmarks=[BENCH],
    )
    meta, messages = materialize(str(root), settings, base)

    # what reached vLLM: one engine with LoRA on the stored base model, one chat call
    # with every prompt of both styles, the paper's sampling settings, the adapter
    calls = fake_calls(tmp_path)
    assert [c["event"] for c in calls] == ["init", "chat"]
    init, chat = calls
    assert init["model"] == str(base_dir)
    assert init["enable_lora"] is True and init["max_lora_rank"] == 8
    assert init["tensor_parallel_size"] == 1 and init["seed"] == SEED
    assert sorted(chat["prompts"]) == sorted(answers)
    assert chat["sampling"] == {"temperature": 0.2, "top_p": 0.95, "max_tokens": 48, "seed": SEED}
    assert chat["lora"] == {"name": "hum-adapter", "id": 1, "path": str(adapter)}

    # the returned texts were scored: B half right, C all right
    assert meta["headline"].value == {"B": {"accuracy": 50.0}, "C": {"accuracy": 100.0}}
    lineage = meta["lineage"].value
    assert lineage["model"] == model and lineage["backend"] == "vllm"
    assert lineage["model_spec"] == str(base_dir) and lineage["adapter"] == str(adapter)
    assert lineage["benchmark"] == BENCH and lineage["benchmark_files"]["texts.csv"]
    assert lineage["decoding"]["temperature"] == 0.2 and lineage["sample_size"] == SAMPLE
    generator = meta["generator"].value
    assert generator["backend"] == "vllm" and generator["launcher"] == "subprocess"
    assert generator["prompts"] == len(answers) and generator["calls"] == 1
    assert generator["generated_tokens"] > 0  # counted by the entry point, reported via Pipes
    assert Path(generator["generations_path"]).is_file()
    assert meta["instructions"].value == 2 * SAMPLE

    # the stored generations are the fake's answers, row by row
    stored = read_table(f"{root}/finetuned_eval_scores/base_model={base}/corpus_variant=full.parquet").df
    assert stored.height == 2 * SAMPLE
    for row in stored.iter_rows(named=True):
        assert row["generation"] == answers[row["instruction"]]

    # the entry point's Pipes log lines arrived as Dagster logs
    assert any(m.startswith("vLLM generation:") for m in messages)
    assert any(f"generated {len(answers)}/{len(answers)}" in m for m in messages)


def test_vllm_from_s3_storage_greedy(tmp_path, shared_data, finetuned, s3_bucket, monkeypatch):
    """Storage on S3 (moto): prompts, generations, base model and adapter all live there;
    the entry point copies model and adapter to a local cache for vLLM; greedy decoding."""
    import s3fs

    base, model = finetuned
    monkeypatch.setenv("HUM_HOME", str(tmp_path / "home"))
    root = f"{s3_bucket}/hum"
    fs = s3fs.S3FileSystem()
    fs.pipe(f"{root}/base_models/{base}/config.json", b'{"model_type": "llama"}')
    fs.pipe(f"{root}/base_models/{base}/model.safetensors", b"\0" * 1000)
    adapter = f"{root}/checkpoints/{base}/full/adapter"
    fs.pipe(f"{adapter}/adapter_config.json", json.dumps({**ADAPTER_CONFIG, "r": 64}).encode())
    fs.pipe(f"{adapter}/adapter_model.safetensors", b"\1" * 500)
    rows = expected_rows()
    write_answers(tmp_path / "answers.json", rows)

    settings = EvalSettings(
        sample_size=SAMPLE, styles=["B", "C"], greedy=True, max_new_tokens=16, seed=SEED,
        finetuned_backend="vllm", launcher=EvalLauncher(env=fake_env(tmp_path)), benchmarks=[BENCH],
    )
    meta, _ = materialize(root, settings, base)

    init, chat = fake_calls(tmp_path)
    cache = tmp_path / "home" / "model_cache"
    local_model, local_adapter = Path(init["model"]), Path(chat["lora"]["path"])
    assert local_model.parent == cache and local_adapter.parent == cache
    assert (local_model / "model.safetensors").read_bytes() == b"\0" * 1000
    assert (local_adapter / "adapter_model.safetensors").read_bytes() == b"\1" * 500
    assert init["max_lora_rank"] == 64
    assert chat["sampling"]["temperature"] == 0.0 and chat["sampling"]["max_tokens"] == 16
    assert meta["headline"].value == {"B": {"accuracy": 50.0}, "C": {"accuracy": 100.0}}
    assert meta["lineage"].value["adapter"] == adapter
    generations = meta["generator"].value["generations_path"]
    assert generations.startswith(f"{root}/eval_runs/{model}/{BENCH}/") and fs.exists(generations)
    assert meta["generator"].value["decoding"]["greedy"] is True


def test_missing_adapter_fails_before_launching(tmp_path, shared_data, finetuned):
    base, model = finetuned
    root = tmp_path / "storage"
    settings = EvalSettings(
        sample_size=SAMPLE, finetuned_backend="vllm", launcher=EvalLauncher(env=fake_env(tmp_path)),
        benchmarks=[BENCH],
    )
    result = dg.materialize(
        [finetuned_eval_scores], partition_key=checkpoint_key(base), raise_on_error=False,
        instance=instance_with(base), resources={"io_manager": TableIOManager(root=str(root)),
                   "settings": HumSettings(storage_root=str(root)),
                   "eval_settings": settings, "llm": LLMResource(mode="offline")},
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "finetuned_checkpoint" in failure.step_failure_data.user_failure_data.description
    assert str(root / "checkpoints" / base / "full" / "adapter") in (
        failure.step_failure_data.user_failure_data.description
    )
    assert not (tmp_path / "fake_vllm.jsonl").exists()  # vLLM was never started


def test_vllm_entry_imports_no_dagster():
    import subprocess
    import sys

    code = (
        "import sys, hum_dagster.evaluation.vllm_entry; "
        "print([m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
