"""The contract between LLM steps (dictionary enrichment, paraphrases, preference rules)
and the LLM layer. Steps build ``LLMRequest`` values and get back, for each, either an
``LLMResponse`` or an ``LLMFailure``; they never talk to an endpoint themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Mode = Literal["live", "replay", "offline"]
MODES: tuple[str, ...] = ("live", "replay", "offline")

# A validator gets the parsed JSON of a response and returns None when it is usable,
# else the reason it is not (the response is then retried, and finally a failure).
Validator = Callable[[Any], str | None]


@dataclass(frozen=True)
class LLMRequest:
    step: str  # which step asks, e.g. "dictionary.describe"; named in errors and usage
    template: str  # prompt template id, e.g. "describe_label"
    template_version: str  # version hash of the template file: part of the cache key
    messages: tuple[dict[str, str], ...]  # OpenAI chat messages
    sample_index: int = 0  # several independent samples of one prompt
    json_schema: dict[str, Any] | None = None  # structured output, sent where supported
    params: dict[str, Any] = field(default_factory=dict)  # overrides: temperature, max_tokens...
    # False: the answer is free text (e.g. a model's generation being evaluated): it is
    # cached and returned as it is, ``parsed`` is None and a validator sees the text.
    expect_json: bool = True

    @classmethod
    def chat(cls, step: str, template: Any, user: str) -> LLMRequest:
        """A system + user request from a prompt template (anything with ``name``,
        ``version``, ``system`` and ``json_schema``) and the user message rendered from it."""
        return cls(
            step=step,
            template=template.name,
            template_version=template.version,
            messages=(
                {"role": "system", "content": template.system},
                {"role": "user", "content": user},
            ),
            json_schema=template.json_schema,
        )


@dataclass(frozen=True)
class LLMResponse:
    key: str  # cache key (hash of everything that shapes the answer)
    step: str
    content: str  # the raw text of the answer
    parsed: Any  # the JSON value extracted from it (validated)
    model: str
    usage: dict[str, int]  # prompt_tokens, completion_tokens
    cached: bool  # True when served from the cache
    created_at: float  # when the endpoint answered (epoch seconds)


@dataclass(frozen=True)
class LLMFailure:
    key: str
    step: str
    reason: str  # "rate_limited", "server_error", "timeout", "invalid_json", "invalid: ...", "replay_miss", ...
    attempts: int


class LLMRunner(Protocol):
    """What steps call. ``mode == "offline"`` means: do not call ``run`` at all."""

    mode: Mode

    def run(
        self, requests: Sequence[LLMRequest], validate: Validator | None = None
    ) -> list[LLMResponse | LLMFailure]: ...
