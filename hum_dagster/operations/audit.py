"""Lineage audits over the Parquet outputs (DuckDB), with no Dagster import.

Given a storage root (a folder or an ``s3://`` prefix), the functions here answer:

- which sources (files and their current versions) produced the corpus, a checkpoint or
  a score (:func:`source_lineage`);
- how many instructions each source contributed, by task and strategy
  (:func:`contributions`);
- which prompt-template versions (:func:`template_versions`), schema-dictionary entries
  (:func:`dictionary_entries`) and cached LLM responses (:func:`llm_responses`) took part.

Everything is read, nothing is written: an in-memory DuckDB database gets one view per
output folder and one table of the ``raw_sources`` Parquet footers. The Dagster side
(materializations, code and data versions, staleness) lives in
``hum_dagster/defs/audit.py``; :func:`render_markdown` renders both.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import duckdb

from hum_dagster.store import fsio, layout

# view name -> output folder under the storage root: the warehouse's views (without the
# quarantine) plus the evaluation scores
VIEWS = {
    **{view: folder for view, folder in layout.VIEWS.items() if view != "quarantine"},
    "eval_scores": "eval_scores",
}
# provenance fields of compound rows whose keys are schema-dictionary entry keys
DICTIONARY_FIELDS = ("descriptions", "examples", "variants")


@dataclass
class Section:
    """One table of an audit: a title, column names and rows (dicts)."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


@dataclass
class Audit:
    target: str
    storage_root: str
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def section(self, title: str) -> Section | None:
        return next((s for s in self.sections if s.title == title), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "storage_root": self.storage_root,
            "notes": self.notes,
            "sections": [s.to_json() for s in self.sections],
        }


def _parquet_files(root: str, folder: str) -> list[str]:
    directory = layout.table_dir(root, folder)
    fs, path = fsio.filesystem(directory)
    try:
        if not fs.exists(path):
            return []
        found = sorted(fs.glob(f"{path}/**/*.parquet"))
    except FileNotFoundError:
        return []
    if "://" in root:
        scheme = root.split("://", 1)[0]
        return [f"{scheme}://{p}" for p in found]
    return found


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def open_outputs(root: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per existing output and ``source_meta``."""
    con = duckdb.connect(":memory:")
    if "://" in root:
        fs, _ = fsio.filesystem(root)
        con.register_filesystem(fs)
    for view, folder in VIEWS.items():
        files = _parquet_files(root, folder)
        if files:
            con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM read_parquet({_sql_list(files)}, "
                "union_by_name = true, filename = true, hive_partitioning = false)"
            )
    files = _parquet_files(root, "raw_sources")
    con.execute(
        "CREATE TABLE source_meta (source VARCHAR, parquet VARCHAR, files VARCHAR, "
        "catalog_entry VARCHAR)"
    )
    if files:
        con.execute(
            "INSERT INTO source_meta SELECT "
            "regexp_extract(file_name, '([^/]+)\\.parquet$', 1), file_name, "
            "max(CASE WHEN decode(key) = 'hum.files' THEN decode(value) END), "
            "max(CASE WHEN decode(key) = 'hum.catalog_entry' THEN decode(value) END) "
            f"FROM parquet_kv_metadata({_sql_list(files)}) GROUP BY file_name"
        )
    return con


def has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(found and found[0])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    result = con.execute(sql, params or [])
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def instructions_sql(con: duckdb.DuckDBPyConnection, target: str = "corpus") -> str | None:
    """The SQL relation of the instructions behind ``target``.

    ``corpus`` (or a checkpoint, trained on the corpus): the ``corpus`` view when it
    exists; otherwise, and for ``instructions``, every basic and compound row.
    """
    if target == "corpus" and has_view(con, "corpus"):
        return "corpus"
    parts = []
    if has_view(con, "basic_instructions"):
        parts.append(
            "SELECT source, task, strategy, template, mode, NULL AS provenance "
            "FROM basic_instructions"
        )
    if has_view(con, "compound_instructions"):
        parts.append(
            "SELECT source, task, strategy, template, mode, provenance FROM compound_instructions"
        )
    if not parts:
        return None
    union = " UNION ALL ".join(parts)
    where = " WHERE mode = 'train'" if target == "corpus" else ""
    return f"(SELECT * FROM ({union}){where})"


def file_version(path: str) -> dict[str, Any]:
    """The current version of a source file: size, modification time and sha256 (16 hex)."""
    fs, p = fsio.filesystem(path)
    try:
        info = fs.info(p)
    except FileNotFoundError:
        return {"file": path, "exists": False, "bytes": None, "modified": None, "sha256": None}
    digest = hashlib.sha256()
    with fs.open(p, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if hasattr(modified, "timestamp"):
        modified = modified.timestamp()
    return {
        "file": path,
        "exists": True,
        "bytes": info.get("size"),
        "modified": float(modified) if modified is not None else None,
        "sha256": digest.hexdigest()[:16],
    }


def source_lineage(con: duckdb.DuckDBPyConnection, sources: list[str] | None = None) -> Section:
    """One row per file of each source: the catalog entry, the file and its current version."""
    section = Section(
        "sources", ["source", "format", "task", "location", "file", "bytes", "sha256", "modified"]
    )
    for meta in _rows(con, "SELECT * FROM source_meta ORDER BY source"):
        if sources is not None and meta["source"] not in sources:
            continue
        entry = json.loads(meta["catalog_entry"] or "{}")
        for path in json.loads(meta["files"] or "[]"):
            version = file_version(path)
            section.rows.append(
                {
                    "source": meta["source"],
                    "format": entry.get("format"),
                    "task": entry.get("task"),
                    "location": entry.get("location"),
                    "file": path,
                    "bytes": version["bytes"],
                    "sha256": version["sha256"] if version["exists"] else "MISSING",
                    "modified": version["modified"],
                }
            )
    return section


def contributions(con: duckdb.DuckDBPyConnection, target: str = "corpus") -> Section:
    """Instructions per source, task and strategy in ``target`` (corpus or instructions)."""
    section = Section("contributions", ["source", "task", "strategy", "instructions"])
    relation = instructions_sql(con, target)
    if relation is None:
        return section
    section.rows = _rows(
        con,
        f"SELECT source, task, strategy, count(*) AS instructions FROM {relation} "
        "GROUP BY ALL ORDER BY source, task, strategy",
    )
    return section


def template_versions(con: duckdb.DuckDBPyConnection, target: str = "corpus") -> Section:
    """Prompt/wording template versions (``name@version``) and how many rows used each.

    A compound row's template is ``<basic template>+<strategy template>``; each part counts.
    """
    section = Section("templates", ["template", "version", "instructions"])
    relation = instructions_sql(con, target)
    if relation is None:
        return section
    counts: Counter[tuple[str, str]] = Counter()
    for row in _rows(con, f"SELECT template, count(*) AS n FROM {relation} GROUP BY ALL"):
        for part in (row["template"] or "").split("+"):
            if part:
                name, _, version = part.partition("@")
                counts[(name, version)] += row["n"]
    section.rows = [
        {"template": name, "version": version, "instructions": n}
        for (name, version), n in sorted(counts.items())
    ]
    return section


def _provenance_rows(con: duckdb.DuckDBPyConnection, target: str) -> list[dict]:
    relation = instructions_sql(con, target)
    if relation is None:
        return []
    return _rows(
        con,
        f"SELECT source, strategy, provenance FROM {relation} WHERE provenance IS NOT NULL",
    )


def dictionary_entries(con: duckdb.DuckDBPyConnection, target: str = "corpus") -> Section:
    """Schema-dictionary entries the instructions of ``target`` used, with value provenance."""
    section = Section(
        "dictionary_entries",
        ["source", "key", "kind", "instructions", "strategies", "value_provenance"],
    )
    used: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in _provenance_rows(con, target):
        prov = json.loads(row["provenance"])
        source = prov.get("dictionary") or row["source"]
        for name in DICTIONARY_FIELDS:
            value = prov.get(name)
            if isinstance(value, dict):
                for key in value:
                    used[(source, key)][row["strategy"]] += 1
    entries: dict[tuple[str, str], dict] = {}
    if has_view(con, "schema_dictionary"):
        for row in _rows(
            con,
            "SELECT source, key, kind, descriptions, variants, positives, negatives, candidates "
            "FROM schema_dictionary",
        ):
            entries[(row["source"], row["key"])] = row
    for (source, key), strategies in sorted(used.items()):
        entry = entries.get((source, key), {})
        kinds: Counter[str] = Counter()
        for column in ("descriptions", "variants", "positives", "negatives", "candidates"):
            for value in json.loads(entry.get(column) or "[]"):
                kinds[str(value.get("provenance", "")).split(":", 1)[0]] += 1
        section.rows.append(
            {
                "source": source,
                "key": key,
                "kind": entry.get("kind", "NOT IN DICTIONARY"),
                "instructions": sum(strategies.values()),
                "strategies": ",".join(sorted(strategies)),
                "value_provenance": ",".join(f"{k}:{n}" for k, n in sorted(kinds.items())),
            }
        )
    return section


def cache_key_uses(con: duckdb.DuckDBPyConnection, target: str = "corpus") -> dict[str, Counter]:
    """LLM cache key -> Counter of where it was used (``<asset>:<source>``)."""
    uses: dict[str, Counter] = defaultdict(Counter)
    for row in _provenance_rows(con, target):
        prov = json.loads(row["provenance"])
        keys = list(prov.get("cache_keys") or [])
        if prov.get("cache_key"):
            keys.append(prov["cache_key"])
        for key in keys:
            uses[key][f"compound_instructions:{row['source']}"] += 1
    if has_view(con, "schema_dictionary"):
        sources = None
        relation = instructions_sql(con, target)
        if relation is not None and target == "corpus":
            sources = {r["source"] for r in _rows(con, f"SELECT DISTINCT source FROM {relation}")}
        columns = ("descriptions", "variants", "positives", "negatives", "candidates")
        for row in _rows(con, f"SELECT source, {', '.join(columns)} FROM schema_dictionary"):
            if sources is not None and row["source"] not in sources:
                continue
            for column in columns:  # examples and candidates: dictionary.examples
                for value in json.loads(row[column] or "[]"):
                    prov = str(value.get("provenance", ""))
                    if prov.startswith("llm:"):
                        uses[prov[4:]][f"schema_dictionary:{row['source']}"] += 1
    return uses


def cache_index(root: str) -> dict[str, dict[str, Any]]:
    """Cache key -> the shard file holding its first answer, the model and the template."""
    shard_dir = fsio.join(layout.llm_cache_dir(root), "shards")
    fs, path = fsio.filesystem(shard_dir)
    try:
        names = sorted(p for p in fs.ls(path, detail=False) if p.endswith(".jsonl"))
    except FileNotFoundError:
        return {}
    index: dict[str, dict[str, Any]] = {}
    for name in names:
        with fs.open(name, "rb") as handle:
            for line in handle.read().decode("utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                key = entry.get("key")
                if key and key not in index:
                    index[key] = {
                        "shard": name.rsplit("/", 1)[-1],
                        "model": entry.get("model"),
                        "step": entry.get("step"),
                        "template": f"{entry.get('template')}@{entry.get('template_version')}",
                    }
    return index


def llm_responses(con: duckdb.DuckDBPyConnection, root: str, target: str = "corpus") -> Section:
    """Cached LLM responses behind ``target``: key, where used, and the shard that holds it."""
    section = Section(
        "llm_responses", ["cache_key", "used_by", "uses", "step", "template", "model", "shard"]
    )
    index = cache_index(root)
    for key, where in sorted(cache_key_uses(con, target).items()):
        found = index.get(key, {})
        section.rows.append(
            {
                "cache_key": key,
                "used_by": ",".join(sorted(where)),
                "uses": sum(where.values()),
                "shard": found.get("shard", "NOT IN CACHE"),
                "step": found.get("step"),
                "model": found.get("model"),
                "template": found.get("template"),
            }
        )
    return section


def _corpus_sources(con: duckdb.DuckDBPyConnection, target: str) -> list[str] | None:
    relation = instructions_sql(con, target)
    if relation is None:
        return None
    return [r["source"] for r in _rows(con, f"SELECT DISTINCT source FROM {relation} ORDER BY 1")]


def read_json(path: str) -> dict | None:
    try:
        return json.loads(fsio.read_bytes(path))
    except FileNotFoundError:
        return None


def score_lineage(con: duckdb.DuckDBPyConnection, root: str, partition: str) -> Section:
    """Lineage stored with an ``eval_scores`` partition (``model|benchmark``)."""
    section = Section("score", ["field", "value"])
    model, _, bench = partition.partition("|")
    path = layout.table_path(root, "eval_scores", {"benchmark": bench, "model": model})
    files = _parquet_files(root, "eval_scores")
    candidates = [f for f in files if f.endswith(f"model={model}.parquet") and bench in f] or [path]
    rows = (
        _rows(
            con,
            f"SELECT decode(value) AS v FROM parquet_kv_metadata({_sql_list(candidates[:1])}) "
            "WHERE decode(key) = 'hum.eval'",
        )
        if files
        else []
    )
    if not rows:
        section.rows.append({"field": "error", "value": f"no eval_scores for {partition}"})
        return section
    stored = json.loads(rows[0]["v"])
    for key, value in sorted(stored.get("lineage", {}).items()):
        section.rows.append(
            {"field": key, "value": json.dumps(value, ensure_ascii=False, default=str)}
        )
    for result in stored.get("results", []):
        section.rows.append(
            {
                "field": f"headline[{result.get('style')}]",
                "value": json.dumps(result.get("headline"), default=str),
            }
        )
    return section


def checkpoint_lineage(root: str, partition: str) -> Section:
    """``training_record.json`` of a checkpoint (``model|variant``), flattened one level."""
    section = Section("checkpoint", ["field", "value"])
    model, _, variant = partition.partition("|")
    record = read_json(
        fsio.join(layout.checkpoint_dir(root, model, variant or "full"), "training_record.json")
    )
    if record is None:
        section.rows.append({"field": "error", "value": f"no training_record.json for {partition}"})
        return section
    for key, value in sorted(record.items()):
        text = json.dumps(value, ensure_ascii=False, default=str)
        section.rows.append(
            {"field": key, "value": text if len(text) <= 300 else text[:297] + "..."}
        )
    return section


def lineage(root: str, target: str = "corpus") -> Audit:
    """The full audit of ``target``: ``corpus``, ``instructions`` (everything synthesized),
    ``checkpoint:<model>|<variant>`` or ``score:<model>|<benchmark>``."""
    audit = Audit(target=target, storage_root=root)
    con = open_outputs(root)
    try:
        kind, _, partition = target.partition(":")
        instructions = "instructions" if kind == "instructions" else "corpus"
        if kind == "score":
            audit.sections.append(score_lineage(con, root, partition))
            audit.notes.append(
                "a score's inputs are its benchmark files and model (above); "
                "when the model is a checkpoint, audit checkpoint:<model>|<variant>"
            )
            return audit
        if kind == "checkpoint":
            audit.sections.append(checkpoint_lineage(root, partition))
            audit.notes.append(
                "the checkpoint was trained on the corpus export; its corpus lineage follows"
            )
        sources = _corpus_sources(con, instructions)
        if sources is None:
            audit.notes.append(f"no instructions under {root}")
            return audit
        audit.sections.append(source_lineage(con, sources))
        audit.sections.append(contributions(con, instructions))
        audit.sections.append(template_versions(con, instructions))
        audit.sections.append(dictionary_entries(con, instructions))
        audit.sections.append(llm_responses(con, root, instructions))
        if instructions == "corpus" and not has_view(con, "corpus"):
            audit.notes.append("hum_corpus is not materialized: counts are train-mode instructions")
        return audit
    finally:
        con.close()


def _cell(value: Any, width: int = 80) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 1e6 else f"{value:.0f}"
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def markdown_section(section: Section, limit: int | None = None) -> str:
    lines = [f"### {section.title} ({len(section.rows)})", ""]
    if not section.rows:
        return "\n".join([*lines, "(none)", ""])
    lines.append("| " + " | ".join(section.columns) + " |")
    lines.append("|" + "---|" * len(section.columns))
    rows = section.rows if limit is None else section.rows[:limit]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in section.columns) + " |")
    if limit is not None and len(section.rows) > limit:
        lines.append(
            f"| ... {len(section.rows) - limit} more |" + " |" * (len(section.columns) - 1)
        )
    return "\n".join([*lines, ""])


def render_markdown(audit: Audit, limit: int | None = None) -> str:
    lines = [f"## Lineage audit: {audit.target}", "", f"storage root: `{audit.storage_root}`", ""]
    lines += [f"- {note}" for note in audit.notes]
    if audit.notes:
        lines.append("")
    lines += [markdown_section(s, limit) for s in audit.sections]
    return "\n".join(lines)
