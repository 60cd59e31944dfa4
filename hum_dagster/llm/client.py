"""The one LLM client of every step: OpenAI-compatible, asynchronous inside, cached.

``OpenAIRunner(config, cache_root, mode).run(requests, validate)`` returns, in request
order, an ``LLMResponse`` or an ``LLMFailure`` for each request:

- ``live``: answers come from the cache when present, else from the endpoint through
  ``openai.AsyncOpenAI`` (``max_in_flight`` requests at once, requests- and
  tokens-per-minute budgets that follow the server's ``x-ratelimit-*`` headers, retries
  with backoff for 429/5xx/timeouts/dropped connections, ``max_invalid_retries`` more
  tries for an answer that is not valid JSON or that the validator rejects);
- ``replay``: the cache only; a miss is an ``LLMFailure("replay_miss: ...")`` naming the
  step and the prompt (``raise_for_failures`` turns it into ``ReplayMissError``);
- ``offline``: no LLM at all; ``run`` raises ``LLMOfflineError``.

The API key is read from the environment variable ``config.api_key_env`` when a client
is built and is never stored in the config, the cache, usage, failures or messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai

from hum_dagster.llm.cache import ResponseCache, cache_key
from hum_dagster.llm.errors import (  # re-exported: callers import them from here
    EndpointAuthError,
    EndpointError,
    EndpointUnreachableError,
    LLMConfigError,
    LLMError,
    LLMFailedError,
    LLMOfflineError,
    ModelNotServedError,
    ReplayMissError,
)
from hum_dagster.llm.extract import ExtractError, extract_json
from hum_dagster.llm.probe import EndpointInfo, aprobe, check_model_setting
from hum_dagster.llm.ratelimit import RateLimiter, backoff_delay, retry_after
from hum_dagster.llm.types import (
    MODES,
    LLMFailure,
    LLMRequest,
    LLMResponse,
    Mode,
    Validator,
)
from hum_dagster.llm.usage import Usage, reason_category

__all__ = [
    "ClientConfig",
    "EndpointAuthError",
    "EndpointError",
    "EndpointInfo",
    "EndpointUnreachableError",
    "LLMConfigError",
    "LLMError",
    "LLMFailedError",
    "LLMOfflineError",
    "ModelNotServedError",
    "OpenAIRunner",
    "ReplayMissError",
    "raise_for_failures",
    "request_body",
    "request_key",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

STRUCTURED_MODES = ("auto", "json_schema", "json_object", "none")
SEED_STRIDE = 1000  # seed sent = seed + sample_index * SEED_STRIDE + invalid attempt
JSON_HINT = "Answer with one JSON value only, no prose."


@dataclass(frozen=True)
class ClientConfig:
    """Everything about the endpoint and how to use it, except the secret itself."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None  # None: the SDK default (OpenAI)
    api_key_env: str = "OPENAI_API_KEY"  # name of the variable; "" = the server needs none
    max_in_flight: int = 16
    rpm: int | None = None  # requests per minute (None: no local limit)
    tpm: int | None = None  # tokens per minute (None: no local limit)
    timeout_s: float = 120.0  # per request
    max_retries: int = 6  # for 429, 5xx, timeouts, dropped connections
    max_invalid_retries: int = 2  # more tries for unparseable or rejected answers
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    temperature: float | None = 0.7
    top_p: float | None = None
    max_tokens: int | None = 1024
    seed: int | None = 0
    extra_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"presence_penalty": 0}
    structured_output: str = "auto"  # auto | json_schema | json_object | none
    strict_schema: bool = False  # response_format.json_schema.strict
    price_in_per_m: float | None = None  # USD per million prompt tokens (None: unknown)
    price_out_per_m: float | None = None  # USD per million completion tokens (None: unknown)
    batch_discount: float = 0.5
    flush_every: int = 200  # cache entries buffered before a shard is written
    # "strict": probe GET /models before the first live request; an unreachable endpoint
    # or a model the list does not hold is an error. "off": no probe.
    check_model: str = "strict"

    def __post_init__(self) -> None:
        if self.structured_output not in STRUCTURED_MODES:
            raise LLMConfigError(
                f"structured_output must be one of {STRUCTURED_MODES}, not {self.structured_output!r}"
            )
        if self.max_in_flight < 1:
            raise LLMConfigError("max_in_flight must be at least 1")
        check_model_setting(self.check_model)

    def generation_params(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            **self.extra_params,
            **(overrides or {}),
        }
        return {k: v for k, v in params.items() if v is not None}

    @property
    def priced(self) -> bool:
        return self.price_in_per_m is not None and self.price_out_per_m is not None

    def new_usage(self) -> Usage:
        return Usage(
            price_in_per_m=self.price_in_per_m or 0.0,
            price_out_per_m=self.price_out_per_m or 0.0,
            batch_discount=self.batch_discount,
            priced=self.priced,
        )

    def api_key(self) -> str:
        if not self.api_key_env:
            return "no-key"
        value = os.environ.get(self.api_key_env)
        if not value:
            raise LLMConfigError(
                f"environment variable {self.api_key_env} is not set: it must hold the API key "
                f"for {self.base_url or 'the OpenAI API'} (live and batch modes need it)"
            )
        return value

    def async_client(self) -> openai.AsyncOpenAI:
        """A fresh SDK client with its own retries off: ours count and pace them."""
        return openai.AsyncOpenAI(
            api_key=self.api_key(),
            base_url=self.base_url,
            max_retries=0,
            timeout=self.timeout_s,
        )


def request_key(config: ClientConfig, request: LLMRequest) -> str:
    return cache_key(
        model=config.model,
        messages=request.messages,
        params=config.generation_params(request.params),
        json_schema=request.json_schema,
        template=request.template,
        template_version=request.template_version,
        sample_index=request.sample_index,
        expect_json=request.expect_json,
    )


def prompt_preview(request: LLMRequest, n: int = 200) -> str:
    users = [m.get("content", "") for m in request.messages if m.get("role") == "user"]
    text = (
        users[-1]
        if users
        else (request.messages[-1].get("content", "") if request.messages else "")
    )
    return str(text)[:n]


def request_body(
    config: ClientConfig, request: LLMRequest, *, attempt: int = 0, structured: str | None = None
) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body for ``request`` (its ``attempt``-th try)."""
    params = config.generation_params(request.params)
    if "seed" in params:
        params["seed"] = int(params["seed"]) + request.sample_index * SEED_STRIDE + attempt
    messages = [dict(m) for m in request.messages]
    structured = structured or config.structured_output
    body: dict[str, Any] = {"model": config.model, "messages": messages, **params}
    schema = request.json_schema
    if schema is not None:
        if structured in ("auto", "json_schema"):
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(request.template),
                    "schema": schema,
                    "strict": config.strict_schema,
                },
            }
        else:
            hint = f"{JSON_HINT} It must match this JSON schema: {json.dumps(schema, ensure_ascii=False)}"
            body["messages"] = _with_system_hint(messages, hint)
            if structured == "json_object":
                body["response_format"] = {"type": "json_object"}
                if config.structured_output == "auto":  # learnt: not OpenAI; llama.cpp
                    body["response_format"]["schema"] = schema  # builds a grammar from it
    return body


def _schema_name(template: str) -> str:
    return (re.sub(r"[^A-Za-z0-9_-]", "_", template) or "answer")[:64]


def _with_system_hint(messages: list[dict[str, str]], hint: str) -> list[dict[str, str]]:
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0], content=f"{messages[0].get('content', '')}\n\n{hint}")
        return [first, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]


def estimate_tokens(body: dict[str, Any]) -> int:
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return chars // 4 + 1 + int(body.get("max_tokens") or 256)


def redact(text: str, config: ClientConfig) -> str:
    """``text`` with the API key (if it is in the environment) replaced by ``***``."""
    secret = os.environ.get(config.api_key_env) if config.api_key_env else None
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def parse_and_validate(
    content: str, validate: Validator | None, expect_json: bool = True
) -> tuple[Any, str | None]:
    """The JSON in ``content`` and None, or (None, the reason it is not usable).

    With ``expect_json=False`` any answer is usable as text (``parsed`` None), unless the
    validator, which then sees the text, rejects it.
    """
    if not expect_json:
        problem = _validator_problem(validate, content) if validate is not None else None
        return None, (f"invalid: {problem}" if problem is not None else None)
    try:
        parsed = extract_json(content)
    except ExtractError as exc:
        return None, f"invalid_json: {exc}"
    if validate is not None:
        problem = _validator_problem(validate, parsed)
        if problem is not None:
            return None, f"invalid: {problem}"
    return parsed, None


def _validator_problem(validate: Validator, value: Any) -> str | None:
    try:
        return validate(value)
    except Exception as exc:  # a validator that raises rejects, with its message
        return f"{type(exc).__name__}: {exc}"


def response_from_entry(entry: dict[str, Any], request: LLMRequest, cached: bool) -> LLMResponse:
    return LLMResponse(
        key=entry["key"],
        step=request.step,
        content=entry["content"],
        parsed=entry["parsed"],
        model=entry.get("model", ""),
        usage=dict(entry.get("usage") or {}),
        cached=cached,
        created_at=float(entry.get("answered_at") or 0.0),
    )


def raise_for_failures(
    results: Sequence[LLMResponse | LLMFailure], *, replay_only: bool = False
) -> None:
    """Raise ``ReplayMissError`` if any result is a replay miss, else ``LLMFailedError``
    if any is a failure (unless ``replay_only``). The message names the first few."""
    failures = [r for r in results if isinstance(r, LLMFailure)]
    misses = [f for f in failures if reason_category(f.reason) == "replay_miss"]
    if misses:
        shown = "\n  ".join(f.reason for f in misses[:5])
        raise ReplayMissError(
            f"{len(misses)} request(s) have no cached answer in replay mode:\n  {shown}"
        )
    if failures and not replay_only:
        shown = "\n  ".join(
            f"{f.step}: {f.reason} (after {f.attempts} attempts)" for f in failures[:5]
        )
        raise LLMFailedError(f"{len(failures)} LLM request(s) failed:\n  {shown}")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code: ``asyncio.run`` here, or in a
    private thread (its own loop) when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hum-llm") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class _Give(Exception):
    """Internal: a transport failure that ends the request, with its reason."""

    def __init__(self, reason: str, calls: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.calls = calls


# (base_url, model) -> the structured-output mode that worked, learnt in "auto"
_STRUCTURED_LEARNT: dict[tuple[str | None, str], str] = {}
_FALLBACK = {"json_schema": "json_object", "json_object": "none"}


class OpenAIRunner:
    """The ``LLMRunner`` of the project (see ``hum_dagster.llm.types``)."""

    def __init__(
        self,
        config: ClientConfig,
        cache_root: str | None = None,
        mode: Mode = "live",
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        if mode not in MODES:
            raise LLMConfigError(f"mode must be one of {MODES}, not {mode!r}")
        self.config = config
        self.mode: Mode = mode
        if cache is None and cache_root is not None:
            cache = ResponseCache(cache_root, flush_every=config.flush_every)
        if cache is None and mode != "offline":
            raise LLMConfigError(f"mode {mode!r} needs a cache root")
        self.cache = cache
        self.usage = config.new_usage()  # all runs of this runner
        self.last_usage = config.new_usage()  # the latest run
        self.endpoint: EndpointInfo | None = None  # what the probe found (live mode)

    @property
    def served_model(self) -> str:
        """The model the endpoint said it serves (the configured name until probed)."""
        return self.endpoint.served_model if self.endpoint is not None else self.config.model

    def key(self, request: LLMRequest) -> str:
        return request_key(self.config, request)

    # -- the synchronous entry point ------------------------------------------------------

    def run(
        self, requests: Sequence[LLMRequest], validate: Validator | None = None
    ) -> list[LLMResponse | LLMFailure]:
        if self.mode == "offline":
            steps = sorted({r.step for r in requests})
            raise LLMOfflineError(
                f"LLM mode is 'offline': steps {steps} must not call the LLM (check runner.mode "
                "first, or set mode to 'live' or 'replay')"
            )
        return run_sync(lambda: self.arun(requests, validate))

    async def arun(
        self, requests: Sequence[LLMRequest], validate: Validator | None = None
    ) -> list[LLMResponse | LLMFailure]:
        if self.mode == "offline":
            raise LLMOfflineError("LLM mode is 'offline': run() must not be called")
        assert self.cache is not None
        usage = self.config.new_usage()
        self.last_usage = usage
        results: list[LLMResponse | LLMFailure | None] = [None] * len(requests)
        keys = [self.key(r) for r in requests]
        # only this run's answers are read from the cache, not every answer it holds
        await asyncio.to_thread(self.cache.refresh, keys)
        todo: dict[str, list[int]] = {}
        for i, (request, key) in enumerate(zip(requests, keys, strict=True)):
            entry = self.cache.get(key, validate, request.expect_json)
            if entry is not None:
                usage.cache_hits += 1
                results[i] = response_from_entry(entry, request, cached=True)
            elif self.mode == "replay":
                reason = (
                    f"replay_miss: step {request.step!r} (template {request.template!r}) has no "
                    f"cached answer for prompt {prompt_preview(request)!r} under {self.cache.root}"
                )
                usage.fail(reason)
                results[i] = LLMFailure(key=key, step=request.step, reason=reason, attempts=0)
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            try:
                await self._live(requests, todo, validate, usage, results)
            finally:
                await asyncio.to_thread(self.cache.flush)
                self.usage.add(usage)
        else:
            self.usage.add(usage)
        log.info("LLM run: %s", usage.as_metadata())
        return [r for r in results if r is not None]

    # -- live requests --------------------------------------------------------------------

    async def _live(
        self,
        requests: Sequence[LLMRequest],
        todo: dict[str, list[int]],
        validate: Validator | None,
        usage: Usage,
        results: list[LLMResponse | LLMFailure | None],
    ) -> None:
        client = self.config.async_client()
        if self.config.check_model == "strict" and self.endpoint is None:
            try:
                self.endpoint = await aprobe(
                    client,
                    self.config.model,
                    self.config.base_url,
                    timeout_s=self.config.timeout_s,
                    backoff_s=self.config.backoff_base_s,
                )
            except BaseException:
                await client.close()
                raise
        run = _Run(
            client=client,
            semaphore=asyncio.Semaphore(self.config.max_in_flight),
            limiter=RateLimiter(self.config.rpm, self.config.tpm),
            usage=usage,
            validate=validate,
        )

        async def one(key: str, indices: list[int]) -> None:
            first = requests[indices[0]]
            result = await self._request(run, first, key)
            for n, i in enumerate(indices):
                if isinstance(result, LLMResponse):
                    same = dataclasses.replace(
                        result, step=requests[i].step, cached=result.cached or n > 0
                    )
                    if n > 0:
                        usage.cache_hits += 1
                    results[i] = same
                else:
                    results[i] = dataclasses.replace(result, step=requests[i].step)

        try:
            await asyncio.gather(*(one(k, idx) for k, idx in todo.items()))
        finally:
            usage.rate_limit_wait_s += run.limiter.waited_s
            await client.close()

    async def _request(self, run: _Run, request: LLMRequest, key: str) -> LLMResponse | LLMFailure:
        config = self.config
        attempts = 0
        reason = "unknown"
        # what the answers of this request cost, rejected ones included (kept with the
        # entry or the failure: ``hum plan`` learns calls and tokens per request from it)
        spent = {"answers": 0, "prompt_tokens": 0, "completion_tokens": 0}
        for attempt in range(config.max_invalid_retries + 1):
            if attempt:
                run.usage.retries += 1
            try:
                answer, calls = await self._call(run, request, key, attempt)
            except _Give as give:
                attempts += give.calls
                reason = redact(give.reason, config)
                break
            attempts += calls
            spent["answers"] += 1
            for name in ("prompt_tokens", "completion_tokens"):
                spent[name] += int(answer["usage"].get(name, 0))
            parsed, problem = parse_and_validate(answer["content"], run.validate, request.expect_json)
            if problem is None:
                entry = {
                    **answer,
                    "key": key,
                    "parsed": parsed,
                    "step": request.step,
                    "template": request.template,
                    "template_version": request.template_version,
                    "sample_index": request.sample_index,
                    "attempt": attempt,
                    "prompt": prompt_preview(request),
                    "served_model": self.served_model,
                    "spent": spent,
                }
                self.cache.put(entry)
                run.usage.responses += 1
                return response_from_entry(entry, request, cached=False)
            reason = problem
            log.info("%s: answer rejected (%s), attempt %d", request.step, problem, attempt + 1)
        else:
            reason = f"{reason} (after {config.max_invalid_retries + 1} tries)"
        run.usage.fail(reason)
        self.cache.record_failure(
            {
                "key": key,
                "step": request.step,
                "template": request.template,
                "reason": reason,
                "attempts": attempts,
                "at": time.time(),
                "prompt": prompt_preview(request),
                "spent": spent,
            }
        )
        return LLMFailure(key=key, step=request.step, reason=reason, attempts=attempts)

    async def _call(
        self, run: _Run, request: LLMRequest, key: str, attempt: int
    ) -> tuple[dict[str, Any], int]:
        """One answer from the endpoint, retrying transport failures; raises ``_Give``."""
        config = self.config
        learnt = (config.base_url, config.model)
        calls = 0
        transport_try = 0
        while True:
            wait: float | None = None
            async with run.semaphore:  # then the budgets, so a pause holds back every slot
                # the body is built once a slot is ours: a structured-output mode learnt
                # while this request waited (a server refusing json_schema) applies to it
                structured = config.structured_output
                if structured == "auto":
                    structured = _STRUCTURED_LEARNT.get(learnt, "json_schema")
                body = request_body(config, request, attempt=attempt, structured=structured)
                estimate = estimate_tokens(body)
                await run.limiter.acquire(estimate)
                calls += 1
                run.usage.requests_sent += 1
                requested_at = time.time()
                try:
                    raw = await run.client.chat.completions.with_raw_response.create(**body)
                    run.limiter.observe(raw.headers)
                    completion = raw.parse()
                    choice = completion.choices[0]
                    content = choice.message.content or ""
                except openai.RateLimitError as exc:
                    run.limiter.settle(estimate, 0)
                    reason = "rate_limited"
                    wait = retry_after(exc.response.headers)
                    run.limiter.observe(exc.response.headers)
                    if wait is not None:
                        run.limiter.pause(wait)
                except openai.APITimeoutError:
                    reason = "timeout"
                except openai.APIConnectionError as exc:
                    reason = f"connection_error: {type(exc.__cause__ or exc).__name__}"
                except openai.APIStatusError as exc:
                    run.limiter.settle(estimate, 0)
                    status = exc.status_code
                    if config.structured_output == "auto" and _rejects_format(
                        exc, body, structured
                    ):
                        fallback = _FALLBACK[structured]
                        _STRUCTURED_LEARNT[learnt] = fallback
                        log.warning(
                            "%s rejected response_format %s (HTTP %d): falling back to %s",
                            config.base_url or "the endpoint",
                            structured,
                            status,
                            fallback,
                        )
                        run.usage.retries += 1
                        continue
                    if status == 400:
                        raise _Give(f"bad_request: {_message(exc)}", calls) from None
                    if status >= 500 or status in (408, 409):
                        reason = f"server_error: HTTP {status}"
                        wait = retry_after(exc.response.headers)
                    elif status in (401, 403):
                        raise _Give(f"auth_error: HTTP {status}", calls) from None
                    else:
                        raise _Give(f"http_{status}: {_message(exc)}", calls) from None
                except (
                    ValueError,
                    IndexError,
                    AttributeError,
                    openai.APIResponseValidationError,
                ) as exc:
                    reason = f"bad_response: {type(exc).__name__}"
                else:
                    answered_at = time.time()
                    used = completion.usage
                    tokens = {
                        "prompt_tokens": int(getattr(used, "prompt_tokens", 0) or 0),
                        "completion_tokens": int(getattr(used, "completion_tokens", 0) or 0),
                    }
                    run.usage.prompt_tokens += tokens["prompt_tokens"]
                    run.usage.completion_tokens += tokens["completion_tokens"]
                    run.limiter.settle(
                        estimate, tokens["prompt_tokens"] + tokens["completion_tokens"]
                    )
                    return (
                        {
                            "content": content,
                            "model": completion.model or config.model,
                            "usage": tokens,
                            "finish_reason": choice.finish_reason,
                            "requested_at": requested_at,
                            "answered_at": answered_at,
                            "seed": body.get("seed"),
                            "structured_output": structured,
                        },
                        calls,
                    )
            # a transport failure: retry after a pause, or give up
            if transport_try >= config.max_retries:
                raise _Give(f"{reason} (gave up after {calls} calls)", calls)
            if wait is None:
                wait = backoff_delay(
                    transport_try, base=config.backoff_base_s, cap=config.backoff_max_s, salt=key
                )
            else:  # honour the server's retry-after, plus a little deterministic spread
                wait = wait + backoff_delay(transport_try, base=0.05, cap=0.25, salt=key)
            transport_try += 1
            run.usage.retries += 1
            log.info("%s: %s; retry %d in %.2fs", request.step, reason, transport_try, wait)
            await asyncio.sleep(wait)


def _rejects_format(exc: openai.APIStatusError, body: dict[str, Any], structured: str) -> bool:
    """Did the server refuse our ``response_format``? OpenAI answers 400; others 422, or
    500 from a validation error (llama-cpp-python): all name the field in the message."""
    if "response_format" not in body or structured not in _FALLBACK:
        return False
    if exc.status_code not in (400, 422, 500):
        return False
    text = _message(exc).lower()
    return "response_format" in text or "json_schema" in text or "json_object" in text


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])[:300]
    return str(exc)[:300]


@dataclass
class _Run:
    client: openai.AsyncOpenAI
    semaphore: asyncio.Semaphore
    limiter: RateLimiter
    usage: Usage
    validate: Validator | None
