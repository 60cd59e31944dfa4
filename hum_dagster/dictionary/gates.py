"""Gates on LLM-written schema-dictionary values: each a rule that can say no.

An LLM answer becomes dictionary data only value by value, through these gates; a
value that fails one is dropped and the reason is kept (``Rejection``). The rules:

- a **description** is a sentence about its label, in the source's language: not a JSON
  fragment, a schema key or an echo of the prompt (``json_or_schema_echo``); not a
  placeholder such as ``description1`` (``placeholder``); not a date, a time stamp or a
  number (``date_or_number``); not in another script than the source's
  (``wrong_language``); not a gold value of any label, not a proper-name phrase such as
  ``'Narodny Light Festival, Oslo'`` (``entity_not_description``) and not a piece of an
  input copied out (``span_of_input``); not a label name (``label_name_not_description``);
  at least 4 words (English) or 5 Chinese characters (``fragment``); at most
  ``MAX_DESCRIPTION`` characters (``too_long``); and it names its label: it shares a word
  stem with the label's name or a known variant, or (Chinese) holds a two-character piece
  of the label or a variant, or half of the label's characters (``does_not_name_label``:
  SmolLM2's
  fluent sentences about some instance, such as ``'Brendon Bay has a single island in the
  River Thames.'`` for ``located in or next to body of water``);
- a **synonym** is a label name: the same first four rules; a name, not a sentence (at
  most 5 words or 12 Chinese characters, no sentence punctuation: ``sentence_not_name``);
  not the label itself (``same_as_label``); not another label's name or accepted
  variant (``other_label_name``); not a gold value of any label (``label_value``); not
  a capitalised span of the inputs (``span_of_input``); not a proper name: a
  capitalised name (of a lower-case label) that shares no word with what is known of
  the label (its name, seeded descriptions and variants) and that the inputs never
  write in lower case, such as ``'Elena Petrova'`` for ``organisation``
  (``proper_name``; a common noun such as ``'Organization'`` occurs in lower case in
  running text, a name does not); for a Chinese label, a name sharing at least one
  character with the label or a known variant (``shares_nothing_with_label``: Chinese has
  no case to tell a name from a word, so this gate prefers refusing a true synonym such
  as 绰号 for 别名 to letting in SmolLM2's 停车协议 for 死亡地点);
- an **example** obeys the validation of mined examples: its text is non-empty, a
  positive's span (or pair) occurs in its text (``span_not_in_text``), a negative is not
  a gold annotation of the label (``negative_is_gold``), and for a symmetric relation a
  negative is not a gold pair swapped (``swapped_symmetric_pair``).

Reasons are stable keys (the constants below); metadata counts rejections by them.
Gates are deterministic and have no state beyond ``GateContext``, which knows the
source's labels, their gold values and the input texts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hum_dagster.dictionary.model import CLASS_LABEL, Example, LabelEntry, SchemaDictionary

DESCRIPTION = "description"
SYNONYM = "synonym"
POSITIVE = "positive"
NEGATIVE = "negative"

MAX_DESCRIPTION = 400
MIN_DESCRIPTION_WORDS = 4  # English
MIN_DESCRIPTION_CJK = 5  # Chinese characters
MAX_SYNONYM_WORDS = 5
MAX_SYNONYM_CJK = 12

# Rejection reasons (stable keys).
NOT_TEXT = "not_text"
JSON_ECHO = "json_or_schema_echo"
PLACEHOLDER = "placeholder"
DATE_OR_NUMBER = "date_or_number"
WRONG_LANGUAGE = "wrong_language"
ENTITY = "entity_not_description"
INPUT_SPAN = "span_of_input"
LABEL_NAME = "label_name_not_description"
FRAGMENT = "fragment"
TOO_LONG = "too_long"
OFF_LABEL = "does_not_name_label"
UNRELATED_NAME = "shares_nothing_with_label"
NOT_A_NAME = "sentence_not_name"
SAME_AS_LABEL = "same_as_label"
OTHER_LABEL = "other_label_name"
LABEL_VALUE = "label_value"
PROPER_NAME = "proper_name"
EMPTY_VALUE = "empty_value"
SPAN_NOT_IN_TEXT = "span_not_in_text"
NEGATIVE_IS_GOLD = "negative_is_gold"
SWAPPED_SYMMETRIC = "swapped_symmetric_pair"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_EN_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")
_CONNECTORS = frozenset(
    [
        "and",
        "of",
        "the",
        "de",
        "da",
        "del",
        "della",
        "der",
        "di",
        "du",
        "la",
        "le",
        "van",
        "von",
        "y",
        "for",
        "in",
        "on",
        "at",
        "&",
        "-",
    ]
)
_STOPWORDS = _CONNECTORS | frozenset(
    [
        "a",
        "an",
        "or",
        "with",
        "who",
        "whom",
        "which",
        "that",
        "this",
        "these",
        "those",
        "are",
        "is",
        "was",
        "were",
        "be",
        "been",
        "its",
        "it",
        "any",
        "all",
        "not",
        "no",
        "by",
        "from",
        "as",
        "to",
        "into",
        "such",
        "other",
        "than",
        "also",
        "e.g",
        "i.e",
        "etc",
        "has",
        "have",
        "had",
        "their",
        "they",
        "them",
        "his",
        "her",
        "one",
        "ones",
        "some",
        "many",
        "more",
        "most",
        "each",
        "can",
        "may",
    ]
)
_SCHEMA_KEYS = frozenset(
    [
        "descriptions",
        "description",
        "synonyms",
        "synonym",
        "label",
        "labels",
        "kind",
        "task",
        "schema",
        "input",
        "output",
        "instruction",
        "positives",
        "negatives",
        "candidates",
        "relabelled",
        "new_rule",
        "original_rule",
        "json",
        "value",
        "values",
        "text",
        "type",
        "answer",
    ]
)
_PROMPT_ECHOES = (
    "known descriptions",
    "instances of the label",
    "answer as",
    "label kind:",
    "write (1)",
    "json object",
    "json schema",
    "已知描述",
)
_PLACEHOLDER_WORDS = (
    "description|desc|synonym|alias|label|name|value|text|string|example|item|entity|type|"
    "answer|placeholder|sample|word|term|variant|"
    "描述|说明|同义词|别名|标签|名称|示例|例子|值"
)
_PLACEHOLDER = re.compile(
    rf"(?:your[\s_]+)?(?:{_PLACEHOLDER_WORDS})[\s_#-]*\d*|<[^<>]*>|\{{[^{{}}]*\}}|\[[^\[\]]*\]",
    re.IGNORECASE,
)
_EMPTYISH = frozenset(
    [
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "tbd",
        "todo",
        "unknown",
        "...",
        "…",
        "-",
        "--",
        "?",
        "??",
        "xxx",
        "etc",
        "etc.",
        "无",
        "暂无",
        "未知",
    ]
)
_JSONISH = re.compile(r'"\s*:|:\s*"|"\s*,\s*"|\\n|\\"')
_DATE_OR_NUMBER_TOKEN = re.compile(
    r"\d{4}[-/.年]\d{1,2}(?:[-/.月]\d{1,2}日?)?(?:[T ]\d{1,2}(?::\d{2}){1,2}(?:\.\d+)?Z?)?"
    r"|\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?|\d+(?:[.,]\d+)*%?"
)
_SENTENCE_END = re.compile(r"[.!?。！？;；:：]\s*$")


def norm(value: str) -> str:
    """Case- and space-insensitive form of a value (what duplicates are judged by)."""
    return " ".join(str(value).split()).casefold()


def _name_norm(value: str) -> str:
    """A label name's comparable form: ``political_party`` = ``Political party``."""
    return norm(re.sub(r"[_\-/]+", " ", str(value)))


def _prefixes(text: str, lowercase_only: bool = False) -> set[str]:
    """The first four letters of each English word of three letters or more (with
    ``lowercase_only``, of the words written in lower case: no names)."""
    return {
        w.casefold()[:4]
        for w in _EN_WORD.findall(text)
        if len(w) >= 3
        and w.casefold() not in _STOPWORDS
        and not (lowercase_only and not w.islower())
    }


@dataclass(frozen=True, slots=True)
class Rejection:
    """A value a gate refused: what it was, for which label, and why."""

    kind: str  # description | synonym | positive | negative
    label: str  # the entry key
    value: Any
    reason: str  # a stable key (the constants above)
    detail: str  # one readable sentence

    def to_json(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, str | dict) else repr(self.value)
        if isinstance(value, str):
            value = value[:200]
        return {
            "kind": self.kind,
            "label": self.label,
            "value": value,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass
class GateContext:
    """What the gates know about one source."""

    language: str
    names: dict[str, str] = field(default_factory=dict)  # name form -> entry key
    variants: dict[str, str] = field(default_factory=dict)  # known variant form -> entry key
    values: dict[str, set[str]] = field(default_factory=dict)  # gold value form -> keys
    gold_spans: dict[str, set[str]] = field(default_factory=dict)  # key -> gold value forms
    gold_pairs: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    vocabulary: dict[str, set[str]] = field(default_factory=dict)  # key -> word stems known
    name_stems: dict[str, set[str]] = field(default_factory=dict)  # key -> its names' stems
    corpus: str = ""  # every input text, joined by newlines

    @classmethod
    def build(
        cls,
        dictionary: SchemaDictionary,
        instances: Mapping[str, Sequence[Any]] | None = None,
        texts: Iterable[str] = (),
    ) -> GateContext:
        """From a dictionary (labels, seeded variants and descriptions), the gold
        ``instances`` (``mine.collect_instances``: key -> objects with ``.value``) and
        the input texts."""
        ctx = cls(language=dictionary.language)
        own: dict[str, set[str]] = {}
        known: dict[str, set[str]] = {}
        for key, entry in sorted(dictionary.entries.items()):
            ctx.names.setdefault(_name_norm(entry.label), key)
            own[key] = _prefixes(entry.label.replace("_", " "))
            vocab: set[str] = set()
            for t in entry.variants:
                ctx.variants.setdefault(_name_norm(t.value), key)
                vocab |= _prefixes(t.value)
            ctx.name_stems[key] = own[key] | vocab
            for t in entry.descriptions:
                if t.provenance != "mined":  # mined descriptions list values
                    vocab |= _prefixes(t.value, lowercase_only=True)  # no example names
            known[key] = vocab
        # stems most labels share ("subject", "object", "names") say nothing of one label
        spread = Counter(p for key in known for p in known[key] | own[key])
        common = {p for p, n in spread.items() if len(known) >= 4 and n > 0.3 * len(known)}
        for key in known:
            ctx.vocabulary[key] = own[key] | (known[key] - common)
        for key, found in sorted((instances or {}).items()):
            for inst in found:
                value = getattr(inst, "value", inst)
                if isinstance(value, Mapping):
                    s, o = str(value.get("subject", "")), str(value.get("object", ""))
                    ctx.gold_pairs.setdefault(key, set()).add((norm(s), norm(o)))
                    spans = [s, o]
                else:
                    spans = [str(value)]
                    ctx.gold_spans.setdefault(key, set()).add(norm(value))
                for span in spans:
                    if span.strip():
                        ctx.values.setdefault(norm(span), set()).add(key)
        ctx.corpus = "\n".join(texts)
        return ctx

    def in_inputs(self, value: str, bounded: bool = True) -> bool:
        if not value or not self.corpus:
            return False
        if not bounded:
            return value in self.corpus
        return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", self.corpus) is not None


# --------------------------------------------------------------------------- shared rules


def _scripts(value: str) -> tuple[int, int]:
    return len(_CJK.findall(value)), len(_LATIN.findall(value))


def _expects_cjk(language: str) -> bool:
    return language == "zh"


def _wrong_language(value: str, want_cjk: bool) -> str | None:
    cjk, latin = _scripts(value)
    if want_cjk and cjk < latin:
        return f"{cjk} Chinese characters against {latin} Latin letters: not Chinese"
    if not want_cjk and cjk * 4 > latin:
        return f"{cjk} Chinese characters against {latin} Latin letters: not English"
    return None


def _common(kind: str, key: str, value: Any) -> tuple[str | None, Rejection | None]:
    """Rules every written value obeys; (the stripped text, None) when it passes."""
    if not isinstance(value, str):
        return None, Rejection(kind, key, value, NOT_TEXT, f"a {type(value).__name__}, not text")
    text = " ".join(value.split())
    if not text:
        return None, Rejection(kind, key, value, NOT_TEXT, "empty text")
    low = text.casefold()
    if (
        "{" in text
        or "}" in text
        or text.startswith("[")
        or text.endswith("]")
        or _JSONISH.search(text)
        or low.strip("\"' .:") in _SCHEMA_KEYS
        or any(echo in low for echo in _PROMPT_ECHOES)
    ):
        return None, Rejection(
            kind, key, value, JSON_ECHO, "JSON syntax, a schema key or the prompt echoed"
        )
    if low in _EMPTYISH or _PLACEHOLDER.fullmatch(text.strip("\"'.")):
        return None, Rejection(kind, key, value, PLACEHOLDER, "a placeholder, not a written value")
    if _DATE_OR_NUMBER_TOKEN.search(text):
        cjk, latin = _scripts(_DATE_OR_NUMBER_TOKEN.sub(" ", text))
        if cjk + latin < 2:
            return None, Rejection(
                kind, key, value, DATE_OR_NUMBER, "a date, a time stamp or a number"
            )
    return text, None


def _title_case(text: str) -> bool:
    """Every English word capitalised (name connectors aside), at least one word."""
    words = _EN_WORD.findall(text)
    content = [w for w in words if w.casefold() not in _CONNECTORS]
    return bool(content) and all(w[0].isupper() for w in content)


# --------------------------------------------------------------------------- descriptions


def check_description(value: Any, entry: LabelEntry, ctx: GateContext) -> Rejection | None:
    """None when ``value`` may be a description of ``entry``, else why not."""
    key = entry.key
    text, rejected = _common(DESCRIPTION, key, value)
    if rejected is not None:
        return rejected
    assert text is not None
    want_cjk = _expects_cjk(ctx.language)
    problem = _wrong_language(text, want_cjk)
    if problem:
        return Rejection(DESCRIPTION, key, value, WRONG_LANGUAGE, problem)
    form = norm(text)
    if form in ctx.values:
        owners = ", ".join(sorted(ctx.values[form])[:3])
        return Rejection(
            DESCRIPTION, key, value, ENTITY, f"a gold value of {owners}, not a description"
        )
    name = _name_norm(text)
    if name in ctx.names or name in ctx.variants:
        return Rejection(
            DESCRIPTION, key, value, LABEL_NAME, "a label name, not a sentence about the label"
        )
    if not want_cjk and _title_case(text):
        return Rejection(DESCRIPTION, key, value, ENTITY, "a proper-name phrase, not a sentence")
    if len(text) >= 4 and ctx.in_inputs(text, bounded=not want_cjk):
        return Rejection(DESCRIPTION, key, value, INPUT_SPAN, "copied out of an input text")
    if want_cjk:
        if len(_CJK.findall(text)) < MIN_DESCRIPTION_CJK:
            return Rejection(
                DESCRIPTION,
                key,
                value,
                FRAGMENT,
                f"fewer than {MIN_DESCRIPTION_CJK} Chinese characters",
            )
    elif len(_EN_WORD.findall(text)) < MIN_DESCRIPTION_WORDS:
        return Rejection(
            DESCRIPTION,
            key,
            value,
            FRAGMENT,
            f"fewer than {MIN_DESCRIPTION_WORDS} words: not a sentence",
        )
    if len(text) > MAX_DESCRIPTION:
        return Rejection(
            DESCRIPTION, key, value, TOO_LONG, f"longer than {MAX_DESCRIPTION} characters"
        )
    if not _names_label(text, entry, ctx, want_cjk):
        return Rejection(
            DESCRIPTION,
            key,
            value,
            OFF_LABEL,
            "does not name its label: no word of the label's name or of its variants"
            + (" (no two-character piece of the label or a variant)" if want_cjk else ""),
        )
    return None


def _pieces(text: str) -> set[str]:
    """The label's two-character Chinese pieces (the whole of a one-character label)."""
    runs = re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", text)
    out: set[str] = set()
    for run in runs:
        out |= {run} if len(run) == 1 else {run[i : i + 2] for i in range(len(run) - 1)}
    return out


def _names_label(text: str, entry: LabelEntry, ctx: GateContext, want_cjk: bool) -> bool:
    """A description about its label says so: it shares a word stem (English) with the
    label's name or one of its known variants, or (Chinese) holds a two-character piece of
    the label or a variant, or half of the label's characters. Seeded descriptions do not count here: their many words (and
    example names) would let almost any sentence through."""
    if want_cjk:
        pieces = _pieces(entry.label)
        for t in entry.variants:
            pieces |= _pieces(t.value)
        if not pieces:  # a Latin label in a Chinese source: its stems, as in English
            return bool(_prefixes(text) & ctx.name_stems.get(entry.key, _prefixes(entry.label)))
        if any(p in text for p in pieces):
            return True
        chars = set(_CJK.findall(entry.label))  # 父亲或母亲 names 父母 without its bigram
        return len(chars) >= 2 and 2 * len(chars & set(_CJK.findall(text))) >= len(chars)
    stems = ctx.name_stems.get(entry.key) or _prefixes(entry.label.replace("_", " "))
    return bool(_prefixes(text) & stems)


# --------------------------------------------------------------------------- synonyms


def check_synonym(value: Any, entry: LabelEntry, ctx: GateContext) -> Rejection | None:
    """None when ``value`` may be a label-name variant of ``entry``, else why not."""
    key = entry.key
    text, rejected = _common(SYNONYM, key, value)
    if rejected is not None:
        return rejected
    assert text is not None
    label_cjk, label_latin = _scripts(entry.label)
    want_cjk = label_cjk > 0 or (ctx.language == "zh" and label_latin == 0)
    if label_cjk > 0 or ctx.language != "zh":  # a Latin label of a Chinese source: either
        problem = _wrong_language(text, want_cjk)
        if problem:
            return Rejection(SYNONYM, key, value, WRONG_LANGUAGE, problem)
    words = _EN_WORD.findall(text)
    if (
        _SENTENCE_END.search(text)
        or len(words) > MAX_SYNONYM_WORDS
        or len(_CJK.findall(text)) > MAX_SYNONYM_CJK
    ):
        return Rejection(SYNONYM, key, value, NOT_A_NAME, "a sentence, not a label name")
    name = _name_norm(text)
    if name == _name_norm(entry.label):
        return Rejection(SYNONYM, key, value, SAME_AS_LABEL, "the label itself")
    other = ctx.names.get(name) or ctx.variants.get(name)
    if other is not None and other != key:
        return Rejection(SYNONYM, key, value, OTHER_LABEL, f"the name of another label ({other})")
    form = norm(text)
    if form in ctx.values:
        owners = ", ".join(sorted(ctx.values[form])[:3])
        return Rejection(
            SYNONYM, key, value, LABEL_VALUE, f"a gold value of {owners}, not a label name"
        )
    if any(ch.isupper() for ch in text) and ctx.in_inputs(text):
        return Rejection(SYNONYM, key, value, INPUT_SPAN, "a capitalised span of the inputs")
    if (
        words
        and text.islower()
        and not ctx.in_inputs(text)
        and (ctx.in_inputs(text[:1].upper() + text[1:]) or ctx.in_inputs(text.title()))
    ):
        return Rejection(
            SYNONYM, key, value, PROPER_NAME, "a name the inputs only write capitalised"
        )
    if label_cjk > 0:
        known = set(_CJK.findall(entry.label))
        for t in entry.variants:
            known |= set(_CJK.findall(t.value))
        if not known & set(_CJK.findall(text)):
            return Rejection(
                SYNONYM,
                key,
                value,
                UNRELATED_NAME,
                "a Chinese name sharing no character with the label or its variants",
            )
    if (
        words
        and _title_case(text)
        and not _title_case(entry.label)
        and not (_prefixes(text) & ctx.vocabulary.get(key, set()))
        and not ctx.in_inputs(text.lower())
    ):
        return Rejection(
            SYNONYM,
            key,
            value,
            PROPER_NAME,
            "a capitalised name: it shares no word with the label, its descriptions or "
            "variants, and the inputs never write it in lower case",
        )
    return None


# --------------------------------------------------------------------------- examples


def _pair(value: Any) -> tuple[str, str] | None:
    if isinstance(value, Mapping) and "subject" in value and "object" in value:
        return str(value["subject"]), str(value["object"])
    return None


def check_example(
    example: Example | Mapping[str, Any],
    entry: LabelEntry,
    ctx: GateContext,
    *,
    negative: bool,
    symmetric: bool = False,
) -> Rejection | None:
    """None when ``example`` may be a positive (or, with ``negative``, a negative) example
    of ``entry``; the same rules as mined examples obey."""
    kind = NEGATIVE if negative else POSITIVE
    key = entry.key
    if isinstance(example, Example):
        text, value = example.text, example.value
    else:
        text, value = example.get("text"), example.get("value")
    if not isinstance(text, str) or not text.strip():
        return Rejection(kind, key, value, NOT_TEXT, "the example has no text")
    pair = _pair(value)
    if pair is None and (not isinstance(value, str) or not value.strip()):
        return Rejection(kind, key, value, EMPTY_VALUE, "the example has no value")
    if pair is not None and not (pair[0].strip() and pair[1].strip()):
        return Rejection(kind, key, value, EMPTY_VALUE, "a pair needs a subject and an object")
    if not negative:
        if entry.kind == CLASS_LABEL:
            if norm(value) != norm(entry.label):
                return Rejection(
                    kind, key, value, SPAN_NOT_IN_TEXT, "a class example's value is its label"
                )
            return None
        spans = list(pair) if pair is not None else [value]
        missing = [s for s in spans if s not in text]
        if missing:
            return Rejection(
                kind,
                key,
                value,
                SPAN_NOT_IN_TEXT,
                f"{missing[0]!r} does not occur in the example text",
            )
        return None
    if pair is not None:
        gold = ctx.gold_pairs.get(key, set())
        if (norm(pair[0]), norm(pair[1])) in gold:
            return Rejection(
                kind, key, value, NEGATIVE_IS_GOLD, "the pair is a gold annotation of the label"
            )
        if symmetric and (norm(pair[1]), norm(pair[0])) in gold:
            return Rejection(
                kind, key, value, SWAPPED_SYMMETRIC, "a swapped gold pair of a symmetric relation"
            )
        return None
    if entry.kind != CLASS_LABEL and norm(value) in ctx.gold_spans.get(key, set()):
        return Rejection(
            kind, key, value, NEGATIVE_IS_GOLD, "the span is a gold annotation of the label"
        )
    return None


# --------------------------------------------------------------------------- one answer


@dataclass
class GatedAnswer:
    descriptions: list[str]
    synonyms: list[str]
    rejections: list[Rejection]


def gate_answer(
    entry: LabelEntry,
    descriptions: Sequence[Any],
    synonyms: Sequence[Any],
    ctx: GateContext,
) -> GatedAnswer:
    """The values of one ``describe_label`` answer that pass, in order, and the rest with
    reasons. Accepted synonyms join ``ctx.variants``, so no later label may take them."""
    kept_d: list[str] = []
    kept_s: list[str] = []
    rejections: list[Rejection] = []
    for value in descriptions:
        rejection = check_description(value, entry, ctx)
        if rejection is None:
            kept_d.append(" ".join(value.split()))
        else:
            rejections.append(rejection)
    for value in synonyms:
        rejection = check_synonym(value, entry, ctx)
        if rejection is None:
            text = " ".join(value.split())
            kept_s.append(text)
            ctx.variants.setdefault(_name_norm(text), entry.key)
        else:
            rejections.append(rejection)
    return GatedAnswer(kept_d, kept_s, rejections)
