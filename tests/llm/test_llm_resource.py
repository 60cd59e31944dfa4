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


def test_settings_come_from_envvars_read_at_launch(monkeypatch):
    from hum_dagster.defs.resources.llm import ENV_FIELDS, llm_resource_from_env

    local = {  # a local one-request-at-a-time server (llama.cpp's default)
        "HUM_LLM_MODE": "live", "HUM_LLM_BASE_URL": "http://127.0.0.1:8080/v1",
        "HUM_LLM_MODEL": "smollm2-135m", "HUM_LLM_API_KEY_ENV": "", "HUM_LLM_MAX_IN_FLIGHT": "1",
        "HUM_LLM_TIMEOUT_S": "600", "HUM_LLM_MAX_RETRIES": "2", "HUM_LLM_MAX_TOKENS": "256",
        "HUM_LLM_TEMPERATURE": "0.2", "HUM_LLM_TOP_P": "0.95", "HUM_LLM_STRUCTURED_OUTPUT": "json_object",
        "HUM_LLM_PRICES": "smollm2-135m=0/0", "HUM_LLM_MAX_FAILED_PCT": "5",
        "HUM_LLM_MIN_ACCEPTED_PCT": "25", "HUM_LLM_RPM": "",  # an empty number: unset
    }
    for variable, _ in ENV_FIELDS.values():
        monkeypatch.delenv(variable, raising=False)
    for k, v in local.items():
        monkeypatch.setenv(k, v)
    resource = llm_resource_from_env()
    monkeypatch.setenv("HUM_LLM_MAX_IN_FLIGHT", "2")  # changed after the definitions loaded

    @dg.asset
    def settings_seen(llm: LLMResource) -> dict:
        c = llm.client_config()
        t = llm.thresholds()
        return {"mode": llm.mode, "in_flight": c.max_in_flight, "timeout": c.timeout_s,
                "retries": c.max_retries, "max_tokens": c.max_tokens, "temperature": c.temperature,
                "top_p": c.top_p, "structured": c.structured_output, "priced": c.priced,
                "price_in": c.price_in_per_m, "failed": t.max_failed_share,
                "accepted": t.min_accepted_share, "key_env": c.api_key_env, "url": c.base_url}

    result = dg.materialize([settings_seen], resources={"llm": resource})
    assert result.output_for_node("settings_seen") == {
        "mode": "live", "in_flight": 2, "timeout": 600.0, "retries": 2, "max_tokens": 256,
        "temperature": 0.2, "top_p": 0.95, "structured": "json_object", "priced": True,
        "price_in": 0.0, "failed": 0.05, "accepted": 0.25,
        "key_env": "",  # "": the server needs no key
        "url": "http://127.0.0.1:8080/v1",
    }
    for variable, _ in ENV_FIELDS.values():
        monkeypatch.delenv(variable, raising=False)
    default = llm_resource_from_env()
    assert resource.rpm is None
    assert default.mode == "offline" and default.max_in_flight == 16 and default.client_config().priced is False
    with pytest.raises(Exception, match="temperature"):
        LLMResource(temperature="warm").client_config()
    with pytest.raises(Exception, match="mode"):
        LLMResource(mode="sometimes").client_config()
