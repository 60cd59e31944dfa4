"""Exact and near-duplicate detection for instruction rows.

- exact: the same (instruction, output, history, system), and the same after
  normalisation (lower case, every run of non-word characters removed);
- near: MinHash over byte shingles (``shingle`` bytes, default 6: six Latin letters, two
  Chinese characters) of the instruction's *input* plus the output, banded for LSH
  (``bands`` x ``rows_per_band`` hashes). Rows are compared only within one frame: the
  same task, strategy, variant, language and schema, and only across records (the
  chunks and variants one record yields share their input on purpose). Every LSH
  candidate pair is verified with the exact Jaccard similarity of the shingle sets
  (``threshold``, default 0.85): the row with the larger instruction id goes.

Signatures are computed with numpy over a whole batch at once (one byte buffer, an
unaligned uint64 view for the shingles, ``minimum.reduceat`` per row), so millions of
rows take tens of seconds. No Dagster imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hum_dagster.corpus.threads import thread_map

_MASK32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class NearDupConfig:
    shingle: int = 6  # bytes, 1..8
    # 6 x 6: a pair at Jaccard 0.85 becomes a candidate with probability 0.94, one at 0.5
    # with 0.09 (4 x 4 gave 0.95 and 0.23: at 2.8M rows, 683k candidates to verify).
    bands: int = 6
    rows_per_band: int = 6
    threshold: float = 0.85
    seed: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.shingle <= 8:
            raise ValueError(f"shingle must be 1..8 bytes, got {self.shingle}")


def input_text_expr(instruction: str = "instruction") -> pl.Expr:
    """The instruction's ``input`` (IEPile JSON) or the whole instruction (chat rows)."""
    return pl.coalesce(pl.col(instruction).str.json_path_match("$.input"), pl.col(instruction))


def dedup_text_expr(input_text: pl.Expr | None = None) -> pl.Expr:
    """What near duplicates are judged on: the input and the output (``input_text``: the
    input when already extracted, else ``input_text_expr()``)."""
    text = input_text if input_text is not None else input_text_expr()
    return pl.concat_str([text, pl.lit("\x1f"), pl.col("output").fill_null("")]).alias(
        "_dedup_text"
    )


def exact_key_exprs() -> list[pl.Expr]:
    parts = [pl.col(c).fill_null("") for c in ("instruction", "output", "history", "system")]
    norm = [p.str.to_lowercase().str.replace_all(r"[\W_]+", "") for p in parts]
    return [
        pl.concat_str(parts, separator="\x1f").hash(seed=11).alias("_exact"),
        pl.concat_str(norm, separator="\x1f").hash(seed=12).alias("_norm"),
    ]


def frame_key_expr() -> pl.Expr:
    cols = ("task", "strategy", "variant", "language", "schema")
    return (
        pl.concat_str([pl.col(c).fill_null("") for c in cols], separator="\x1f")
        .hash(seed=13)
        .alias("_frame")
    )


def _coefficients(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**32, size=n, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**32, size=n, dtype=np.uint64)
    return a, b


def _buffer(texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One byte buffer of all texts (each padded to k bytes, plus 8 zero bytes of tail)
    and each text's start and number of shingles."""
    encoded = [t.encode("utf-8") for t in texts]
    encoded = [e if len(e) >= k else e.ljust(k, b" ") for e in encoded]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    starts = np.zeros(len(encoded), dtype=np.int64)
    if len(encoded) > 1:
        starts[1:] = np.cumsum(lengths)[:-1]
    buf = np.frombuffer(b"".join(encoded) + b"\0" * 8, dtype=np.uint8)
    return buf, starts, lengths - k + 1


def shingle_hashes(texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """32-bit hash of every k-byte shingle, and per text its start and count."""
    buf, starts, counts = _buffer(texts, k)
    n = len(buf) - 8
    view = np.ndarray(shape=(n,), dtype="<u8", buffer=buf.data, offset=0, strides=(1,))
    x = view & np.uint64((1 << (8 * k)) - 1) if k < 8 else view.copy()
    x *= np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(29)
    return (x & _MASK32).astype(np.uint32), starts, counts


# Characters of text per MinHash sub-batch: its arrays take about 50 bytes a character
# (shingle hashes and the index arithmetic that keeps each text's own), so 100 MB; a
# count of texts alone let 5,000 long reviews take 330 MB.
SUB_BATCH_CHARS = 2**21


def band_keys(
    texts: list[str], config: NearDupConfig, batch: int = 5_000, threads: int = 1,
    chars: int = SUB_BATCH_CHARS,
) -> np.ndarray:
    """LSH band keys, shape (len(texts), bands), uint64, in sub-batches of at most
    ``batch`` texts and about ``chars`` characters to bound memory, ``threads`` of them at
    a time (numpy's array operations run without the GIL)."""
    if not texts:
        return np.zeros((0, config.bands), dtype=np.uint64)
    pieces = _sub_batches(texts, batch, chars)
    if len(pieces) > 1:
        return np.concatenate(list(thread_map(lambda p: _band_keys(p, config), pieces, threads)))
    return _band_keys(texts, config)


def _sub_batches(texts: list[str], batch: int, chars: int) -> list[list[str]]:
    out, start, size = [], 0, 0
    for i, text in enumerate(texts):
        size += len(text)
        if i + 1 - start >= batch or size >= chars:
            out.append(texts[start : i + 1])
            start, size = i + 1, 0
    if start < len(texts):
        out.append(texts[start:])
    return out


def _band_keys(texts: list[str], config: NearDupConfig) -> np.ndarray:
    h, starts, counts = shingle_hashes(texts, config.shingle)
    # Keep only each text's own shingles (the last k-1 of a text reach into the next).
    keep = np.repeat(starts, counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    h = h[keep]
    offsets = np.zeros(len(texts), dtype=np.int64)
    offsets[1:] = np.cumsum(counts)[:-1]
    nperm = config.bands * config.rows_per_band
    a, b = _coefficients(nperm, config.seed)
    a32, b32 = a.astype(np.uint32), b.astype(np.uint32)
    sig = np.empty((len(texts), nperm), dtype=np.uint64)
    v = np.empty_like(h)
    for p in range(nperm):
        np.multiply(h, a32[p], out=v)
        v += b32[p]
        sig[:, p] = np.minimum.reduceat(v, offsets)
    keys = np.empty((len(texts), config.bands), dtype=np.uint64)
    r = config.rows_per_band
    for band in range(config.bands):
        acc = np.full(len(texts), 0xCBF29CE484222325, dtype=np.uint64)
        for j in range(r):
            acc = (acc ^ sig[:, band * r + j]) * np.uint64(0x100000001B3)
        keys[:, band] = acc
    return keys


def jaccard(a: str, b: str, k: int) -> float:
    ea, eb = a.encode("utf-8"), b.encode("utf-8")
    sa = {ea[i : i + k] for i in range(max(1, len(ea) - k + 1))}
    sb = {eb[i : i + k] for i in range(max(1, len(eb) - k + 1))}
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def verify_pairs(pairs: pl.DataFrame, texts: dict[int, str], config: NearDupConfig) -> pl.DataFrame:
    """The candidate pairs whose exact shingle Jaccard reaches the threshold, with it."""
    keep, drop, sims = [], [], []
    for k, d in pairs.iter_rows():
        s = jaccard(texts[k], texts[d], config.shingle)
        if s >= config.threshold:
            keep.append(k)
            drop.append(d)
            sims.append(s)
    return pl.DataFrame(
        {"keep_row": keep, "drop_row": drop, "similarity": sims},
        schema={"keep_row": pl.Int64, "drop_row": pl.Int64, "similarity": pl.Float64},
    )
