"""CaRB-style OpenIE TSV: ``sentence<TAB>relation<TAB>arg1<TAB>arg2[<TAB>more args]``.

All rows with the same sentence, adjacent or not, form one record whose triples keep
the file order (identical triples once). ``arg1`` is the subject, ``arg2`` the object
(empty when the extraction has none: CaRB writes a trailing tab), further arguments
go to ``extra``.

CaRB marks some arguments with a role prefix (as OpenIE-4/5 do): ``T:`` a time, ``L:``
a location, ``C:`` a context (attribution, e.g. ``C: A spokesman said``). A marked
argument is parsed into its role (``time``, ``location``, ``context`` keys of the
triple), never kept as text; when it stands in the object column the triple has no
object. A row is quarantined, with its line, when it has fewer than three columns, an
empty sentence, relation or subject, a marker in the relation column, an empty marked
argument or one role twice; the
record's origin is its sentence's first line.
"""

from __future__ import annotations

from hum_dagster.readers import register
from hum_dagster.readers.common import Collector, base_name, gc_paused, iter_lines, open_source
from hum_dagster.records import OPENIE, LabelSchema, ReadResult

MARKERS = {"T": "time", "L": "location", "C": "context"}


class _Bad(ValueError):
    pass


def _marked(arg: str) -> tuple[str, str] | None:
    """(role, value) for a CaRB role-marked argument such as ``T: in October``."""
    if len(arg) >= 2 and arg[1] == ":" and arg[0] in MARKERS:
        return MARKERS[arg[0]], arg[2:].strip()
    return None


def parse_triple(predicate: str, args: list[str]) -> dict:
    """One CaRB row's triple from its relation and argument columns (already stripped)."""
    triple: dict = {"subject": "", "predicate": predicate, "object": "", "extra": []}
    for column, arg in enumerate(args, 3):
        marked = _marked(arg)
        if marked is not None:
            role, value = marked
            if not value:
                raise _Bad(f"empty '{arg[:2]}' argument in column {column}")
            if role in triple:
                raise _Bad(f"two '{arg[:2]}' arguments ({role})")
            triple[role] = value
        elif column == 3:
            triple["subject"] = arg
        elif column == 4:
            triple["object"] = arg
        elif arg:
            triple["extra"].append(arg)
    if not triple["subject"]:
        raise _Bad("empty subject (column 3)")
    return triple


@register("carb", tasks=(OPENIE,))
@gc_paused
def read_carb(entry) -> ReadResult:
    path = entry.resolve()
    name = base_name(path)
    out = Collector(entry)
    # sentence -> (first line, triples, seen triple keys)
    groups: dict[str, tuple[int, list[dict], set[str]]] = {}
    with open_source(path) as handle:
        for lineno, line in iter_lines(handle):
            if not line.strip():
                continue
            cols = line.split("\t")
            origin = f"{name}:{lineno}"
            if len(cols) < 3:
                out.reject(
                    origin, f"expected at least 3 tab-separated columns, got {len(cols)}", line
                )
                continue
            sentence = cols[0]
            predicate = cols[1].strip()
            if not sentence.strip():
                out.reject(origin, "empty sentence", line)
                continue
            if not predicate:
                out.reject(origin, "empty relation", line)
                continue
            if _marked(predicate) is not None:
                out.reject(origin, f"role marker {predicate[:2]!r} in the relation column", line)
                continue
            try:
                triple = parse_triple(predicate, [c.strip() for c in cols[2:]])
            except _Bad as exc:
                out.reject(origin, str(exc), line)
                continue
            group = groups.get(sentence)
            if group is None:
                group = groups[sentence] = (lineno, [], set())
            key = repr(sorted(triple.items()))
            if key in group[2]:
                continue
            group[2].add(key)
            group[1].append(triple)
    for sentence, (first, triples, _) in groups.items():
        out.add(sentence, {"triples": triples}, f"{name}:{first}")
    return out.result(LabelSchema(), [path])
