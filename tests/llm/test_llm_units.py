"""JSON extraction, rate-limit arithmetic, usage accounting: no server needed."""

from __future__ import annotations

import asyncio
import time

import pytest

from hum_dagster.llm.extract import ExtractError, extract_json, first_balanced
from hum_dagster.llm.ratelimit import (
    RateLimiter,
    TokenBucket,
    backoff_delay,
    parse_duration,
    retry_after,
)
from hum_dagster.llm.usage import Usage


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('Here you go:\n```\n[{"x": "y"}]\n```\nAnything else?', [{"x": "y"}]),
        (
            'The answer is {"label": "a } tricky { string", "n": 2} as asked.',
            {"label": "a } tricky { string", "n": 2},
        ),
        ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ('{"keep": "a,]"}', {"keep": "a,]"}),
        ("Result: [] (none found)", []),
        ('"just a string"', "just a string"),
        ('{"escaped": "quote \\" and }"} trailing', {"escaped": 'quote " and }'}),
    ],
)
def test_extract_json(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no json here", "{broken: yes", "[1, 2"])
def test_extract_json_failures_name_the_reason(text):
    with pytest.raises(ExtractError):
        extract_json(text)


def test_first_balanced_skips_unbalanced_openers():
    assert first_balanced("a ] b { c } d") == "{ c }"
    assert first_balanced("{ [ } ]") is None


def test_parse_duration_and_retry_after():
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("0.25") == 0.25
    assert parse_duration("soon") is None and parse_duration(None) is None
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after({}) is None


def test_backoff_grows_is_bounded_and_reproducible():
    delays = [backoff_delay(n, base=0.5, cap=8.0, salt="k") for n in range(8)]
    assert delays == [backoff_delay(n, base=0.5, cap=8.0, salt="k") for n in range(8)]
    for n, d in enumerate(delays):
        ceiling = min(8.0, 0.5 * 2**n)
        assert ceiling * 0.5 <= d <= ceiling
    assert backoff_delay(3, base=0.5, cap=8.0, salt="a") != backoff_delay(
        3, base=0.5, cap=8.0, salt="b"
    )


def test_token_bucket_waits_for_refill():
    bucket = TokenBucket(600, period=60.0)  # 10 a second
    assert bucket.wait_time(600) == 0
    bucket.take(600)
    assert bucket.wait_time(5) == pytest.approx(0.5, abs=0.05)
    bucket.clamp(0)
    bucket.give_back(3)
    assert bucket.wait_time(3) == 0
    assert TokenBucket(None).wait_time(10**9) == 0


def test_rate_limiter_paces_requests_and_tokens():
    async def go(limiter: RateLimiter, n: int, tokens: int) -> float:
        start = time.monotonic()
        for _ in range(n):
            await limiter.acquire(tokens)
        return time.monotonic() - start

    rpm = RateLimiter(rpm=600, tpm=None)  # 10 requests a second
    rpm.requests.level = 0
    assert asyncio.run(go(rpm, 3, 1)) >= 0.25
    tpm = RateLimiter(rpm=None, tpm=6000)  # 100 tokens a second
    tpm.tokens.level = 0
    assert asyncio.run(go(tpm, 1, 40)) >= 0.35
    tpm.settle(estimated=1000, actual=10)  # an over-estimate is given back
    assert tpm.tokens.level >= 900


def test_rate_limiter_follows_server_headers():
    limiter = RateLimiter(rpm=1000, tpm=100000)
    limiter.observe({"x-ratelimit-remaining-requests": "3", "x-ratelimit-remaining-tokens": "500"})
    assert limiter.requests.level <= 3 and limiter.tokens.level <= 500
    limiter.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert limiter._paused_until - time.monotonic() > 1.5


def test_usage_metadata_and_merge():
    a = Usage(
        requests_sent=3,
        cache_hits=2,
        responses=3,
        prompt_tokens=1_000_000,
        completion_tokens=500_000,
        price_in_per_m=1.0,
        price_out_per_m=4.0,
    )
    a.fail("invalid: missing label")
    a.fail("invalid_json: no JSON")
    a.fail("invalid: other")
    b = Usage(batch_requests=2, batch_prompt_tokens=1_000_000, batch_completion_tokens=0, retries=1)
    a.add(b)
    assert a.cost_usd == pytest.approx(1.0 + 2.0 + 0.5)  # batch at 50%
    meta = a.as_metadata()
    assert (
        meta["llm_failures"] == 3
        and meta["llm_failures_by_reason"] == '{"invalid": 2, "invalid_json": 1}'
    )
    assert meta["llm_prompt_tokens"] == 2_000_000 and meta["llm_retries"] == 1
    assert meta["llm_cost_usd"] == pytest.approx(3.5)
    assert all(isinstance(v, int | float | str) for v in meta.values())
