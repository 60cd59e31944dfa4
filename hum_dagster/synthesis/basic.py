"""Basic instructions in the IEPile/OneKE structure.

``synthesize_basic`` turns canonical records into instruction rows: the instruction is
``json.dumps({"instruction": wording, "schema": items, "input": text})`` and the output
a JSON string answering exactly the schema items of that instruction. The label
inventory is cut into chunks (``split_num`` items per instruction); in train mode each
record gets its positive labels plus negatively sampled ones, in test mode all labels.

Everything random comes from a generator per (seed, record, task), so the same
records and configuration give the same rows in any order and in any process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.records import (
    DERIVED_TASKS,
    EE,
    EEA,
    EET,
    IG,
    KGE,
    MRC,
    NER,
    OPENIE,
    RE,
    SPO,
    TC,
    LabelSchema,
    Problem,
    Quarantined,
    Record,
    canonical_json,
)
from hum_dagster.synthesis.chunking import (
    DEFAULT_SPLIT_NUM,
    order_items,
    record_rng,
    sample_negatives,
    select_cluster_labels,
    select_labels,
    split_chunks,
)
from hum_dagster.synthesis.outputs import (
    KGE_ATTRIBUTES,
    NAN,
    build_output,
    index_gold,
    item_label,
    kge_attributes,
    output_key,
    spo_item,
)
from hum_dagster.synthesis.templates import Templates, load_templates

STRATEGY = "basic"
MODES = ("train", "test")
# Tasks whose instructions carry a label schema that is sampled and chunked.
LABELLED_TASKS = (NER, RE, SPO, EE, EET, EEA, KGE)
# Tasks answered in one instruction whatever split_num says.
UNCHUNKED_TASKS = (OPENIE, MRC, TC, IG)
FULL: Any = object()  # marker: "every label, in the plan's precomputed chunks"
MRC_INPUT = {
    "en": "Question: {question}\nPassage: {passage}",
    "zh": "问题：{question}\n文章：{passage}",
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class BasicConfig:
    """How basic instructions are made.

    ``split_num`` overrides the per-task defaults of ``DEFAULT_SPLIT_NUM`` (tasks not
    given keep their default; -1 means one instruction per record). ``neg_rate`` is
    IEPile's ``--neg_schema``: each label of the inventory is a candidate negative with
    this probability (1: all negatives, 0: positives only). ``hard_negatives`` switches
    on cluster mode (IEPile's ``--cluster_mode``): label -> confusable labels.
    """

    mode: str = "train"
    split_num: Mapping[str, int] = field(default_factory=dict)
    neg_rate: float = 1.0
    random_sort: bool = False
    hard_negatives: Mapping[str, Sequence[str]] | None = None
    seed: int = 42
    templates: Templates = field(default_factory=load_templates)
    # KGE schema items' attribute key: OneKE's "attributes"; ``hum convert`` writes
    # IEPile's converter's "attribute" to stay a drop-in for it.
    kge_attributes_key: str = KGE_ATTRIBUTES
    # The per-record generator: None is ``record_rng(seed, record.record_id, stage)``
    # (what the assets use); otherwise ``rng_factory(seed, record, stage)`` returns an
    # object with ``random``, ``shuffle`` and ``sample`` (``hum convert`` passes one
    # that makes a ``chunking.HashRng``).
    rng_factory: Callable[[int, Record, str], Any] | None = None

    def __post_init__(self) -> None:
        if self.kge_attributes_key not in ("attributes", "attribute"):
            raise ValueError(
                f"kge_attributes_key must be 'attributes' or 'attribute', got "
                f"{self.kge_attributes_key!r}"
            )
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.neg_rate <= 1.0:
            raise ValueError(f"neg_rate must lie in [0, 1], got {self.neg_rate}")
        for task, num in self.split_num.items():
            if num != -1 and num < 1:
                raise ValueError(f"split_num for {task} must be -1 or >= 1, got {num}")

    def needs_rng(self) -> bool:
        """Whether any row of this configuration draws from the record's generator."""
        return self.random_sort or (
            self.mode != "test"
            and (self.hard_negatives is not None or 0.0 < self.neg_rate < 1.0)
        )

    def split_for(self, task: str) -> int:
        if task in UNCHUNKED_TASKS:
            return -1
        return self.split_num.get(task, DEFAULT_SPLIT_NUM.get(task, -1))

    def fingerprint(self) -> str:
        """A short digest of everything besides seed, mode and templates that shapes rows."""
        hard = None
        if self.hard_negatives is not None:
            hard = {k: sorted(v) for k, v in self.hard_negatives.items()}
        payload = canonical_json(
            {
                "split": {
                    t: self.split_for(t) for t in sorted({*DEFAULT_SPLIT_NUM, *self.split_num})
                },
                "neg_rate": self.neg_rate,
                "random_sort": self.random_sort,
                "hard": hard,
                "kge_key": self.kge_attributes_key,
            }
        )
        return hashlib.blake2b(payload.encode("utf-8"), digest_size=6).hexdigest()


# --------------------------------------------------------------------------- plans


class SchemaError(ValueError):
    """A source's schema cannot make any instruction (a source failure, not a record's)."""


class TaskError(ValueError):
    """Instructions of a task asked of records that cannot give it (a caller's error)."""


class _Plan:
    """What is fixed for one (task, schema, config): sorted labels, prebuilt items,
    the full-schema chunks with their JSON, and a cache of chunk JSON."""

    __slots__ = (
        "task",
        "labels",
        "label_set",
        "roles",
        "items",
        "split",
        "full_chunks",
        "attr_key",
        "_json",
    )

    def __init__(self, task: str, schema: LabelSchema, config: BasicConfig, source: str):
        self.task = task
        self.attr_key = config.kge_attributes_key
        self.split = config.split_for(task)
        self.roles: dict[str, list[str]] = {}
        self._json: dict[tuple, str] = {}
        if task in (NER, SPO, TC):
            labels = schema.types
        elif task == RE:
            labels = schema.roles
        elif task in (EE, EEA):
            # IEPile: event types with their roles come from the type-to-roles map.
            labels = list(schema.type_roles) or list(schema.types)
            self.roles = {t: sorted(set(schema.type_roles.get(t, ()))) for t in labels}
        elif task == EET:
            labels = list(schema.types) or list(schema.type_roles)
        elif task == KGE:
            labels = list(schema.type_roles)
            self.roles = {t: sorted(set(r)) for t, r in schema.type_roles.items()}
        else:
            labels = []
        self.labels = sorted(set(labels))
        self.label_set = frozenset(self.labels)
        if task in (*LABELLED_TASKS, TC) and not self.labels:
            raise SchemaError(
                f"source {source!r}: task {task} needs a label schema, but the schema is empty; "
                "give a schema file or mine one from the data first"
            )
        self.items: dict[str, Any] = {label: self.full_item(label) for label in self.labels}
        self.full_chunks: list[tuple[list[Any], str]] | None = None
        if task in LABELLED_TASKS:
            self.full_chunks = [
                (chunk, self.chunk_json(chunk))
                for chunk in split_chunks(self.ordered(), self.split)
            ]

    def ordered(self) -> list[Any]:
        return [self.items[label] for label in self.labels]

    def full_item(self, label: str) -> Any:
        task = self.task
        if task == SPO:
            return spo_item(label)
        if task == EE:
            return {"event_type": label, "trigger": True, "arguments": self.roles.get(label, [])}
        if task == EEA:
            return {"event_type": label, "arguments": self.roles.get(label, [])}
        if task == KGE:
            return {"entity_type": label, self.attr_key: self.roles.get(label, [])}
        return label

    def chunk_json(self, chunk: list[Any]) -> str:
        if self.task in (NER, RE, EET, SPO):
            # NER, RE and EET items are their labels; SPO items are dicts.
            key = tuple(chunk) if self.task != SPO else tuple(item_label(SPO, i) for i in chunk)
            found = self._json.get(key)
            if found is None:
                if len(self._json) > 200_000:
                    self._json.clear()
                found = self._json[key] = _dumps(chunk)
            return found
        return _dumps(chunk)


# --------------------------------------------------------------------------- selection


def _choose(plan: _Plan, positives: list[str], config: BasicConfig, rng) -> list[str]:
    """Train-mode label selection for flat-label tasks (and EE event types)."""
    if config.hard_negatives is not None:
        return select_cluster_labels(
            rng, positives, plan.labels, config.hard_negatives, config.neg_rate, plan.split
        )
    return select_labels(rng, positives, plan.labels, config.neg_rate)


def _sampled_roles(
    rng, roles: list[str], positive_roles: Iterable[str], config: BasicConfig, at_least_one: bool
) -> list[str]:
    pos = list(dict.fromkeys(positive_roles))
    pos_set = set(pos)
    negatives = [r for r in roles if r not in pos_set]
    chosen = sample_negatives(
        rng, negatives, len(roles), config.neg_rate, bool(pos) or not at_least_one
    )
    return order_items(chosen + pos, rng, config.random_sort)


def _train_items(plan: _Plan, record: Record, index: Any, config: BasicConfig, rng) -> Any:
    """Positives plus sampled negatives (``FULL``: all labels, precomputed chunks)."""
    task = plan.task
    if task in (NER, RE, EET, SPO):
        positives = list(index)
        if (
            config.neg_rate >= 1.0
            and config.hard_negatives is None
            and not config.random_sort
            and plan.label_set.issuperset(positives)
        ):
            return FULL  # every label, in the precomputed order and chunks
        labels = order_items(_choose(plan, positives, config, rng), rng, config.random_sort)
        return [plan.items.get(label) or plan.full_item(label) for label in labels]
    if task == EE:
        positive_roles: dict[str, set[str]] = {}
        for event in record.gold.get("events", ()):
            roles = positive_roles.setdefault(event["event_type"], set())
            roles.update(a["role"] for a in event.get("arguments") or () if a.get("argument"))
        types = order_items(
            _choose(plan, list(positive_roles), config, rng), rng, config.random_sort
        )
        items = []
        for etype in types:
            pos = sorted(positive_roles.get(etype, ()))
            roles = _sampled_roles(rng, plan.roles.get(etype, []), pos, config, at_least_one=True)
            items.append({"event_type": etype, "trigger": True, "arguments": roles})
        return items
    if task == EEA:
        items = []
        types = order_items(list(index), rng, config.random_sort)
        for etype in types:
            events = index[etype]
            triggers = list(dict.fromkeys(t for t, _ in events if t != NAN))
            pos = sorted({role for _, args in events for role in args})
            roles = _sampled_roles(rng, plan.roles.get(etype, []), pos, config, at_least_one=True)
            items.append({"event_type": etype, "trigger": triggers, "arguments": roles})
        return items
    if task == KGE:
        entity_type, entities = index
        if not entity_type:
            entity_type = plan.labels[0]
        pos = sorted({attr for attrs in entities.values() for attr in attrs})
        # An entity type outside the schema has no known negatives: positives only.
        roles = plan.roles.get(entity_type, [])
        attributes = _sampled_roles(rng, roles, pos, config, at_least_one=True)
        if not attributes:
            return []
        return [{"entity_type": entity_type, plan.attr_key: attributes}]
    raise AssertionError(task)


def _test_items(plan: _Plan, index: Any, config: BasicConfig, rng) -> Any:
    """All labels (``FULL`` when the precomputed full chunks apply unchanged)."""
    if plan.task == EEA:
        types = sorted(index) if not config.random_sort else order_items(sorted(index), rng, True)
        return [plan.items.get(t) or plan.full_item(t) for t in types]
    if config.random_sort:
        return order_items(plan.ordered(), rng, True)
    return FULL


# --------------------------------------------------------------------------- synthesis


def _instruction_id(record_id: str, task: str, chunk_index: int, stamp: str) -> str:
    key = f"{record_id}|{task}|{chunk_index}|{stamp}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


def _ig_parts(record: Record) -> tuple[str, str, list[list[str]], str | None]:
    turns = record.gold.get("conversation") or []
    system_parts = [t["content"] for t in turns if t.get("role") == "system"]
    dialog = [t for t in turns if t.get("role") in ("user", "assistant")]
    if len(dialog) < 2 or dialog[-1]["role"] != "assistant" or dialog[-2]["role"] != "user":
        raise ValueError(
            f"{record.origin}: IG conversation must end with a user turn followed by an "
            "assistant turn"
        )
    history: list[list[str]] = []
    pending: str | None = None
    for turn in dialog[:-2]:
        if turn["role"] == "user":
            pending = turn["content"]
        elif pending is not None:
            history.append([pending, turn["content"]])
            pending = None
    system = "\n".join(system_parts) if system_parts else None
    return dialog[-2]["content"], dialog[-1]["content"], history, system


@dataclass
class SynthesisReport:
    """What a synthesis run could not use, for the caller to show.

    ``quarantined``: records synthesis skipped, each with its origin and the reason (a
    failure while building its rows, or, with ``validate``, a row that breaks a check);
    ``problems``: the check findings behind those skips (``records.Problem``, routed by
    check name); ``records``: records seen.
    """

    records: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def skip(self, record: Record, reason: str) -> None:
        raw = canonical_json({"text": record.text, "gold": record.gold})
        self.quarantined.append(Quarantined(record.source, record.origin, reason, raw))


def _failure_reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"cannot build instructions: missing key {exc}"
    if isinstance(exc, ValueError):
        return f"cannot build instructions: {exc}"
    return f"cannot build instructions: {type(exc).__name__}: {exc}"


def synthesize_basic(
    records: Iterable[Record],
    schema: LabelSchema,
    config: BasicConfig,
    tasks: Sequence[str] | None = None,
    *,
    report: SynthesisReport | None = None,
    validate: bool = False,
) -> Iterator[dict[str, Any]]:
    """Basic-instruction rows (columns ``INSTRUCTION_COLUMNS``) for each record and task.

    ``tasks`` limits the instruction tasks (each must be derivable from the record's
    task, else ``TaskError``); by default a record yields
    ``DERIVED_TASKS.get(record.task, (record.task,))``.

    A record's rows come out together or not at all. With a ``report``, a record whose
    rows cannot be built (or, with ``validate``, whose rows break ``check_basic_row``)
    is skipped and listed in ``report.quarantined`` with its reason, and the source goes
    on; without one, such a record raises ``ValueError`` naming its origin. A schema
    that cannot make any instruction raises ``SchemaError`` either way.
    """
    mode = config.mode
    test = mode == "test"
    templates = config.templates
    stamp = f"{mode}|{config.seed}|{templates.version}|{config.fingerprint()}"
    needs_rng = config.needs_rng()
    state = (mode, test, templates, stamp, needs_rng, {}, {})
    for record in records:
        if report is not None:
            report.records += 1
        try:
            rows = list(_basic_rows((record,), schema, config, tasks, state))
        except (SchemaError, TaskError):
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            if report is None:
                raise ValueError(f"{record.origin}: {_failure_reason(exc)}") from exc
            report.skip(record, _failure_reason(exc))
            continue
        if validate:
            found = [p for row in rows for p in check_basic_row(row)]
            if found:
                if report is None:
                    raise ValueError(f"{record.origin}: {found[0].reason}")
                report.problems.extend(found)
                reasons = "; ".join(dict.fromkeys(p.reason for p in found[:3]))
                report.skip(record, f"instruction fails {found[0].check}: {reasons}")
                continue
        yield from rows


def _basic_rows(
    records: Iterable[Record],
    schema: LabelSchema,
    config: BasicConfig,
    tasks: Sequence[str] | None,
    state: tuple,
) -> Iterator[dict[str, Any]]:
    """The rows of ``records`` (``synthesize_basic`` calls it one record at a time);
    ``state`` carries what is fixed for the run: mode, stamp, plans and prefixes."""
    mode, test, templates, stamp, needs_rng, plans, prefixes = state

    for record in records:
        derivable = DERIVED_TASKS.get(record.task, (record.task,))
        if tasks is None:
            record_tasks = derivable
        else:
            record_tasks = tasks
            for task in tasks:
                if task not in derivable:
                    raise TaskError(
                        f"{record.origin}: task {task} cannot be made from a {record.task} "
                        f"record of source {record.source!r} (it gives {derivable})"
                    )
        text = record.text
        text_json: str | None = None
        label = canonical_json(record.gold) if test else None
        source, record_id, text_id, language = (
            record.source,
            record.record_id,
            record.text_id,
            record.language,
        )
        for task in record_tasks:
            if task == IG:
                instruction, output, history, system = _ig_parts(record)
                yield {
                    "instruction_id": _instruction_id(record_id, task, 0, stamp),
                    "source": source,
                    "record_id": record_id,
                    "text_id": text_id,
                    "task": task,
                    "language": language,
                    "mode": mode,
                    "strategy": STRATEGY,
                    "template": f"{IG}@passthrough",
                    "chunk_index": 0,
                    "n_chunks": 1,
                    "schema": "[]",
                    "instruction": instruction,
                    "output": output,
                    "label": label,
                    "history": _dumps(history),
                    "system": system,
                }
                continue

            plan = plans.get(task)
            if plan is None:
                plan = plans[task] = _Plan(task, schema, config, record.source)
            key = (task, record.language)
            prefix = prefixes.get(key)
            if prefix is None:
                wording = templates.wording(task, record.language)
                prefix = prefixes[key] = (
                    '{"instruction": ' + _dumps(wording) + ', "schema": ',
                    templates.ref(task, record.language),
                )
            head, template_ref = prefix
            index = index_gold(task, text, record.gold)
            rng = None
            if needs_rng:
                stage = f"basic:{task}"
                factory = config.rng_factory
                rng = (
                    record_rng(config.seed, record.record_id, stage)
                    if factory is None
                    else factory(config.seed, record, stage)
                )

            # Schema items, cut into chunks (each with its JSON).
            if task in LABELLED_TASKS:
                if task == EEA and not index:
                    continue  # no events: nothing to ask about (IEPile skips these too)
                if test:
                    items = _test_items(plan, index, config, rng)
                else:
                    items = _train_items(plan, record, index, config, rng)
                if items is FULL:
                    chunks = plan.full_chunks
                else:
                    if not items:
                        continue  # neg_rate 0 and no positives: no instruction (as IEPile)
                    chunks = [(c, plan.chunk_json(c)) for c in split_chunks(items, plan.split)]
                input_json = text_json or (text_json := _dumps(text))
            elif task == TC:
                chunks = [(plan.labels, plan.chunk_json(plan.labels))]
                input_json = text_json or (text_json := _dumps(text))
            elif task == MRC:
                options = list(record.gold.get("options") or [])
                chunks = [(options, _dumps(options))]
                template = MRC_INPUT.get(record.language, MRC_INPUT["en"])
                input_json = _dumps(
                    template.format(question=record.gold.get("question", ""), passage=text)
                )
            else:  # OpenIE
                chunks = [([], "[]")]
                input_json = text_json or (text_json := _dumps(text))

            n_chunks = len(chunks)
            for chunk_index, (chunk, schema_json) in enumerate(chunks):
                yield {
                    "instruction_id": _instruction_id(record_id, task, chunk_index, stamp),
                    "source": source,
                    "record_id": record_id,
                    "text_id": text_id,
                    "task": task,
                    "language": language,
                    "mode": mode,
                    "strategy": STRATEGY,
                    "template": template_ref,
                    "chunk_index": chunk_index,
                    "n_chunks": n_chunks,
                    "schema": schema_json,
                    "instruction": head + schema_json + ', "input": ' + input_json + "}",
                    "output": _dumps(build_output(task, index, chunk)),
                    "label": label,
                    "history": None,
                    "system": None,
                }


# --------------------------------------------------------------------------- validation


PARSE_CHECK = "outputs_parse_with_own_labels"
SPAN_CHECK = "spans_occur_in_input"


class _SpanProblem(str):
    """A problem found by the span rule (routed to ``SPAN_CHECK`` by its type)."""


def _span_problems(kind: str, value: Any, text: str, problems: list[str]) -> None:
    """Each string in ``value`` (a string or a list of strings) must occur in ``text``."""
    values = value if isinstance(value, list) else [value]
    for span in values:
        if not isinstance(span, str):
            problems.append(f"{kind} {span!r} is not a string")
        elif span != NAN and span not in text:
            problems.append(_SpanProblem(f"{kind} {span!r} does not occur in the input"))


def check_basic_row(row: Mapping[str, Any]) -> list[Problem]:
    """``validate_basic_row`` as ``records.Problem`` values, each under its check's name
    (``SPAN_CHECK`` for spans not in the input, ``PARSE_CHECK`` for the rest)."""
    record = str(row.get("instruction_id") or row.get("record_id") or "")
    return [
        Problem(SPAN_CHECK if isinstance(p, _SpanProblem) else PARSE_CHECK, record, str(p))
        for p in validate_basic_row(row)
    ]


def validate_basic_row(row: Mapping[str, Any], spans: list[str] | None = None) -> list[str]:
    """Problems with one basic-instruction row; an empty list when it is sound.

    Checks that the output parses as JSON, that its keys are exactly the labels of
    the chunk's schema, and that every extracted span occurs in the input text. With
    ``spans`` given, span problems go there instead of into the returned list (so the
    two checks are told apart by where a problem went, never by its wording).
    """
    task = row.get("task")
    problems: list[str] = []
    span_out = problems if spans is None else spans
    output_text = row.get("output")
    if task == IG:
        if not isinstance(output_text, str) or not output_text:
            problems.append("IG output is empty")
        return problems
    try:
        instruction = json.loads(row["instruction"])
        text = instruction["input"]
        schema = json.loads(row["schema"])
    except (TypeError, ValueError, KeyError) as exc:
        return [f"instruction or schema is not valid instruction JSON: {exc}"]
    try:
        output = json.loads(output_text)
    except (TypeError, ValueError) as exc:
        return [f"output is not valid JSON: {exc}"]

    if task == OPENIE:
        if not isinstance(output, list):
            return ["OpenIE output must be a JSON list"]
        for triple in output:
            if not isinstance(triple, dict) or not {"subject", "predicate", "object"} <= set(
                triple
            ):
                problems.append(f"OpenIE triple {triple!r} lacks subject, predicate or object")
        return problems
    if task == MRC:
        if not isinstance(output, dict) or "answer" not in output:
            return ['MRC output must be {"answer": ...}']
        answers = output["answer"] if isinstance(output["answer"], list) else [output["answer"]]
        for answer in answers:
            if schema and answer not in schema:
                problems.append(f"MRC answer {answer!r} is not one of the options")
            elif not schema and answer not in text:
                span_out.append(f"MRC answer {answer!r} does not occur in the passage")
        return problems
    if task == TC:
        if not isinstance(output, dict) or output.get("label") not in schema:
            problems.append(f"TC label {output!r} is not one of the schema labels")
        return problems
    if task not in LABELLED_TASKS:
        return [f"unknown task {task!r}"]

    if not isinstance(output, dict):
        return [f"{task} output must be a JSON object, got {type(output).__name__}"]
    try:
        expected = {output_key(task, item): item for item in schema}
    except (KeyError, TypeError, ValueError) as exc:
        return [f"schema items are malformed for {task}: {exc}"]
    for key in output:
        if key not in expected:
            problems.append(f"output key {key!r} is not a schema label of this chunk")
    for key in expected:
        if key not in output:
            problems.append(f"schema label {key!r} is missing from the output")

    for key, value in output.items():
        item = expected.get(key)
        if item is None:
            continue
        if task in (NER, EET):
            if not isinstance(value, list):
                problems.append(f"{key!r}: expected a list")
                continue
            _span_problems("entity" if task == NER else "trigger", value, text, span_out)
        elif task in (RE, SPO):
            if not isinstance(value, list):
                problems.append(f"{key!r}: expected a list")
                continue
            for pair in value:
                if not isinstance(pair, dict) or set(pair) != {"subject", "object"}:
                    problems.append(f"{key!r}: {pair!r} is not a subject/object pair")
                    continue
                _span_problems("subject", pair["subject"], text, span_out)
                _span_problems("object", pair["object"], text, span_out)
        elif task in (EE, EEA):
            if not isinstance(value, list):
                problems.append(f"{key!r}: expected a list")
                continue
            roles = set(item.get("arguments") or ())
            for event in value:
                if not isinstance(event, dict):
                    problems.append(f"{key!r}: event {event!r} is not an object")
                    continue
                if task == EE:
                    if set(event) != {"trigger", "arguments"} or not isinstance(
                        event["arguments"], dict
                    ):
                        problems.append(f"{key!r}: event {event!r} is not {{trigger, arguments}}")
                        continue
                    _span_problems("trigger", event["trigger"], text, span_out)
                    arguments = event["arguments"]
                else:
                    arguments = event
                for role, argument in arguments.items():
                    if role not in roles:
                        problems.append(f"{key!r}: role {role!r} is not in the schema item")
                    _span_problems("argument", argument, text, span_out)
        else:  # KGE
            if not isinstance(value, dict):
                problems.append(f"{key!r}: expected an object of entities")
                continue
            attributes = set(kge_attributes(item))
            for name, attrs in value.items():
                _span_problems("entity", name, text, span_out)
                if not isinstance(attrs, dict):
                    problems.append(f"{key!r}: attributes of {name!r} are not an object")
                    continue
                for attr, attr_value in attrs.items():
                    if attr not in attributes:
                        problems.append(f"{key!r}: attribute {attr!r} is not in the schema item")
                    _span_problems("attribute value", attr_value, text, span_out)
    return problems
