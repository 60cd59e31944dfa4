"""Request and token budgets: token buckets, server rate-limit headers, retry delays."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """Seconds in an OpenAI reset header: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"0.5"``."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    total, matched = 0.0, False
    for number, unit in _DURATION.findall(value):
        matched = True
        total += float(number) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    return total if matched else None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms`` or ``retry-after``)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    if seconds is not None:
        try:
            return max(0.0, float(seconds))
        except ValueError:
            return None  # an HTTP date: fall back to our own backoff
    return None


def backoff_delay(attempt: int, *, base: float, cap: float, salt: str = "") -> float:
    """Exponential backoff with bounded, deterministic jitter.

    ``min(cap, base * 2**attempt)`` scaled by a factor in [0.5, 1.0) drawn from a hash of
    ``(salt, attempt)``: reproducible for one request, spread across requests.
    """
    ceiling = min(cap, base * (2**attempt))
    digest = hashlib.sha256(f"{salt}:{attempt}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return ceiling * (0.5 + 0.5 * u)


class TokenBucket:
    """``capacity`` units refilled at ``capacity / period`` per second; ``None`` = unlimited."""

    def __init__(self, capacity: float | None, period: float = 60.0) -> None:
        self.capacity = capacity
        self.rate = (capacity / period) if capacity else 0.0
        self.level = float(capacity or 0)
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        if self.capacity:
            self.level = min(float(self.capacity), self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` units are available (0 when they are now)."""
        if not self.capacity:
            return 0.0
        self._refill()
        amount = min(amount, float(self.capacity))  # a huge request waits for a full bucket
        if self.level >= amount:
            return 0.0
        return (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        if self.capacity:
            self._refill()
            self.level -= min(amount, float(self.capacity))

    def give_back(self, amount: float) -> None:
        if self.capacity:
            self._refill()
            self.level = min(float(self.capacity), self.level + amount)

    def clamp(self, remaining: float) -> None:
        """The server says only ``remaining`` units are left: never believe in more."""
        if self.capacity:
            self._refill()
            self.level = min(self.level, remaining)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets for one event loop.

    ``acquire(tokens)`` waits until both buckets allow the request and no pause is in
    force; ``settle(estimated, actual)`` corrects the token bucket after the answer;
    ``observe(headers)`` follows the server's ``x-ratelimit-*`` headers; ``pause(s)``
    (after a 429) holds every request back for ``s`` seconds.
    """

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.requests = TokenBucket(rpm)
        self.tokens = TokenBucket(tpm)
        self._paused_until = 0.0
        self._lock: asyncio.Lock | None = None
        self.waited_s = 0.0

    async def acquire(self, tokens: float) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # first come, first served: no starvation of big requests
            while True:
                now = time.monotonic()
                wait = max(
                    self._paused_until - now,
                    self.requests.wait_time(1),
                    self.tokens.wait_time(tokens),
                )
                if wait <= 0:
                    break
                self.waited_s += wait
                await asyncio.sleep(wait)
            self.requests.take(1)
            self.tokens.take(tokens)

    def settle(self, estimated: float, actual: float) -> None:
        if actual < estimated:
            self.tokens.give_back(estimated - actual)
        elif actual > estimated:
            self.tokens.take(actual - estimated)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        if not headers:
            return
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is None:
                continue
            try:
                left = float(remaining)
            except ValueError:
                continue
            bucket.clamp(left)
            if left <= 0:
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    self.pause(reset)
