"""FewRel relation-classification JSON: ``{"P177": [{"tokens", "h", "t"}, ...], ...}``.

``h`` and ``t`` are ``[name, wikidata id, [[token positions], ...]]``; the head and tail
are the surface tokens of the first mention joined by spaces, the text is all the
tokens joined by spaces. Token positions must be integers (``true`` and ``1.0`` are
not), inside the sentence, consecutive and ascending. Option ``pid2name`` (FewRel's
``{"P26": ["spouse", "description"]}``) names the relations: an instance of a relation
id it does not name is quarantined; without the option the relation is its id.
"""

from __future__ import annotations

import json
from typing import Any

from hum_dagster.readers import register
from hum_dagster.readers.common import (
    Collector,
    base_name,
    gc_paused,
    json_type,
    key_line,
    load_json_document,
    load_json_records,
    option_error,
    raw_json,
    repeated_key,
    repeated_key_reason,
)
from hum_dagster.readers.validate import bad_char, label_problem
from hum_dagster.records import RE, LabelSchema, ReadResult, SourceError


def load_pid2name(path: str) -> dict[str, tuple[str, str]]:
    """FewRel's relation names and descriptions: ``{pid: (name, description)}``."""
    data = load_json_document(path)
    if not isinstance(data, dict):
        raise SourceError(path, f"expected a JSON object of relation ids, got {json_type(data)}", 1)
    out: dict[str, tuple[str, str]] = {}
    for pid, value in data.items():
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) for v in value[:2])
            or not value[0].strip()
        ):
            raise SourceError(
                path, f"relation {pid!r}: expected [name, description]", key_line(path, pid)
            )
        problem = bad_char(value[0])
        if problem is not None:
            raise SourceError(
                path, f"relation {pid!r}: the name contains {problem}", key_line(path, pid)
            )
        problem = label_problem(value[0])
        if problem is not None:
            raise SourceError(
                path, f"relation {pid!r}: the name {value[0]!r} {problem}", key_line(path, pid)
            )
        out[str(pid)] = (value[0], value[1] if len(value) > 1 else "")
    if not out:
        raise SourceError(path, "names no relation (an empty JSON object)", 1)
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
        if isinstance(p, bool) or not isinstance(p, int):
            shown = json.dumps(p, ensure_ascii=False)
            raise _Bad(f"'{what}' token position {shown} is not an integer")
        if p < 0 or p >= n:
            raise _Bad(f"'{what}' token position {p} outside the {n} tokens")
    if positions != list(range(positions[0], positions[0] + len(positions))):
        raise _Bad(f"'{what}' token positions {positions} are not consecutive and ascending")
    return " ".join(tokens[p] for p in positions)


@register("fewrel", tasks=(RE,))
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

    data, repeats = load_json_records(path)
    if not isinstance(data, dict):
        raise SourceError(path, f"expected a JSON object of relation ids, got {json_type(data)}", 1)
    name = base_name(path)
    pid_file = base_name(files[1]) if len(files) > 1 else ""
    out = Collector(entry)
    found: set[str] = set()
    for pid, instances in data.items():
        if not isinstance(instances, list):
            raise SourceError(
                path, f"relation {pid!r}: expected a list of instances", key_line(path, pid)
            )
        relation = names[pid][0] if pid in names else pid
        unnamed = bool(names) and pid not in names
        for index, inst in enumerate(instances):
            origin = f"{name}#{pid}/{index}"
            try:
                if unnamed:
                    raise _Bad(f"relation id {pid!r} is not in {pid_file}")
                if not isinstance(inst, dict):
                    raise _Bad(f"expected a JSON object, got {json_type(inst)}")
                key = repeated_key(inst) if repeats else None
                if key is not None:
                    raise _Bad(repeated_key_reason(key))
                tokens = inst.get("tokens")
                if tokens is None:
                    raise _Bad("missing field 'tokens'")
                if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                    raise _Bad("field 'tokens' must be a list of strings")
                if not tokens:
                    raise _Bad("field 'tokens' is empty")
                head = _mention(tokens, inst.get("h"), "h")
                tail = _mention(tokens, inst.get("t"), "t")
            except _Bad as exc:
                out.reject(origin, str(exc), raw_json(inst))
                continue
            gold = {"relations": [{"head": head, "relation": relation, "tail": tail}]}
            if out.add(" ".join(tokens), gold, origin) is not None:
                found.add(relation)
    return out.result(LabelSchema(roles=sorted(found)), files)
