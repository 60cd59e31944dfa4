"""The engine of ``hum convert``: IEPile raw JSON lines in, instruction lines out, on
every core, in bounded memory.

- The main process reads the input once, in blocks of about ``CHUNK_BYTES`` cut after
  a line end, counting lines (``plan_chunks``); a pool of worker processes converts
  the blocks (``convert_chunk``: reading, validation, synthesis and JSON writing) and
  the main process writes their bytes in input order to a temporary file that
  replaces ``--tgt_path`` only when everything succeeded. At most ``2 x workers + 1``
  blocks are in flight, so memory does not grow with the input.
- A line is read exactly as ``readers.iepile.read_iepile`` reads it: a fast path
  (msgspec, and checks that prove the record passes every rule of
  ``readers.validate``) accepts the common NER line; any other line, and any line the
  fast path is not sure of, goes through the reader's own per-line functions, which
  give the same record or the same quarantine reason.
- Rows: NER, RE, SPO and EET rows are made here from the synthesis plan
  (``synthesis.basic``: the same label selection, order, chunks and outputs); EE, EEA
  and KG rows come from ``synthesize_basic``. Each row is serialised as
  ``json.dumps(..., ensure_ascii=False)`` would write it (msgspec escapes strings
  byte for byte as ``json.dumps`` does; the separators are written here).
- Randomness: a line's generator is ``chunking.hash_rng(seed, stage, ":<line>|<text>")``,
  so output bytes depend on nothing but the input, the flags and the seed: not on the
  number of workers, and a repeated record gets its own draws, as in IEPile.
- ``--dedup``: workers give each record's content digest (text and canonical gold)
  and the byte span of its rows; the main process drops the rows of records it has
  seen before (an index of one digest per distinct record, only with ``--dedup``).

No Dagster imports.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hum_dagster.jsontext import json_bytes
from hum_dagster.readers.common import (
    BOM,
    _not_utf8_reason,
    parse_json_line,
    record_reason,
)
from hum_dagster.readers.iepile import IepileSource, RecordRejected, mine_labels
from hum_dagster.readers.validate import _BAD_CHAR, Declared, bad_char, label_problem
from hum_dagster.records import EET, NER, RE, LabelSchema, Record, SourceError
from hum_dagster.synthesis.basic import (
    FULL,
    BasicConfig,
    SchemaError,
    SynthesisReport,
    TaskError,
    _failure_reason,
    _Plan,
    _test_items,
    _train_items,
    synthesize_basic,
)
from hum_dagster.synthesis.chunking import hash_rng, split_chunks
from hum_dagster.synthesis.outputs import build_output, index_gold

CHUNK_BYTES = 1 << 20  # input bytes per block handed to a worker
PREFIX_CACHE = 20_000  # escaped instruction heads kept per worker (about 10 MB at most)
FIRST_LIMIT = 3  # quarantined lines named in the summary
DUP_LIMIT = 5  # duplicates named in the --dedup summary
FLAT_TASKS = ("NER", "RE", "SPO", "EET")
_NEWLINES = re.compile(rb"\r\n|\r|\n")
_BOM = BOM.encode("utf-8")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = re.compile(r"\d+")
_dumps = msgspec.json.encode  # a str: the bytes json.dumps(s, ensure_ascii=False) writes
_canonical = msgspec.json.Encoder(order="sorted").encode


class _NerEntity(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    entity: str  # frozen: hashable by value, so repeats are dropped by dict.fromkeys
    entity_type: str


class _NerLine(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    text: str
    entity: list[_NerEntity]


_NER_LINE = msgspec.json.Decoder(_NerLine)
_START = operator.itemgetter("start")
_FIRST = operator.itemgetter(0)


# --------------------------------------------------------------------------- JSON text


def as_json_string(text: bytes) -> bytes:
    """``json.dumps(t)`` for the JSON text ``t`` encoded in ``text`` (a JSON text holds
    no control character, so only quotes and backslashes need escaping)."""
    return b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# --------------------------------------------------------------------------- the job


@dataclass
class Job:
    """Everything a worker needs, fixed before the first block (inherited or pickled)."""

    path: str  # the local file read
    name: str  # its base name, as origins are written (``train.json:12``)
    cli_task: str  # the --task given (KG, EET, ...)
    task: str  # the instruction task made (KG -> KGE)
    source: IepileSource
    declared: Declared  # labels the schema file declares (membership is checked)
    schema: LabelSchema | None  # the schema synthesis uses (None while mining)
    config: BasicConfig
    source_name: str  # the "source" field of every row
    language: str = "zh"
    dedup: bool = False
    mining: bool = False  # first pass without a schema file: collect labels only
    parts: str | None = None  # workers write each block's rows to f"{parts}{index}"
    _state: dict[str, Any] = field(default_factory=dict, repr=False)


def line_rng(seed: int, record: Record, stage: str):
    """The generator of a record read from a line: (seed, stage, position, text); the
    position is the origin after the file name (``:12`` for line 12)."""
    origin = record.origin
    cut = max(origin.rfind(":"), origin.rfind("#"))
    return hash_rng(seed, stage, f"{origin[cut:]}|{record.text}")


def reason_kind(reason: str) -> str:
    """A quarantine reason with its particulars (quoted values, numbers) left out, so
    that reasons can be counted by kind."""
    return _NUMBER.sub("N", _QUOTED.sub("…", reason))


# --------------------------------------------------------------------------- blocks


def count_lines(data: bytes) -> int:
    """Lines in ``data`` as Python's universal newlines count them (``\\n``, ``\\r\\n``
    and a lone ``\\r`` each end a line; a last line without an ending counts)."""
    n = data.count(b"\n")
    if b"\r" in data:
        n += data.count(b"\r") - data.count(b"\r\n")
    if data and data[-1:] not in (b"\n", b"\r"):
        n += 1
    return n


def plan_chunks(path: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, int, int]]:
    """``(offset, length, first line number)`` of consecutive blocks of ``path``, each
    ending after a ``\\n`` (or at the end of the file)."""
    offset = 0
    line = 1
    tail = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk_bytes)
            if not block:
                break
            data = tail + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data
                continue
            piece, tail = data[:cut], data[cut:]
            yield offset, cut, line
            offset += cut
            line += count_lines(piece)
    if tail:
        yield offset, len(tail), line


def first_content(path: str) -> bytes:
    """The first non-blank line of ``path`` (stripped), or b"" for a blank file."""
    with open(path, "rb") as handle:
        first = True
        for raw in handle:
            if first and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            first = False
            stripped = raw.strip()
            if stripped:
                return stripped
    return b""


# --------------------------------------------------------------------------- records


class _Tally:
    """Quarantined lines of one block: counts by kind, the first few, the total."""

    __slots__ = ("count", "kinds", "first")

    def __init__(self) -> None:
        self.count = 0
        self.kinds: dict[str, int] = {}
        self.first: list[tuple[str, str]] = []

    def add(self, origin: str, reason: str) -> None:
        self.count += 1
        kind = reason_kind(reason)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if len(self.first) < FIRST_LIMIT:
            self.first.append((origin, reason))

    def merge(self, other: _Tally) -> None:
        self.count += other.count
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        room = FIRST_LIMIT - len(self.first)
        if room > 0:
            self.first.extend(other.first[:room])


def _label_ok(label: str, cache: dict[str, bool]) -> bool:
    ok = cache.get(label)
    if ok is None:
        ok = cache[label] = bool(
            label.strip() and bad_char(label) is None and label_problem(label) is None
        )
    return ok


def _fast_ner(raw: bytes, types: frozenset[str] | None, labels: dict[str, bool], gold: bool):
    """``(text, gold, index)`` when the line is certainly an NER record that the reader
    accepts as is (``gold`` None unless asked for; ``index`` is ``outputs.index_gold``'s
    NER index); None when the reader's own path must decide.

    msgspec checks the shape (an object of exactly ``text`` and ``entity``, a string
    and a list of objects of exactly two strings); what is left of the reader's rules
    is checked here: a non-blank text, labels in the schema (or clean, when mined),
    non-blank mentions found in the text, no forbidden character, no repeated key.
    """
    try:
        line = _NER_LINE.decode(raw)
    except (msgspec.DecodeError, ValueError):  # invalid UTF-8 is a UnicodeDecodeError
        return None
    text = line.text
    if not text or text.isspace():
        return None
    items = line.entity
    found = []
    find = text.find
    for item in dict.fromkeys(items) if len(items) > 1 else items:  # first of each pair
        mention = item.entity
        etype = item.entity_type
        if types is not None:
            if etype not in types:
                return None
        elif not _label_ok(etype, labels):
            return None
        start = find(mention) if mention else -1
        if start < 0 or mention.isspace():
            return None
        found.append((start, etype, mention))
    # No forbidden character: without escapes and DEL, a JSON line cannot hold one.
    escaped = raw.find(b"\\") >= 0
    if (escaped or raw.find(b"\x7f") >= 0) and (
        _BAD_CHAR.search(text) or any(_BAD_CHAR.search(m) for _, _, m in found)
    ):
        return None
    # No repeated key: msgspec allows only the three keys and requires each once per
    # object, so a repeat shows as a colon more than the keys and the strings hold
    # (a colon escaped as \u003a aside).
    extra = raw.count(b":") - 2 - 2 * len(items)
    if extra:
        if escaped and raw.find(b"\\u003") >= 0:
            return None
        extra -= text.count(":") + sum(
            i.entity.count(":") + i.entity_type.count(":") for i in items
        )
        if extra:
            return None
    entities = (
        {"entities": [{"text": m, "type": t, "start": p} for p, t, m in found]} if gold else None
    )
    index: dict[str, list[str]] = {}
    if len(found) > 1:
        found.sort(key=_FIRST)  # stable: ties keep the file's order, as index_gold
    for _, etype, mention in found:
        bucket = index.get(etype)
        if bucket is None:
            index[etype] = [mention]
        else:
            bucket.append(mention)
    return text, entities, index


def ner_index(entities: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``outputs.index_gold`` for NER gold whose offsets are each mention's first
    place in the text and whose (type, mention) pairs are unique (what the reader
    gives): mentions by type, in order of first position."""
    if len(entities) > 1:
        entities = sorted(entities, key=_START)
    index: dict[str, list[str]] = {}
    for entity in entities:
        found = index.get(entity["type"])
        if found is None:
            index[entity["type"]] = [entity["text"]]
        else:
            found.append(entity["text"])
    return index


def _records(job: Job, data: bytes, first_line: int, tally: _Tally):
    """``(position, text, gold)`` of each record of a block, in order (the position is
    ``:<line>``, as the origin writes it after the file name); quarantined lines go to
    ``tally``; an unreadable file raises ``SourceError``."""
    source = job.source
    task = source.task
    declared = job.declared
    unplaced = source.keep_missing
    path, name = job.path, job.name
    types = declared.types if declared.types is not None else None
    fast = task == NER and not unplaced
    need_gold = job.mining or job.dedup or job.config.mode == "test"
    labels: dict[str, bool] = job._state.setdefault("labels", {})
    if first_line == 1 and data.startswith(_BOM):
        data = data[len(_BOM) :]
    lines = _NEWLINES.split(data) if b"\r" in data else data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    lineno = first_line - 1
    for raw in lines:
        lineno += 1
        if not raw or raw.isspace():  # blank (ASCII whitespace, as bytes.strip)
            continue
        if fast:
            found = _fast_ner(raw, types, labels, need_gold)
            if found is not None:
                yield f":{lineno}", *found
                continue
        try:
            line = (raw + b"\n").decode("utf-8")[:-1]
        except UnicodeDecodeError as exc:
            raise SourceError(path, _not_utf8_reason(path, exc), lineno) from None
        if not line.strip():
            continue
        found = _checked(job, *parse_json_line(path, name, lineno, line), tally)
        if found is not None:
            yield found


def _checked(job: Job, origin: str, raw: str, value: Any, error: str | None, tally: _Tally):
    """``(position, text, gold)`` of one parsed item, or None (quarantined in ``tally``)."""
    if error is not None:
        tally.add(origin, error)
        return None
    source = job.source
    try:
        text, gold = source.gold(value)
    except RecordRejected as exc:
        tally.add(origin, str(exc))
        return None
    problem = record_reason(source.task, text, gold, job.declared, source.keep_missing)
    if problem is not None:
        tally.add(origin, problem)
        return None
    return origin[len(job.name) :], text, gold, None


def _item_records(job: Job, items, tally: _Tally):
    """``(position, text, gold)`` of the items of ``readers.common.iter_json_items``."""
    for item in items:
        found = _checked(job, *item, tally)
        if found is not None:
            yield found


# --------------------------------------------------------------------------- rows


def _iepile_label(task: str, gold: dict[str, Any]) -> bytes:
    """The row's ``label`` field: the record's IEPile label list as a JSON string."""
    if task == NER:  # the common case, built directly
        label = [{"entity": e["text"], "entity_type": e["type"]} for e in gold["entities"]]
    else:
        from hum_dagster.cli.convert import iepile_label

        label = iepile_label(task, gold)
    return as_json_string(json_bytes(label))


class _Rows:
    """Makes the rows of one record (bytes of whole lines) for the job's task."""

    def __init__(self, job: Job):
        config = job.config
        self.job = job
        self.task = job.task
        self.read_task = job.source.task
        self.test = config.mode == "test"
        self.config = config
        self.needs_rng = config.needs_rng()
        self.flat = self.task in FLAT_TASKS
        self.plan = _Plan(self.task, job.schema, config, job.source_name) if self.flat else None
        head = b'{"task": ' + _dumps(job.cli_task) + b', "source": ' + _dumps(job.source_name)
        self.train_head = head + b', "instruction": '
        self.test_tail = b'", "task": ' + _dumps(job.cli_task) + b', "source": '
        self.test_tail += _dumps(job.source_name) + b', "instruction": '
        self.heads: dict[str, str] = {}
        self.stage = f"basic:{self.task}"
        self.prefixes: dict[tuple, bytes] = {}
        self.str_items = self.task in (NER, RE, EET)  # schema items that are their labels
        self.ner_fast = self.task == NER and not job.source.keep_missing
        self.every_label = (
            not self.test
            and self.task in (NER, RE, EET)
            and config.random_sort
            and config.neg_rate >= 1.0
            and config.hard_negatives is None
        )

    def _head(self, language: str) -> str:
        head = self.heads.get(language)
        if head is None:
            wording = self.config.templates.wording(self.task, language)
            head = self.heads[language] = (
                '{"instruction": ' + _dumps(wording).decode() + ', "schema": '
            )
        return head

    def _prefix(self, language: str, chunk: list, schema_json: str | None) -> bytes:
        """The instruction up to its input text, escaped as a JSON string, without the
        closing quote: ``json.dumps('{"instruction": W, "schema": S, "input": ')[:-1]``
        (cached by chunk: with few labels the same chunks come back all the time)."""
        if self.str_items:
            key = (language, *chunk)
        else:
            schema_json = schema_json or self.plan.chunk_json(chunk)
            key = (language, schema_json)
        found = self.prefixes.get(key)
        if found is None:
            if len(self.prefixes) >= PREFIX_CACHE:
                self.prefixes.clear()
            if schema_json is None:
                schema_json = json_bytes(chunk).decode()  # json.dumps(chunk), as basic.py
            head = self._head(language)
            found = self.prefixes[key] = _dumps(head + schema_json + ', "input": ')[:-1]
        return found

    def flat_rows(self, pos: str, text: str, gold: Any, index: Any, language: str, out: list):
        """Append the record's lines to ``out`` (NER, RE, SPO, EET); ``pos`` is where
        the record is (``:<line>``); ``index`` is the gold's index when known."""
        plan, config, task = self.plan, self.config, self.task
        if index is None:
            index = ner_index(gold["entities"]) if self.ner_fast else index_gold(task, text, gold)
        rng = hash_rng(config.seed, self.stage, pos + "|" + text) if self.needs_rng else None
        if self.every_label and plan.label_set.issuperset(index):
            # Train mode, --neg_schema 1, --random_sort, no cluster mode: every label,
            # shuffled; what _train_items does (select_labels: negatives in schema
            # order, then the positives; then the shuffle), without its generality.
            items = [label for label in plan.labels if label not in index]
            items += index
            rng.shuffle(items)
        elif self.test:
            items = _test_items(plan, index, config, rng)
        else:
            items = _train_items(plan, None, index, config, rng)
        if items is FULL:
            chunks = plan.full_chunks
        else:
            if not items:
                return
            chunks = [(c, None) for c in split_chunks(items, plan.split)]
        # The instruction's rest: the input text as JSON, the closing brace, escaped.
        rest = as_json_string(_dumps(text) + b"}")[1:]
        prefix = self._prefix
        if self.test:
            start = b'{"id": "' + hashlib.sha256(text.encode("utf-8")).hexdigest().encode()
            start += self.test_tail
            label = b', "label": ' + _iepile_label(self.read_task, gold) + b"}\n"
            for chunk, schema_json in chunks:
                out.append(b"".join((start, prefix(language, chunk, schema_json), rest, label)))
            return
        train_head = self.train_head
        for chunk, schema_json in chunks:
            output = as_json_string(json_bytes(build_output(task, index, chunk)))
            out.append(
                b"".join(
                    (
                        train_head,
                        prefix(language, chunk, schema_json),
                        rest,
                        b', "output": ',
                        output,
                        b"}\n",
                    )
                )
            )

    def general_rows(
        self, records: list[Record], golds: dict[str, dict], report: SynthesisReport, out: list
    ) -> list:
        """Lines of ``records`` through ``synthesize_basic`` (EE, EEA, KG); returns, per
        record that gave rows, ``(origin, first line index, end index)``."""
        spans: list[tuple[str, int, int]] = []
        labels: dict[str, bytes] = {}
        current = None
        begin = 0
        for row in synthesize_basic(
            records, self.job.schema, self.config, tasks=[self.task], report=report
        ):
            origin = row["record_id"]  # the engine names records by origin
            if origin != current:
                if current is not None:
                    spans.append((current, begin, len(out)))
                current, begin = origin, len(out)
            if self.test:
                label = labels.get(origin)
                if label is None:
                    label = labels[origin] = _iepile_label(self.read_task, golds[origin])
                out.append(
                    b'{"id": "'
                    + row["text_id"].encode()
                    + self.test_tail
                    + _dumps(row["instruction"])
                    + b', "label": '
                    + label
                    + b"}\n"
                )
            else:
                out.append(
                    self.train_head
                    + _dumps(row["instruction"])
                    + b', "output": '
                    + _dumps(row["output"])
                    + b"}\n"
                )
        if current is not None:
            spans.append((current, begin, len(out)))
        return spans


def _digest(text: str, gold: dict[str, Any]) -> int:
    """A record's content digest (96 bits of BLAKE2b over the text and the canonical
    gold): same text and gold, same digest; two distinct records of a 10M-line file
    share one with a probability below 1e-15."""
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8") + b"\x1f" + _canonical(gold), digest_size=12).digest()
    )


# --------------------------------------------------------------------------- a block


@dataclass
class ChunkResult:
    """What a worker gives back for one block."""

    data: bytes = b""
    rows: int = 0
    records: int = 0
    tally: _Tally = field(default_factory=_Tally)
    # --dedup: (digest, origin, start byte, end byte) per record, in order
    spans: list[tuple[int, str, int | None, int | None]] = field(default_factory=list)
    mined: tuple[set, dict] | None = None
    error: tuple[str, str, int | None] | None = None  # SourceError parts
    part: str | None = None  # the file holding ``data`` when the worker wrote one


_JOB: list[Job] = []


def init_worker(job: Job) -> None:
    _JOB[:] = [job]
    import gc
    import signal

    # A worker inherits ignored signals from whatever started the parent (measured: a
    # pytest-xdist worker ignores SIGTERM); Pool.terminate ends workers with SIGTERM, so
    # one that ignored it was waited for forever.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    gc.disable()  # acyclic garbage only; reference counting frees it (see gc_paused)


def convert_chunk(spec: tuple[int, int, int, int]) -> ChunkResult:
    """Convert block ``(index, offset, length, first line)`` of the job's file; with
    ``job.parts`` its rows go to a part file (the main process copies it in the
    kernel, instead of receiving the bytes through a pipe)."""
    job = _JOB[0]
    index, offset, length, first_line = spec
    with open(job.path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    result = ChunkResult()
    _convert_into(job, _records(job, data, first_line, result.tally), result)
    if job.parts is not None and result.data:
        result.part = f"{job.parts}{index}"
        with open(result.part, "wb") as handle:
            handle.write(result.data)
        result.data = b""
    return result


def convert_items(job: Job, items) -> ChunkResult:
    """Convert the items of a JSON-array file (``iter_json_items``) in this process."""
    result = ChunkResult()
    try:
        init_worker(job)
        _convert_into(job, _item_records(job, items, result.tally), result)
    finally:
        import gc

        gc.enable()
    return result


def _convert_into(job: Job, records, result: ChunkResult) -> None:
    """``_convert`` into ``result``; a bad record or schema becomes ``result.error`` (and
    no data), for the parent to report as one line."""
    try:
        _convert(job, records, result)
    except SourceError as exc:
        result.error = (exc.location, exc.reason, exc.line)
        result.data = b""
    except (SchemaError, TaskError) as exc:
        result.error = ("", str(exc), None)
        result.data = b""


def _convert(job: Job, found: Iterator[tuple], result: ChunkResult) -> None:
    tally = result.tally
    language = job.language
    if job.mining:
        types: set[str] = set()
        roles: dict[str, set[str]] = {}
        for _, _, gold, _ in found:
            result.records += 1
            mine_labels(job.source.task, gold, types, roles)
        result.mined = (types, roles)
        return
    out: list[bytes] = []
    dedup = job.dedup
    spans = result.spans
    name = job.name
    if job.task in FLAT_TASKS:
        rows = job._state.get("rows")
        sizes = 0
        for pos, text, gold, index in found:
            result.records += 1
            if rows is None:  # made at the first record: an empty schema fails only then
                rows = job._state["rows"] = _Rows(job)
            begin = len(out)
            try:
                rows.flat_rows(pos, text, gold, index, language, out)
            except (SchemaError, TaskError):
                raise
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                del out[begin:]
                tally.add(name + pos, _failure_reason(exc))
                if dedup:
                    spans.append((_digest(text, gold), name + pos, None, None))
                continue
            if dedup:
                end = sizes + sum(len(x) for x in out[begin:])
                spans.append((_digest(text, gold), name + pos, sizes, end))
                sizes = end
    else:
        records = []
        golds = {}
        source = job.source
        for pos, text, gold, _ in found:
            result.records += 1
            origin = name + pos
            golds[origin] = gold
            records.append(
                Record(
                    source=job.source_name,
                    task=source.task,
                    language=language,
                    text=text,
                    gold=gold,
                    origin=origin,
                    split=job.config.mode,
                    record_id=origin,
                )
            )
        if records:
            rows = job._state.get("rows")
            if rows is None:
                rows = job._state["rows"] = _Rows(job)
            report = SynthesisReport()
            got = rows.general_rows(records, golds, report, out)
            for bad in report.quarantined:
                tally.add(bad.origin, bad.reason)
            if dedup:
                bounds = {origin: (b, e) for origin, b, e in got}
                offsets = [0]
                for line in out:
                    offsets.append(offsets[-1] + len(line))
                for record in records:
                    b, e = bounds.get(record.origin, (None, None))
                    start = offsets[b] if b is not None else None
                    end = offsets[e] if e is not None else None
                    spans.append((_digest(record.text, record.gold), record.origin, start, end))
    result.rows = len(out)
    result.data = b"".join(out)


# --------------------------------------------------------------------------- the run


@dataclass
class RunResult:
    rows: int = 0
    records: int = 0
    tally: _Tally = field(default_factory=_Tally)
    duplicates: int = 0
    first_duplicates: list[tuple[str, str]] = field(default_factory=list)
    mined: tuple[set, dict] | None = None


class ConvertError(Exception):
    """A failure that ends the run: one line for the user."""


def _raise(error: tuple[str, str, int | None]) -> None:
    location, reason, line = error
    if not location:
        raise ConvertError(reason)
    raise SourceError(location, reason, line)


def _results(job: Job, workers: int, chunk_bytes: int) -> Iterator[ChunkResult]:
    """Each block's result, in input order, converted by ``workers`` processes."""
    specs = ((i, *spec) for i, spec in enumerate(plan_chunks(job.path, chunk_bytes)))
    if workers <= 1:
        init_worker(job)
        try:
            for spec in specs:
                yield convert_chunk(spec)
        finally:
            import gc

            gc.enable()
        return
    import multiprocessing as mp

    pool = mp.get_context(start_method()).Pool(workers, initializer=init_worker, initargs=(job,))
    try:
        window: deque = deque()
        depth = 2 * workers + 1
        for spec in specs:
            window.append(pool.apply_async(convert_chunk, (spec,)))
            if len(window) >= depth:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def start_method() -> str:
    """``fork`` (workers start in milliseconds) only from a process with one thread and no
    native thread pool: the ``hum convert`` command. A process with other threads (a
    Dagster step, a test session with a loopback server, anything that loaded polars'
    thread pool) may hold a lock at the moment of the fork that no thread of the child
    will ever release, and a forked worker then hangs; there the workers come from a
    ``forkserver`` (a clean single-threaded process), else ``spawn``."""
    import multiprocessing as mp
    import sys
    import threading

    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and "polars" not in sys.modules:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


class Sink:
    """Where the rows go, in order: an open binary file."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def copy(self, part: str, ranges: list[tuple[int, int]] | None = None) -> None:
        """Append ``part`` (or its byte ``ranges``) and remove it."""
        self.handle.flush()
        out = self.handle.fileno()
        try:
            with open(part, "rb") as source:
                fd = source.fileno()
                if ranges is None:
                    ranges = [(0, os.fstat(fd).st_size)]
                for start, end in ranges:
                    _copy_range(fd, out, start, end - start)
        finally:
            os.remove(part)


def _copy_range(src: int, dst: int, offset: int, count: int) -> None:
    while count > 0:
        try:
            done = os.copy_file_range(src, dst, count, offset)
        except (AttributeError, OSError):  # no copy_file_range here: through user space
            done = os.write(dst, os.pread(src, min(count, 1 << 24), offset))
        if done <= 0:
            raise OSError(f"could not copy {count} bytes of a part file")
        offset += done
        count -= done


def run(
    job: Job, sink: Sink | None, workers: int, chunk_bytes: int | None = None, items=None
) -> RunResult:
    """Convert the job's file, appending each block's rows to ``sink`` in order;
    ``items`` (a JSON-array file's ``iter_json_items``) are converted in this process.
    Blocks are ``chunk_bytes`` long (default ``CHUNK_BYTES``, read at the call)."""
    total = RunResult()
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    if items is None and workers > 1 and sink is not None:
        job.parts = f"{sink.handle.name}.part-{os.getpid()}-"
    try:
        _run(job, sink, workers, chunk_bytes, items, total)
    finally:
        if job.parts is not None:
            folder, prefix = os.path.split(job.parts)
            for name in os.listdir(folder or "."):
                if name.startswith(prefix):
                    os.remove(os.path.join(folder, name))
            job.parts = None
    return total


def _run(job: Job, sink, workers: int, chunk_bytes: int, items, total: RunResult) -> None:
    if items is not None:
        _collect(job, sink, iter([convert_items(job, items)]), total)
        return
    results = _results(job, workers, chunk_bytes)
    try:
        _collect(job, sink, results, total)
    finally:
        results.close()  # stops the pool (and its writes) before the part files go


def _collect(job: Job, sink, results: Iterator[ChunkResult], total: RunResult) -> None:
    # --dedup: digest -> the first occurrence's line (or array index): ~100 bytes a record
    seen: dict[int, int] | None = {} if job.dedup and not job.mining else None
    name = job.name
    mined_types: set[str] = set()
    mined_roles: dict[str, set[str]] = {}
    for result in results:
        if result.error is not None:
            _raise(result.error)
        total.tally.merge(result.tally)
        if job.mining:
            total.records += result.records
            types, roles = result.mined
            mined_types |= types
            for key, values in roles.items():
                mined_roles.setdefault(key, set()).update(values)
            continue
        if seen is None:
            total.records += result.records
            total.rows += result.rows
            if result.part is not None:
                sink.copy(result.part)
            elif result.data:
                sink.write(result.data)
            continue
        kept = []
        dropped = False
        for digest, origin, start, end in result.spans:
            first = seen.get(digest)
            if first is None:
                seen[digest] = int(origin[len(name) + 1 :])
                total.records += 1
                if start is not None and end > start:
                    kept.append((start, end))
                continue
            dropped = True
            total.duplicates += 1
            if len(total.first_duplicates) < DUP_LIMIT:
                mark = origin[len(name)]  # ":" (a line) or "#" (an array item)
                total.first_duplicates.append((origin, f"{name}{mark}{first}"))
        if not dropped:
            total.rows += result.rows
            if result.part is not None:
                sink.copy(result.part)
            elif result.data:
                sink.write(result.data)
            continue
        total.rows += len(kept) and _rows_in(result, kept)
        if result.part is not None:
            sink.copy(result.part, kept)
        else:
            for start, end in kept:
                sink.write(result.data[start:end])
    if job.mining:
        total.mined = (mined_types, mined_roles)


def _rows_in(result: ChunkResult, kept: list[tuple[int, int]]) -> int:
    if result.part is None:
        return sum(result.data.count(b"\n", start, end) for start, end in kept)
    with open(result.part, "rb") as handle:
        data = handle.read()
    return sum(data.count(b"\n", start, end) for start, end in kept)


def skipped_summary(tally: _Tally, where) -> str:
    """One line: how many lines were skipped, by kind of reason, and the first few."""
    kinds = sorted(tally.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = "; ".join(f"{n} x {kind}" for kind, n in kinds[:5])
    if len(kinds) > 5:
        shown += f"; {sum(n for _, n in kinds[5:])} x {len(kinds) - 5} other reasons"
    first = ", ".join(f"{where(origin)} ({reason})" for origin, reason in tally.first)
    more = f", ... {tally.count - len(tally.first)} more" if tally.count > len(tally.first) else ""
    noun = "line" if tally.count == 1 else "lines"
    return f"skipped {tally.count} {noun} ({shown}): {first}{more}"


def duplicate_summary(total: RunResult) -> str:
    where = ", ".join(f"{origin} (= {first})" for origin, first in total.first_duplicates)
    more = (
        f", ... {total.duplicates - len(total.first_duplicates)} more"
        if total.duplicates > len(total.first_duplicates)
        else ""
    )
    return f"{total.duplicates} duplicate records dropped: {where}{more}"


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


__all__ = [
    "CHUNK_BYTES",
    "ConvertError",
    "Job",
    "RunResult",
    "convert_chunk",
    "count_lines",
    "default_workers",
    "duplicate_summary",
    "first_content",
    "as_json_string",
    "json_bytes",
    "line_rng",
    "plan_chunks",
    "reason_kind",
    "run",
    "skipped_summary",
]
