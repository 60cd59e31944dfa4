"""The trainer under torchrun: two processes on the CPU (gloo), the real launch command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from hum_dagster.paths import PROJECT_DIR  # noqa: E402
from hum_dagster.train import artifacts  # noqa: E402
from hum_dagster.train.config import TrainingConfig, TrainingJob  # noqa: E402
from hum_dagster.train.entry import Reporter, train  # noqa: E402
from hum_dagster.train.launch import trainer_command  # noqa: E402
from hum_dagster.train.tiny import (  # noqa: E402
    TINY_TRAINING,
    build_tiny_model,
    toy_rows,
    write_export,
)

# global batch 8 = 2 per device x 2 accumulation x 2 processes; 8 rows: one step per epoch
CONFIG = dict(
    TINY_TRAINING,
    global_batch_size=8,
    per_device_train_batch_size=2,
    num_train_epochs=6,
)


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = toy_rows(8)
    model = build_tiny_model(tmp_path / "model", [r["instruction"] + r["output"] for r in rows])
    data = write_export(tmp_path / "export", rows)
    out = tmp_path / "out"
    job = {"base_model": model, "dataset_dir": data, "output_dir": str(out), "config": CONFIG}
    (tmp_path / "job.json").write_text(json.dumps(job))
    command = trainer_command(2, sys.executable) + ["--config", str(tmp_path / "job.json")]
    assert "--nproc_per_node=2" in command
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    record = artifacts.read_record(str(out))
    # both ranks ran, in one process group
    assert record["world_size"] == 2
    assert sorted(r["rank"] for r in record["ranks"]) == [0, 1]
    assert len({r["pid"] for r in record["ranks"]}) == 2
    # the global batch plan: 2 per device x 2 accumulation x 2 processes
    assert record["batch_plan"] == {
        "world_size": 2,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "effective_batch_size": 8,
    }
    # 8 examples per step (all of them): one step per epoch, every token once per epoch
    assert record["metrics"]["global_step"] == 6
    assert record["tokens_seen_total"] == 6 * record["data"]["train_tokens"]
    losses = [c["loss"] for c in record["loss_curve"] if "loss" in c]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses

    # rank 0 alone reported and wrote: one record, one adapter, progress once per step
    assert record["written_by_rank"] == 0
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert len([x for x in lines if "training_done" in x]) == 1
    steps = [x["train_progress"]["step"] for x in lines if "loss" in x.get("train_progress", {})]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in out.iterdir()) == ["adapter", artifacts.RECORD, "work"]
    checkpoint = out / "work" / "checkpoints" / "checkpoint-6"
    assert sorted(p.name for p in checkpoint.glob("rng_state_*.pth")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]

    # the adapter loads and generates
    tokenizer = AutoTokenizer.from_pretrained(out / "adapter")
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model), out / "adapter")
    prompt = tokenizer(rows[0]["instruction"] + "\n", return_tensors="pt").input_ids
    with torch.no_grad():
        generated = tuned.generate(prompt, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > prompt.shape[1]

    # DDP averages the gradients: one process with the same global batch (2 x 4 x 1) and
    # the same data order follows the same loss curve
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        single = train(
            TrainingJob(
                base_model=model,
                dataset_dir=data,
                output_dir=str(tmp_path / "single"),
                config=TrainingConfig(**CONFIG),
            ),
            Reporter(),
        )
    finally:
        torch.set_num_threads(threads)
    assert single["world_size"] == 1
    assert single["batch_plan"]["gradient_accumulation_steps"] == 4
    alone = [c["loss"] for c in single["loss_curve"] if "loss" in c]
    assert alone == pytest.approx(losses, rel=1e-3)
