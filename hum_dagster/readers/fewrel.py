"""FewRel relation-classification JSON: ``{"P177": [{"tokens", "h", "t"}, ...], ...}``.

``h`` and ``t`` are ``[name, wikidata id, [[token positions], ...]]``; the head and tail
are the surface tokens of the first mention joined by spaces, the text is all the
tokens joined by spaces. Option ``pid2name`` (FewRel's ``{"P26": ["spouse",
"description"]}``) names the relations; without it the relation is its id.
"""

from __future__ import annotations

from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    Collector,
    base_name,
    gc_paused,
    json_type,
    load_json_document,
    option_error,
    raw_json,
)
from hum_dagster.records import LabelSchema, ReadResult, SourceError


def load_pid2name(path: str) -> dict[str, tuple[str, str]]:
    """FewRel's relation names and descriptions: ``{pid: (name, description)}``."""
    data = load_json_document(path)
    if not isinstance(data, dict):
        raise SourceError(path, f"expected a JSON object of relation ids, got {json_type(data)}")
    out: dict[str, tuple[str, str]] = {}
    for pid, value in data.items():
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) for v in value[:2])
        ):
            raise SourceError(path, f"relation {pid!r}: expected [name, description]")
        out[str(pid)] = (value[0], value[1] if len(value) > 1 else "")
    return out


class _Bad(ValueError):
    pass


def _mention(tokens: list[str], value: Any, what: str) -> str:
    if not isinstance(value, list) or len(value) < 3:
        raise _Bad(f"'{what}' must be [name, id, [[positions]]]")
    mentions = value[2]
    if not isinstance(mentions, list) or not mentions or not isinstance(mentions[0], list):
        raise _Bad(f"'{what}' has no token positions")
    positions = mentions[0]
    if not positions:
        raise _Bad(f"'{what}' has no token positions")
    n = len(tokens)
    for p in positions:
        if not isinstance(p, int) or p < 0 or p >= n:
            raise _Bad(f"'{what}' token position {p!r} outside the {n} tokens")
    return " ".join(tokens[p] for p in positions)


@register("fewrel")
@gc_paused
def read_fewrel(entry) -> ReadResult:
    path = entry.resolve()
    files = [path]
    names: dict[str, tuple[str, str]] = {}
    pid_option = entry.option("pid2name")
    if pid_option is not None:
        if not isinstance(pid_option, str) or not pid_option:
            raise option_error(entry, "option 'pid2name' must be a path")
        pid_path = entry.resolve(pid_option)
        names = load_pid2name(pid_path)
        files.append(pid_path)

    data = load_json_document(path)
    if not isinstance(data, dict):
        raise SourceError(path, f"expected a JSON object of relation ids, got {json_type(data)}")
    name = base_name(path)
    out = Collector(entry)
    found: set[str] = set()
    for pid, instances in data.items():
        if not isinstance(instances, list):
            raise SourceError(path, f"relation {pid!r}: expected a list of instances")
        relation = names[pid][0] if pid in names else pid
        for index, inst in enumerate(instances):
            origin = f"{name}#{pid}/{index}"
            try:
                if not isinstance(inst, dict):
                    raise _Bad(f"expected a JSON object, got {json_type(inst)}")
                tokens = inst.get("tokens")
                if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                    raise _Bad("missing field 'tokens'")
                head = _mention(tokens, inst.get("h"), "h")
                tail = _mention(tokens, inst.get("t"), "t")
            except _Bad as exc:
                out.reject(origin, str(exc), raw_json(inst))
                continue
            gold = {"relations": [{"head": head, "relation": relation, "tail": tail}]}
            if out.add(" ".join(tokens), gold, origin) is not None:
                found.add(relation)
    return out.result(LabelSchema(roles=sorted(found)), files)
