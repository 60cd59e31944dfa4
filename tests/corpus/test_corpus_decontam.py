"""Decontamination against a plain-Python statement of its rules, on texts built so
that every rule fires: whole equality, n-gram windows, short benchmark texts contained
whole, near misses one unit short of a window, English and Chinese."""

import numpy as np
import polars as pl
import pytest

from hum_dagster.corpus.decontam import UNIT_PATTERN, BenchmarkIndex, DecontamConfig, MatchCache

EN_WORDS = ["alpha", "beta", "gamma", "delta", "Echo", "fox", "golf", "hotel"]
ZH_CHARS = list("天地人山水火木金")


def units(text: str) -> list[str]:
    return pl.Series([text]).str.to_lowercase().str.extract_all(UNIT_PATTERN)[0].to_list()


def contains(haystack: list[str], needle: list[str]) -> bool:
    k = len(needle)
    return any(haystack[i : i + k] == needle for i in range(len(haystack) - k + 1))


def reference(text: str, bench: list[tuple[str, str, str]], config: DecontamConfig) -> set[str]:
    """Every benchmark the text overlaps, by the rules in the module docstring."""
    u = units(text)
    found = set()
    for name, lang, btext in bench:
        b = units(btext)
        n = config.n_for(lang)
        if u == b or len(b) >= n and any(contains(u, b[i : i + n]) for i in range(len(b) - n + 1)) or config.min_units <= len(b) < n and contains(u, b):
            found.add(name)
    return found


def make_text(rng, lang: str, length: int) -> list[str]:
    pool = EN_WORDS if lang == "en" else ZH_CHARS
    return [pool[i] for i in rng.integers(len(pool), size=length)]


def join(tokens: list[str], lang: str) -> str:
    return (" " if lang == "en" else "").join(tokens)


def test_matches_the_plain_statement_of_the_rules():
    rng = np.random.default_rng(3)
    config = DecontamConfig()
    bench = []
    for i in range(40):
        lang = "en" if i % 3 else "zh"
        length = int(rng.integers(3, 30))
        bench.append((f"b{i % 4}", lang, join(make_text(rng, lang, length), lang)))
    inputs = []
    for _ in range(600):
        lang = "en" if rng.random() < 0.6 else "zh"
        tokens = make_text(rng, lang, int(rng.integers(0, 40)))
        if rng.random() < 0.5:  # plant a slice of a benchmark text of the same language
            name, blang, btext = bench[int(rng.integers(len(bench)))]
            b = units(btext) if blang == lang else []
            if b:
                k = int(rng.integers(1, len(b) + 1))
                start = int(rng.integers(0, len(b) - k + 1))
                at = int(rng.integers(0, len(tokens) + 1))
                tokens = tokens[:at] + b[start : start + k] + tokens[at:]
        if rng.random() < 0.05:
            inputs.append(bench[int(rng.integers(len(bench)))][2].upper())
        else:
            inputs.append(join(tokens, lang))
    index = BenchmarkIndex.build(bench, config)
    got = index.match(pl.Series(inputs))
    expected = [reference(t, bench, config) for t in inputs]
    hits = sum(1 for e in expected if e)
    assert 30 < hits < len(inputs) - 30  # both outcomes are well represented
    for text, g, e in zip(inputs, got, expected, strict=True):
        if e:
            assert g in e, (text, g, e)
        else:
            assert g is None, (text, g)


def test_one_unit_short_of_a_window_is_clean():
    config = DecontamConfig()
    bench_text = " ".join(f"w{i}" for i in range(30))
    index = BenchmarkIndex.build([("b", "en", bench_text)], config)
    twelve = " ".join(f"w{i}" for i in range(5, 17))
    thirteen = " ".join(f"w{i}" for i in range(5, 18))
    assert index.match(pl.Series([f"x {twelve} y", f"x {thirteen} y"])) == [None, "b"]


def test_match_cache_matches_each_distinct_text_once():
    config = DecontamConfig()
    bench_text = " ".join(f"w{i}" for i in range(30))
    index = BenchmarkIndex.build([("b", "en", bench_text)], config)
    dirty = "x " + " ".join(f"w{i}" for i in range(3, 20)) + " y"
    clean = "nothing in common with the benchmark at all, not one window"
    cache = MatchCache(index)
    first = [dirty, clean, None, dirty, clean, ""]
    assert cache.match(pl.Series(first)).to_list() == index.match(pl.Series(first))
    assert cache.matched == 3  # dirty, clean, and the empty text (null reads as "")
    # A later batch: the texts seen before are not matched again, a new one is.
    second = [clean, dirty + " z", dirty]
    assert cache.match(pl.Series(second)).to_list() == [None, "b", "b"]
    assert cache.matched == 4


def test_the_benchmark_index_is_built_once_and_then_loaded(tmp_path, shared_data, monkeypatch):
    from hum_dagster.corpus import decontam
    from hum_dagster.corpus.decontam import cached_index
    from hum_dagster.evaluation.benchmarks import load_benchmarks

    monkeypatch.setenv("HUM_SHARED_DATA", str(shared_data))
    benchmarks = load_benchmarks()
    built = cached_index(str(tmp_path), DecontamConfig(), benchmarks)
    (saved,) = tmp_path.glob("benchmark-index-*.npz")

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(BenchmarkIndex, "build", no_build)
    loaded = cached_index(str(tmp_path), DecontamConfig(), benchmarks)
    assert (loaded.names, loaded.texts, loaded.probe_width) == (
        built.names, built.texts, built.probe_width
    )
    assert sorted(loaded.windows) == sorted(built.windows)
    for w, (values, owners) in built.windows.items():
        assert np.array_equal(loaded.windows[w][0], values)
        assert np.array_equal(loaded.windows[w][1], owners)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.whole, built.whole, strict=True))
    assert np.array_equal(loaded.probe, built.probe)
    texts = pl.Series(["a clean sentence of no benchmark", benchmarks_text(benchmarks)])
    assert loaded.match(texts) == built.match(texts)
    assert loaded.match(texts)[1] is not None
    # another config is another index; a damaged file is built again
    other = DecontamConfig(default_ngram=9, ngram_by_language={"en": 9, "zh": 15})
    assert decontam.index_cache_key(benchmarks, other) != decontam.index_cache_key(
        benchmarks, DecontamConfig()
    )
    whole = saved.read_bytes()
    for damaged in (b"not an npz", whole[: len(whole) // 2]):  # garbage; a truncated zip
        saved.write_bytes(damaged)
        with pytest.raises(AssertionError, match="built again"):
            cached_index(str(tmp_path), DecontamConfig(), benchmarks)


def benchmarks_text(benchmarks) -> str:
    """A text holding one benchmark record's text whole."""
    record = next(iter(benchmarks.values())).read().records[0]
    return f"as reported: {record.text} and more"
