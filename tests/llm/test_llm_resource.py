"""The Dagster resource around the LLM layer."""

import dagster as dg
import pytest
from openai_server import LoopbackOpenAI

from hum_dagster.defs.resources.llm import LLM_POOL, LLMResource
from hum_dagster.llm.client import LLMOfflineError, OpenAIRunner
from hum_dagster.llm.types import LLMRequest, LLMResponse

REQ = LLMRequest(
    step="res.step",
    template="t",
    template_version="1",
    messages=({"role": "user", "content": "from dagster"},),
)


def test_default_is_offline_and_needs_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    runner = LLMResource().runner(str(tmp_path))
    assert isinstance(runner, OpenAIRunner) and runner.mode == "offline"
    with pytest.raises(LLMOfflineError):
        runner.run([REQ])
    assert LLM_POOL == "llm"
    assert "api_key" not in LLMResource.model_fields  # only the variable's name is config


def test_live_resource_in_an_asset(tmp_path, monkeypatch):
    monkeypatch.setenv("HUM_TEST_LLM_KEY", "sk-resource-FAKE")
    with LoopbackOpenAI() as fake:
        resource = LLMResource(
            mode="live",
            base_url=fake.base_url,
            model="res-model",
            api_key_env="HUM_TEST_LLM_KEY",
            temperature="0",
            max_tokens=64,
            structured_output="none",
            prices="res-model=1/0",
        )

        @dg.asset(pool=LLM_POOL)
        def answers(context: dg.AssetExecutionContext, llm: LLMResource) -> dg.MaterializeResult:
            runner = llm.runner(str(tmp_path / "default_root"))
            results = runner.run([REQ])
            assert all(isinstance(r, LLMResponse) for r in results)
            return dg.MaterializeResult(metadata=runner.last_usage.as_metadata())

        result = dg.materialize([answers], resources={"llm": resource})
        assert result.success
        [mat] = result.asset_materializations_for_node("answers")
        assert mat.metadata["llm_requests_sent"].value == 1
        [sent] = fake.chat_requests()
        assert sent.headers["Authorization"] == "Bearer sk-resource-FAKE"
        assert sent.body["temperature"] == 0.0 and sent.body["model"] == "res-model"
        assert (tmp_path / "default_root" / "shards").is_dir()
        own_root = resource.model_copy(update={"cache_root": str(tmp_path / "own")})
        assert own_root.runner(str(tmp_path / "ignored")).cache.root == str(tmp_path / "own")
