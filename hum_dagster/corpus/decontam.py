"""Decontamination: no training instruction may share text with an evaluation set.

Texts are cut into units: a word of letters/digits, or one CJK character. A training
input is contaminated by a benchmark text when

- it contains one of the benchmark's ``n``-unit windows (``n`` = 13 for English words,
  20 for Chinese characters: ``ngram_by_language``), or
- the benchmark text is shorter than ``n`` units but at least ``min_units`` long and the
  input contains it whole, or
- the two are equal after normalisation (lower case, units only), whatever the length.

Windows are hashed with a polynomial rolling hash over 64-bit unit hashes (prefix sums
in uint64, so every window costs O(1)) and looked up in sorted arrays. Every input is
first probed with one window size only, ``min_units``: a text that contains a benchmark
text or one of its ``n``-unit windows contains one of its ``min_units``-unit windows too,
so inputs without such a hit are clean, and the exact rules above run only on the few
that have one (one pass over all inputs instead of one per window size). No Dagster
imports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

UNIT_PATTERN = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[\p{L}\p{N}]+"
_P = np.uint64(0x100000001B3 | 1)
_P_INV = np.uint64(pow(int(_P), -1, 2**64))


@dataclass(frozen=True)
class DecontamConfig:
    ngram_by_language: dict[str, int] = field(default_factory=lambda: {"en": 13, "zh": 20})
    default_ngram: int = 13
    min_units: int = 8  # shorter benchmark texts match only when the input equals them

    def n_for(self, language: str) -> int:
        return self.ngram_by_language.get(language, self.default_ngram)


def unit_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit 64-bit hashes of all texts (concatenated) and each text's unit count."""
    units = texts.fill_null("").str.to_lowercase().str.extract_all(UNIT_PATTERN)
    counts = units.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = units.explode().drop_nulls()
    return flat.hash(seed=7).to_numpy().astype(np.uint64), counts


_POWERS: dict[str, np.ndarray] = {}


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    cached = _POWERS.get("p")
    if cached is not None and len(cached) > n:
        return cached[: n + 1], _POWERS["q"][: n + 1]
    n = max(n, 1 << 20)
    p = np.full(n + 1, _P, dtype=np.uint64)
    p[0] = 1
    q = np.full(n + 1, _P_INV, dtype=np.uint64)
    q[0] = 1
    _POWERS["p"], _POWERS["q"] = np.cumprod(p, dtype=np.uint64), np.cumprod(q, dtype=np.uint64)
    return _POWERS["p"][: n + 1], _POWERS["q"][: n + 1]


def window_hashes(h: np.ndarray, counts: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every w-unit window inside one text, and the text each belongs to."""
    total = len(h)
    if total < w:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    pw, pinv = _powers(total)
    s = np.zeros(total + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(h * pw[:total], dtype=np.uint64, out=s[1:])
    ends = np.cumsum(counts)
    text_of = np.repeat(np.arange(len(counts)), counts)
    i = np.arange(total - w + 1)
    ok = i + w <= ends[text_of[i]]
    i = i[ok]
    with np.errstate(over="ignore"):
        values = (s[i + w] - s[i]) * pinv[i]
    return values, text_of[i]


def whole_hashes(h: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One hash per text of its whole unit sequence (0 units: 0)."""
    pw, pinv = _powers(len(h))
    s = np.zeros(len(h) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(h * pw[: len(h)], dtype=np.uint64, out=s[1:])
        ends = np.cumsum(counts)
        starts = ends - counts
        return (s[ends] - s[starts]) * pinv[starts] + counts.astype(np.uint64)


@dataclass
class BenchmarkIndex:
    """Hashed windows of every benchmark text, by window size, with their benchmark."""

    windows: dict[int, tuple[np.ndarray, np.ndarray]]  # w -> (sorted hashes, benchmark idx)
    whole: tuple[np.ndarray, np.ndarray]
    names: list[str]
    texts: int
    probe: np.ndarray  # sorted unique hashes of every min_units window of the benchmark texts
    probe_width: int

    @classmethod
    def build(cls, items: Iterable[tuple[str, str, str]], config: DecontamConfig) -> BenchmarkIndex:
        """``items``: (benchmark name, language, text)."""
        items = list(items)
        names = sorted({b for b, _, _ in items})
        idx = {b: i for i, b in enumerate(names)}
        frame = pl.DataFrame(
            {
                "b": [idx[b] for b, _, _ in items],
                "lang": [x for _, x, _ in items],
                "text": [t for _, _, t in items],
            },
            schema={"b": pl.Int64, "lang": pl.String, "text": pl.String},
        )
        h, counts = unit_hashes(frame["text"])
        bench = frame["b"].to_numpy()
        langs = frame["lang"].to_list()
        collected: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for n in sorted({config.n_for(x) for x in set(langs)} or {config.default_ngram}):
            values, owner = window_hashes(h, counts, n)
            keep = (
                np.array([config.n_for(langs[o]) == n for o in owner], dtype=bool)
                if len(owner)
                else owner.astype(bool)
            )
            collected.setdefault(n, []).append((values[keep], bench[owner[keep]]))
        whole = whole_hashes(h, counts)
        nfor = np.array([config.n_for(x) for x in langs], dtype=np.int64)
        short = (counts >= config.min_units) & (counts < nfor)
        for w in sorted(set(counts[short].tolist())):
            sel = short & (counts == w)
            collected.setdefault(int(w), []).append((whole[sel] - np.uint64(w), bench[sel]))
        windows = {}
        for w, parts in collected.items():
            v = np.concatenate([p[0] for p in parts])
            o = np.concatenate([p[1] for p in parts])
            order = np.argsort(v, kind="stable")
            windows[w] = (v[order], o[order])
        order = np.argsort(whole, kind="stable")
        probe, _ = window_hashes(h, counts, config.min_units)
        return cls(
            windows,
            (whole[order], bench[order]),
            names,
            len(items),
            np.unique(probe),
            config.min_units,
        )

    def match(self, texts: pl.Series) -> list[str | None]:
        """Per text: the name of the first benchmark it overlaps, or None."""
        h, counts = unit_hashes(texts)
        hit = np.full(len(counts), -1, dtype=np.int64)
        _mark(hit, whole_hashes(h, counts), np.arange(len(counts)), self.whole)
        # The probe: texts with no min_units window in common with any benchmark text
        # cannot contain one (see the module docstring); only the others go further.
        values, owner = window_hashes(h, counts, self.probe_width)
        suspect = np.zeros(len(counts), dtype=bool)
        if len(self.probe) and len(values):
            pos = np.minimum(np.searchsorted(self.probe, values), len(self.probe) - 1)
            suspect[owner[self.probe[pos] == values]] = True
        rows = np.flatnonzero(suspect & (hit < 0))
        if len(rows):
            sub_h = h[np.repeat(suspect & (hit < 0), counts)]
            sub_counts = counts[rows]
            for w, table in self.windows.items():
                values, owner = window_hashes(sub_h, sub_counts, w)
                _mark(hit, values, rows[owner], table)
        return [self.names[i] if i >= 0 else None for i in hit.tolist()]


class MatchCache:
    """``BenchmarkIndex.match`` that matches each distinct text once. Compound
    instructions repeat the input of their basic row (nine strategies, several variants
    each), so at corpus scale most inputs have been seen before. Texts are remembered by
    a 64-bit hash and their byte length (a few MB for millions of inputs)."""

    def __init__(self, index: BenchmarkIndex) -> None:
        self.index = index
        self.known = pl.DataFrame(schema={"_h": pl.UInt64, "_n": pl.UInt32, "hit": pl.String})
        self.matched = 0  # distinct texts sent to the index

    def match(self, texts: pl.Series) -> pl.Series:
        texts = texts.fill_null("")
        keys = pl.DataFrame({"_h": texts.hash(seed=31), "_n": texts.str.len_bytes()})
        new = (
            keys.with_row_index("_i")
            .join(self.known, on=["_h", "_n"], how="anti")
            .unique(["_h", "_n"], keep="first", maintain_order=True)
        )
        if new.height:
            hits = self.index.match(texts.gather(new["_i"]))
            found = new.select("_h", "_n", pl.Series("hit", hits, dtype=pl.String))
            self.known = pl.concat([self.known, found]).rechunk()
            self.matched += new.height
        return keys.join(self.known, on=["_h", "_n"], how="left", maintain_order="left")[
            "hit"
        ].alias("contaminated_by")


def _mark(
    hit: np.ndarray, values: np.ndarray, owner: np.ndarray, table: tuple[np.ndarray, np.ndarray]
) -> None:
    """Set ``hit[owner[i]]`` to the benchmark of ``values[i]`` where it is in ``table``
    and the row has no benchmark yet."""
    keys, bench = table
    if not len(keys) or not len(values):
        return
    pos = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    found = keys[pos] == values
    rows = owner[found]
    fresh = hit[rows] < 0
    hit[rows[fresh]] = bench[pos[found]][fresh]


def benchmark_texts(benchmarks: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(benchmark, language, text) for every record of every evaluation set
    (``load_benchmarks()`` by default), read with the project's readers. MRC records
    add their question; texts are the records' ``text``."""
    from hum_dagster.evaluation.benchmarks import load_benchmarks

    benchmarks = load_benchmarks() if benchmarks is None else benchmarks
    out: list[tuple[str, str, str]] = []
    for name, bench in sorted(benchmarks.items()):
        for record in bench.read().records:
            out.append((name, bench.language, record.text))
            question = (
                (record.gold or {}).get("question") if isinstance(record.gold, dict) else None
            )
            if question:
                out.append((name, bench.language, str(question)))
    return out


def decontaminate(
    rows: pl.DataFrame, index: BenchmarkIndex, text_column: str | None = None, examples: int = 5
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """(kept, removed, report): ``removed`` are the rows whose input overlaps an
    evaluation set, with a ``contaminated_by`` column. ``text_column`` defaults to the
    instruction's ``input`` (the whole instruction for chat rows)."""
    from hum_dagster.corpus.dedup import input_text_expr

    expr = pl.col(text_column) if text_column else input_text_expr()
    texts = rows.select(expr.alias("_t"))["_t"]
    matched = pl.Series("contaminated_by", index.match(texts), dtype=pl.String)
    tagged = rows.with_columns(matched)
    removed = tagged.filter(pl.col("contaminated_by").is_not_null())
    kept = tagged.filter(pl.col("contaminated_by").is_null()).drop("contaminated_by")
    report = contamination_report(removed, index, rows.height, examples)
    return kept, removed, report


def contamination_report(
    removed: pl.DataFrame, index: BenchmarkIndex, checked: int, examples: int = 5
) -> dict:
    by = (
        dict(removed.group_by("contaminated_by").len().sort("contaminated_by").iter_rows())
        if removed.height
        else {}
    )
    sample_cols = [
        c for c in ("instruction_id", "source", "task", "contaminated_by") if c in removed.columns
    ]
    return {
        "checked": checked,
        "removed": removed.height,
        "by_benchmark": by,
        "benchmark_texts": index.texts,
        "benchmarks": index.names,
        "examples": removed.head(examples).select(sample_cols).to_dicts() if sample_cols else [],
    }


NO_OVERLAP_CHECK = "no_overlap_with_evaluation_sets"


def contamination_problems(rows: pl.DataFrame, index: BenchmarkIndex) -> list:
    """``records.Problem`` for each corpus row whose input overlaps an evaluation set
    (the same n-gram match the corpus build removes rows with)."""
    from hum_dagster.corpus.dedup import input_text_expr
    from hum_dagster.records import Problem

    if not rows.height:
        return []
    texts = rows.select(input_text_expr().alias("_t"))["_t"]
    hits = index.match(texts)
    ids = rows["instruction_id"].to_list()
    return [
        Problem(NO_OVERLAP_CHECK, ids[i], f"input overlaps the evaluation set {hit!r}")
        for i, hit in enumerate(hits)
        if hit is not None
    ]


# --------------------------------------------------------------------------- index cache
#
# Building the index reads every evaluation set with the project's readers (about 2.2 s
# for the 17k texts of ../shared/data), and every corpus run and ``no_overlap`` check
# needs it: the index is kept as an ``.npz`` file named by a digest of what it is built
# from (the benchmark entries, their files' sizes and modification times, the config),
# and loaded from there (about 0.04 s). One process builds it while those beside it wait.

INDEX_CACHE_VERSION = "1"


def _files_of(location: str) -> list[str] | None:
    """The local files behind a catalog location (a file, a folder, a glob), or None
    for a remote one."""
    import glob
    import os

    if "://" in location:
        return None
    if os.path.isfile(location):
        return [location]
    if os.path.isdir(location):
        return sorted(
            os.path.join(folder, name) for folder, _, names in os.walk(location) for name in names
        )
    return sorted(glob.glob(location, recursive=True))


def index_cache_key(benchmarks: dict[str, Any], config: DecontamConfig) -> str | None:
    """A digest of the benchmark entries, their files' sizes and times and ``config``;
    None when a benchmark is not a local file (its version cannot be told cheaply)."""
    import hashlib
    import os

    parts: list[Any] = [INDEX_CACHE_VERSION, repr(config)]
    for name, bench in sorted(benchmarks.items()):
        entry = bench.entry
        location = entry.resolve()
        files = _files_of(location)
        if files is None:
            return None
        stats = []
        for path in files:
            st = os.stat(path)
            stats.append((path, st.st_size, st.st_mtime_ns))
        parts.append((name, entry.task, entry.language, entry.format, location,
                      sorted(entry.options.items(), key=str), stats))
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=16).hexdigest()


def _save_index(index: BenchmarkIndex, path: str) -> None:
    import os

    arrays = {"whole_v": index.whole[0], "whole_o": index.whole[1], "probe": index.probe}
    for w, (v, o) in index.windows.items():
        arrays[f"w{w}_v"], arrays[f"w{w}_o"] = v, o
    meta = json.dumps({"names": index.names, "texts": index.texts,
                       "probe_width": index.probe_width, "windows": sorted(index.windows)})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        np.savez(handle, meta=np.array(meta), **arrays)
    os.replace(tmp, path)  # a reader finds the whole file or none


def _load_index(path: str) -> BenchmarkIndex:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        windows = {int(w): (data[f"w{w}_v"], data[f"w{w}_o"]) for w in meta["windows"]}
        return BenchmarkIndex(windows, (data["whole_v"], data["whole_o"]), meta["names"],
                              meta["texts"], data["probe"], meta["probe_width"])


def cached_index(
    cache_dir: str | None, config: DecontamConfig | None = None,
    benchmarks: dict[str, Any] | None = None,
) -> BenchmarkIndex:
    """``BenchmarkIndex.build`` over ``benchmark_texts(benchmarks)``, kept in
    ``cache_dir`` (None: always built) and loaded from there while its key holds."""
    import os
    import zipfile

    from hum_dagster.evaluation.benchmarks import load_benchmarks

    config = config or DecontamConfig()
    benchmarks = load_benchmarks() if benchmarks is None else benchmarks
    key = index_cache_key(benchmarks, config) if cache_dir else None
    path = os.path.join(cache_dir, f"benchmark-index-{key}.npz") if key else None
    if not path:
        return BenchmarkIndex.build(benchmark_texts(benchmarks), config)
    from hum_dagster.store.fsio import exclusive

    with exclusive(f"{path}.lock"):  # one process builds it; those beside it wait
        if os.path.isfile(path):
            try:
                return _load_index(path)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # damaged: rebuilt
                pass
        index = BenchmarkIndex.build(benchmark_texts(benchmarks), config)
        _save_index(index, path)
    return index
