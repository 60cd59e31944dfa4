"""What one LLM step did, in counts a person can read: the step report.

A step (``dictionary.describe``, ``synthesis.preference_rules``) asks the LLM for some
requests; each ends as an answer from the cache, a new answer from the endpoint, or a
failure (by reason). The answers hold *values* (descriptions, synonyms, relabellings)
that gates accept or reject (by reason). ``StepReport`` counts all of it, and

- ``metadata()`` gives flat values under the stable keys in ``KEYS`` (Dagster metadata
  of every materialization that ran the step);
- ``verdict(thresholds)`` says ``ok``, ``warn`` or ``fail``, with the reasons:
  ``fail`` when failed requests pass ``max_failed_share`` of the requests, or when every
  request failed (the output would be the offline output, so a live run must not look
  like success); ``warn`` when some failed, or when the share of accepted values is
  below ``min_accepted_share``;
- ``summary_line(metadata)`` turns a step's metadata back into one line for ``hum run``.

Tokens are counted once, as what was *sent* in this run: ``sent_prompt_tokens`` and
``sent_completion_tokens`` are the endpoint's usage over every HTTP call of the step
(retries included, cache hits cost nothing): what the endpoint bills.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.llm.types import LLMFailure, LLMResponse
from hum_dagster.llm.usage import Usage, reason_category

# Stable metadata keys (documented in the README, read by ``summary_line``).
PREFIX = "llm/"
KEYS = {
    "step": "llm/step",  # e.g. "dictionary.describe"
    "mode": "llm/mode",  # live | replay | offline
    "model": "llm/model",  # the model the endpoint serves (the probe's answer)
    "requests": "llm/requests",  # LLM requests the step needed
    "cached": "llm/cached",  # of which answered from the cache
    "answered": "llm/answered",  # of which answered by the endpoint in this run
    "failed": "llm/failed",  # of which ended without a usable answer
    "failed_by_reason": "llm/failed_by_reason",  # JSON {reason: count}
    "sent": "llm/sent",  # HTTP calls sent (retries included)
    "sent_prompt_tokens": "llm/sent_prompt_tokens",
    "sent_completion_tokens": "llm/sent_completion_tokens",
    "cost_usd": "llm/cost_usd",  # at the configured prices; None: no price known
    "values": "llm/values",  # LLM-written values the gates looked at
    "accepted": "llm/accepted",
    "rejected": "llm/rejected",
    "rejected_by_reason": "llm/rejected_by_reason",  # JSON {reason: count}
    "rejected_sample": "llm/rejected_sample",  # JSON [{label, value, reason, detail}]
    "acceptance": "llm/acceptance",  # accepted / values; None when no value was seen
    "verdict": "llm/verdict",  # ok | warn | fail
    "verdict_reasons": "llm/verdict_reasons",  # JSON [str]
    "summary": "llm/summary",  # the one line of summary_line
}
SAMPLE_SIZE = 20  # rejected values (and failures) kept per step, in a stable order


@dataclass(frozen=True)
class Thresholds:
    """When a step fails or warns. Shares are of the step's requests / values."""

    max_failed_share: float = 0.10
    min_accepted_share: float = 0.50

    def __post_init__(self) -> None:
        for name in ("max_failed_share", "min_accepted_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")

    @classmethod
    def from_percent(cls, max_failed_pct: int, min_accepted_pct: int) -> Thresholds:
        return cls(max_failed_pct / 100.0, min_accepted_pct / 100.0)


@dataclass(frozen=True)
class Verdict:
    level: str  # ok | warn | fail
    reasons: tuple[str, ...] = ()
    failed_ok: bool = True  # the failure share is within the threshold (and not 100%)
    accepted_ok: bool = True  # the acceptance share is at or above the threshold
    nothing_accepted: bool = False  # values were proposed and none was accepted


@dataclass
class StepReport:
    step: str
    mode: str = "offline"
    model: str = ""
    requests: int = 0
    cached: int = 0
    answered: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    failure_sample: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0
    sent_prompt_tokens: int = 0
    sent_completion_tokens: int = 0
    cost_usd: float | None = None
    values: int = 0
    accepted: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    rejected_sample: list[dict[str, Any]] = field(default_factory=list)
    sample_size: int = SAMPLE_SIZE

    # -- counting -----------------------------------------------------------------------

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.values if self.values else None

    def count_results(
        self, results: Sequence[LLMResponse | LLMFailure], labels: Sequence[str] | None = None
    ) -> None:
        """Requests, cache hits, new answers and failures (``labels``: what each request
        was about, kept with the sampled failures)."""
        self.requests += len(results)
        for n, result in enumerate(results):
            if isinstance(result, LLMFailure):
                self.failures[reason_category(result.reason)] += 1
                if len(self.failure_sample) < self.sample_size:
                    self.failure_sample.append(
                        {
                            "label": labels[n] if labels is not None else "",
                            "reason": result.reason[:300],
                            "attempts": result.attempts,
                        }
                    )
            elif result.cached:
                self.cached += 1
            else:
                self.answered += 1

    def count_usage(self, usage: Usage | None) -> None:
        """HTTP calls, tokens and cost of the run (the runner's ``last_usage``)."""
        if usage is None:
            return
        self.sent += usage.requests_sent
        self.sent_prompt_tokens += usage.prompt_tokens + usage.batch_prompt_tokens
        self.sent_completion_tokens += usage.completion_tokens + usage.batch_completion_tokens
        if usage.priced:
            self.cost_usd = round((self.cost_usd or 0.0) + usage.cost_usd, 6)

    def accept(self, n: int = 1) -> None:
        self.values += n
        self.accepted += n

    def reject(self, reason: str, sample: Mapping[str, Any] | None = None) -> None:
        self.values += 1
        self.rejections[reason] += 1
        if sample is not None and len(self.rejected_sample) < self.sample_size:
            self.rejected_sample.append({**sample, "reason": reason})

    def merged(self, other: StepReport) -> StepReport:
        """One report for two steps of one asset (e.g. ``dictionary.describe`` and
        ``dictionary.examples``): counts added, samples joined up to the sample size,
        the step named ``"<a>+<b>"``."""
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = round((self.cost_usd or 0.0) + (other.cost_usd or 0.0), 6)
        return StepReport(
            step=f"{self.step}+{other.step}",
            mode=self.mode,
            model=self.model or other.model,
            requests=self.requests + other.requests,
            cached=self.cached + other.cached,
            answered=self.answered + other.answered,
            failures=self.failures + other.failures,
            failure_sample=(self.failure_sample + other.failure_sample)[: self.sample_size],
            sent=self.sent + other.sent,
            sent_prompt_tokens=self.sent_prompt_tokens + other.sent_prompt_tokens,
            sent_completion_tokens=self.sent_completion_tokens + other.sent_completion_tokens,
            cost_usd=cost,
            values=self.values + other.values,
            accepted=self.accepted + other.accepted,
            rejections=self.rejections + other.rejections,
            rejected_sample=(self.rejected_sample + other.rejected_sample)[: self.sample_size],
            sample_size=self.sample_size,
        )

    # -- judging ------------------------------------------------------------------------

    def verdict(self, thresholds: Thresholds | None = None) -> Verdict:
        t = thresholds or Thresholds()
        reasons: list[str] = []
        level = "ok"
        failed_ok = accepted_ok = True
        if self.mode != "offline" and self.requests:
            share = self.failed / self.requests
            if self.failed == self.requests:
                failed_ok = False
                reasons.append(
                    f"all {self.requests} requests failed ({_reasons(self.failures)}): the "
                    "output would be the offline output"
                )
            elif share > t.max_failed_share:
                failed_ok = False
                reasons.append(
                    f"{self.failed} of {self.requests} requests failed ({share:.0%} > "
                    f"{t.max_failed_share:.0%}; {_reasons(self.failures)})"
                )
            elif self.failed:
                reasons.append(
                    f"{self.failed} of {self.requests} requests failed ({_reasons(self.failures)})"
                )
                level = "warn"
        nothing = self.values > 0 and self.accepted == 0
        acceptance = self.acceptance
        if acceptance is not None and acceptance < t.min_accepted_share:
            accepted_ok = False
            level = "warn"
            reasons.append(
                f"{self.accepted} of {self.values} LLM values accepted ({acceptance:.0%} < "
                f"{t.min_accepted_share:.0%}; rejected: {_reasons(self.rejections)})"
            )
        if not failed_ok:
            level = "fail"
        return Verdict(level, tuple(reasons), failed_ok, accepted_ok, nothing)

    # -- metadata -----------------------------------------------------------------------

    def metadata(self, thresholds: Thresholds | None = None) -> dict[str, Any]:
        """Flat values under ``KEYS`` (dicts and lists as JSON strings, so any consumer
        can read them; the Dagster layer may wrap them)."""
        verdict = self.verdict(thresholds)
        acceptance = self.acceptance
        meta: dict[str, Any] = {
            KEYS["step"]: self.step,
            KEYS["mode"]: self.mode,
            KEYS["model"]: self.model,
            KEYS["requests"]: self.requests,
            KEYS["cached"]: self.cached,
            KEYS["answered"]: self.answered,
            KEYS["failed"]: self.failed,
            KEYS["failed_by_reason"]: _json(dict(sorted(self.failures.items()))),
            KEYS["sent"]: self.sent,
            KEYS["sent_prompt_tokens"]: self.sent_prompt_tokens,
            KEYS["sent_completion_tokens"]: self.sent_completion_tokens,
            KEYS["cost_usd"]: self.cost_usd,
            KEYS["values"]: self.values,
            KEYS["accepted"]: self.accepted,
            KEYS["rejected"]: self.rejected,
            KEYS["rejected_by_reason"]: _json(dict(sorted(self.rejections.items()))),
            KEYS["rejected_sample"]: _json(self.rejected_sample),
            KEYS["acceptance"]: round(acceptance, 4) if acceptance is not None else None,
            KEYS["verdict"]: verdict.level,
            KEYS["verdict_reasons"]: _json(list(verdict.reasons)),
        }
        meta[KEYS["summary"]] = summary_line(meta)
        return meta

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "mode": self.mode,
            "model": self.model,
            "requests": self.requests,
            "cached": self.cached,
            "answered": self.answered,
            "failed": self.failed,
            "failed_by_reason": dict(sorted(self.failures.items())),
            "failure_sample": self.failure_sample,
            "sent": self.sent,
            "sent_prompt_tokens": self.sent_prompt_tokens,
            "sent_completion_tokens": self.sent_completion_tokens,
            "cost_usd": self.cost_usd,
            "values": self.values,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejections.items())),
            "rejected_sample": self.rejected_sample,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, step: str = "") -> StepReport:
        data = dict(data or {})
        return cls(
            step=str(data.get("step") or step),
            mode=str(data.get("mode") or "offline"),
            model=str(data.get("model") or ""),
            requests=int(data.get("requests") or 0),
            cached=int(data.get("cached") or 0),
            answered=int(data.get("answered") or 0),
            failures=Counter(data.get("failed_by_reason") or {}),
            failure_sample=list(data.get("failure_sample") or []),
            sent=int(data.get("sent") or 0),
            sent_prompt_tokens=int(data.get("sent_prompt_tokens") or 0),
            sent_completion_tokens=int(data.get("sent_completion_tokens") or 0),
            cost_usd=data.get("cost_usd"),
            values=int(data.get("values") or 0),
            accepted=int(data.get("accepted") or 0),
            rejections=Counter(data.get("rejected_by_reason") or {}),
            rejected_sample=list(data.get("rejected_sample") or []),
        )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))


def _reasons(counts: Mapping[str, int]) -> str:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v}" for k, v in top) or "none"


def _plain(value: Any) -> Any:
    """A Dagster ``MetadataValue`` (duck-typed: ``.value``) or a plain value."""
    return getattr(value, "value", value)


def _loads(value: Any, default: Any) -> Any:
    value = _plain(value)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default if value is None else value


def summary_line(metadata: Mapping[str, Any], where: str | None = None) -> str | None:
    """One line for a step, from its metadata (plain values or Dagster ``MetadataValue``s
    under ``KEYS``); None when the metadata holds no LLM step. ``where`` names the
    partition, e.g. ``"crossner_politics_train"``.

    e.g. ``dictionary.describe [ner_en_conll] live smollm2-135m: 4 requests (0 cached,
    4 answered, 0 failed; 4 sent), 20 values: 9 accepted (45%), 11 rejected (fragment 6,
    entity_not_description 5); 1,874 prompt + 612 completion tokens sent, $0.000000 --
    WARN: 9 of 20 LLM values accepted (45% < 50%; ...)``
    """
    if KEYS["step"] not in metadata:
        return None

    def get(name: str, default: Any = 0) -> Any:
        value = _plain(metadata.get(KEYS[name], default))
        return default if value is None else value

    step, mode = get("step", "?"), get("mode", "offline")
    head = f"{step}" + (f" [{where}]" if where else "")
    if mode == "offline":
        return f"{head} offline: no LLM requests"
    model = get("model", "")
    requests = int(get("requests"))
    failed = int(get("failed"))
    failed_by = _loads(metadata.get(KEYS["failed_by_reason"]), {})
    parts = [
        f"{requests} requests ({int(get('cached'))} cached, {int(get('answered'))} answered, "
        f"{failed} failed"
        + (f": {_reasons(failed_by)}" if failed else "")
        + f"; {int(get('sent'))} sent)"
    ]
    values = int(get("values"))
    if values:
        accepted = int(get("accepted"))
        rejected_by = _loads(metadata.get(KEYS["rejected_by_reason"]), {})
        rejected = int(get("rejected"))
        parts.append(
            f"{values} values: {accepted} accepted ({accepted / values:.0%}), {rejected} rejected"
            + (f" ({_reasons(rejected_by)})" if rejected else "")
        )
    cost = _plain(metadata.get(KEYS["cost_usd"]))
    cost_text = f"${cost:.6f}" if isinstance(cost, int | float) else "cost unknown (no price set)"
    parts.append(
        f"{int(get('sent_prompt_tokens')):,} prompt + {int(get('sent_completion_tokens')):,} "
        f"completion tokens sent, {cost_text}"
    )
    line = f"{head} {mode}{' ' + model if model else ''}: " + ", ".join(parts)
    level = get("verdict", "ok")
    if level != "ok":
        reasons = _loads(metadata.get(KEYS["verdict_reasons"]), [])
        line += f" -- {'FAILED' if level == 'fail' else 'WARN'}: " + "; ".join(reasons)
    return line
