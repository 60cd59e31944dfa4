"""Weights and draws of the combined compound strategy (``synthesis.combined``).

``CombinedConfig`` holds the relative weights of the family sets and guideline forms
(``assets/rules/combined.json``; why the defaults are what they are: the module
docstring of ``synthesis.combined`` and the README); ``options_for`` lists the
(family set, form) options a task can take and ``draw_order`` orders them for one
record by weighted sampling without replacement. No Dagster imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hum_dagster.paths import ASSETS_DIR
from hum_dagster.records import EET, NER, RE
from hum_dagster.store.jsonfile import read_json_object
from hum_dagster.synthesis.formats import FORMAT_TASKS
from hum_dagster.synthesis.guidelines import GUIDED_TASKS, GUIDELINE_STRATEGIES
from hum_dagster.synthesis.preferences import LLM_TASKS
from hum_dagster.synthesis.preferences_rules import RULE_TASKS

STRATEGY = "combined"
WEIGHTS_PATH = ASSETS_DIR / "rules" / "combined.json"
GUIDELINES, FORMATS, PREFERENCES = "guidelines", "format_variants", "preference_rules"
FAMILY_SETS = (
    GUIDELINES,
    FORMATS,
    PREFERENCES,
    f"{GUIDELINES}+{FORMATS}",
    f"{GUIDELINES}+{PREFERENCES}",
)
RENAMING = ("label_variants", "label_masking")
RENAMING_COMBINED_TASKS = (NER, RE, EET)  # examples answer with spans, never label names
NOT_WITH_FORMAT = ("output_format", *RENAMING)
# masking carries its own descriptions; examples' reasons would name the masked labels
NOT_WITH_MASKING = ("description", "description_variants", "examples")
PART_ORDER = (*GUIDELINE_STRATEGIES, PREFERENCES, FORMATS)
_RULE_TASKS = frozenset(t for tasks in RULE_TASKS.values() for t in tasks)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- config


def _weights(value: Any, what: str, origin: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{origin}: {what} must be a non-empty object of name -> weight")
    out: dict[str, float] = {}
    for name, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"{origin}: {what}[{name!r}] must be a number >= 0, got {weight!r}")
        out[str(name)] = float(weight)
    if sum(out.values()) <= 0:
        raise ValueError(f"{origin}: {what} weights sum to 0")
    return out


def form_parts(form: str) -> tuple[str, ...]:
    """The guideline strategies of a form (``"description+examples"``), registry order."""
    return tuple(sorted(form.split("+"), key=PART_ORDER.index))


def merge_order(parts: Iterable[str]) -> list[str]:
    """The order a row's guideline parts are merged and worded in: a renaming part
    first (its names win), then descriptions, then the rest in registry order."""
    first = {**dict.fromkeys(RENAMING, 0), "description": 1, "description_variants": 1}
    return sorted(parts, key=lambda s: (first.get(s, 2), PART_ORDER.index(s)))


def _check_form(form: str, what: str, origin: str) -> None:
    names = form.split("+")
    unknown = [n for n in names if n not in GUIDELINE_STRATEGIES]
    if unknown:
        raise ValueError(
            f"{origin}: {what} form {form!r}: unknown guideline strategies {unknown}; "
            f"known: {list(GUIDELINE_STRATEGIES)}"
        )
    if len(set(names)) < len(names):
        raise ValueError(f"{origin}: {what} form {form!r} names a strategy twice")
    if sum(n in RENAMING for n in names) > 1:
        raise ValueError(f"{origin}: {what} form {form!r}: at most one of {list(RENAMING)}")
    if "label_masking" in names and any(n in NOT_WITH_MASKING for n in names):
        raise ValueError(
            f"{origin}: {what} form {form!r}: label_masking does not combine with "
            f"{list(NOT_WITH_MASKING)} (it carries its own descriptions; example reasons "
            "would name the masked labels)"
        )


@dataclass(frozen=True)
class CombinedConfig:
    """Relative weights of family sets and guideline forms (see the module docstring)."""

    family_sets: Mapping[str, float]
    guideline_forms: Mapping[str, float]
    preference_guideline_forms: Mapping[str, float]
    seed: int = 42
    origin: str = "built-in"

    def __post_init__(self) -> None:
        o = self.origin
        fams = _weights(self.family_sets, "family_sets", o)
        unknown = sorted(set(fams) - set(FAMILY_SETS))
        if unknown:
            raise ValueError(
                f"{o}: unknown family sets {unknown}; known: {list(FAMILY_SETS)}"
            )
        for what in ("guideline_forms", "preference_guideline_forms"):
            for form in _weights(getattr(self, what), what, o):
                _check_form(form, what, o)
        for form in self.preference_guideline_forms:
            if any(p in NOT_WITH_FORMAT for p in form.split("+")):
                raise ValueError(
                    f"{o}: preference_guideline_forms {form!r}: a preference rule is "
                    f"combined only with forms that keep the labels and the answer shape "
                    f"(not {list(NOT_WITH_FORMAT)})"
                )

    def stamp(self) -> str:
        data = [sorted(self.family_sets.items()), sorted(self.guideline_forms.items()),
                sorted(self.preference_guideline_forms.items())]
        digest = hashlib.blake2b(_dumps(data).encode(), digest_size=6).hexdigest()
        return f"{self.seed}|{digest}"

    def target_marginals(self) -> dict[str, float]:
        """Expected share of rows carrying each family (before fallbacks)."""
        total = sum(self.family_sets.values())
        return {
            fam: round(
                sum(w for s, w in self.family_sets.items() if fam in s.split("+")) / total, 6
            )
            for fam in (GUIDELINES, FORMATS, PREFERENCES)
        }


def load_combined_config(path: str | Path | None = None, seed: int = 42) -> CombinedConfig:
    """The weights in ``path`` (default ``assets/rules/combined.json``)."""
    path = Path(path or WEIGHTS_PATH)
    data = read_json_object(path, "combined-strategy weights")
    missing = [k for k in ("family_sets", "guideline_forms", "preference_guideline_forms")
               if k not in data]
    if missing:
        raise ValueError(f"{path}: combined-strategy weights lack {missing}")
    return CombinedConfig(
        data["family_sets"], data["guideline_forms"], data["preference_guideline_forms"],
        seed=seed, origin=str(path),
    )


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Option:
    family_set: str
    form: str | None  # the guideline form, when the set holds guidelines
    weight: float

    @property
    def parts(self) -> tuple[str, ...]:
        names = list(form_parts(self.form)) if self.form else []
        names += [f for f in self.family_set.split("+") if f != GUIDELINES]
        return tuple(sorted(names, key=PART_ORDER.index))


def families_for(task: str, llm: bool = False) -> set[str]:
    found = set()
    if task in GUIDED_TASKS:
        found.add(GUIDELINES)
    if task in FORMAT_TASKS:
        found.add(FORMATS)
    if task in _RULE_TASKS or (llm and task in LLM_TASKS):
        found.add(PREFERENCES)
    return found


def options_for(config: CombinedConfig, task: str, llm: bool = False) -> list[Option]:
    """Every (family set, form) a row of ``task`` may take, with its weight."""
    usable = families_for(task, llm)
    out: list[Option] = []
    for fset, weight in config.family_sets.items():
        fams = fset.split("+")
        if weight <= 0 or not all(f in usable for f in fams):
            continue
        if GUIDELINES not in fams:
            out.append(Option(fset, None, weight))
            continue
        forms = dict(config.preference_guideline_forms if PREFERENCES in fams
                     else config.guideline_forms)
        if FORMATS in fams:
            forms = {f: w for f, w in forms.items()
                     if not any(p in NOT_WITH_FORMAT for p in f.split("+"))}
        if task not in RENAMING_COMBINED_TASKS:
            forms = {f: w for f, w in forms.items()
                     if "+" not in f or not any(p in RENAMING for p in f.split("+"))}
        total = sum(forms.values())
        for form, w in forms.items():
            if w > 0:
                out.append(Option(fset, form, weight * w / total))
    return out


def draw_order(options: list[Option], rng) -> list[Option]:
    """Weighted sampling without replacement (Efraimidis-Spirakis keys u ** (1/w))."""
    keyed = [(rng.random() ** (1.0 / o.weight), i, o) for i, o in enumerate(options)]
    return [o for _, _, o in sorted(keyed, key=lambda k: (-k[0], k[1]))]


__all__ = [
    "FAMILY_SETS",
    "STRATEGY",
    "CombinedConfig",
    "Option",
    "draw_order",
    "families_for",
    "form_parts",
    "load_combined_config",
    "merge_order",
    "options_for",
]
