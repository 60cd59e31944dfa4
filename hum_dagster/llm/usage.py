"""Usage accounting for LLM runs: requests, cache hits, failures, tokens and cost."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field


def reason_category(reason: str) -> str:
    """``"invalid: missing key"`` -> ``"invalid"``, ``"timeout (gave up after 7 calls)"``
    -> ``"timeout"``: the leading word of the reason."""
    found = re.match(r"\s*([A-Za-z0-9_]+)", reason or "")
    return found.group(1) if found else "unknown"


@dataclass
class Usage:
    """What one or more runs cost. Prices are USD per million tokens; batch tokens are
    charged at ``batch_discount`` of the price (the Batch API's 50%)."""

    requests_sent: int = 0  # HTTP calls to the chat endpoint, retries included
    cache_hits: int = 0
    responses: int = 0  # new valid answers (stored in the cache)
    failures: Counter[str] = field(default_factory=Counter)  # by reason category
    retries: int = 0  # calls after the first for one request (transport or invalid)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    batch_requests: int = 0  # answers collected from the Batch API
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    rate_limit_wait_s: float = 0.0
    price_in_per_m: float = 0.0
    price_out_per_m: float = 0.0
    batch_discount: float = 0.5
    priced: bool = True  # False: no price is known for the model, so cost_usd means nothing

    def fail(self, reason: str) -> None:
        self.failures[reason_category(reason)] += 1

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def cost_usd(self) -> float:
        live = (
            self.prompt_tokens * self.price_in_per_m + self.completion_tokens * self.price_out_per_m
        )
        batch = (
            self.batch_prompt_tokens * self.price_in_per_m
            + self.batch_completion_tokens * self.price_out_per_m
        ) * self.batch_discount
        return (live + batch) / 1_000_000

    def add(self, other: Usage) -> None:
        """Fold ``other``'s counts into this one (prices stay this one's)."""
        for name in (
            "requests_sent",
            "cache_hits",
            "responses",
            "retries",
            "prompt_tokens",
            "completion_tokens",
            "batch_requests",
            "batch_prompt_tokens",
            "batch_completion_tokens",
            "rate_limit_wait_s",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)

    def as_metadata(self) -> dict[str, int | float | str]:
        """Flat values for Dagster metadata (and logs): no secrets, only counts and cost."""
        meta: dict[str, int | float | str] = {
            "llm_requests_sent": self.requests_sent,
            "llm_cache_hits": self.cache_hits,
            "llm_responses": self.responses,
            "llm_failures": self.failed,
            "llm_retries": self.retries,
            "llm_prompt_tokens": self.prompt_tokens + self.batch_prompt_tokens,
            "llm_completion_tokens": self.completion_tokens + self.batch_completion_tokens,
            "llm_batch_requests": self.batch_requests,
            "llm_rate_limit_wait_s": round(self.rate_limit_wait_s, 3),
            "llm_cost_usd": round(self.cost_usd, 6),
            "llm_priced": self.priced,
        }
        if self.failures:
            meta["llm_failures_by_reason"] = json.dumps(dict(sorted(self.failures.items())))
        return meta


def parse_prices(text: str | None) -> dict[str, tuple[float, float]]:
    """``"gpt-4o-mini=0.15/0.60, smollm2-135m=0/0"`` -> ``{model: (in, out)}``, USD per
    million prompt and completion tokens. Raises ValueError naming the bad item."""
    prices: dict[str, tuple[float, float]] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        model, sep, pair = item.rpartition("=")
        parts = pair.split("/")
        try:
            if not sep or not model.strip() or len(parts) != 2:
                raise ValueError
            price_in, price_out = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(
                f"price {item!r} is not MODEL=IN/OUT (USD per million prompt/completion tokens)"
            ) from None
        if price_in < 0 or price_out < 0:
            raise ValueError(f"price {item!r} is negative")
        prices[model.strip()] = (price_in, price_out)
    return prices
