"""Instruction-following (IG) chat data: Alpaca and ShareGPT, JSON array or JSON lines.

- ``alpaca``: ``{"instruction", "input", "output", "system"?, "history"?: [[q, a], ...]}``;
  the user turn is the instruction, plus a newline and the input when there is one.
- ``sharegpt``: ``{"conversations": [{"from": "human" | "gpt" | "system", "value"}]}``
  or ``{"messages": [{"role", "content"}]}``, with an optional top-level ``system``.

Both normalise to ``{"conversation": [{"role", "content"}, ...]}`` ending with an
assistant turn; the record text is the last user turn. A conversation without a
final assistant turn, with an empty turn or with an unknown role is quarantined.
"""

from __future__ import annotations

from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import Collector, gc_paused, iter_json_items, json_type, raw_json
from hum_dagster.records import IG, LabelSchema, ReadResult

ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}


class _Bad(ValueError):
    pass


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{what} must be a string, got {json_type(value)}")
    return value


def _alpaca(obj: dict[str, Any]) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    system = _text(obj.get("system"), "'system'")
    if system.strip():
        turns.append({"role": "system", "content": system})
    history = obj.get("history") or []
    if not isinstance(history, list):
        raise _Bad("'history' must be a list of [question, answer] pairs")
    for pair in history:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _Bad("'history' must be a list of [question, answer] pairs")
        turns.append({"role": "user", "content": _text(pair[0], "history question")})
        turns.append({"role": "assistant", "content": _text(pair[1], "history answer")})
    instruction = _text(obj.get("instruction"), "'instruction'")
    extra = _text(obj.get("input"), "'input'")
    user = instruction + "\n" + extra if extra.strip() else instruction
    turns.append({"role": "user", "content": user})
    turns.append({"role": "assistant", "content": _text(obj.get("output"), "'output'")})
    return turns


def _sharegpt(obj: dict[str, Any]) -> list[dict[str, str]]:
    if isinstance(obj.get("conversations"), list):
        items, role_key, content_key = obj["conversations"], "from", "value"
    elif isinstance(obj.get("messages"), list):
        items, role_key, content_key = obj["messages"], "role", "content"
    else:
        raise _Bad("missing field 'conversations' (or 'messages')")
    turns: list[dict[str, str]] = []
    system = _text(obj.get("system"), "'system'")
    if system.strip():
        turns.append({"role": "system", "content": system})
    for item in items:
        if not isinstance(item, dict):
            raise _Bad(f"turn must be a JSON object, got {json_type(item)}")
        raw_role = item.get(role_key)
        role = ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise _Bad(f"unknown role {raw_role!r}")
        turns.append({"role": role, "content": _text(item.get(content_key), f"{role} turn")})
    return turns


def _check(turns: list[dict[str, str]]) -> str:
    """Validate a conversation; return the last user turn's content."""
    for turn in turns:
        if not turn["content"].strip():
            raise _Bad(f"empty {turn['role']} turn")
    if not turns or turns[-1]["role"] != "assistant":
        raise _Bad("conversation does not end with an assistant turn")
    for turn in reversed(turns):
        if turn["role"] == "user":
            return turn["content"]
    raise _Bad("conversation has no user turn")


def _read(entry, convert) -> ReadResult:
    path = entry.resolve()
    out = Collector(entry)
    for origin, raw, obj, error in iter_json_items(path):
        if error is not None:
            out.reject(origin, error, raw)
            continue
        try:
            turns = convert(obj)
            text = _check(turns)
        except _Bad as exc:
            out.reject(origin, str(exc), raw or raw_json(obj))
            continue
        out.add(text, {"conversation": turns}, origin, raw)
    return out.result(LabelSchema(), [path])


@register("alpaca", tasks=(IG,))
@gc_paused
def read_alpaca(entry) -> ReadResult:
    return _read(entry, _alpaca)


@register("sharegpt", tasks=(IG,))
@gc_paused
def read_sharegpt(entry) -> ReadResult:
    return _read(entry, _sharegpt)
