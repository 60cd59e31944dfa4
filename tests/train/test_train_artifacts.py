"""Training outputs on a remote filesystem (fsspec's memory://): publish, record last,
checkpoint upload and fetch for resumption."""

from __future__ import annotations

import fsspec
import pytest

from hum_dagster.train import artifacts


@pytest.fixture
def remote():
    fs = fsspec.filesystem("memory")
    root = "memory://hum-test/out"
    yield root
    if fs.exists("/hum-test"):
        fs.rm("/hum-test", recursive=True)


def _checkpoint(tmp_path, step):
    folder = tmp_path / "local" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    (folder / "adapter_model.safetensors").write_bytes(b"x" * 10)
    return folder


def test_record_marks_completion(remote, tmp_path):
    staging = tmp_path / "staging" / "adapter"
    staging.mkdir(parents=True)
    (staging / "adapter_config.json").write_text("{}")
    assert artifacts.read_record(remote) is None
    artifacts.publish_dir(tmp_path / "staging", remote)
    artifacts.write_record(remote, {"complete": True})
    assert artifacts.read_record(remote) == {"complete": True}
    artifacts.invalidate_record(remote)
    assert artifacts.read_record(remote) is None
    fs = fsspec.filesystem("memory")
    assert fs.exists("/hum-test/out/adapter/adapter_config.json")


def test_checkpoints_upload_and_the_newest_complete_one_is_fetched(remote, tmp_path):
    artifacts.upload_checkpoint(_checkpoint(tmp_path, 2), remote)
    artifacts.upload_checkpoint(_checkpoint(tmp_path, 4), remote)
    # an upload cut short: files but no completion marker
    artifacts.publish_dir(_checkpoint(tmp_path, 6), remote + "/checkpoints/checkpoint-6")
    fetched = artifacts.fetch_latest_checkpoint(remote, tmp_path / "work")
    assert fetched is not None and fetched.endswith("checkpoint-4")
    assert (tmp_path / "work" / "checkpoint-4" / "trainer_state.json").read_text() == (
        '{"global_step": 4}'
    )
    assert artifacts.fetch_latest_checkpoint("memory://hum-test/none", tmp_path / "w2") is None


def test_prepare_base_model_describes_and_stores(tmp_path):
    pytest.importorskip("transformers")
    import json

    from hum_dagster.train.models import BASE_MODEL_INFO, prepare_base_model
    from hum_dagster.train.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path / "tiny", ["hello world", "Alice moved to Paris"])
    dest = str(tmp_path / "storage" / "base_models" / "tiny")
    stored, info = prepare_base_model(folder, dest)
    assert stored == dest
    assert info["parameters"] > 0 and info["dtype"] == "float32"
    assert info["tokenizer"] and info["tokenizer_vocab"] > 0
    on_disk = json.loads(
        (tmp_path / "storage" / "base_models" / "tiny" / BASE_MODEL_INFO).read_text()
    )
    assert on_disk["checksum"] == info["checksum"]
    assert (tmp_path / "storage" / "base_models" / "tiny" / "model.safetensors").is_file()
