"""Schema chunking, negative sampling and per-record generators."""

from __future__ import annotations

import random

import pytest

from hum_dagster.synthesis.chunking import (
    DEFAULT_SPLIT_NUM,
    HashRng,
    binomial,
    hash_rng,
    record_rng,
    sample_negatives,
    select_cluster_labels,
    select_labels,
    split_chunks,
)


def sizes(chunks):
    return [len(c) for c in chunks]


@pytest.mark.parametrize(
    "n, split_num, expected",
    [
        (13, 6, [6, 7]),  # remainder 1 < 3: joins the last chunk
        (15, 6, [6, 6, 3]),  # remainder 3 >= 3: its own chunk
        (14, 6, [6, 8]),
        (12, 6, [6, 6]),
        (5, 6, [5]),  # fewer than split_num: one chunk
        (6, 6, [6]),
        (49, 4, [4] * 11 + [5]),  # remainder 1 < 2
        (50, 4, [4] * 12 + [2]),  # remainder 2 >= 2
        (3, 1, [1, 1, 1]),
        (10, -1, [10]),
        (0, -1, [0]),
        (0, 4, [0]),
        (5, 2, [2, 2, 1]),  # remainder 1 >= max(1, 2 // 2): its own chunk
        (7, 3, [3, 3, 1]),  # max(1, 3 // 2) = 1: a single leftover is its own chunk
    ],
)
def test_split_rule(n, split_num, expected):
    chunks = split_chunks(list(range(n)), split_num)
    assert sizes(chunks) == expected
    assert [x for c in chunks for x in c] == list(range(n))  # order kept, nothing lost


def test_split_rejects_bad_split_num():
    with pytest.raises(ValueError):
        split_chunks([1, 2, 3], 0)


def test_defaults():
    assert DEFAULT_SPLIT_NUM == {"NER": 6, "RE": 4, "SPO": 4, "EE": 4, "EET": 4, "EEA": 4, "KGE": 1}


def test_record_rng_is_deterministic_and_distinct():
    a = [record_rng(42, "r1", "basic:NER").random() for _ in range(3)]
    b = [record_rng(42, "r1", "basic:NER").random() for _ in range(3)]
    assert a == b
    assert record_rng(42, "r1", "basic:NER").random() != record_rng(42, "r2", "basic:NER").random()
    assert record_rng(42, "r1", "basic:NER").random() != record_rng(43, "r1", "basic:NER").random()
    assert record_rng(42, "r1", "basic:NER").random() != record_rng(42, "r1", "basic:RE").random()


def test_global_random_state_untouched():
    random.seed(7)
    expected = random.random()
    random.seed(7)
    rng = record_rng(1, "x", "s")
    select_labels(rng, ["a"], [str(i) for i in range(20)], 0.5)
    assert random.random() == expected


def test_binomial_edges_and_mean():
    rng = random.Random(0)
    assert binomial(rng, 10, 0.0) == 0
    assert binomial(rng, 10, 1.0) == 10
    draws = [binomial(rng, 20, 0.25) for _ in range(2000)]
    assert all(0 <= d <= 20 for d in draws)
    assert 4.5 < sum(draws) / len(draws) < 5.5


LABELS = sorted(f"L{i:02d}" for i in range(20))


def test_rate_zero_gives_positives_only():
    rng = random.Random(0)
    assert sorted(select_labels(rng, ["L03", "L07"], LABELS, 0.0)) == ["L03", "L07"]
    assert select_labels(rng, [], LABELS, 0.0) == []  # nothing to ask: caller skips


def test_rate_one_gives_all_labels():
    rng = random.Random(0)
    assert sorted(select_labels(rng, ["L03"], LABELS, 1.0)) == LABELS
    assert sorted(select_labels(rng, [], LABELS, 1.0)) == LABELS


def test_positive_outside_schema_is_kept():
    rng = random.Random(0)
    chosen = select_labels(rng, ["ZZ"], LABELS, 1.0)
    assert "ZZ" in chosen and len(chosen) == len(LABELS) + 1


def test_at_least_one_negative_without_positives():
    for seed in range(200):
        chosen = select_labels(random.Random(seed), [], LABELS, 0.01)
        assert len(chosen) >= 1
        assert set(chosen) <= set(LABELS)


def test_sampling_partial_rate_is_deterministic_per_record():
    def pick(record_id):
        return select_labels(record_rng(42, record_id, "basic:NER"), ["L01"], LABELS, 0.3)

    ids = [f"rec{i}" for i in range(50)]
    first = {rid: pick(rid) for rid in ids}
    second = {rid: pick(rid) for rid in reversed(ids)}  # another order
    assert first == second
    for chosen in first.values():
        assert "L01" in chosen
        assert len(set(chosen)) == len(chosen)
    assert len({tuple(sorted(c)) for c in first.values()}) > 10  # they do vary


def test_sample_negatives_bounds():
    rng = random.Random(3)
    negatives = ["a", "b", "c"]
    assert sample_negatives(rng, negatives, 100, 0.9, True) == negatives  # capped, no draw order
    assert len(sample_negatives(rng, negatives, 3, 0.0001, False)) == 1


def test_cluster_mode():
    hard = {"L01": ["L02", "L03", "XX"], "L05": ["L06"]}
    rng = random.Random(0)
    chosen = select_cluster_labels(rng, ["L01", "L05"], LABELS, hard, 1.0, split_num=4)
    assert {"L01", "L05", "L02", "L03", "L06"} <= set(chosen)
    assert "XX" not in chosen  # not a label of the schema
    assert len(chosen) == 5 + 4  # plus split_num random others
    assert len(set(chosen)) == len(chosen)
    none = select_cluster_labels(random.Random(1), [], LABELS, hard, 0.0, split_num=4)
    assert len(none) == 1


# ----------------------------------------------------------- the cheap generator


def test_hash_rng_is_deterministic_distinct_and_leaves_global_state_alone():
    random.seed(7)
    expected = random.random()
    random.seed(7)
    a = [hash_rng(42, "basic:NER", ":1|text").random() for _ in range(3)]
    assert a == [hash_rng(42, "basic:NER", ":1|text").random() for _ in range(3)]
    draws = {
        hash_rng(seed, stage, key).random()
        for seed, stage, key in [(42, "s", "k"), (43, "s", "k"), (42, "t", "k"), (42, "s", "j")]
    }
    assert len(draws) == 4
    assert random.random() == expected


def test_hash_rng_shuffle_is_fisher_yates_on_its_draws():
    """The inlined shuffle consumes the same words as ``below``, and the stream goes on
    from there (so sampling after a shuffle is the same as well)."""
    for k in range(50):
        for n in (0, 1, 2, 5, 9, 17, 40):
            fast = HashRng(b"k%d" % k)
            a = list(range(n))
            fast.shuffle(a)
            slow = HashRng(b"k%d" % k)
            b = list(range(n))
            for i in range(n - 1, 0, -1):
                j = slow.below(i + 1)
                b[i], b[j] = b[j], b[i]
            assert a == b
            assert fast.random() == slow.random()


def chi_square(counts, expected):
    return sum((c - expected) ** 2 / expected for c in counts)


def test_hash_rng_is_uniform():
    """24,000 keys: the 24 orders of 4 items, a draw from range(10), random() deciles and
    3-of-8 samples are each spread evenly (chi-square far below what a skewed generator
    gives; the keys are fixed, so this never flakes)."""
    perms, below, deciles, picks = {}, [0] * 10, [0] * 10, [0] * 8
    keys = 24_000
    for i in range(keys):
        rng = hash_rng(42, "basic:NER", f":{i}|text")
        items = [0, 1, 2, 3]
        rng.shuffle(items)
        perms[tuple(items)] = perms.get(tuple(items), 0) + 1
        below[rng.below(10)] += 1
        value = rng.random()
        assert 0.0 <= value < 1.0
        deciles[int(value * 10)] += 1
        for x in rng.sample(range(8), 3):
            picks[x] += 1
    assert len(perms) == 24
    # 99.9% quantiles: chi-square 23 dof 49.7, 9 dof 27.9, 7 dof 24.3
    assert chi_square(perms.values(), keys / 24) < 49.7
    assert chi_square(below, keys / 10) < 27.9
    assert chi_square(deciles, keys / 10) < 27.9
    assert chi_square(picks, keys * 3 / 8) < 24.3


def test_hash_rng_sample_is_distinct_and_bounded():
    rng = hash_rng(1, "s", "k")
    chosen = rng.sample(LABELS, 7)
    assert len(set(chosen)) == 7 and set(chosen) <= set(LABELS)
    assert rng.sample(LABELS, 0) == []
    assert sorted(rng.sample(LABELS, len(LABELS))) == LABELS
    with pytest.raises(ValueError):
        rng.sample(LABELS, len(LABELS) + 1)


def test_sampling_helpers_take_either_generator():
    """select_labels and select_cluster_labels only need random/shuffle/sample."""
    chosen = select_labels(hash_rng(42, "s", "r1"), ["L01"], LABELS, 0.3)
    assert "L01" in chosen and len(set(chosen)) == len(chosen)
    hard = {"L01": ["L02"]}
    chosen = select_cluster_labels(hash_rng(42, "s", "r1"), ["L01"], LABELS, hard, 1.0, 4)
    assert {"L01", "L02"} <= set(chosen) and len(chosen) == 6
