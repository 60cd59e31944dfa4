"""Evaluation backends: the OpenAI-compatible one on a real loopback server, local
transformers generation with a tiny random model, and the vLLM Pipes entry point with
vLLM replaced by a clearly named fake."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.evaluation import vllm_entry
from hum_dagster.evaluation.generate import (
    DecodingConfig,
    OpenAIGenerator,
    TransformersGenerator,
    generate_for_rows,
    make_openai_generator,
)
from hum_dagster.evaluation.metrics import score_rows
from hum_dagster.llm.client import ClientConfig

# --------------------------------------------------------------------------- decoding


def test_decoding_defaults_are_the_papers():
    d = DecodingConfig()
    assert (d.temperature, d.top_p, d.greedy) == (0.2, 0.95, False)
    assert d.openai_params() == {"temperature": 0.2, "top_p": 0.95, "max_tokens": 512}
    g = DecodingConfig(greedy=True, max_new_tokens=7)
    assert g.openai_params() == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 7}
    with pytest.raises(ValueError):
        DecodingConfig(max_new_tokens=0)
    with pytest.raises(ValueError):
        DecodingConfig(temperature=0.0)


# --------------------------------------------------------------------------- OpenAI-compatible


@pytest.fixture(scope="module")
def server():
    with LoopbackOpenAI() as srv:
        yield srv


def test_openai_generator_caches_and_rescoring_is_free(server, tmp_path, monkeypatch):
    server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-eval")
    config = ClientConfig(
        model="eval-model",
        base_url=server.base_url,
        timeout_s=5.0,
        backoff_base_s=0.01,
        backoff_max_s=0.02,
        max_retries=0,
        max_in_flight=1,
    )  # in order, so the queued answers match
    gen = make_openai_generator(
        config, str(tmp_path / "cache"), decoding=DecodingConfig(max_new_tokens=64)
    )
    server.queue(
        {"kind": "content", "content": '{"per": ["Ann"]}'},
        {"kind": "content", "content": "not json at all"},
    )
    texts = gen.generate(["prompt one", "prompt two"])
    assert texts[0] == '{"per": ["Ann"]}'
    assert texts[1] == "not json at all"  # kept as written: the scorer decides
    sent = server.chat_requests()
    assert len(sent) == 2  # the non-JSON answer is not re-sampled
    body = sent[0].body
    assert body["temperature"] == 0.2 and body["top_p"] == 0.95 and body["max_tokens"] == 64
    assert body["messages"] == [{"role": "user", "content": "prompt one"}]
    meta = gen.metadata
    assert meta["backend"] == "openai" and meta["model_id"] == "eval-model"
    assert meta["step"] == "eval.generate" and meta["failures"] == {}

    again = gen.generate(["prompt one", "prompt two"])  # cached, text answers too
    assert again == texts and len(server.chat_requests()) == 2
    assert gen.metadata["cached"] == 2


def test_openai_generator_with_any_runner():
    from hum_dagster.llm.types import LLMFailure, LLMResponse

    class FakeRunner:  # a stand-in for the LLMRunner protocol, for the request shape
        mode = "live"

        def __init__(self):
            self.seen = []

        def run(self, requests, validate=None):
            self.seen.extend(requests)
            return [
                LLMResponse("k", r.step, "{}", {}, "m", {"completion_tokens": 2}, False, 0.0)
                if i == 0
                else LLMFailure("k2", r.step, "timeout", 3)
                for i, r in enumerate(requests)
            ]

    runner = FakeRunner()
    gen = OpenAIGenerator(runner, DecodingConfig(greedy=True), model_id="m", template_version="v9")
    assert gen.generate(["a", "b"]) == ["{}", ""]
    req = runner.seen[0]
    assert (req.step, req.template, req.template_version) == ("eval.generate", "eval", "v9")
    assert req.params["temperature"] == 0.0
    assert gen.metadata["failures"] == {"timeout": 1} and gen.metadata["completion_tokens"] == 2


# --------------------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def tiny_model():
    """A 2-layer Llama with random weights and a word-level tokenizer built offline."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = [
        "<pad>",
        "<s>",
        "</s>",
        "<unk>",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        '"',
        "per",
        "Ann",
        "the",
        "a",
        "text",
        "extract",
        "entities",
        "label",
        "positive",
        "negative",
    ]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    fast.chat_template = "{% for m in messages %}<s> {{ m['content'] }} </s>{% endfor %}<s>"
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = transformers.LlamaForCausalLM(config)
    return model, fast


def test_transformers_generator_batches_and_keeps_order(tiny_model):
    model, tok = tiny_model
    gen = TransformersGenerator(
        model,
        tok,
        DecodingConfig(greedy=True, max_new_tokens=5),
        batch_size=2,
        device="cpu",
        model_id="tiny-llama",
    )
    prompts = ["extract entities : Ann", "a", "the text the text the text", "label positive"]
    texts = gen.generate(prompts)
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
    # batching and left padding do not change greedy outputs: each alone gives the same
    alone = [gen.generate([p])[0] for p in prompts]
    assert texts == alone
    meta = gen.metadata
    assert meta["backend"] == "transformers" and meta["chat_template"] is True
    assert meta["decoding"]["greedy"] is True and meta["prompts"] == 1
    assert tok.padding_side == "left"
    assert gen.render("a") == "<s> a </s><s>"


def test_transformers_sampling_is_seeded(tiny_model):
    model, tok = tiny_model
    d = DecodingConfig(max_new_tokens=6, seed=3)
    g1 = TransformersGenerator(model, tok, d, batch_size=4, device="cpu")
    prompts = ["a", "the text"]
    assert g1.generate(prompts) == g1.generate(prompts)


def test_generate_for_rows_and_score(tiny_model):
    model, tok = tiny_model
    gen = TransformersGenerator(
        model, tok, DecodingConfig(greedy=True, max_new_tokens=4), device="cpu"
    )
    rows = [
        {
            "instruction_id": "i1",
            "instruction": "label positive",
            "task": "TC",
            "source": "s",
            "record_id": "r1",
            "schema": '["negative", "positive"]',
            "label": '{"label": "positive"}',
        },
        {
            "instruction_id": "i1",
            "instruction": "label positive",
            "task": "TC",
            "source": "s",
            "record_id": "r1",
            "schema": '["negative", "positive"]',
            "label": '{"label": "positive"}',
        },
    ]
    outputs = generate_for_rows(gen, rows)
    assert list(outputs) == ["i1"]
    scores = score_rows(rows, outputs)
    assert scores["accuracy"]["records"] == 1


# --------------------------------------------------------------------------- vLLM entry point


def fake_vllm_generate(prompts, settings):
    """Stands in for ``vllm_entry.generate_with_vllm`` (vLLM is not installed here)."""
    return [(f"echo:{p}|t={settings.temperature}", 3) for p in prompts]


def _encode(value):
    return base64.b64encode(zlib.compress(json.dumps(value).encode())).decode()


def test_vllm_entry_imports_without_vllm():
    import importlib.util

    assert importlib.util.find_spec("vllm") is None  # this machine has no vLLM
    with pytest.raises(ImportError):
        vllm_entry.generate_with_vllm(["x"], vllm_entry.VLLMSettings("a", "b", "m"))


def test_vllm_entry_through_pipes(tmp_path, monkeypatch):
    instructions = tmp_path / "in.jsonl"
    instructions.write_text(
        "\n".join(
            json.dumps({"instruction_id": f"i{i}", "instruction": f"p{i}", "task": "NER"})
            for i in range(5)
        )
        + "\n"
    )
    output = tmp_path / "out" / "gen.jsonl"
    context = {
        "asset_keys": ["eval_generations"],
        "code_version_by_asset_key": None,
        "provenance_by_asset_key": None,
        "partition_key": None,
        "partition_key_range": None,
        "partition_time_window": None,
        "run_id": "run-1",
        "job_name": None,
        "retry_number": 0,
        "extras": {
            "instructions": str(instructions),
            "output": str(output),
            "model": "/m",
            "max_new_tokens": 16,
            "batch_size": 2,
        },
    }
    ctx_path, msg_path = tmp_path / "context.json", tmp_path / "messages.jsonl"
    ctx_path.write_text(json.dumps(context))
    monkeypatch.setenv("DAGSTER_PIPES_CONTEXT", _encode({"path": str(ctx_path)}))
    monkeypatch.setenv("DAGSTER_PIPES_MESSAGES", _encode({"path": str(msg_path)}))
    monkeypatch.setattr(vllm_entry, "generate_with_vllm", fake_vllm_generate)

    assert vllm_entry.main(["--temperature", "0.5"]) == 0  # a flag overrides extras

    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert rows == [{"instruction_id": f"i{i}", "output": f"echo:p{i}|t=0.5"} for i in range(5)]
    messages = [json.loads(line) for line in msg_path.read_text().splitlines()]
    methods = [m["method"] for m in messages]
    assert methods[0] == "opened" and methods[-1] == "closed"
    logs = [m["params"]["message"] for m in messages if m["method"] == "log"]
    assert any("generated 4/5" in line for line in logs)
    (mat,) = [m for m in messages if m["method"] == "report_asset_materialization"]
    meta = {k: v["raw_value"] for k, v in mat["params"]["metadata"].items()}
    assert meta["prompts"] == 5 and meta["generated_tokens"] == 15 and meta["backend"] == "vllm"
    assert json.loads(meta["decoding"])["temperature"] == 0.5


def test_vllm_entry_cli_without_pipes(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    monkeypatch.delenv("DAGSTER_PIPES_MESSAGES", raising=False)
    monkeypatch.setattr(vllm_entry, "generate_with_vllm", fake_vllm_generate)
    (tmp_path / "in.jsonl").write_text('{"instruction_id": "a", "prompt": "hello"}\n')
    code = vllm_entry.main(
        [
            "--instructions",
            str(tmp_path / "in.jsonl"),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--model",
            "m",
            "--greedy",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "o.jsonl").read_text())["output"].startswith("echo:hello")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["prompts"] == 1


def test_vllm_settings_errors(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        vllm_entry.VLLMSettings.from_mapping({"instructions": "a"})
    with pytest.raises(ValueError, match="unknown"):
        vllm_entry.VLLMSettings.from_mapping(
            {"instructions": "a", "output": "b", "model": "m", "tempreature": 1}
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction_id": "a", "instruction": "x"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        vllm_entry.read_instructions(str(bad))
