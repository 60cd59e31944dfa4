"""Robust JSON extraction from an LLM answer that may wrap it in prose or code fences."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


class ExtractError(ValueError):
    """The answer holds no parseable JSON value; ``str()`` is the reason."""


def extract_json(text: str) -> Any:
    """The JSON value in ``text``.

    Tried in order: the whole text; the body of each ````` fence; the first balanced
    ``{...}`` or ``[...]`` (string-aware, so brackets inside strings do not count); each
    of those again with trailing commas before ``}``/``]`` removed. Raises
    ``ExtractError`` when none parses.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExtractError("empty answer")
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for source in list(candidates):
        span = first_balanced(source)
        if span is not None:
            candidates.append(span)
    seen: set[str] = set()
    for candidate in candidates:
        for variant in (candidate, _drop_trailing_commas(candidate)):
            if not variant or variant in seen:
                continue
            seen.add(variant)
            try:
                return json.loads(variant)
            except ValueError:
                continue
    preview = text.strip().replace("\n", " ")[:80]
    raise ExtractError(f"no JSON value found in answer starting {preview!r}")


def first_balanced(text: str) -> str | None:
    """The first balanced ``{...}`` or ``[...]`` in ``text`` (outside JSON strings)."""
    pairs = {"{": "}", "[": "]"}
    for start, ch in enumerate(text):
        if ch not in pairs:
            continue
        end = _match(text, start)
        if end is not None:
            return text[start : end + 1]
    return None


def _match(text: str, start: int) -> int | None:
    stack: list[str] = []
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i
    return None


def _drop_trailing_commas(text: str) -> str:
    """``text`` without commas that directly precede ``}`` or ``]`` (outside strings)."""
    out: list[str] = []
    in_string = escaped = False
    pending_comma: list[str] = []  # a comma plus the whitespace after it, held back
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if pending_comma:
            if ch.isspace():
                pending_comma.append(ch)
                continue
            if ch in "}]":
                out.extend(pending_comma[1:])
            else:
                out.extend(pending_comma)
            pending_comma = []
        if ch == ",":
            pending_comma = [ch]
            continue
        if ch == '"':
            in_string = True
        out.append(ch)
    out.extend(pending_comma)
    return "".join(out)
