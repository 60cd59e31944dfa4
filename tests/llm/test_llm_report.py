"""Step reports: counts, verdicts against thresholds, metadata keys and the summary line."""

from __future__ import annotations

import dagster as dg
import pytest

from hum_dagster.llm.report import KEYS, StepReport, Thresholds, summary_line
from hum_dagster.llm.types import LLMFailure, LLMResponse
from hum_dagster.llm.usage import Usage, parse_prices


def response(cached: bool) -> LLMResponse:
    return LLMResponse("k", "s", "{}", {}, "m", {}, cached, 0.0)


def report(ok: int, cached: int, failed: int, accepted: int = 0, rejected: int = 0) -> StepReport:
    step = StepReport("dictionary.describe", mode="live", model="m")
    results = [response(False)] * ok + [response(True)] * cached
    results += [LLMFailure("k", "s", "timeout (gave up after 7 calls)", 7)] * failed
    step.count_results(results, labels=[f"l{i}" for i in range(len(results))])
    step.accept(accepted)
    for n in range(rejected):
        step.reject(
            "fragment" if n % 2 else "entity_not_description", {"label": "x", "value": str(n)}
        )
    return step


def test_counts_and_metadata_keys():
    step = report(ok=3, cached=2, failed=1, accepted=6, rejected=4)
    usage = Usage(
        requests_sent=9,
        prompt_tokens=1200,
        completion_tokens=300,
        price_in_per_m=1.0,
        price_out_per_m=2.0,
    )
    step.count_usage(usage)
    meta = step.metadata(Thresholds(max_failed_share=0.5, min_accepted_share=0.5))
    assert set(meta) == set(KEYS.values())
    assert meta["llm/requests"] == 6 and meta["llm/cached"] == 2 and meta["llm/answered"] == 3
    assert meta["llm/failed"] == 1 and meta["llm/failed_by_reason"] == '{"timeout": 1}'
    assert meta["llm/sent"] == 9 and meta["llm/sent_prompt_tokens"] == 1200
    assert meta["llm/cost_usd"] == pytest.approx(0.0018)
    assert meta["llm/values"] == 10 and meta["llm/accepted"] == 6 and meta["llm/acceptance"] == 0.6
    assert meta["llm/rejected_by_reason"] == '{"entity_not_description": 2, "fragment": 2}'
    assert meta["llm/verdict"] == "warn"  # one failure, under the threshold
    assert meta["llm/summary"] == summary_line(meta)
    assert step.failure_sample[0] == {
        "label": "l5",
        "reason": "timeout (gave up after 7 calls)",
        "attempts": 7,
    }


def test_every_request_failed_is_a_failure_whatever_the_threshold():
    verdict = report(ok=0, cached=0, failed=5).verdict(Thresholds(max_failed_share=1.0))
    assert verdict.level == "fail" and not verdict.failed_ok
    assert "all 5 requests failed" in verdict.reasons[0] and "offline output" in verdict.reasons[0]


def test_failed_share_above_threshold_fails_below_warns():
    step = report(ok=8, cached=0, failed=2)
    assert step.verdict(Thresholds(max_failed_share=0.1)).level == "fail"
    assert step.verdict(Thresholds(max_failed_share=0.2)).level == "warn"
    assert report(ok=8, cached=2, failed=0).verdict().level == "ok"


def test_acceptance_below_share_warns_and_none_accepted_is_flagged():
    low = report(ok=4, cached=0, failed=0, accepted=1, rejected=3).verdict(
        Thresholds(min_accepted_share=0.5)
    )
    assert low.level == "warn" and not low.accepted_ok and not low.nothing_accepted
    assert "1 of 4 LLM values accepted (25% < 50%" in low.reasons[0]
    none = report(ok=4, cached=0, failed=0, accepted=0, rejected=3).verdict()
    assert none.nothing_accepted and none.level == "warn"
    assert report(ok=4, cached=0, failed=0, accepted=3, rejected=1).verdict().level == "ok"
    assert report(ok=4, cached=0, failed=0).verdict().accepted_ok  # no values: nothing to judge


def test_offline_is_never_judged():
    step = StepReport("dictionary.describe")
    assert step.verdict().level == "ok"
    assert summary_line(step.metadata()) == "dictionary.describe offline: no LLM requests"


def test_summary_line_reads_plain_and_dagster_metadata():
    step = report(ok=0, cached=0, failed=4)
    step.count_usage(Usage(requests_sent=28, priced=False))
    meta = step.metadata()
    line = summary_line(meta, where="ner_en_conll")
    assert line.startswith(
        "dictionary.describe [ner_en_conll] live m: 4 requests (0 cached, 0 answered, 4 failed: timeout 4; 28 sent)"
    )
    assert "cost unknown (no price set)" in line
    assert "-- FAILED: all 4 requests failed" in line and "\n" not in line
    wrapped = {
        k: dg.MetadataValue.json(__import__("json").loads(v))
        if isinstance(v, str) and v[:1] in "[{" and v
        else v
        for k, v in meta.items()
    }
    assert summary_line(wrapped, where="ner_en_conll") == line
    assert summary_line({"instructions": 3}) is None


def test_thresholds_and_prices_are_checked():
    assert Thresholds.from_percent(10, 50) == Thresholds(0.1, 0.5)
    with pytest.raises(ValueError, match="max_failed_share"):
        Thresholds(max_failed_share=1.5)
    assert parse_prices("gpt-4o-mini=0.15/0.60, smollm2-135m=0/0") == {
        "gpt-4o-mini": (0.15, 0.6),
        "smollm2-135m": (0.0, 0.0),
    }
    assert parse_prices("") == {}
    for bad in ("gpt-4o-mini=0.15", "=1/2", "m=a/b", "m=-1/2"):
        with pytest.raises(ValueError, match="price"):
            parse_prices(bad)


def test_preference_step_report_counts_answers_rejections_and_cost(tmp_path):
    from hum_dagster.llm.client import ClientConfig, OpenAIRunner
    from hum_dagster.synthesis.preferences_llm import preference_step_report

    runner = OpenAIRunner(
        ClientConfig(model="m", price_in_per_m=0.0, price_out_per_m=0.0), str(tmp_path), "live"
    )
    idle = preference_step_report({"mode": "live", "requests": 0}, [], runner)
    assert idle.requests == 0 and idle.cost_usd == 0.0  # a known price: $0, not "unknown"
    hint = {
        "mode": "live",
        "requests": 4,
        "responses": 3,
        "cached": 1,
        "failures_by_reason": {"timeout (gave up after 7 calls)": 1},
    }
    rejections = [
        {"source": "llm", "reason": "label_not_in_schema", "label": "a", "detail": "x"},
        {"source": "llm", "reason": "llm_failure", "label": "b", "detail": "timeout"},
        {"source": "rule", "reason": "unchanged_output", "label": "c", "detail": "y"},
    ]
    step = preference_step_report(hint, rejections, runner)
    assert (step.requests, step.cached, step.answered, step.failed) == (4, 1, 2, 1)
    assert dict(step.failures) == {"timeout": 1}
    assert dict(step.rejections) == {"label_not_in_schema": 1}  # rule rejections are not the LLM's
    assert step.values == 3 and step.accepted == 2
    assert preference_step_report({"mode": "offline"}, rejections, None).mode == "offline"
