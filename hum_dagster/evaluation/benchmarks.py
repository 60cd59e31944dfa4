"""Evaluation benchmarks, registered like sources, and the instructions built from them.

``assets/benchmarks.yaml`` holds a ``sources`` list in the catalog format (read by
``hum_dagster.readers.catalog.load_catalog`` and the same readers) and a ``benchmarks`` mapping
with what evaluation adds per source: the paper's family (CrossNER, FewRel, CCF Law,
C3, IMDB), the instruction tasks to build and the metrics to report.

``build_eval_instructions(benchmark, style, sample_size, seed, compound_builder)`` gives
test-mode instruction rows (all labels, gold kept in ``label``, the record id on every
chunk so that chunk predictions merge per record):

- style ``"B"``: basic instructions, ``synthesize_basic`` in test mode;
- style ``"C"``: compound instructions: ``compound_builder(rows) -> rows`` applied to
  the basic rows (the guideline builder, with descriptions and examples from the schema
  dictionary). Without one, a built-in adds label descriptions made from the label names
  of the benchmark's ``LabelSchema``; every row says which builder made it
  (``eval_builder``).

Without a sample size every record of the file is evaluated, repeats included (each
gets an id of its own, ``distinct_records``), as the dataset's authors count them.
Sampling is deterministic and order-free: the records kept are those with the smallest
``blake2b(seed | record_id)``, so a sample of n is inside the sample of n + 1, on any
machine, in any order. No Dagster imports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from hum_dagster.paths import ASSETS_DIR, shared_data_dir
from hum_dagster.readers import read_source
from hum_dagster.readers.catalog import CatalogEntry, CatalogError, load_catalog
from hum_dagster.records import (
    DERIVED_TASKS,
    EE,
    EEA,
    EET,
    KGE,
    MRC,
    NER,
    RE,
    SPO,
    TC,
    ReadResult,
    Record,
)
from hum_dagster.synthesis.basic import BasicConfig, synthesize_basic

DEFAULT_BENCHMARKS = ASSETS_DIR / "benchmarks.yaml"
STYLES = ("B", "C")
BUILTIN_BUILDER = "builtin:label-name-descriptions"
METRICS_BY_TASK = {
    NER: ("ner_f1",),
    RE: ("re_f1",),
    EE: ("trigger_f1", "argument_f1"),
    EET: ("trigger_f1",),
    EEA: ("argument_f1",),
    MRC: ("accuracy",),
    TC: ("accuracy",),
}
EVAL_COLUMNS = ("benchmark", "eval_style", "eval_builder", "eval_seed", "eval_sample_size")

CompoundBuilder = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Benchmark:
    """One evaluation set: a catalog entry plus what to ask and how to score it."""

    name: str
    entry: CatalogEntry
    family: str
    tasks: tuple[str, ...]
    metrics: tuple[str, ...]
    paper_name: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def language(self) -> str:
        return self.entry.language

    def read(self) -> ReadResult:
        return read_source(self.entry)


def load_benchmarks(path: str | os.PathLike[str] | None = None) -> dict[str, Benchmark]:
    """The benchmarks of a benchmarks file (default ``assets/benchmarks.yaml``).

    ``${HUM_SHARED_DATA}`` defaults to ``../shared/data`` beside the checkout, as for
    the source catalogs. Raises ``CatalogError`` naming the file and the benchmark.
    """
    path = str(path or os.environ.get("HUM_BENCHMARKS") or DEFAULT_BENCHMARKS)
    os.environ.setdefault("HUM_SHARED_DATA", str(shared_data_dir()))
    entries = {e.name: e for e in load_catalog(path)}
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    meta = data.get("benchmarks") or {}
    if not isinstance(meta, dict):
        raise CatalogError(f"{path}: 'benchmarks' must be a mapping of source name to settings")
    unknown = sorted(set(meta) - set(entries))
    if unknown:
        raise CatalogError(f"{path}: benchmarks {unknown} have no entry under 'sources'")
    out: dict[str, Benchmark] = {}
    for name, entry in entries.items():
        if entry.split == "train":
            raise CatalogError(
                f"{path}: benchmark {name!r} has split 'train'; evaluation sets must be dev or test"
            )
        info = dict(meta.get(name) or {})
        derivable = DERIVED_TASKS.get(entry.task, (entry.task,))
        tasks = tuple(info.pop("tasks", None) or derivable)
        bad = [t for t in tasks if t not in derivable]
        if bad:
            raise CatalogError(
                f"{path}: benchmark {name!r}: tasks {bad} cannot be made from a {entry.task} "
                f"source (it gives {derivable})"
            )
        default_metrics = tuple(m for t in tasks for m in METRICS_BY_TASK.get(t, ()))
        metrics = tuple(info.pop("metrics", None) or default_metrics)
        out[name] = Benchmark(
            name=name,
            entry=entry,
            family=str(info.pop("family", name)),
            tasks=tasks,
            metrics=metrics,
            paper_name=str(info.pop("paper_name", "")),
            notes=str(info.pop("notes", "")),
            extra=info,
        )
    return out


def get_benchmark(name: str, path: str | os.PathLike[str] | None = None) -> Benchmark:
    benchmarks = load_benchmarks(path)
    try:
        return benchmarks[name]
    except KeyError:
        raise KeyError(f"no benchmark {name!r}; known: {sorted(benchmarks)}") from None


# --------------------------------------------------------------------------- sampling


def sample_key(seed: int, record_id: str) -> str:
    return hashlib.blake2b(f"{seed}|{record_id}".encode(), digest_size=16).hexdigest()


def distinct_records(records: Sequence[Record]) -> list[Record]:
    """Every record of a benchmark file, each with its own id: the n-th repeat (n >= 1)
    of a record id (the same text and gold, kept as the dataset's authors count it)
    becomes ``<id>~<n>``, so its chunks are scored as a record of their own."""
    seen: Counter[str] = Counter()
    out = []
    for record in records:
        n = seen[record.record_id]
        seen[record.record_id] += 1
        out.append(record if n == 0 else dataclasses.replace(record, record_id=f"{record.record_id}~{n}"))
    return out


def sample_records(records: Sequence[Record], sample_size: int | None, seed: int) -> list[Record]:
    """The ``sample_size`` records with the smallest ``sample_key`` (all when None or <= 0),
    in their original order. Same seed and ids give the same sample in any order."""
    if not sample_size or sample_size <= 0 or sample_size >= len(records):
        return list(records)
    keep = {
        id(r) for r in sorted(records, key=lambda r: sample_key(seed, r.record_id))[:sample_size]
    }
    return [r for r in records if id(r) in keep]


# --------------------------------------------------------------------------- style C fallback


def _words(label: str) -> str:
    """A readable form of a label name: ``politicalparty`` stays, ``place_of_birth`` and
    ``PlaceOfBirth`` become ``place of birth``."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label).replace("_", " ").replace("-", " ")
    return re.sub(r"\s+", " ", spaced).strip().lower() or label


_DESCRIBE = {
    "en": {
        NER: 'entities of type "{w}" mentioned in the text',
        RE: 'pairs (subject, object) in the relation "{w}": the object is the {w} of the subject',
        EET: 'events of type "{w}", answered with the trigger word that expresses them',
        EEA: 'arguments of events of type "{w}"',
        EE: 'events of type "{w}" with their trigger and arguments',
        SPO: 'triples whose predicate is "{w}"',
        KGE: 'entities of type "{w}" with their attributes',
        TC: 'the text belongs to the class "{w}"',
        "role": 'the argument that plays the role "{w}"',
    },
    "zh": {
        NER: "文本中提到的“{w}”类型实体",
        RE: "具有“{w}”关系的主体和客体",
        EET: "“{w}”类型的事件，以表达该事件的触发词回答",
        EEA: "“{w}”类型事件的论元",
        EE: "“{w}”类型的事件及其触发词和论元",
        SPO: "谓语为“{w}”的三元组",
        KGE: "“{w}”类型的实体及其属性",
        TC: "文本属于“{w}”类别",
        "role": "担任“{w}”角色的论元",
    },
}
_SENTENCE = {
    "en": " Each schema item comes with a description of what it means.",
    "zh": " 每个schema项都附有其含义的说明。",
}


def _describe(task: str, label: str, language: str) -> str:
    wording = _DESCRIBE.get(language, _DESCRIBE["en"])
    return wording[task].format(w=_words(label) if language == "en" else label)


def _described_item(task: str, item: Any, language: str) -> Any:
    if isinstance(item, str):
        return {"label": item, "description": _describe(task, item, language)}
    if not isinstance(item, dict):
        return item
    out = dict(item)
    if task in (EE, EEA):
        out["description"] = _describe(task, item["event_type"], language)
        out["arguments"] = [
            {"role": r, "description": _describe("role", r, language)}
            for r in item.get("arguments") or ()
        ]
    elif task == SPO:
        out["description"] = _describe(SPO, item["predicate"], language)
    elif task == KGE:
        out["description"] = _describe(KGE, item["entity_type"], language)
    return out


def label_name_descriptions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The built-in style-C builder: each schema item becomes ``{"label", "description"}``
    (object items get a ``"description"`` key) with a description made from the label
    name alone, and the wording says so. Inputs and outputs are unchanged. MRC rows (the
    schema is the answer options) are passed through."""
    out = []
    for row in rows:
        task = row["task"]
        if task == MRC or task not in _DESCRIBE["en"]:
            out.append(dict(row))
            continue
        instruction = json.loads(row["instruction"])
        language = row.get("language", "en")
        items = [_described_item(task, item, language) for item in json.loads(row["schema"])]
        schema_json = json.dumps(items, ensure_ascii=False)
        new_instruction = {
            "instruction": instruction["instruction"] + _SENTENCE.get(language, _SENTENCE["en"]),
            "schema": items,
            "input": instruction["input"],
        }
        new = dict(row)
        new["base_instruction_id"] = row["instruction_id"]
        new["instruction_id"] = hashlib.blake2b(
            f"{row['instruction_id']}|{BUILTIN_BUILDER}".encode(), digest_size=12
        ).hexdigest()
        new["strategy"] = "description"
        new["schema"] = schema_json
        new["instruction"] = json.dumps(new_instruction, ensure_ascii=False)
        out.append(new)
    return out


def _builder_name(builder: Callable[..., Any]) -> str:
    name = getattr(builder, "builder_name", None)
    if name:
        return str(name)
    module = getattr(builder, "__module__", "") or ""
    qual = getattr(builder, "__qualname__", None) or type(builder).__qualname__
    return f"{module}.{qual}" if module else qual


# --------------------------------------------------------------------------- building


def build_eval_instructions(
    benchmark: Benchmark | str,
    style: str = "B",
    sample_size: int | None = None,
    seed: int = 42,
    compound_builder: CompoundBuilder | None = None,
    *,
    read: ReadResult | None = None,
) -> list[dict[str, Any]]:
    """Test-mode instruction rows for ``benchmark`` in ``style`` B or C.

    Each row has the basic-instruction columns plus ``benchmark``, ``eval_style``,
    ``eval_builder`` (``"basic"``, the compound builder's name, or
    ``BUILTIN_BUILDER``), ``eval_seed`` and ``eval_sample_size``. ``read`` reuses an
    already-read source.
    """
    if isinstance(benchmark, str):
        benchmark = get_benchmark(benchmark)
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    result = read if read is not None else benchmark.read()
    records = sample_records(distinct_records(result.records), sample_size, seed)
    config = BasicConfig(mode="test", seed=seed)
    rows = list(synthesize_basic(records, result.schema, config, tasks=benchmark.tasks))
    builder_name = "basic"
    if style == "C":
        if compound_builder is None:
            rows = label_name_descriptions(rows)
            builder_name = BUILTIN_BUILDER
        else:
            rows = list(compound_builder(rows))
            builder_name = _builder_name(compound_builder)
    for row in rows:
        row["benchmark"] = benchmark.name
        row["eval_style"] = style
        row["eval_builder"] = builder_name
        row["eval_seed"] = seed
        row["eval_sample_size"] = sample_size or 0
    return rows


def describe_eval_instructions(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts for metadata: rows, records, per task, builders used."""
    tasks: dict[str, int] = {}
    for row in rows:
        tasks[row["task"]] = tasks.get(row["task"], 0) + 1
    return {
        "rows": len(rows),
        "records": len({(r["source"], r["record_id"]) for r in rows}),
        "tasks": tasks,
        "builders": sorted({r.get("eval_builder", "basic") for r in rows}),
        "styles": sorted({r.get("eval_style", "B") for r in rows}),
    }


__all__ = [
    "BUILTIN_BUILDER",
    "Benchmark",
    "DEFAULT_BENCHMARKS",
    "EVAL_COLUMNS",
    "STYLES",
    "build_eval_instructions",
    "describe_eval_instructions",
    "distinct_records",
    "get_benchmark",
    "label_name_descriptions",
    "load_benchmarks",
    "sample_records",
]
