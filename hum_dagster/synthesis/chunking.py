"""Schema chunking, negative sampling and per-record random generators.

All randomness goes through an explicit generator made per (seed, record, stage), so
results never depend on record order or on how records are spread over processes.
Nothing here touches the global ``random`` state. Two generators exist:

- ``record_rng``: a ``random.Random`` seeded from SHA-256 (the Dagster assets' rows
  are made with it; seeding a Mersenne Twister costs about 7 us per record);
- ``hash_rng``: a ``HashRng``, random bits read from BLAKE2b of the key in counter
  mode (about 1 us for a record that shuffles a handful of labels; ``hum convert``
  uses it). It offers what the sampling helpers here call: ``random``, ``shuffle``
  and ``sample``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

# Maximum number of schema items per instruction, per task (IEPile's recommended
# values); tasks not listed are not chunked (-1).
DEFAULT_SPLIT_NUM: dict[str, int] = {
    "NER": 6,
    "RE": 4,
    "SPO": 4,
    "EE": 4,
    "EET": 4,
    "EEA": 4,
    "KGE": 1,
}


def default_split_num(task: str) -> int:
    return DEFAULT_SPLIT_NUM.get("KGE" if task == "KG" else task, -1)


def record_rng(seed: int, record_id: str, stage: str) -> random.Random:
    """A generator seeded from sha256(f"{seed}|{record_id}|{stage}")."""
    digest = hashlib.sha256(f"{seed}|{record_id}|{stage}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


_MASK64 = (1 << 64) - 1
_TWO_M53 = 2.0**-53


class HashRng:
    """A deterministic generator whose bits are BLAKE2b(key, counter) digests.

    Each draw takes 64 fresh bits: ``random()`` keeps the top 53 (a float in [0, 1)
    on the 2**-53 grid, as ``random.Random``), ``below(n)`` maps them onto ``range(n)``
    by multiply-and-shift (Lemire), whose bias is below n / 2**64. ``shuffle`` is
    Fisher-Yates and ``sample`` a partial Fisher-Yates on a copy, so every
    permutation and every subset is equally likely up to that bias. Cheap to create
    (one hash of a short key), and nothing is shared between instances.
    """

    __slots__ = ("_key", "_counter", "_bits", "_left", "_last")

    def __init__(self, key: bytes):
        self._key = key
        self._counter = 0
        self._left = 0
        self._bits = 0
        self._last = 0

    def _next64(self) -> int:
        if not self._left:
            digest = hashlib.blake2b(
                self._key + self._counter.to_bytes(4, "little"), digest_size=64
            ).digest()
            self._counter += 1
            self._bits = int.from_bytes(digest, "little")
            self._left = 8
        self._left -= 1
        value = self._last = self._bits & _MASK64
        self._bits >>= 64
        return value

    def random(self) -> float:
        return (self._next64() >> 11) * _TWO_M53

    def below(self, n: int) -> int:
        """A draw from ``range(n)`` (n >= 1)."""
        return (self._next64() * n) >> 64

    def shuffle(self, items: list) -> None:
        # _next64 inlined: this is the hot path of ``hum convert --random_sort``.
        bits, left = self._bits, self._left
        for i in range(len(items) - 1, 0, -1):
            if not left:
                self._left = 0
                self._next64()  # refill, and put that word back
                bits, left = self._bits << 64 | self._last, 8
            left -= 1
            j = ((bits & _MASK64) * (i + 1)) >> 64
            bits >>= 64
            items[i], items[j] = items[j], items[i]
        self._bits, self._left = bits, left

    def sample(self, population: Sequence[T], k: int) -> list[T]:
        pool = list(population)
        n = len(pool)
        if not 0 <= k <= n:
            raise ValueError("sample larger than population or is negative")
        for i in range(k):
            j = i + ((self._next64() * (n - i)) >> 64)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


def hash_rng(seed: int, stage: str, key: str) -> HashRng:
    """A ``HashRng`` for (seed, stage, key); ``key`` names the record (any string)."""
    return HashRng(f"{seed}|{stage}|{key}".encode("utf-8", "surrogatepass"))


def split_chunks(items: Sequence[T], split_num: int) -> list[list[T]]:
    """Cut ``items`` into chunks of ``split_num``.

    One chunk when ``split_num == -1`` or there are fewer items than ``split_num``.
    Otherwise full chunks, and the remainder becomes its own chunk only when it has
    at least ``max(1, split_num // 2)`` items; a shorter remainder joins the last chunk.
    """
    items = list(items)
    n = len(items)
    if split_num == -1 or n < split_num:
        return [items]
    if split_num < 1:
        raise ValueError(f"split_num must be -1 or a positive integer, got {split_num}")
    full = (n // split_num) * split_num
    chunks = [items[i : i + split_num] for i in range(0, full, split_num)]
    rest = items[full:]
    if rest:
        if len(rest) >= max(1, split_num // 2):
            chunks.append(rest)
        else:
            chunks[-1].extend(rest)
    return chunks


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Binomial(n, p) as a sum of Bernoulli draws; no draws when p <= 0 or p >= 1."""
    if p <= 0.0 or n <= 0:
        return 0
    if p >= 1.0:
        return n
    rnd = rng.random
    return sum(1 for _ in range(n) if rnd() < p)


def sample_negatives(
    rng: random.Random,
    negatives: Sequence[T],
    n_labels: int,
    rate: float,
    has_positives: bool,
) -> list[T]:
    """Choose negatives: Binomial(n_labels, rate) of them, at least one when the record
    has no positives, at most all; sampled without replacement. ``rate <= 0`` turns
    negative sampling off entirely (IEPile's ``--neg_schema 0``): no negatives at all.

    ``negatives`` must be in a deterministic order (e.g. sorted). When every negative
    is chosen they are returned as given, without drawing.
    """
    if rate <= 0.0:
        return []
    k = binomial(rng, n_labels, rate)
    if not has_positives:
        k = max(k, 1)
    if k >= len(negatives):
        return list(negatives)
    return rng.sample(negatives, k)


def order_items(
    items: list[T],
    rng: random.Random | None,
    random_sort: bool,
    key: Callable[[T], str] | None = None,
) -> list[T]:
    """Sorted by ``key`` (default: the item) unless ``random_sort``, then shuffled."""
    if random_sort:
        if rng is None:
            raise ValueError("random_sort needs a generator")
        rng.shuffle(items)
        return items
    items.sort(key=key)
    return items


def select_labels(
    rng: random.Random,
    positives: Iterable[str],
    labels: Sequence[str],
    rate: float,
) -> list[str]:
    """Positives plus sampled negatives from the sorted label list ``labels``.

    With ``rate == 0`` only the positives (possibly none: the caller then skips the
    record, as IEPile does). Unordered result.
    """
    pos = list(dict.fromkeys(positives))
    pos_set = set(pos)
    negatives = [label for label in labels if label not in pos_set]
    if rate >= 1.0:  # every negative, no draw (what sample_negatives gives)
        return negatives + pos
    chosen = sample_negatives(rng, negatives, len(labels), rate, bool(pos))
    return chosen + pos


def select_cluster_labels(
    rng: random.Random,
    positives: Iterable[str],
    labels: Sequence[str],
    hard_negatives: dict[str, list[str]],
    rate: float,
    split_num: int,
) -> list[str]:
    """Cluster-mode selection: positives, their hard negatives, and up to ``split_num``
    other random labels; with no positives, Binomial(n, rate / 2) (at least 1) random
    labels. Hard negatives outside ``labels`` are ignored. Unordered result.
    """
    pos = list(dict.fromkeys(positives))
    if len(labels) == 1 and not pos:
        return list(labels)
    label_set = set(labels)
    if not pos:
        k = max(binomial(rng, len(labels), rate / 2), 1)
        return rng.sample(list(labels), min(k, len(labels)))
    chosen = dict.fromkeys(pos)
    for p in pos:
        for hard in hard_negatives.get(p, ()):
            if hard in label_set:
                chosen.setdefault(hard)
    others = [label for label in labels if label not in chosen]
    extra = min(len(others), split_num if split_num > 0 else len(others))
    if extra:
        for label in rng.sample(others, extra):
            chosen.setdefault(label)
    return list(chosen)
