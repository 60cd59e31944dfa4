"""CoNLL token-per-line NER files (CoNLL-2003, CrossNER, character-level Chinese).

One token per line, columns separated by a tab or by whitespace: the token is the
first column and the tag the last, so CoNLL-2003's four-column files read as well as
two-column ones. A blank line ends a sentence; ``-DOCSTART-`` lines are skipped.

Tag schemes (option ``scheme``):

- ``BIO``: IOB2, tolerating IOB1 (an ``I-X`` that does not continue an ``X`` span
  starts one);
- ``BIOES``: strict ``B``/``I``/``E``/``S`` (``BMES``'s ``M`` and ``BILOU``'s ``L``/``U``
  are read as ``I``/``E``/``S``);
- ``auto`` (default): ``BIOES`` if any tag of the file has an ``S``/``E``/``M``/``L``/``U``
  prefix, else ``BIO``.

Text is the tokens joined by one space (``en``) or by nothing (``zh``, character-level).
Option ``labels: [...]`` restricts the entity types; a sentence with another type is
quarantined. Trailing tabs and spaces on a line are ignored.
"""

from __future__ import annotations

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    BOM,
    Collector,
    base_name,
    gc_paused,
    open_source,
    option_error,
    str_list_option,
)
from hum_dagster.records import NER, LabelSchema, ReadResult

SCHEMES = ("auto", "BIO", "BIOES")
_BIOES_ONLY = frozenset("SEMLU")
# BIOES spellings: BMES and BILOU map onto B/I/E/S.
_BIOES_ALIAS = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}


class TagError(ValueError):
    """An inconsistent tag sequence; ``index`` is the offending token."""

    def __init__(self, index: int, reason: str):
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _split_tag(tag: str, index: int) -> tuple[str, str]:
    prefix, sep, label = tag.partition("-")
    if not sep or not label or len(prefix) != 1:
        raise TagError(index, f"malformed tag {tag!r}")
    return prefix.upper(), label


def decode_bio(tags: list[str]) -> list[tuple[int, int, str]]:
    """Spans ``(first token, last token + 1, type)`` of an IOB2 (or IOB1) sequence."""
    spans: list[tuple[int, int, str]] = []
    cur_type: str | None = None
    cur_start = 0
    for i, tag in enumerate(tags):
        if tag == "O":
            if cur_type is not None:
                spans.append((cur_start, i, cur_type))
                cur_type = None
            continue
        prefix, label = _split_tag(tag, i)
        if prefix == "B" or (prefix == "I" and label != cur_type):
            # IOB1 tolerance: an I- that does not continue the open span starts one.
            if cur_type is not None:
                spans.append((cur_start, i, cur_type))
            cur_type, cur_start = label, i
        elif prefix != "I":
            raise TagError(i, f"unknown tag prefix in {tag!r} for scheme BIO")
    if cur_type is not None:
        spans.append((cur_start, len(tags), cur_type))
    return spans


def decode_bioes(tags: list[str]) -> list[tuple[int, int, str]]:
    """Spans of a strict BIOES (or BMES, BILOU) sequence."""
    spans: list[tuple[int, int, str]] = []
    cur_type: str | None = None
    cur_start = 0
    for i, tag in enumerate(tags):
        if tag == "O":
            if cur_type is not None:
                raise TagError(i, f"'O' inside an open {cur_type} span")
            continue
        raw_prefix, label = _split_tag(tag, i)
        prefix = _BIOES_ALIAS.get(raw_prefix)
        if prefix is None:
            raise TagError(i, f"unknown tag prefix in {tag!r} for scheme BIOES")
        if prefix == "B" or prefix == "S":
            if cur_type is not None:
                raise TagError(i, f"{tag!r} inside an open {cur_type} span")
            if prefix == "S":
                spans.append((i, i + 1, label))
            else:
                cur_type, cur_start = label, i
        elif cur_type is None:
            raise TagError(i, f"{tag!r} without a preceding B-{label}")
        elif label != cur_type:
            raise TagError(i, f"{tag!r} inside an open {cur_type} span")
        elif prefix == "E":
            spans.append((cur_start, i + 1, label))
            cur_type = None
    if cur_type is not None:
        raise TagError(len(tags) - 1, f"{cur_type} span not closed with E-{cur_type}")
    return spans


def _is_bioes_tag(tag: str) -> bool:
    return len(tag) > 2 and tag[1] == "-" and tag[0].upper() in _BIOES_ONLY


@register("conll", tasks=(NER,))
@gc_paused
def read_conll(entry) -> ReadResult:
    path = entry.resolve()
    name = base_name(path)
    scheme = entry.option("scheme", "auto")
    if scheme not in SCHEMES:
        raise option_error(entry, f"option 'scheme' must be one of {list(SCHEMES)}, got {scheme!r}")
    labels = str_list_option(entry, "labels")
    allowed = set(labels) if labels is not None else None
    joiner = "" if entry.language == "zh" else " "

    # Pass 1: sentences as (first line, tokens, tags, problem). A sentence's tokens
    # sit on consecutive lines, so token i is on line first + i.
    sentences: list[tuple[int, list[str], list[str], str | None]] = []
    tag_set: set[str] = set()
    tokens: list[str] = []
    tags: list[str] = []
    first = 0
    problem: str | None = None
    with open_source(path) as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if lineno == 1 and line.startswith(BOM):
                line = line[1:]
            if not line or line.isspace() or line.startswith("-DOCSTART-"):
                if tokens or problem:
                    sentences.append((first, tokens, tags, problem))
                    tokens, tags, problem = [], [], None
                continue
            if not tokens and problem is None:
                first = lineno
            # Trailing tabs and spaces are not a column (editors and exports leave them).
            stripped = line.rstrip(" \t")
            parts = stripped.split("\t") if "\t" in stripped else stripped.split()
            tag = parts[-1].strip()
            if len(parts) < 2 or not parts[0] or not tag:
                if problem is None:
                    problem = f"line {lineno}: {_column_problem(parts)}"
                continue
            tokens.append(parts[0])
            tags.append(tag)
            tag_set.add(tag)
        if tokens or problem:
            sentences.append((first, tokens, tags, problem))

    if scheme == "auto":
        scheme = "BIOES" if any(_is_bioes_tag(t) for t in tag_set) else "BIO"
    decode = decode_bioes if scheme == "BIOES" else decode_bio

    out = Collector(entry, declared=LabelSchema(types=labels) if labels is not None else None)
    found: set[str] = set()
    step = len(joiner)
    for first, tokens, tags, problem in sentences:
        origin = f"{name}:{first}"
        if problem is not None:
            out.reject(origin, problem, _raw_sentence(tokens, tags))
            continue
        try:
            spans = decode(tags)
        except TagError as exc:
            out.reject(
                origin,
                f"inconsistent tags at line {first + exc.index}: {exc.reason}",
                _raw_sentence(tokens, tags),
            )
            continue
        text = joiner.join(tokens)
        entities = []
        if spans:
            if allowed is not None:
                unknown = next((t for _, _, t in spans if t not in allowed), None)
                if unknown is not None:
                    out.reject(origin, f"unknown label {unknown!r}", _raw_sentence(tokens, tags))
                    continue
            offsets: list[int] = []
            pos = 0
            for token in tokens:
                offsets.append(pos)
                pos += len(token) + step
            for start_tok, end_tok, label in spans:
                start = offsets[start_tok]
                end = offsets[end_tok - 1] + len(tokens[end_tok - 1])
                entities.append({"text": text[start:end], "type": label, "start": start})
        raw = lambda: _raw_sentence(tokens, tags)  # noqa: B023,E731 (called at once)
        if out.add(text, {"entities": entities}, origin, raw) is not None:
            for entity in entities:
                found.add(entity["type"])

    schema = LabelSchema(types=list(labels) if labels is not None else sorted(found))
    return out.result(schema, [path])


def _column_problem(parts: list[str]) -> str:
    if len(parts) < 2:
        return f"expected a token and a tag, got only {parts[0]!r}"
    if not parts[0]:
        return "empty token (the line starts with a tab)"
    return "empty tag column"


def _raw_sentence(tokens: list[str], tags: list[str]) -> str:
    return "\n".join(f"{tok}\t{tag}" for tok, tag in zip(tokens, tags, strict=False))
