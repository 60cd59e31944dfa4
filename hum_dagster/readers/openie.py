"""CaRB-style OpenIE TSV: ``sentence<TAB>relation<TAB>arg1<TAB>arg2[<TAB>more args]``.

All rows with the same sentence, adjacent or not, form one record whose triples keep
the file order (identical triples once). A row with fewer than three columns or an
empty relation is quarantined; the record's origin is its sentence's first line.
"""

from __future__ import annotations

from hum_dagster.readers import register
from hum_dagster.readers.common import Collector, base_name, gc_paused, iter_lines, open_source
from hum_dagster.records import LabelSchema, ReadResult


@register("carb")
@gc_paused
def read_carb(entry) -> ReadResult:
    path = entry.resolve()
    name = base_name(path)
    out = Collector(entry)
    # sentence -> (first line, triples, seen triple keys)
    groups: dict[str, tuple[int, list[dict], set[tuple]]] = {}
    with open_source(path) as handle:
        for lineno, line in iter_lines(handle):
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 3:
                out.reject(
                    f"{name}:{lineno}",
                    f"expected at least 3 tab-separated columns, got {len(cols)}",
                    line,
                )
                continue
            sentence = cols[0]
            predicate = cols[1].strip()
            if not sentence.strip():
                out.reject(f"{name}:{lineno}", "empty sentence", line)
                continue
            if not predicate:
                out.reject(f"{name}:{lineno}", "empty relation", line)
                continue
            subject = cols[2].strip()
            obj = cols[3].strip() if len(cols) > 3 else ""
            extra = [c.strip() for c in cols[4:] if c.strip()]
            group = groups.get(sentence)
            if group is None:
                group = groups[sentence] = (lineno, [], set())
            key = (subject, predicate, obj, tuple(extra))
            if key in group[2]:
                continue
            group[2].add(key)
            group[1].append(
                {"subject": subject, "predicate": predicate, "object": obj, "extra": extra}
            )
    for sentence, (first, triples, _) in groups.items():
        out.add(sentence, {"triples": triples}, f"{name}:{first}")
    return out.result(LabelSchema(), [path])
