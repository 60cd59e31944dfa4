"""The LLM resource: one OpenAI-compatible endpoint for every LLM step.

Assets that call the LLM set ``pool=LLM_POOL`` so that parallel runs share the
endpoint's limits (``dagster instance concurrency set llm N``). The API key is never a
config field: ``api_key_env`` names the environment variable that holds it, read when a
request is about to be sent.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg

from hum_dagster.llm.batch import BatchManager
from hum_dagster.llm.client import ClientConfig, OpenAIRunner

LLM_POOL = "llm"
LLM_CACHE_DIR = "llm_cache"


class LLMResource(dg.ConfigurableResource):
    """Endpoint, model, throughput, retries, generation parameters, cache and prices."""

    # live | replay | offline (the embedded default); a str, not a Literal, so that a
    # dg.EnvVar can feed it (OpenAIRunner rejects any other value)
    mode: str = "offline"
    base_url: str | None = None  # None: the OpenAI API; e.g. http://vllm:8000/v1
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # the variable's NAME; "" when the server needs none
    max_in_flight: int = 16
    rpm: int | None = None
    tpm: int | None = None
    timeout_s: float = 120.0
    max_retries: int = 6
    max_invalid_retries: int = 2
    temperature: float | None = 0.7
    top_p: float | None = None
    max_tokens: int | None = 1024
    seed: int | None = 0
    structured_output: Literal["auto", "json_schema", "json_object", "none"] = "auto"
    cache_root: str | None = None  # None: "<storage_root>/llm_cache", chosen by the caller
    price_in_per_m: float = 0.0  # USD per million prompt tokens
    price_out_per_m: float = 0.0  # USD per million completion tokens

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            model=self.model,
            base_url=self.base_url or None,  # an empty HUM_LLM_BASE_URL: the OpenAI API
            api_key_env=self.api_key_env,
            max_in_flight=self.max_in_flight,
            rpm=self.rpm,
            tpm=self.tpm,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            max_invalid_retries=self.max_invalid_retries,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            structured_output=self.structured_output,
            price_in_per_m=self.price_in_per_m,
            price_out_per_m=self.price_out_per_m,
        )

    def resolve_cache_root(self, cache_root: str) -> str:
        return self.cache_root or cache_root

    def runner(self, cache_root: str) -> OpenAIRunner:
        """The library runner; ``cache_root`` is used unless the resource sets its own
        (callers pass ``fsio.join(storage_root, LLM_CACHE_DIR)``)."""
        return OpenAIRunner(self.client_config(), self.resolve_cache_root(cache_root), self.mode)

    def batch_manager(self, cache_root: str) -> BatchManager:
        return BatchManager(self.client_config(), self.resolve_cache_root(cache_root))
