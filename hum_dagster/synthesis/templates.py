"""Instruction wording for basic instructions, keyed ``"<TASK><lang>"``.

The built-in wording lives in ``assets/templates/basic.json``. A user file (a JSON
object with the same kind of keys) overrides it key by key; ``"KG<lang>"`` is
accepted as IEPile's name for ``"KGE<lang>"``. Every ``Templates`` value carries a
short version hash of its full content, recorded with each instruction for
provenance.

A wording is a string, or ``{"task": ..., "reply": ...}``: what to do, and how to
write the reply (the JSON structure). The instruction states both, task first
(``wording``); a format variant keeps the task and states its own reply format in
place of the JSON one (``task_part``). A plain-string wording has no separable reply
sentence, so its rows get no format variants.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path

from hum_dagster.paths import TEMPLATES_DIR
from hum_dagster.records import EE, EEA, EET, KGE, LANGUAGES, MRC, NER, OPENIE, RE, SPO, TC
from hum_dagster.store.jsonfile import read_json_object

# Instruction tasks that have a basic-instruction wording (IG is passed through).
TEMPLATE_TASKS = (NER, RE, SPO, EE, EET, EEA, OPENIE, KGE, MRC, TC)
# Task names accepted in user files as aliases (IEPile calls KGE "KG").
TASK_ALIASES = {"KG": KGE}
BUILTIN_PATH = TEMPLATES_DIR / "basic.json"


def template_key(task: str, language: str) -> str:
    return f"{TASK_ALIASES.get(task, task)}{language}"


VALID_KEYS = frozenset(template_key(t, lang) for t in TEMPLATE_TASKS for lang in LANGUAGES)


def _canonical_key(key: str) -> str | None:
    """The canonical key for ``key`` (resolving aliases), or None when unknown."""
    if key in VALID_KEYS:
        return key
    for alias, task in TASK_ALIASES.items():
        lang = key[len(alias) :]
        if key.startswith(alias) and lang in LANGUAGES:
            return template_key(task, lang)
    return None


def join_parts(task_text: str, reply: str, language: str) -> str:
    """The instruction wording from its task and reply parts."""
    sep = "" if language == "zh" else " "
    return f"{task_text}{sep}{reply}" if reply else task_text


class Templates(Mapping[str, str]):
    """An immutable mapping from template key to wording, with a content version;
    ``parts`` holds the (task, reply) split of the keys that have one."""

    __slots__ = ("_wording", "_parts", "version", "origin")

    def __init__(
        self,
        wording: Mapping[str, str],
        origin: str = "built-in",
        parts: Mapping[str, tuple[str, str]] | None = None,
    ):
        self._wording = dict(sorted(wording.items()))
        self._parts = {k: v for k, v in (parts or {}).items() if k in self._wording}
        canonical = json.dumps(
            self._wording, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        self.version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
        self.origin = origin

    def __getitem__(self, key: str) -> str:
        return self._wording[_canonical_key(key) or key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._wording)

    def __len__(self) -> int:
        return len(self._wording)

    def __repr__(self) -> str:
        return f"Templates(version={self.version!r}, keys={len(self)}, origin={self.origin!r})"

    def wording(self, task: str, language: str) -> str:
        key = template_key(task, language)
        try:
            return self._wording[key]
        except KeyError:
            raise KeyError(
                f"no instruction wording for {key!r} in templates {self.origin}"
            ) from None

    def task_part(self, task: str, language: str, wording: str | None = None) -> str | None:
        """The task sentence(s) of the wording without the JSON reply sentence, or None
        when the key has no split (or ``wording``, the text a row carries, is not this
        key's wording)."""
        key = template_key(task, language)
        parts = self._parts.get(key)
        if parts is None:
            return None
        if wording is not None and wording != self._wording.get(key):
            return None
        return parts[0]

    def ref(self, task: str, language: str) -> str:
        """Provenance string ``"<key>@<version>"``."""
        return f"{template_key(task, language)}@{self.version}"


def _read_wording(path: str | Path) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    path = str(path)
    data = read_json_object(path, "template file ('<TASK><lang>' to wording)")
    wording: dict[str, str] = {}
    parts: dict[str, tuple[str, str]] = {}
    for key, value in data.items():
        canonical = _canonical_key(key)
        if canonical is None:
            raise ValueError(
                f"{path}: unknown template key {key!r}; expected one of {sorted(VALID_KEYS)} "
                "(or KGen/KGzh for KGE)"
            )
        if isinstance(value, dict):
            task_text, reply = value.get("task"), value.get("reply")
            if set(value) != {"task", "reply"} or not all(
                isinstance(v, str) and v.strip() for v in (task_text, reply)
            ):
                raise ValueError(
                    f"{path}: template {key!r} must be a string or "
                    '{"task": <non-empty string>, "reply": <non-empty string>}'
                )
            parts[canonical] = (task_text, reply)
            value = join_parts(task_text, reply, canonical[-2:])
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{path}: template {key!r} must be a non-empty string")
        wording[canonical] = value
    return wording, parts


@lru_cache(maxsize=1)
def _builtin() -> Templates:
    wording, parts = _read_wording(BUILTIN_PATH)
    missing = sorted(VALID_KEYS - set(wording))
    if missing:
        raise ValueError(f"{BUILTIN_PATH}: built-in templates lack {missing}")
    return Templates(wording, origin=str(BUILTIN_PATH), parts=parts)


def load_templates(path: str | Path | None = None) -> Templates:
    """The built-in wording, overridden key by key by the JSON file at ``path``."""
    builtin = _builtin()
    if path is None:
        return builtin
    merged = dict(builtin.items())
    merged_parts = dict(builtin._parts)
    wording, parts = _read_wording(path)
    merged.update(wording)
    for key in wording:
        merged_parts.pop(key, None)
    merged_parts.update(parts)
    return Templates(merged, origin=str(path), parts=merged_parts)
