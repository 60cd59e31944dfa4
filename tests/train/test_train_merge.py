"""merge_adapter=True: merged full weights that plain transformers loads (no peft) and
that compute what the base model plus the adapter computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from hum_dagster.train.config import TrainingConfig, TrainingJob  # noqa: E402
from hum_dagster.train.entry import Reporter, train  # noqa: E402
from hum_dagster.train.tiny import (  # noqa: E402
    TINY_TRAINING,
    build_tiny_model,
    toy_rows,
    write_export,
)

# Loads the merged folder in a fresh interpreter where importing peft fails, and prints
# the greedy continuation and the last-position logits of a prompt as JSON.
PLAIN_LOAD = """
import json, sys
sys.modules["peft"] = None  # any import of peft now raises ImportError
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, prompt = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder).eval()
ids = tokenizer(prompt, return_tensors="pt").input_ids
with torch.no_grad():
    logits = model(ids).logits[0]
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
print(json.dumps({
    "class": type(model).__name__,
    "logits": logits.tolist(),
    "generated": out[0, ids.shape[1]:].tolist(),
}))
"""


def test_merged_weights_load_without_peft_and_match_the_adapter(tmp_path):
    import torch
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = toy_rows(8)
    model = build_tiny_model(tmp_path / "model", [r["instruction"] + r["output"] for r in rows])
    data = write_export(tmp_path / "export", rows)
    out = tmp_path / "out"
    config = TrainingConfig(
        **TINY_TRAINING,
        global_batch_size=4,
        per_device_train_batch_size=4,
        max_steps=8,
        merge_adapter=True,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        record = train(TrainingJob(model, str(data), str(out), config), Reporter())
    finally:
        torch.set_num_threads(threads)
    merged = out / "merged"
    assert record["merged_dir"] == str(merged)
    assert record["parameters"]["trainable"] > 0  # counted before the merge
    # full weights, no adapter files, no LoRA tensors
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert not (merged / "adapter_config.json").exists()
    with safe_open(str(merged / "model.safetensors"), "pt") as handle:
        names = list(handle.keys())
    assert names and not any("lora" in n for n in names)
    assert json.loads((merged / "config.json").read_text())["use_cache"] is True

    prompt = rows[0]["instruction"] + "\n"
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_LOAD, str(merged), prompt],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plain = json.loads(done.stdout.strip().splitlines()[-1])
    assert plain["class"] == "LlamaForCausalLM"

    # base + adapter through peft, in this process
    tokenizer = AutoTokenizer.from_pretrained(out / "adapter")
    base = AutoModelForCausalLM.from_pretrained(model).eval()
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        base_logits = base(ids).logits[0]
    tuned = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    with torch.no_grad():
        tuned_logits = tuned(ids).logits[0]
        generated = tuned.generate(ids, max_new_tokens=8, do_sample=False)[0, ids.shape[1] :]
    merged_logits = torch.tensor(plain["logits"])
    torch.testing.assert_close(merged_logits, tuned_logits, atol=1e-4, rtol=1e-4)
    assert plain["generated"] == generated.tolist()
    # and the adapter did something: the merged model is not the base model
    assert (merged_logits - base_logits).abs().max() > 1e-2
