"""The LLM resource: one OpenAI-compatible endpoint for every LLM step.

Assets that call the LLM set ``pool=LLM_POOL`` so that parallel runs share the
endpoint's limits (``dagster instance concurrency set llm N``). The API key is never a
config field: ``api_key_env`` names the environment variable that holds it, read when a
request is about to be sent.

Every field can be set in the launchpad, and from the environment through
``llm_resource_from_env``: each variable of ``ENV_FIELDS`` that is set becomes a
``dg.EnvVar`` of its field (its value is read when a run is launched and never shown in
the UI); a variable that is not set leaves the field's default. Dagster's ``EnvVar`` fills
only ``str`` and ``int`` fields, so numbers with a fraction (temperature, top_p, prices)
are strings here, parsed when the client is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from hum_dagster.llm.batch import BatchManager
from hum_dagster.llm.client import ClientConfig, LLMConfigError, OpenAIRunner
from hum_dagster.llm.report import KEYS, StepReport, Thresholds, summary_line
from hum_dagster.llm.types import MODES
from hum_dagster.llm.usage import parse_prices

LLM_POOL = "llm"
LLM_CACHE_DIR = "llm_cache"

# field -> (environment variable, "str" | "int")
ENV_FIELDS: dict[str, tuple[str, str]] = {
    "mode": ("HUM_LLM_MODE", "str"),
    "base_url": ("HUM_LLM_BASE_URL", "str"),
    "model": ("HUM_LLM_MODEL", "str"),
    "api_key_env": ("HUM_LLM_API_KEY_ENV", "str"),
    "max_in_flight": ("HUM_LLM_MAX_IN_FLIGHT", "int"),
    "rpm": ("HUM_LLM_RPM", "int"),
    "tpm": ("HUM_LLM_TPM", "int"),
    "timeout_s": ("HUM_LLM_TIMEOUT_S", "int"),
    "max_retries": ("HUM_LLM_MAX_RETRIES", "int"),
    "max_invalid_retries": ("HUM_LLM_MAX_INVALID_RETRIES", "int"),
    "max_tokens": ("HUM_LLM_MAX_TOKENS", "int"),
    "temperature": ("HUM_LLM_TEMPERATURE", "str"),
    "top_p": ("HUM_LLM_TOP_P", "str"),
    "seed": ("HUM_LLM_SEED", "int"),
    "structured_output": ("HUM_LLM_STRUCTURED_OUTPUT", "str"),
    "cache_root": ("HUM_LLM_CACHE_ROOT", "str"),
    "prices": ("HUM_LLM_PRICES", "str"),
    "check_model": ("HUM_LLM_CHECK_MODEL", "str"),
    "max_failed_pct": ("HUM_LLM_MAX_FAILED_PCT", "int"),
    "min_accepted_pct": ("HUM_LLM_MIN_ACCEPTED_PCT", "int"),
    "dictionary_examples": ("HUM_LLM_DICTIONARY_EXAMPLES", "int"),
}


def _number(name: str, text: str | None) -> float | None:
    if text is None or not str(text).strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise LLMConfigError(f"LLM setting {name} must be a number, not {text!r}") from None


class LLMResource(dg.ConfigurableResource):
    """Endpoint, model, throughput, retries, generation parameters, cache, prices and the
    thresholds that fail or warn a step (see the README's settings table)."""

    mode: str = "offline"  # offline (the embedded default) | live | replay
    base_url: str | None = None  # None or "": the OpenAI API; e.g. http://127.0.0.1:8080/v1
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # the variable's NAME; "" when the server needs none
    max_in_flight: int = 16  # requests at once; 1 for a server that answers one at a time
    rpm: int | None = None  # requests per minute (None: no local limit)
    tpm: int | None = None  # tokens per minute (None: no local limit)
    timeout_s: int = 120  # per request
    max_retries: int = 6  # for 429, 5xx, timeouts, dropped connections
    max_invalid_retries: int = 2  # more tries for an answer of the wrong shape
    max_tokens: int | None = 1024  # completion tokens per answer
    temperature: str = "0.7"  # a number; "" leaves it to the server
    top_p: str = ""  # a number; "" leaves it to the server
    seed: int | None = 0
    structured_output: str = "auto"  # auto | json_schema | json_object | none
    cache_root: str | None = None  # None: "<storage_root>/llm_cache", chosen by the caller
    # USD per million prompt/completion tokens, per model: "gpt-4o-mini=0.15/0.60,
    # smollm2-135m=0/0". A model not listed has no price: cost reads "unknown", not $0.
    prices: str = ""
    check_model: str = "strict"  # strict: probe GET /models before sending; off: no probe
    max_failed_pct: int = 10  # failed requests above this share of a step fail its partition
    min_accepted_pct: int = 50  # accepted LLM values below this share warn (asset check)
    # 1: the schema dictionary also asks the LLM for 5 positive and 5 negative examples,
    # candidates and a verdict on each name variant per label (dictionary.examples)
    dictionary_examples: int = 0

    def client_config(self) -> ClientConfig:
        if self.mode not in MODES:
            raise LLMConfigError(f"LLM mode must be one of {MODES}, not {self.mode!r}")
        price = parse_prices(self.prices).get(self.model)
        return ClientConfig(
            model=self.model,
            base_url=self.base_url or None,
            api_key_env=self.api_key_env,
            max_in_flight=self.max_in_flight,
            rpm=self.rpm,
            tpm=self.tpm,
            timeout_s=float(self.timeout_s),
            max_retries=self.max_retries,
            max_invalid_retries=self.max_invalid_retries,
            temperature=_number("temperature", self.temperature),
            top_p=_number("top_p", self.top_p),
            max_tokens=self.max_tokens,
            seed=self.seed,
            structured_output=self.structured_output,
            price_in_per_m=price[0] if price else None,
            price_out_per_m=price[1] if price else None,
            check_model=self.check_model,
        )

    def thresholds(self) -> Thresholds:
        return Thresholds.from_percent(self.max_failed_pct, self.min_accepted_pct)

    def resolve_cache_root(self, cache_root: str) -> str:
        return self.cache_root or cache_root

    def runner(self, cache_root: str) -> OpenAIRunner:
        """The library runner; ``cache_root`` is used unless the resource sets its own
        (callers pass ``fsio.join(storage_root, LLM_CACHE_DIR)``)."""
        return OpenAIRunner(self.client_config(), self.resolve_cache_root(cache_root), self.mode)

    def batch_manager(self, cache_root: str) -> BatchManager:
        return BatchManager(self.client_config(), self.resolve_cache_root(cache_root))


def llm_resource_from_env(environ: Mapping[str, str] | None = None) -> LLMResource:
    """The resource with a ``dg.EnvVar`` for every variable of ``ENV_FIELDS`` that is set
    in ``environ`` (default: the process environment; a number variable only when not
    empty, while an empty text variable means "" — ``HUM_LLM_API_KEY_ENV=""``: the server
    needs no key); the others keep their defaults. The values themselves are read when a
    run is launched."""
    environ = os.environ if environ is None else environ
    fields: dict[str, object] = {}
    for name, (variable, kind) in ENV_FIELDS.items():
        if variable not in environ:
            continue
        if kind == "int":
            if str(environ[variable]).strip():
                fields[name] = dg.EnvVar.int(variable)
        else:
            fields[name] = dg.EnvVar(variable)
    return LLMResource(**fields)


def llm_resource_now(environ: Mapping[str, str] | None = None) -> LLMResource:
    """The same settings as ``llm_resource_from_env``, read now (plain values, not
    ``EnvVar``s): for commands outside a run, such as ``hum plan``."""
    environ = os.environ if environ is None else environ
    fields: dict[str, object] = {}
    for name, (variable, kind) in ENV_FIELDS.items():
        if variable not in environ:
            continue
        value = environ[variable]
        if kind == "int":
            if value.strip():
                try:
                    fields[name] = int(value)
                except ValueError:
                    raise LLMConfigError(f"{variable} must be a whole number, not {value!r}") from None
        else:
            fields[name] = value
    return LLMResource(**fields)


# --------------------------------------------------------------------------- step checks

LLM_ANSWERED_CHECK = "llm_requests_answered"
LLM_ACCEPTED_CHECK = "llm_values_accepted"


LLM_CHECK_DESCRIPTIONS = {
    LLM_ANSWERED_CHECK: "Every LLM request of the step got a usable answer (warns on any "
    "failure; past HUM_LLM_MAX_FAILED_PCT of the requests, or when all failed, the "
    "partition itself fails).",
    LLM_ACCEPTED_CHECK: "At least HUM_LLM_MIN_ACCEPTED_PCT of the values the LLM wrote pass "
    "the gates (warns below; an error when none does: the output is then the offline "
    "output).",
}
STEP_REPORT_KEY = "llm/step_report"  # the whole report (JSON), read back by the checks


def llm_asset_checks(
    asset: str | dg.AssetKey, partitions_def: dg.PartitionsDefinition, step: str
) -> list[dg.AssetChecksDefinition]:
    """The two checks of an asset whose materialization runs the LLM step ``step``: each
    reads the step report its partition's latest materialization recorded (re-executable
    from the UI; thresholds from the ``llm`` resource at the check's run)."""
    key = dg.AssetKey.from_coercible(asset)
    return [_llm_check(key, partitions_def, step, name) for name in LLM_CHECK_DESCRIPTIONS]


def _llm_check(
    key: dg.AssetKey, partitions_def: dg.PartitionsDefinition, step: str, name: str
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key, name=name, partitions_def=partitions_def,
        description=LLM_CHECK_DESCRIPTIONS[name],
        required_resource_keys={"llm"},
    )
    def _check(context):  # no annotations: this module's are strings (__future__)
        llm = context.resources.llm
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[context.partition_key]),
            limit=1,
        ).records
        meta = records[0].asset_materialization.metadata if records else {}
        stored = meta.get(STEP_REPORT_KEY)
        report = StepReport.from_json(stored.value if stored is not None else None, step)
        result = next(r for r in llm_check_results(report, llm.thresholds()) if r.check_name == name)
        return dg.AssetCheckResult(
            passed=result.passed, severity=result.severity, metadata=result.metadata
        )

    return _check


def _wrap(value: object) -> object:
    """JSON strings of the step report shown as JSON in the UI."""
    if isinstance(value, str) and value.startswith(("[", "{")):
        import json

        return dg.MetadataValue.json(json.loads(value))
    return value


def llm_step_metadata(step: StepReport, thresholds: Thresholds) -> dict[str, object]:
    """The step report under its stable ``llm/*`` keys, for a materialization."""
    return {k: _wrap(v) for k, v in step.metadata(thresholds).items() if v is not None} | {
        KEYS["cost_usd"]: step.cost_usd if step.cost_usd is not None else "unknown (no price)",
        STEP_REPORT_KEY: dg.MetadataValue.json(step.to_json()),
    }


def raise_for_step(step: StepReport, thresholds: Thresholds, where: str) -> None:
    """Fail the partition, in one line, when the step's verdict is ``fail``."""
    verdict = step.verdict(thresholds)
    if verdict.level == "fail":
        raise dg.Failure(
            description=f"{where}: {summary_line(step.metadata(thresholds))}",
            metadata=llm_step_metadata(step, thresholds),
            allow_retries=False,
        )


def llm_check_results(step: StepReport, thresholds: Thresholds) -> list[dg.AssetCheckResult]:
    verdict = step.verdict(thresholds)
    meta = step.metadata(thresholds)
    summary = meta[KEYS["summary"]]
    offline = step.mode == "offline"
    acceptance = step.acceptance
    return [
        dg.AssetCheckResult(
            check_name=LLM_ANSWERED_CHECK,
            passed=offline or step.failed == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "summary": summary,
                "requests": step.requests,
                "failed": step.failed,
                "failed_by_reason": dg.MetadataValue.json(dict(sorted(step.failures.items()))),
                "failure_sample": dg.MetadataValue.json(step.failure_sample),
                "max_failed_share": thresholds.max_failed_share,
            },
        ),
        dg.AssetCheckResult(
            check_name=LLM_ACCEPTED_CHECK,
            passed=offline or verdict.accepted_ok,
            severity=dg.AssetCheckSeverity.ERROR
            if verdict.nothing_accepted
            else dg.AssetCheckSeverity.WARN,
            metadata={
                "summary": summary,
                "values": step.values,
                "accepted": step.accepted,
                "acceptance": round(acceptance, 4) if acceptance is not None else "no values",
                "min_accepted_share": thresholds.min_accepted_share,
                "rejected_by_reason": dg.MetadataValue.json(dict(sorted(step.rejections.items()))),
                "rejected_sample": dg.MetadataValue.json(step.rejected_sample),
            },
        ),
    ]
