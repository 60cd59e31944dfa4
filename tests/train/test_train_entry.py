"""The trainer entry point for real, on the CPU, with a tiny Llama built offline."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from hum_dagster.train import artifacts  # noqa: E402
from hum_dagster.train.config import TrainingConfig, TrainingJob  # noqa: E402
from hum_dagster.train.entry import Reporter, main, record_metadata, train  # noqa: E402
from hum_dagster.train.tiny import (  # noqa: E402
    TINY_TRAINING,
    build_tiny_model,
    toy_rows,
    write_export,
)

FAST = dict(
    TINY_TRAINING,
    global_batch_size=4,
    per_device_train_batch_size=4,
    gradient_checkpointing=True,
)


class Collect(Reporter):
    def __init__(self):
        self.messages, self.events, self.final = [], [], None

    def info(self, message):
        self.messages.append(message)

    def progress(self, event):
        self.events.append(dict(event))

    def done(self, metadata):
        self.final = metadata


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    root = tmp_path_factory.mktemp("tiny")
    rows = toy_rows(8)
    model = build_tiny_model(root / "model", [r["instruction"] + r["output"] for r in rows])
    data = write_export(root / "export", rows, rows[:2])
    yield {"model": model, "data": data, "rows": rows}
    torch.set_num_threads(threads)


def test_loss_goes_down_and_the_adapter_loads_and_generates(tiny, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    job = TrainingJob(
        base_model=tiny["model"],
        dataset_dir=tiny["data"],
        output_dir=str(out),
        config=TrainingConfig(**{**FAST, "max_steps": 12}),
    )
    reporter = Collect()
    record = train(job, reporter)

    losses = [e["loss"] for e in reporter.events if "loss" in e]
    assert len(losses) == 12
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(e["tokens_per_s"] > 0 for e in reporter.events if "loss" in e)
    assert "mfu" not in reporter.events[0]  # no GPU: no peak, no MFU
    # loss on the response only: the prompt is the larger part of each sequence
    assert 0 < record["data"]["loss_token_fraction"] < 0.5
    assert record["metrics"]["global_step"] == 12
    assert record["prompt_format"] == "plain"
    assert record["data"]["checksum"].startswith("sha256:")
    assert record["adapter_bytes"] > 0
    assert record["config"]["lora_rank"] == 8
    on_disk = json.loads((out / artifacts.RECORD).read_text())
    assert on_disk["metrics"] == json.loads(json.dumps(record["metrics"]))
    assert (out / "adapter" / "adapter_model.safetensors").is_file()

    # the adapter loads with peft, generates, and fits the data better than the base
    tokenizer = AutoTokenizer.from_pretrained(out / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny["model"])
    row = tiny["rows"][0]
    ids = tokenizer(row["instruction"] + "\n" + row["output"], return_tensors="pt").input_ids
    with torch.no_grad():
        base_loss = base(ids, labels=ids).loss.item()
    tuned = PeftModel.from_pretrained(base, str(out / "adapter"))
    with torch.no_grad():
        tuned_loss = tuned(ids, labels=ids).loss.item()
        prompt = tokenizer(row["instruction"] + "\n", return_tensors="pt").input_ids
        generated = tuned.generate(prompt, max_new_tokens=6, do_sample=False)
    assert tuned_loss < base_loss
    assert generated.shape[1] > prompt.shape[1]

    meta = record_metadata(record)
    assert "loss_curve" not in meta  # one loss table, added by the asset from the record
    assert meta["config"]["raw_value"]["lora_rank"] == record["config"]["lora_rank"]
    assert meta["final_loss"] == losses[-1]


def test_resumes_from_the_last_checkpoint_after_a_crash(tiny, tmp_path):
    out = tmp_path / "out"
    first = TrainingJob(
        base_model=tiny["model"],
        dataset_dir=tiny["data"],
        output_dir=str(out),
        config=TrainingConfig(**{**FAST, "max_steps": 2, "save_steps": 2}),
    )
    train(first, Collect())
    assert (out / "work" / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    # the "crash": the record of run 1 is gone; the checkpoints stay
    (out / artifacts.RECORD).unlink()

    second = TrainingJob.from_dict(
        {**first.to_dict(), "config": {**FAST, "max_steps": 4, "save_steps": 2}}
    )
    reporter = Collect()
    record = train(second, reporter)
    assert record["resumed_from"].endswith("checkpoint-2")
    assert any("resumed at step 2" in m for m in reporter.messages)
    steps = [e["step"] for e in reporter.events if "loss" in e]
    assert steps == [3, 4]
    assert record["metrics"]["global_step"] == 4
    # the loss curve spans both runs
    assert [c["step"] for c in record["loss_curve"] if "loss" in c] == [1, 2, 3, 4]


def test_command_line_with_a_config_file(tiny, tmp_path, capsys):
    job = {
        "base_model": tiny["model"],
        "dataset_dir": tiny["data"],
        "output_dir": str(tmp_path / "cli"),
        "config": {**FAST, "max_steps": 2},
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    assert main(["--config", str(path)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert any("train_progress" in x for x in lines)
    done = [x["training_done"] for x in lines if "training_done" in x]
    assert done and done[0]["global_step"] == 2
    assert artifacts.read_record(str(tmp_path / "cli"))["complete"] is True
