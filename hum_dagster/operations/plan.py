"""``hum plan``: what a live run would send and spend, before it runs.

For every catalog source the plan does what the graph's LLM steps do, without an
endpoint: it reads the source, builds its schema dictionary (``dictionary.describe``)
and, for train splits, its preference-rule requests (``synthesis.preference_rules``),
through a ``PlanRunner``. That runner answers from the response cache what the cache
holds (as replay does; later steps then see those answers, so their prompts are the real
ones) and records every request it would send. Per step the plan gives:

- requests, the ones the cache answers, and the distinct ones left to send;
- **prompt tokens**, counted with the tokenizer on the exact messages the client would
  send (``request_body``: the structured-output hint included when the mode puts one in
  the prompt), plus the chat template's tokens per message (``CHAT_OVERHEAD``: ChatML,
  as SmolLM2 and Qwen use, 5 per message and 3 to open the answer);
- **completion tokens**, from a stated estimate: the mean completion tokens of the
  cache's answers for that step when it holds some, else ``max_tokens`` (an upper bound);
- **calls per request**: the mean over the cache's answers and failures of that step of
  the tries they took (invalid answers are asked again), else 1;
- the **cost** at the configured price of the model (unknown without one).

GPU time: the corpus size is estimated from the basic train rows (exact) and an upper
bound on compound rows (one per basic row and compound strategy), mixed with the
configured shares (``corpus.mix.plan_quotas``); training FLOPs per token follow
``train.flops`` (4N + 2N_t + 12·L·s·d, LoRA) over one pass of the corpus at the mean
tokens of a basic row, at an assumed model FLOPs utilisation (``Assumptions``);
evaluation takes each benchmark's sample (``sample_size`` records x styles B and C) with
``max_new_tokens`` generated per prompt at 2N FLOPs per token. Every figure that is an
assumption says so and where it comes from. No Dagster imports.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.dictionary import build_dictionary, load_seed_book, select_seeds
from hum_dagster.dictionary.enrich import DESCRIBE_STEP
from hum_dagster.llm.cache import ResponseCache
from hum_dagster.llm.client import ClientConfig, request_body, request_key, response_from_entry
from hum_dagster.llm.types import LLMFailure, LLMRequest, LLMResponse, Validator
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import CatalogEntry
from hum_dagster.readers.fewrel import load_pid2name
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic
from hum_dagster.synthesis.preferences import PreferenceConfig, preference_rows
from hum_dagster.synthesis.preferences_llm import PREFERENCE_STEP

STEPS = (DESCRIBE_STEP, PREFERENCE_STEP)
CHAT_OVERHEAD_PER_MESSAGE = 5  # <|im_start|>role\n ... <|im_end|>\n
CHAT_OVERHEAD_REPLY = 3  # <|im_start|>assistant\n
PLANNED = "planned: not in the cache"
N_COMPOUND_STRATEGIES = 9  # 7 guideline strategies, preference rules, format variants

# Model sizes: (parameters, layers, hidden size). SmolLM2-135M from its config (30 layers,
# hidden 576); the 8B and 70B rows are Llama-3-shaped examples for H100-scale planning.
MODEL_SIZES: dict[str, tuple[float, int, int]] = {
    "smollm2-135m": (134.5e6, 30, 576),
    "8b": (8.03e9, 32, 4096),
    "70b": (70.6e9, 80, 8192),
}


@dataclass(frozen=True)
class Assumptions:
    """The figures a plan assumes rather than measures, with where each comes from."""

    peak_flops: float = 989e12  # H100 SXM dense bf16 (NVIDIA data sheet; train/flops.py)
    train_mfu: float = 0.35  # assumed; not measured here (no GPU in this project)
    eval_mfu: float = 0.10  # assumed for batched generation, which is memory-bound
    lora_trainable_share: float = 0.02  # rank-64 LoRA on every linear layer: ~2% of N (8B)
    cpu_tokens_per_s: float = (
        114.0  # measured: SmolLM2-135M LoRA, 4 x 256 tokens in ~9 s on 2 cores (DESIGN.md)
    )
    epochs: float = 1.0
    eval_sample_size: int = 50  # EvalSettings.sample_size
    eval_styles: int = 2  # B and C
    eval_max_new_tokens: int = 256  # EvalSettings.max_new_tokens (an upper bound)

    def lines(self) -> list[str]:
        return [
            f"peak {self.peak_flops / 1e12:.0f} TFLOP/s per GPU (H100 SXM dense bf16, NVIDIA data sheet)",
            f"training MFU {self.train_mfu:.0%} (assumed: no GPU was available to measure it; "
            "set --train-mfu)",
            f"evaluation MFU {self.eval_mfu:.0%} (assumed: batched generation is memory-bound; "
            "set --eval-mfu)",
            f"LoRA trainable weights {self.lora_trainable_share:.0%} of N (rank 64 on every linear "
            "layer of a Llama-3-8B shape: 168M of 8.0B)",
            f"CPU: {self.cpu_tokens_per_s:g} trained tokens/s for SmolLM2-135M (measured on this "
            "project's 2-core machine: one LoRA step of 4 x 256 tokens in about 9 s)",
            f"{self.epochs:g} epoch(s); evaluation: {self.eval_sample_size} records x "
            f"{self.eval_styles} styles per benchmark, {self.eval_max_new_tokens} new tokens each "
            "(an upper bound)",
        ]


# --------------------------------------------------------------------------- the runner


@dataclass
class Planned:
    step: str
    key: str
    request: LLMRequest
    cached: bool
    source: str = ""


class PlanRunner:
    """An ``LLMRunner`` that sends nothing: cached answers are served (as in replay),
    every other request is recorded and answered with a failure (``PLANNED``)."""

    mode = "live"

    def __init__(self, config: ClientConfig, cache: ResponseCache | None) -> None:
        self.config = config
        self.cache = cache
        self.seen: list[Planned] = []
        self.source = ""  # the source whose requests are being planned

    def run(
        self, requests: Sequence[LLMRequest], validate: Validator | None = None
    ) -> list[LLMResponse | LLMFailure]:
        out: list[LLMResponse | LLMFailure] = []
        for request in requests:
            key = request_key(self.config, request)
            entry = self.cache.get(key, validate, request.expect_json) if self.cache else None
            self.seen.append(Planned(request.step, key, request, entry is not None, self.source))
            if entry is not None:
                out.append(response_from_entry(entry, request, cached=True))
            else:
                out.append(LLMFailure(key=key, step=request.step, reason=PLANNED, attempts=0))
        return out


# --------------------------------------------------------------------------- the plan


@dataclass
class StepPlan:
    step: str
    requests: int = 0
    cached: int = 0
    to_send: int = 0  # distinct requests the cache cannot answer
    prompt_tokens: int = 0  # of the requests to send, one call each
    completion_tokens: int = 0
    calls_per_request: float = 1.0
    completion_basis: str = ""
    calls_basis: str = ""
    cost_usd: float | None = None
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "requests": self.requests,
            "cached": self.cached,
            "to_send": self.to_send,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls_per_request": round(self.calls_per_request, 3),
            "completion_basis": self.completion_basis,
            "calls_basis": self.calls_basis,
            "cost_usd": self.cost_usd,
            "by_source": self.by_source,
        }


@dataclass
class GpuPlan:
    corpus_rows: int
    tokens_per_row: float
    training_tokens: float
    eval_tokens: float
    by_model: dict[str, dict[str, float]]
    mix_notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "corpus_rows": self.corpus_rows,
            "tokens_per_row": round(self.tokens_per_row, 1),
            "training_tokens": int(self.training_tokens),
            "eval_tokens": int(self.eval_tokens),
            "by_model": self.by_model,
            "mix_notes": self.mix_notes,
        }


@dataclass
class Plan:
    model: str
    base_url: str
    steps: dict[str, StepPlan]
    gpu: GpuPlan | None
    assumptions: Assumptions
    notes: list[str] = field(default_factory=list)
    priced: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "priced": self.priced,
            "steps": {k: v.to_json() for k, v in self.steps.items()},
            "gpu": self.gpu.to_json() if self.gpu else None,
            "assumptions": self.assumptions.lines(),
            "notes": self.notes,
        }

    def to_text(self) -> str:
        lines = [f"LLM plan for {self.model} at {self.base_url}", ""]
        header = (
            f"{'step':<28} {'requests':>9} {'cached':>7} {'to send':>8} {'prompt tok':>11} "
            f"{'compl. tok':>11} {'calls/req':>9} {'cost USD':>10}"
        )
        lines += [header, "-" * len(header)]
        total_p = total_c = 0
        total_cost: float | None = 0.0 if self.priced else None
        for s in self.steps.values():
            cost = f"{s.cost_usd:.4f}" if s.cost_usd is not None else "unknown"
            lines.append(
                f"{s.step:<28} {s.requests:>9,} {s.cached:>7,} {s.to_send:>8,} "
                f"{s.prompt_tokens:>11,} {s.completion_tokens:>11,} {s.calls_per_request:>9.2f} "
                f"{cost:>10}"
            )
            total_p += s.prompt_tokens
            total_c += s.completion_tokens
            if total_cost is not None and s.cost_usd is not None:
                total_cost += s.cost_usd
        cost = f"{total_cost:.4f}" if total_cost is not None else "unknown (no price for the model)"
        lines.append(
            f"{'total':<28} {'':>9} {'':>7} {'':>8} {total_p:>11,} {total_c:>11,} {'':>9} {cost:>10}"
        )
        lines.append("")
        for s in self.steps.values():
            lines.append(f"{s.step}: completion tokens from {s.completion_basis}; {s.calls_basis}")
        if self.gpu is not None:
            g = self.gpu
            lines += [
                "",
                f"corpus: about {g.corpus_rows:,} rows x {g.tokens_per_row:,.0f} tokens = "
                f"{g.training_tokens:,.0f} training tokens; evaluation {g.eval_tokens:,.0f} tokens "
                "per model",
            ]
            for name, m in g.by_model.items():
                lines.append(
                    f"  {name:<14} training {m['train_gpu_hours']:.3g} GPU-h, evaluation "
                    f"{m['eval_gpu_hours']:.3g} GPU-h per model"
                    + (
                        f", CPU training {m['train_cpu_hours']:,.1f} h"
                        if "train_cpu_hours" in m
                        else ""
                    )
                )
            lines += [f"  mix: {n}" for n in g.mix_notes[:5]]
        lines += ["", "assumptions:"] + [f"  - {a}" for a in self.assumptions.lines()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------- building


def _messages_tokens(tokenizer: Any, bodies: Sequence[dict[str, Any]]) -> list[int]:
    texts: list[str] = []
    counts: list[int] = []
    for body in bodies:
        messages = body["messages"]
        texts.extend(str(m.get("content", "")) for m in messages)
        counts.append(len(messages))
    tokens = tokenizer.count(texts) if texts else []
    out, i = [], 0
    for n in counts:
        out.append(
            int(sum(tokens[i : i + n])) + n * CHAT_OVERHEAD_PER_MESSAGE + CHAT_OVERHEAD_REPLY
        )
        i += n
    return out


def cache_step_stats(
    cache: ResponseCache | None, model: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per step, from the cache's answers and failures: how many there are, the answers
    (calls that came back with a completion) a request took, rejected ones included, the
    mean completion tokens of such an answer, and the structured-output mode most answers
    came with. Entries written before their ``spent`` record count one answer each
    (``attempt`` + 1 for the calls). Answers of ``model`` (served or answering) are used
    when the cache holds some, else all."""
    if cache is None:
        return {}
    cache.refresh()
    entries = [e for e in (cache.get(k) for k in cache) if e is not None]
    if model is not None:
        mine = [e for e in entries if model in (e.get("served_model"), e.get("model"))]
        entries = mine or entries
    calls: dict[str, list[int]] = {}
    completion: dict[str, list[float]] = {}  # (tokens, answers) summed per step
    answers: Counter[str] = Counter()
    modes: dict[str, Counter[str]] = {}
    for entry in entries:
        step = str(entry.get("step", ""))
        answers[step] += 1
        spent = entry.get("spent")
        if spent and spent.get("answers"):
            calls.setdefault(step, []).append(int(spent["answers"]))
            completion.setdefault(step, [0.0, 0.0])
            completion[step][0] += float(spent.get("completion_tokens", 0))
            completion[step][1] += float(spent["answers"])
        else:
            calls.setdefault(step, []).append(int(entry.get("attempt", 0)) + 1)
            completion.setdefault(step, [0.0, 0.0])
            completion[step][0] += float((entry.get("usage") or {}).get("completion_tokens", 0))
            completion[step][1] += 1.0
        if entry.get("structured_output"):
            modes.setdefault(step, Counter())[str(entry["structured_output"])] += 1
    for failure in cache.failures():
        step = str(failure.get("step", ""))
        spent = failure.get("spent")
        if spent and spent.get("answers"):  # answers came back and were all rejected
            calls.setdefault(step, []).append(int(spent["answers"]))
            completion.setdefault(step, [0.0, 0.0])
            completion[step][0] += float(spent.get("completion_tokens", 0))
            completion[step][1] += float(spent["answers"])
        elif spent is None and failure.get("attempts"):  # written before ``spent``: its calls
            calls.setdefault(step, []).append(int(failure["attempts"]))
    out: dict[str, dict[str, Any]] = {}
    for step in sorted(set(answers) | set(calls)):
        n = answers[step]
        c = calls.get(step, [1])
        tokens, count = completion.get(step, [0.0, 0.0])
        out[step] = {
            "answers": n,
            "requests_seen": len(c),
            "mean_completion": tokens / count if count else 0.0,
            "mean_tries": sum(c) / len(c),
            "structured": modes[step].most_common(1)[0][0] if step in modes else None,
        }
    return out


def _structured(config: ClientConfig, learnt: str | None = None) -> str:
    """The structured-output mode calls will use: the configured one, or for ``auto``
    what the cache's answers came with (a server that refuses json_schema falls back to
    json_object, which puts the schema in the prompt), else json_schema."""
    if config.structured_output != "auto":
        return config.structured_output
    return learnt or "json_schema"


def source_dictionary(
    entry: CatalogEntry,
    result: Any,
    runner: Any = None,
    *,
    seed: int = 42,
    book: Any = None,
    examples: bool = False,
) -> tuple[Any, Any]:
    """``build_dictionary`` for a catalog entry as the ``schema_dictionary`` asset calls
    it: the entry's seed sets and its pid2name file; ``result`` is ``read_source(entry)``.
    Returns the dictionary and its report."""
    pid = entry.option("pid2name")
    return build_dictionary(
        entry.name,
        entry.task,
        entry.language,
        result.records,
        result.schema,
        select_seeds(book or load_seed_book(), entry.name, entry.options),
        runner=runner,
        pid2name=load_pid2name(entry.resolve(pid)) if pid else None,
        seed=seed,
        llm_examples=examples,
    )


def first_descriptions(dictionary: Any) -> dict[str, str]:
    """What preference prompts get as a label's description (as ``compound_instructions``
    passes it): the first description of each top-level label."""
    return {
        e.label: e.descriptions[0].value
        for e in dictionary.entries.values()
        if e.parent is None and e.descriptions
    }


def source_steps(
    entry: CatalogEntry,
    result: Any,
    runner: Any,
    *,
    seed: int = 42,
    book: Any = None,
    examples: bool = False,
) -> tuple[Any, list[dict[str, Any]]]:
    """The LLM steps of one source as the graph runs them, through ``runner``: its
    dictionary, then (train splits) the preference-rule requests on its basic rows.
    Returns the dictionary and the basic rows."""
    dictionary, _ = source_dictionary(
        entry, result, runner, seed=seed, book=book, examples=examples
    )
    mode = "train" if entry.split == "train" else "test"
    rows = list(synthesize_basic(result.records, result.schema, BasicConfig(mode=mode, seed=seed)))
    if mode == "train" and dictionary.entries:
        preference_rows(rows, PreferenceConfig(seed=seed), runner, first_descriptions(dictionary))
    return dictionary, rows


def plan_llm_steps(
    entries: Iterable[CatalogEntry],
    config: ClientConfig,
    cache_root: str | None,
    tokenizer: Any,
    *,
    seed: int = 42,
    examples: bool = False,
) -> tuple[dict[str, StepPlan], dict[str, list[dict[str, Any]]], list[str]]:
    """Step plans, the basic rows per source (for the GPU estimate), and notes.
    ``examples``: the dictionary also runs ``dictionary.examples``
    (``HUM_LLM_DICTIONARY_EXAMPLES``); its prompts are planned without the describe
    step's synonyms the cache does not hold, so they may be a little shorter than sent."""
    cache = ResponseCache(cache_root) if cache_root else None
    runner = PlanRunner(config, cache)
    rows_by_source: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    book = load_seed_book()
    for entry in entries:
        try:
            result = read_source(entry)
        except (OSError, ValueError) as exc:
            notes.append(f"{entry.name}: not read ({exc}); left out of the plan")
            continue
        runner.source = entry.name
        _, rows_by_source[entry.name] = source_steps(
            entry, result, runner, seed=seed, book=book, examples=examples
        )
    stats = cache_step_stats(cache, config.model)
    # the mode a server takes is the server's, not the step's: a step with no cached answer
    # yet takes the mode most of the model's cached answers came with
    modes = Counter(v["structured"] for v in stats.values() if v.get("structured"))
    server_mode = modes.most_common(1)[0][0] if modes else None
    steps = {s: StepPlan(s) for s in STEPS}
    sent_keys: set[str] = set()
    bodies: dict[str, list[dict[str, Any]]] = {s: [] for s in STEPS}
    for planned in runner.seen:
        step = steps.setdefault(planned.step, StepPlan(planned.step))
        src = step.by_source.setdefault(planned.source, {"requests": 0, "cached": 0, "to_send": 0})
        step.requests += 1
        src["requests"] += 1
        if planned.cached:
            step.cached += 1
            src["cached"] += 1
        elif planned.key not in sent_keys:  # the runner sends a repeated prompt once
            sent_keys.add(planned.key)
            step.to_send += 1
            src["to_send"] += 1
            learnt = (stats.get(planned.step) or {}).get("structured") or server_mode
            bodies.setdefault(planned.step, []).append(
                request_body(config, planned.request, structured=_structured(config, learnt))
            )
    for name, step in steps.items():
        per_request = _messages_tokens(tokenizer, bodies.get(name, []))
        known = stats.get(name)
        if known and known["requests_seen"] and known["mean_completion"]:
            mean_completion = known["mean_completion"]
            step.calls_per_request = known["mean_tries"]
            step.completion_basis = (
                f"the mean answer of {known['requests_seen']} requests in the cache "
                f"({mean_completion:,.0f} tokens, rejected answers included)"
            )
            step.calls_basis = (
                f"{step.calls_per_request:.2f} answers per request (the cache's answers and "
                "failures: rejected answers are asked again)"
            )
        else:
            mean_completion = float(config.max_tokens or 1024)
            step.completion_basis = (
                f"max_tokens ({mean_completion:,.0f}; no cached answer: an upper bound)"
            )
            step.calls_basis = "1 call per request (no cached answer to learn retries from)"
        step.prompt_tokens = round(sum(per_request) * step.calls_per_request)
        step.completion_tokens = round(step.to_send * mean_completion * step.calls_per_request)
        if config.priced:
            step.cost_usd = round(
                (
                    step.prompt_tokens * (config.price_in_per_m or 0.0)
                    + step.completion_tokens * (config.price_out_per_m or 0.0)
                )
                / 1e6,
                6,
            )
    if config.structured_output == "auto" and server_mode is None:
        notes.append(
            "structured output 'auto' with no cached answer to learn from: prompts are counted "
            "as json_schema requests (no schema text in the prompt); a server that refuses "
            "json_schema (llama.cpp) gets the schema as a system hint, which adds prompt tokens"
        )
    return steps, rows_by_source, notes


def plan_gpu(
    rows_by_source: Mapping[str, list[dict[str, Any]]],
    entries: Mapping[str, CatalogEntry],
    tokenizer: Any,
    assumptions: Assumptions,
    models: Mapping[str, tuple[float, int, int]],
    *,
    benchmark_rows: Mapping[str, list[dict[str, Any]]] | None = None,
    mix_config: Any = None,
    trained_variants: int = 1,
) -> GpuPlan:
    """Training and evaluation GPU hours per model size (see the module note)."""
    from hum_dagster.corpus.mix import MixConfig, plan_quotas
    from hum_dagster.train.flops import FlopsModel

    supply: Counter[tuple[str, str]] = Counter()
    texts: list[str] = []
    for name, rows in rows_by_source.items():
        if entries[name].split != "train":
            continue
        for row in rows:
            supply[("basic", row["task"])] += 1
            supply[("compound", row["task"])] += N_COMPOUND_STRATEGIES
            texts.append((row.get("instruction") or "") + (row.get("output") or ""))
    quotas, report = plan_quotas(dict(supply), mix_config or MixConfig())
    corpus_rows = int(sum(quotas.values()))
    tokens_per_row = float(sum(tokenizer.count(texts)) / len(texts)) if texts else 0.0
    training_tokens = corpus_rows * tokens_per_row * assumptions.epochs
    eval_prompt: list[str] = [
        row.get("instruction") or "" for rows in (benchmark_rows or {}).values() for row in rows
    ]
    mean_eval_prompt = (
        float(sum(tokenizer.count(eval_prompt)) / len(eval_prompt)) if eval_prompt else 0.0
    )
    n_bench = len(benchmark_rows or {})
    eval_prompts = n_bench * assumptions.eval_sample_size * assumptions.eval_styles
    eval_tokens = eval_prompts * (mean_eval_prompt + assumptions.eval_max_new_tokens)
    by_model: dict[str, dict[str, float]] = {}
    for name, (params, layers, hidden) in models.items():
        flops = FlopsModel(
            matmul_params=int(params),
            trainable_matmul_params=int(params * assumptions.lora_trainable_share),
            layers=layers,
            hidden=hidden,
            seq_len=tokens_per_row,
        ).per_token()
        train_h = training_tokens * flops / (assumptions.peak_flops * assumptions.train_mfu) / 3600
        eval_h = eval_tokens * 2 * params / (assumptions.peak_flops * assumptions.eval_mfu) / 3600
        by_model[name] = {
            "params": params,
            "train_gpu_hours": round(train_h * trained_variants, 8),
            "eval_gpu_hours": round(eval_h, 8),
        }
        if name == "smollm2-135m":
            by_model[name]["train_cpu_hours"] = round(
                training_tokens * trained_variants / assumptions.cpu_tokens_per_s / 3600, 2
            )
    notes = list(report.get("limited", []))[:5] + list(report.get("notes", []))[:3]
    return GpuPlan(corpus_rows, tokens_per_row, training_tokens, eval_tokens, by_model, notes)


def make_plan(
    entries: Sequence[CatalogEntry],
    config: ClientConfig,
    cache_root: str | None,
    tokenizer: Any,
    *,
    seed: int = 42,
    assumptions: Assumptions | None = None,
    models: Mapping[str, tuple[float, int, int]] | None = None,
    benchmarks: Sequence[CatalogEntry] = (),
    mix_config: Any = None,
    gpu: bool = True,
    examples: bool = False,
) -> Plan:
    assumptions = assumptions or Assumptions()
    steps, rows, notes = plan_llm_steps(
        entries, config, cache_root, tokenizer, seed=seed, examples=examples
    )
    gpu_plan = None
    if gpu:
        bench_rows = {}
        for b in benchmarks:
            try:
                result = read_source(b)
            except (OSError, ValueError) as exc:
                notes.append(f"benchmark {b.name}: not read ({exc})")
                continue
            test_rows = list(
                synthesize_basic(result.records, result.schema, BasicConfig(mode="test", seed=seed))
            )
            bench_rows[b.name] = test_rows[: max(1, assumptions.eval_sample_size * 4)]
        gpu_plan = plan_gpu(
            rows,
            {e.name: e for e in entries},
            tokenizer,
            assumptions,
            models or MODEL_SIZES,
            benchmark_rows=bench_rows,
            mix_config=mix_config,
        )
    return Plan(
        model=config.model,
        base_url=config.base_url or "the OpenAI API",
        steps=steps,
        gpu=gpu_plan,
        assumptions=assumptions,
        notes=notes,
        priced=config.priced,
    )


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), ensure_ascii=False, indent=1)
