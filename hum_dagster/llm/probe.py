"""The endpoint probe: before a live run sends its first request, ask the server what it
serves (``GET /v1/models``).

- nothing answers (connection refused, DNS, timeout): ``EndpointUnreachableError``, so a
  run fails at once with one line instead of after every request has timed out;
- 401/403: ``EndpointAuthError``;
- a model list without the configured model: ``ModelNotServedError`` naming what the
  server does serve. llama.cpp's server answers chat requests under any model name, so
  without this check a run's provenance would name a model that never ran;
- no model list (404, 405 or another 4xx/5xx on that path): the model name cannot be
  checked; the probe says so and the configured name stands.

``EndpointInfo.served_model`` is the model the endpoint says it serves; it goes into the
provenance of every answer (``served_model`` in cache entries) and into step metadata.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import openai

from hum_dagster.llm.errors import (
    EndpointAuthError,
    EndpointUnreachableError,
    LLMConfigError,
    ModelNotServedError,
)

log = logging.getLogger(__name__)

MODEL_CHECKS = ("strict", "off")
CONNECT_TRIES = 3  # a server that is starting may refuse a connection or two


@dataclass(frozen=True)
class EndpointInfo:
    base_url: str
    models: tuple[str, ...] | None  # None: the server has no model list
    served_model: str
    note: str = ""

    def to_json(self) -> dict:
        return {
            "base_url": self.base_url,
            "models": list(self.models) if self.models is not None else None,
            "served_model": self.served_model,
            "note": self.note,
        }


def check_model_setting(value: str) -> str:
    if value not in MODEL_CHECKS:
        raise LLMConfigError(f"check_model must be one of {MODEL_CHECKS}, not {value!r}")
    return value


async def aprobe(
    client: openai.AsyncOpenAI,
    model: str,
    base_url: str | None,
    *,
    timeout_s: float,
    backoff_s: float = 0.5,
) -> EndpointInfo:
    """Probe the endpoint behind ``client`` for ``model`` (see the module note)."""
    where = base_url or "the OpenAI API"
    last = ""
    for attempt in range(CONNECT_TRIES):
        try:
            page = await client.models.list(timeout=timeout_s)
        except openai.APITimeoutError:
            last = f"no answer within {timeout_s:g} s"
        except openai.APIConnectionError as exc:
            last = type(exc.__cause__ or exc).__name__
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EndpointAuthError(
                f"LLM endpoint {where} refused the API key (HTTP {exc.status_code}): check the "
                "variable named by HUM_LLM_API_KEY_ENV"
            ) from None
        except openai.APIStatusError as exc:
            note = f"{where} has no model list (GET /models: HTTP {exc.status_code}); model {model!r} is not checked"
            log.warning(note)
            return EndpointInfo(where, None, model, note)
        else:
            ids = tuple(sorted({str(m.id) for m in getattr(page, "data", None) or ()}))
            if model in ids:
                return EndpointInfo(where, ids, model)
            if not ids:
                note = f"{where} lists no model; model {model!r} is not checked"
                log.warning(note)
                return EndpointInfo(where, ids, model, note)
            raise ModelNotServedError(
                f"LLM endpoint {where} does not serve model {model!r}: it serves "
                f"{', '.join(repr(i) for i in ids[:10])} (set HUM_LLM_MODEL to one of them)"
            )
        if attempt + 1 < CONNECT_TRIES:
            await asyncio.sleep(backoff_s * (attempt + 1))
    raise EndpointUnreachableError(
        f"LLM endpoint {where} is unreachable ({last}, {CONNECT_TRIES} tries): no request was sent"
    )
