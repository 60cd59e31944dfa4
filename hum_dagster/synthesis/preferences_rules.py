"""Rule-based preference relabelling: the strategies that gold labels decide exactly.

Each generator reads one parsed basic row (its text, schema items and output) and
returns the candidate relabellings of that row for one strategy: per label of the
output, a variant name (``"numerical/first_k=2"``, ``"boundaries/strip_title"``...),
the relabelled output (the same structure, only that label changed), the renamed label
(``reverse`` only) and the parameters the rule wording needs. Nothing here is random:
the caller picks among the candidates with its per-record generator.

Strategies and tasks:

- ``numerical``: keep the first k (``first_k=k``, k < count) or the last value of a
  label, by position in the text (NER, EET, RE, SPO);
- ``boundaries``: strip a title or honorific from spans (``strip_title``) or take in a
  title written next to the span in the input (``keep_title``) (NER, RE, SPO);
- ``punctuation``: strip or keep enclosing quotes and book-title marks
  (``strip_marks``/``keep_marks``), strip or keep units and currency symbols of numbers
  (``strip_units``/``keep_units``) (NER, RE, SPO);
- ``nesting``: drop mentions nested inside a longer mention of the chunk (``outer``) or
  drop mentions that contain a shorter one of the same label (``inner``) (NER);
- ``reverse``: swap subject and object and rename the relation with the inverse table
  (RE, SPO; skipped where no inverse is known or the inverse is already in the schema);
- ``granularity``: a broader label (``merge``): one label of the schema also covers
  another that ``assets/rules/label_hierarchy.yaml`` lists under it (person:
  politician), both with answers in the row; the other label leaves the schema and its
  mentions join the first's, in reading order (NER, EET). A finer label would need a
  label hierarchy or a property the gold does not record: that is left to the LLM path.

A new span is always a substring of the input; a candidate whose output equals the
original is never produced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hum_dagster.paths import ASSETS_DIR
from hum_dagster.records import EET, NER, RE, SPO
from hum_dagster.synthesis.label_hierarchy import LabelHierarchy, load_label_hierarchy, name_ok

INVERSE_PATH = ASSETS_DIR / "rules" / "inverse_relations.yaml"

RULE_STRATEGIES = ("numerical", "boundaries", "granularity", "punctuation", "nesting", "reverse")
RULE_TASKS: dict[str, tuple[str, ...]] = {
    "granularity": (NER, EET),
    "numerical": (NER, EET, RE, SPO),
    "boundaries": (NER, RE, SPO),
    "punctuation": (NER, RE, SPO),
    "nesting": (NER,),
    "reverse": (RE, SPO),
}
PAIR_TASKS = (RE, SPO)

# Titles and honorifics. English ones precede the name followed by a space; Chinese
# ones precede or follow the name directly. Longest first, so "Vice President" wins.
EN_TITLES = tuple(
    sorted(
        {
            "Mr.", "Mrs.", "Ms.", "Mr", "Mrs", "Ms", "Miss", "Dr.", "Dr", "Prof.", "Professor",
            "President", "Vice President", "Prime Minister", "Minister", "Chancellor",
            "Senator", "Sen.", "Governor", "Gov.", "Mayor", "Representative", "Rep.",
            "Secretary", "King", "Queen", "Prince", "Princess", "Sir", "Dame", "Lord", "Lady",
            "General", "Gen.", "Colonel", "Col.", "Captain", "Capt.", "Admiral", "Judge",
            "Justice", "Pope", "Saint", "St.", "Rev.", "Reverend", "Chairman", "Chairwoman",
            "Ambassador", "Coach", "Sheikh",
        },
        key=lambda t: (-len(t), t),
    )
)  # fmt: skip
ZH_TITLE_SUFFIXES = tuple(
    sorted(
        {
            "先生", "女士", "小姐", "夫人", "主席", "教授", "总统", "总理", "首相", "博士",
            "老师", "医生", "部长", "书记", "院士", "同志", "经理", "董事长", "总裁", "市长",
            "省长", "州长", "将军", "局长", "校长", "主任", "议员", "大使", "法官", "委员",
        },
        key=lambda t: (-len(t), t),
    )
)  # fmt: skip
ZH_TITLE_PREFIXES = tuple(
    sorted(
        {
            "总统", "主席", "国家主席", "总理", "首相", "国务卿", "部长", "教授", "董事长",
            "总裁", "市长", "州长", "议员", "大使", "院士",
        },
        key=lambda t: (-len(t), t),
    )
)  # fmt: skip

# Label names that denote people (the boundaries strategy only touches those).
EN_PERSON_WORDS = frozenset(
    [
        "person",
        "persons",
        "people",
        "per",
        "human",
        "politician",
        "scientist",
        "writer",
        "author",
        "artist",
        "musician",
        "musicalartist",
        "singer",
        "actor",
        "actress",
        "director",
        "player",
        "athlete",
        "leader",
        "officer",
        "president",
        "founder",
        "member",
        "spouse",
        "father",
        "mother",
        "parent",
        "child",
        "sibling",
        "relative",
        "employee",
        "character",
    ]
)
EN_PERSON_SUFFIXES = ("person", "people", "artist", "politician", "scientist", "writer")
ZH_PERSON_HINTS = (
    "人",
    "者",
    "员",
    "歌手",
    "作家",
    "父",
    "母",
    "丈夫",
    "妻子",
    "子女",
    "老师",
    "导演",
    "主席",
    "总统",
)

# Enclosing marks: (open, close), most specific first.
MARKS = (
    ("《", "》"),
    ("〈", "〉"),
    ("“", "”"),
    ("‘", "’"),
    ("「", "」"),
    ("『", "』"),
    ('"', '"'),
    ("'", "'"),
)
# Units after a number (a leading space is part of the unit where English writes one)
# and currency symbols before it. Magnitudes (万, 亿, million) are not units: "3万元"
# loses only its "元".
SUFFIX_UNITS = tuple(
    sorted(
        {
            "%", "％", "‰", "℃", "°C", "°F", "°", "km", "kg", "cm", "mm", "m", "g", "t", "mg",
            " km", " kg", " cm", " mm", " m", " g", " mg", " miles", " mi", " lbs", " pounds",
            " dollars", " euros", " percent", " per cent", " years", " year", " hours",
            " minutes", " seconds", " feet", " ft", " meters", " metres", " kilometers",
            " kilometres", " tons", " tonnes", " °C", " %",
            "元", "美元", "欧元", "英镑", "日元", "港元", "港币", "人民币", "块", "角",
            "平方公里", "平方千米", "平方米", "公顷", "亩", "公里", "千米", "厘米", "毫米",
            "米", "公斤", "千克", "克", "吨", "斤", "岁", "周岁", "摄氏度", "度", "小时",
            "分钟", "秒", "天", "个月", "周", "人", "名", "位", "个", "次", "件", "台", "辆",
            "倍", "户", "家", "场", "届",
        },
        key=lambda u: (-len(u), u),
    )
)  # fmt: skip
PREFIX_UNITS = ("US$", "HK$", "$", "€", "£", "¥", "￥", "RMB ", "USD ", "EUR ")
NUMERAL_CHARS = frozenset("0123456789０１２３４５６７８９〇零一二三四五六七八九十百千万亿两半.,")


# --------------------------------------------------------------------------- inverse table


@dataclass(frozen=True)
class InverseTable:
    """Relation name -> inverse relation name, per language."""

    by_language: Mapping[str, Mapping[str, str]]
    origin: str = "built-in"

    def inverse(self, relation: str, language: str) -> str | None:
        """The inverse name in the row's language first, then in any other."""
        found = self.by_language.get(language, {}).get(relation)
        if found is not None:
            return found
        for lang in sorted(self.by_language):
            if lang != language and relation in self.by_language[lang]:
                return self.by_language[lang][relation]
        return None


def read_inverse_table(path: str | Path) -> InverseTable:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ValueError(f"{path}: inverse relation table not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping from language to pairs/one_way")
    table: dict[str, dict[str, str]] = {}
    for lang, spec in data.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: {lang}: expected 'pairs' and/or 'one_way'")
        names: dict[str, str] = {}
        for i, pair in enumerate(spec.get("pairs") or ()):
            if not (isinstance(pair, list) and len(pair) == 2 and all(map(name_ok, pair))):
                raise ValueError(f"{path}: {lang}.pairs[{i}]: expected [relation, inverse]")
            a, b = (str(x) for x in pair)
            if a == b:
                raise ValueError(f"{path}: {lang}.pairs[{i}]: {a!r} is its own inverse")
            names.setdefault(a, b)
            names.setdefault(b, a)
        for a, b in (spec.get("one_way") or {}).items():
            if not (name_ok(a) and name_ok(b)):
                raise ValueError(f"{path}: {lang}.one_way: {a!r}: expected a relation name")
            names[str(a)] = str(b)
        table[str(lang)] = names
    return InverseTable(table, origin=str(path))


@lru_cache(maxsize=1)
def _builtin_inverse() -> InverseTable:
    return read_inverse_table(INVERSE_PATH)


def load_inverse_table(path: str | Path | None = None) -> InverseTable:
    return _builtin_inverse() if path is None else read_inverse_table(path)


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """One exact relabelling of one label of a row."""

    label: str  # the output key that changes
    strategy: str
    variant: str
    output: dict[str, Any]  # the whole relabelled output, keys in schema order
    new_label: str | None = None  # reverse: the key that replaces ``label``
    merged_label: str | None = None  # granularity/merge: the key folded into ``label``
    params: dict[str, Any] = field(default_factory=dict)  # what the rule wording needs


def occurrences(text: str, span: str) -> list[int]:
    """Every start position of ``span`` in ``text`` (overlapping ones too)."""
    found: list[int] = []
    if not span:
        return found
    start = text.find(span)
    while start >= 0:
        found.append(start)
        start = text.find(span, start + 1)
    return found


def _dedupe(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _is_ascii_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


# Span transforms: span -> (new forms, what was added or removed) or None when the
# transform does not apply. Several forms arise when the span occurs in the text both
# with and without the modifier.
Transform = Callable[[str, str], tuple[list[str], list[str]] | None]


def _strip_title(span: str, text: str) -> tuple[list[str], list[str]] | None:
    for title in EN_TITLES:
        if span.startswith(title + " "):
            rest = span[len(title) + 1 :].strip()
            if rest and rest[0].isupper() and rest in text:
                return [rest], [title]
    for title in ZH_TITLE_SUFFIXES:
        if span.endswith(title) and len(span) - len(title) >= 2:
            rest = span[: -len(title)]
            if rest in text:
                return [rest], [title]
    for title in ZH_TITLE_PREFIXES:
        if span.startswith(title) and len(span) - len(title) >= 2:
            rest = span[len(title) :]
            if rest in text:
                return [rest], [title]
    return None


def _has_title(span: str) -> bool:
    return _strip_title(span, span) is not None


def _keep_title(span: str, text: str) -> tuple[list[str], list[str]] | None:
    if _has_title(span):
        return None
    forms: list[str] = []
    added: list[str] = []
    for start in occurrences(text, span):
        end = start + len(span)
        form = span
        for title in EN_TITLES:
            pre = title + " "
            begin = start - len(pre)
            if (
                span[:1].isupper()
                and begin >= 0
                and text[begin:start] == pre
                and (begin == 0 or not _is_ascii_word(text[begin - 1]))
            ):
                form, tag = text[begin:end], title
                break
        else:
            for title in ZH_TITLE_SUFFIXES:
                if text.startswith(title, end) and _is_cjk(span[-1:]):
                    form, tag = span + title, title
                    break
            else:
                for title in ZH_TITLE_PREFIXES:
                    begin = start - len(title)
                    if begin >= 0 and text[begin:start] == title and _is_cjk(span[:1]):
                        form, tag = title + span, title
                        break
        if form != span:
            added.append(tag)
        forms.append(form)
    unique = _dedupe(forms)
    if unique == [span] or not unique:
        return None
    return unique, _dedupe(added)


def _is_cjk(ch: str) -> bool:
    return bool(ch) and "\u4e00" <= ch <= "\u9fff"


def _strip_marks(span: str, text: str) -> tuple[list[str], list[str]] | None:
    for open_, close in MARKS:
        if len(span) > len(open_) + len(close) and span.startswith(open_) and span.endswith(close):
            inner = span[len(open_) : -len(close)]
            if inner.strip() == inner and inner in text:
                return [inner], [open_ + "…" + close]
    return None


def _keep_marks(span: str, text: str) -> tuple[list[str], list[str]] | None:
    if _strip_marks(span, span) is not None:
        return None
    forms: list[str] = []
    added: list[str] = []
    for start in occurrences(text, span):
        end = start + len(span)
        form = span
        for open_, close in MARKS:
            begin = start - len(open_)
            if begin >= 0 and text[begin:start] == open_ and text.startswith(close, end):
                if open_ == "'" and begin > 0 and _is_ascii_word(text[begin - 1]):
                    continue  # an apostrophe, not a quote
                form = open_ + span + close
                added.append(open_ + "…" + close)
                break
        forms.append(form)
    unique = _dedupe(forms)
    if unique == [span] or not unique:
        return None
    return unique, _dedupe(added)


def _ends_numeral(value: str) -> bool:
    return bool(value) and value[-1] in NUMERAL_CHARS and value[-1] not in ".,"


def _starts_numeral(value: str) -> bool:
    return bool(value) and value[0] in NUMERAL_CHARS and value[0] not in ".,"


def _strip_units(span: str, text: str) -> tuple[list[str], list[str]] | None:
    for unit in SUFFIX_UNITS:
        if span.endswith(unit):
            rest = span[: -len(unit)]
            if _ends_numeral(rest) and not rest.startswith("第") and rest in text:
                return [rest], [unit.strip()]
    for unit in PREFIX_UNITS:
        if span.startswith(unit):
            rest = span[len(unit) :]
            if _starts_numeral(rest) and rest in text:
                return [rest], [unit.strip()]
    return None


def _keep_units(span: str, text: str) -> tuple[list[str], list[str]] | None:
    if not (_ends_numeral(span) or _starts_numeral(span)) or _strip_units(span, span):
        return None
    forms: list[str] = []
    added: list[str] = []
    for start in occurrences(text, span):
        end = start + len(span)
        # The span must be the whole number, not a piece of a longer one.
        if (start > 0 and text[start - 1] in NUMERAL_CHARS) or (
            end < len(text) and text[end] in "0123456789"
        ):
            continue
        form = span
        if _ends_numeral(span):
            for unit in SUFFIX_UNITS:
                after = end + len(unit)
                if text.startswith(unit, end) and not (
                    unit[-1].isascii()
                    and unit[-1].isalpha()
                    and after < len(text)
                    and _is_ascii_word(text[after])
                ):
                    form = span + unit
                    added.append(unit.strip())
                    break
        if form == span and _starts_numeral(span):
            for unit in PREFIX_UNITS:
                begin = start - len(unit)
                if begin >= 0 and text[begin:start] == unit:
                    form = unit + span
                    added.append(unit.strip())
                    break
        forms.append(form)
    unique = _dedupe(forms)
    if unique == [span] or not unique:
        return None
    return unique, _dedupe(added)


SPAN_VARIANTS: dict[str, tuple[tuple[str, Transform, str], ...]] = {
    # strategy -> (variant, transform, name of the parameter listing what changed)
    "boundaries": (
        ("boundaries/strip_title", _strip_title, "modifiers"),
        ("boundaries/keep_title", _keep_title, "modifiers"),
    ),
    "punctuation": (
        ("punctuation/strip_marks", _strip_marks, "marks"),
        ("punctuation/keep_marks", _keep_marks, "marks"),
        ("punctuation/strip_units", _strip_units, "units"),
        ("punctuation/keep_units", _keep_units, "units"),
    ),
}


def _with(output: Mapping[str, Any], label: str, value: Any) -> dict[str, Any]:
    out = dict(output)
    out[label] = value
    return out


def person_like(label: str) -> bool:
    """Whether a label (or SPO argument type) names people: titles belong to those only
    ("Dr. Annie Besant Park" is a park, not Dr. Besant)."""
    lowered = label.lower()
    if any(ch >= "\u4e00" for ch in label):
        return any(hint in label for hint in ZH_PERSON_HINTS)
    words = set(re.split(r"[^a-z]+", lowered))
    return bool(words & EN_PERSON_WORDS) or any(
        lowered.endswith(suffix) for suffix in EN_PERSON_SUFFIXES
    )


def _roles_for_titles(task: str, label: str, items: list[Any]) -> tuple[str, ...]:
    """Which parts of a label's answers may carry a title (boundaries strategy)."""
    if task == NER:
        return ("span",) if person_like(label) else ()
    if task == SPO:
        roles = []
        for item in items:
            if isinstance(item, dict) and item.get("predicate") == label:
                if person_like(item.get("subject_type", "")):
                    roles.append("subject")
                if person_like(item.get("object_type", "")):
                    roles.append("object")
        return tuple(dict.fromkeys(roles))
    return ("subject", "object")  # RE: argument types are unknown


def _span_candidates(
    task: str, output: Mapping[str, Any], text: str, strategy: str, items: list[Any]
) -> list[Candidate]:
    found: list[Candidate] = []
    for label, values in output.items():
        if not isinstance(values, list) or not values:
            continue
        roles: tuple[str, ...] = ("span", "subject", "object")
        if strategy == "boundaries":
            roles = _roles_for_titles(task, label, items)
            if not roles:
                continue
        for variant, transform, param in SPAN_VARIANTS[strategy]:
            changed: list[str] = []
            if task in PAIR_TASKS:
                new_pairs = []
                for pair in values:
                    new_pair = dict(pair)
                    for role in ("subject", "object"):
                        if role not in roles:
                            continue
                        result = transform(pair[role], text)
                        # A pair takes a new form only where it is unambiguous.
                        if result is not None and len(result[0]) == 1:
                            new_pair[role] = result[0][0]
                            changed.extend(result[1])
                    new_pairs.append(new_pair)
                new_value: list[Any] = _dedupe(new_pairs)
            else:
                spans: list[str] = []
                for span in values:
                    result = transform(span, text)
                    if result is None:
                        spans.append(span)
                    else:
                        spans.extend(result[0])
                        changed.extend(result[1])
                new_value = _dedupe(spans)
            if changed and new_value != values:
                found.append(
                    Candidate(
                        label,
                        strategy,
                        variant,
                        _with(output, label, new_value),
                        params={param: _dedupe(changed)},
                    )
                )
    return found


def _numerical_candidates(
    task: str, output: Mapping[str, Any], text: str, max_k: int
) -> list[Candidate]:
    found: list[Candidate] = []
    for label, values in output.items():
        if not isinstance(values, list) or len(values) < 2:
            continue
        for k in range(1, min(len(values) - 1, max_k) + 1):
            found.append(
                Candidate(
                    label,
                    "numerical",
                    f"numerical/first_k={k}",
                    _with(output, label, list(values[:k])),
                    params={"k": k},
                )
            )
        found.append(
            Candidate(label, "numerical", "numerical/last", _with(output, label, [values[-1]]))
        )
    return found


def _covered(text: str, inner: str, outers: Iterable[str]) -> bool:
    """True when every occurrence of ``inner`` lies inside an occurrence of an outer span."""
    spans = [
        (s, s + len(o)) for o in outers if inner in o and o != inner for s in occurrences(text, o)
    ]
    starts = occurrences(text, inner)
    if not starts or not spans:
        return False
    return all(any(a <= s and s + len(inner) <= b for a, b in spans) for s in starts)


def _nesting_candidates(output: Mapping[str, Any], text: str) -> list[Candidate]:
    found: list[Candidate] = []
    all_spans = _dedupe(s for values in output.values() if isinstance(values, list) for s in values)
    for label, values in output.items():
        if not isinstance(values, list) or not values:
            continue
        kept = [s for s in values if not _covered(text, s, all_spans)]
        if len(kept) < len(values):
            found.append(Candidate(label, "nesting", "nesting/outer", _with(output, label, kept)))
        # An outer mention is dropped only for an inner one that occurs nowhere else:
        # in flat (non-nested) data a shorter mention seen elsewhere proves nothing.
        inner_kept = [
            s
            for s in values
            if not any(o != s and o in s and _covered(text, o, values) for o in values)
        ]
        if inner_kept and len(inner_kept) < len(values):
            found.append(
                Candidate(label, "nesting", "nesting/inner", _with(output, label, inner_kept))
            )
    return found


def _granularity_candidates(
    output: Mapping[str, Any], text: str, language: str, hierarchy: LabelHierarchy
) -> list[Candidate]:
    """``granularity/merge``: label A taken broadly, covering label B, where the label
    hierarchy lists B under A (a politician is a person); both have answers, so the
    rule shows on both; B leaves the output, A's mentions become A's and B's in reading
    order."""

    def pos(span: str) -> int:
        at = text.find(span)
        return at if at >= 0 else len(text)

    found: list[Candidate] = []
    for label, values in output.items():
        if not isinstance(values, list) or not values:
            continue
        for other, more in output.items():
            if other == label or not isinstance(more, list) or not more:
                continue
            if not hierarchy.covers(label, other, language):
                continue
            merged = sorted(_dedupe([*values, *more]), key=pos)
            out = {k: (merged if k == label else v) for k, v in output.items() if k != other}
            found.append(
                Candidate(
                    label, "granularity", "granularity/merge", out, merged_label=other,
                    params={"merged": other},
                )
            )  # fmt: skip
    return found


def _pair_order(text: str, pairs: list[dict[str, str]]) -> list[dict[str, str]]:
    def pos(span: str) -> int:
        at = text.find(span)
        return at if at >= 0 else len(text)

    return sorted(pairs, key=lambda p: (pos(p["subject"]), pos(p["object"])))


def _reverse_candidates(
    task: str,
    output: Mapping[str, Any],
    items: list[Any],
    text: str,
    language: str,
    inverse: InverseTable,
) -> list[Candidate]:
    found: list[Candidate] = []
    keys = set(output)
    for label, values in output.items():
        if not isinstance(values, list) or not values:
            continue
        if task == SPO and sum(1 for it in items if _key(task, it) == label) != 1:
            continue  # several schema items share the predicate: renaming is ambiguous
        new_label = inverse.inverse(label, language)
        if not new_label or new_label == label or new_label in keys:
            continue
        swapped = _pair_order(
            text, [{"subject": p["object"], "object": p["subject"]} for p in values]
        )
        out = {
            (new_label if k == label else k): (swapped if k == label else v)
            for k, v in output.items()
        }
        found.append(
            Candidate(
                label, "reverse", "reverse", out, new_label=new_label,
                params={"inverse": new_label},
            )
        )  # fmt: skip
    return found


def _key(task: str, item: Any) -> str:
    if isinstance(item, str):
        return item
    if task == SPO:
        return item["predicate"]
    return item.get("event_type") or item.get("entity_type") or ""


def rule_candidates(
    strategy: str,
    task: str,
    language: str,
    text: str,
    items: list[Any],
    output: Mapping[str, Any],
    *,
    inverse: InverseTable | None = None,
    max_k: int = 3,
    hierarchy: LabelHierarchy | None = None,
) -> list[Candidate]:
    """Every exact relabelling of the row under ``strategy``, labels in output order."""
    if task not in RULE_TASKS.get(strategy, ()):
        return []
    if strategy == "numerical":
        return _numerical_candidates(task, output, text, max_k)
    if strategy in SPAN_VARIANTS:
        return _span_candidates(task, output, text, strategy, items)
    if strategy == "nesting":
        return _nesting_candidates(output, text)
    if strategy == "granularity":
        return _granularity_candidates(output, text, language, hierarchy or load_label_hierarchy())
    if strategy == "reverse":
        return _reverse_candidates(
            task, output, items, text, language, inverse or load_inverse_table()
        )
    return []


def merged_items(task: str, items: list[Any], merged_label: str) -> list[Any]:
    """The schema items without the label a granularity merge folds into another."""
    return [item for item in items if _key(task, item) != merged_label]


def reversed_items(task: str, items: list[Any], label: str, new_label: str) -> list[Any]:
    """The schema items with ``label`` renamed (SPO: predicate renamed, types swapped)."""
    out: list[Any] = []
    for item in items:
        if task == SPO and isinstance(item, dict) and item.get("predicate") == label:
            out.append(
                {
                    "subject_type": item["object_type"],
                    "predicate": new_label,
                    "object_type": item["subject_type"],
                }
            )
        elif item == label:
            out.append(new_label)
        else:
            out.append(item)
    return out


_WS = re.compile(r"\s+")


def compact(value: str) -> str:
    return _WS.sub(" ", value).strip()
