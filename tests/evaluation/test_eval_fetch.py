"""Checkpoints on s3:// (moto's S3 server): local copies are complete or absent, and the
transformers backend evaluates an adapter and a base model stored on S3."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hum_dagster.evaluation import fetch
from hum_dagster.evaluation.fetch import MARKER, default_cache_dir, fetched_info, local_copy


def upload_folder(fs, local: Path, uri: str) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.pipe(f"{uri}/{path.relative_to(local).as_posix()}", path.read_bytes())


@pytest.fixture()
def remote_adapter(s3_bucket, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    (src / "sub" / "extra.txt").write_text("nested")
    uri = f"{s3_bucket}/ckpt/adapter"
    upload_folder(fs, src, uri)
    return fs, src, uri


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != MARKER)
    return files == theirs and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_local_paths_are_returned_unchanged(tmp_path, monkeypatch):
    assert local_copy(str(tmp_path), tmp_path / "cache") == str(tmp_path)
    assert not (tmp_path / "cache").exists()
    assert default_cache_dir(str(tmp_path)) == str(tmp_path / "model_cache")
    monkeypatch.setenv("HUM_HOME", str(tmp_path / "home"))
    assert default_cache_dir("s3://b/root") == str(tmp_path / "home" / "model_cache")


def test_s3_folder_copy_is_complete_and_reused(remote_adapter, tmp_path):
    fs, src, uri = remote_adapter
    cache = tmp_path / "cache"
    path = Path(local_copy(uri, cache))
    assert path.parent == cache and same_tree(src, path)
    info = fetched_info(path)
    assert info["uri"] == uri and info["files"] == 3
    # a second call reuses the copy (a file added locally survives: nothing re-downloaded)
    (path / "sentinel").write_text("x")
    assert Path(local_copy(uri, cache)) == path and (path / "sentinel").exists()
    # a re-trained adapter at the same URL gets a fresh copy, never the stale one
    fs.pipe(f"{uri}/adapter_model.safetensors", b"retrained")
    again = Path(local_copy(uri, cache))
    assert again != path and (again / "adapter_model.safetensors").read_bytes() == b"retrained"
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_interrupted_download_leaves_nothing_that_looks_complete(
    remote_adapter, tmp_path, monkeypatch
):
    _, src, uri = remote_adapter
    cache = tmp_path / "cache"
    real_filesystem = fetch.fsio.filesystem
    calls = {"n": 0}

    class Flaky:  # the real S3 filesystem, whose second download breaks off
        def __init__(self, fs):
            self.fs = fs

        def __getattr__(self, name):
            return getattr(self.fs, name)

        def get_file(self, rpath, lpath, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                Path(lpath).write_bytes(b"half")
                raise ConnectionError("connection reset mid-download")
            return self.fs.get_file(rpath, lpath, **kwargs)

    def flaky_filesystem(path):
        fs, p = real_filesystem(path)
        return Flaky(fs), p

    monkeypatch.setattr(fetch.fsio, "filesystem", flaky_filesystem)
    with pytest.raises(ConnectionError):
        local_copy(uri, cache)
    assert list(cache.iterdir()) == []  # neither the target nor the temporary folder
    path = Path(local_copy(uri, cache))  # the next attempt downloads everything
    assert same_tree(src, path) and fetched_info(path)


def test_folder_without_marker_is_never_taken_as_complete(remote_adapter, tmp_path):
    _, src, uri = remote_adapter
    cache = tmp_path / "cache"
    path = Path(local_copy(uri, cache))
    # what a crash of a non-atomic copier would leave: a partial file and no marker
    (path / MARKER).unlink()
    (path / "adapter_model.safetensors").write_bytes(b"partial")
    assert Path(local_copy(uri, cache)) == path
    assert same_tree(src, path) and fetched_info(path)


def test_single_remote_file(s3_bucket, tmp_path):
    import s3fs

    s3fs.S3FileSystem().pipe(f"{s3_bucket}/models/tiny.gguf", b"GGUF" + b"\0" * 10)
    path = Path(local_copy(f"{s3_bucket}/models/tiny.gguf", tmp_path / "cache"))
    assert path.name == "tiny.gguf" and path.read_bytes() == b"GGUF" + b"\0" * 10
    with pytest.raises(FileNotFoundError, match="nothing to download"):
        local_copy(f"{s3_bucket}/models/absent", tmp_path / "cache")


def test_marker_is_written_last(remote_adapter, tmp_path, monkeypatch):
    """The rename happens only after the marker: a failure writing it leaves nothing."""
    _, _, uri = remote_adapter
    real_rename = os.rename
    seen = {}

    def spy(src, dst):
        seen["marker_before_rename"] = (Path(src) / MARKER).is_file()
        return real_rename(src, dst)

    monkeypatch.setattr(fetch.os, "rename", spy)
    local_copy(uri, tmp_path / "cache")
    assert seen == {"marker_before_rename": True}


# --------------------------------------------------------------------------- transformers


def test_transformers_backend_loads_base_and_adapter_from_s3(s3_bucket, tmp_path):
    pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    import s3fs
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from hum_dagster.evaluation.generate import DecodingConfig
    from hum_dagster.evaluation.registry import ModelSpec, make_generator
    from hum_dagster.train.tiny import build_tiny_model, toy_rows

    rows = toy_rows(4)
    base_dir = Path(build_tiny_model(tmp_path / "base", [r["instruction"] + r["output"] for r in rows]))
    torch.manual_seed(1)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    fs = s3fs.S3FileSystem()
    upload_folder(fs, base_dir, f"{s3_bucket}/base")
    upload_folder(fs, tmp_path / "adapter", f"{s3_bucket}/adapter")

    decoding = DecodingConfig(greedy=True, max_new_tokens=6)
    prompts = [rows[0]["instruction"], rows[1]["instruction"]]
    local = make_generator(
        ModelSpec("local", "transformers", str(base_dir), adapter=str(tmp_path / "adapter")),
        decoding, storage_root=str(tmp_path / "storage"),
    )
    cache = tmp_path / "cache"
    remote = make_generator(
        ModelSpec("remote", "transformers", f"{s3_bucket}/base", adapter=f"{s3_bucket}/adapter"),
        decoding, storage_root=str(tmp_path / "storage"), model_cache=str(cache),
    )
    assert remote.generate(prompts) == local.generate(prompts)
    plain = make_generator(ModelSpec("plain", "transformers", str(base_dir)), decoding)
    assert plain.generate(prompts) != local.generate(prompts)  # the adapter does something
    info = remote.load_info
    assert info["adapter"] == f"{s3_bucket}/adapter" and info["model_uri"] == f"{s3_bucket}/base"
    assert Path(info["adapter_local"]).parent == cache and fetched_info(info["adapter_local"])
    assert Path(info["path"]).parent == cache
    assert json.loads((Path(info["adapter_local"]) / "adapter_config.json").read_text())["r"] == 4
