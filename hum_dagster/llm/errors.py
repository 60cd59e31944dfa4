"""The LLM layer's errors. Messages are one readable line and never hold the API key."""

from __future__ import annotations


class LLMError(RuntimeError):
    """Base of the LLM layer's errors."""


class LLMConfigError(LLMError):
    pass


class LLMOfflineError(LLMError):
    """``run`` was called in offline mode."""


class LLMFailedError(LLMError):
    """Some requests failed (``raise_for_failures``)."""


class ReplayMissError(LLMFailedError):
    """Replay mode found no cached answer for some requests."""


class EndpointError(LLMError):
    """The endpoint cannot serve this run (found by the probe before any request)."""


class EndpointUnreachableError(EndpointError):
    """Nothing answers at the base URL (connection refused, DNS, timeout)."""


class EndpointAuthError(EndpointError):
    """The endpoint refused the API key (HTTP 401/403)."""


class ModelNotServedError(EndpointError):
    """The endpoint's model list does not hold the configured model."""
