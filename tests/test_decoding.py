"""Generators, processors and stopping criteria, on a tiny stand-in model."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest
import torch
from test_decoding_standin import ALPHABET, build_standin, random_swipes

from swipe.batch import SwipeBatch
from swipe.decoding import (
    BeamOptions,
    GeneratorError,
    LexiconTrie,
    build_generator,
    generator_options,
    score_words,
)
from swipe.decoding.naive import NaiveBeamSearch
from swipe.decoding.stopping import AllBeamsFinishedCriteria, MaxLengthCriteria, StoppingCriteriaList
from swipe.tokenizers import CharTokenizer

TOKENIZER = CharTokenizer(ALPHABET)


def make_words(num: int = 400, seed: int = 0) -> tuple[list[str], list[float]]:
    rng = random.Random(seed)
    words: dict[str, float] = {}
    while len(words) < num:
        word = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 7)))
        words[word] = rng.uniform(0.1, 100.0)
    return list(words), list(words.values())


@pytest.fixture(scope="module")
def trie() -> LexiconTrie:
    words, freqs = make_words()
    return LexiconTrie.from_words(words, freqs, TOKENIZER)


def one_curve(swipe: SwipeBatch, pad: torch.Tensor, i: int) -> tuple[SwipeBatch, torch.Tensor]:
    length = int(swipe.lengths[i])
    sub = SwipeBatch(*(t[i : i + 1, :length] if t.dim() > 1 else t[i : i + 1] for t in swipe))
    return sub, pad[i : i + 1, :length]


def assert_same_candidates(a, b, tol=1e-4):
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert [w for _, w in row_a] == [w for _, w in row_b]
        for (sa, _), (sb, _) in zip(row_a, row_b, strict=True):
            assert sa == pytest.approx(sb, abs=tol)


@pytest.mark.parametrize("use_lexicon", [True, False])
def test_batched_beam_equals_per_curve_beam(trie, use_lexicon):
    model = build_standin()
    swipe, pad = random_swipes(9, seed=1)
    options = {"beam_size": 5} if use_lexicon else {"beam_size": 5, "max_length": 8}
    gen = build_generator("beam", options, model, TOKENIZER, trie if use_lexicon else None)
    batched = gen.generate(swipe, pad)
    single = [gen.generate(*one_curve(swipe, pad, i))[0] for i in range(9)]
    assert_same_candidates(batched, single)
    if use_lexicon:
        assert all(len(row) == 5 for row in batched)


@pytest.mark.parametrize("prior_weight", [0.0, 0.7])
def test_cached_beam_equals_naive_uncached_beam(trie, prior_weight):
    model = build_standin(seed=3)
    swipe, pad = random_swipes(6, seed=2)
    options = BeamOptions(beam_size=6, num_candidates=4, prior_weight=prior_weight, length_penalty=0.7)
    cached = build_generator("beam", options, model, TOKENIZER, trie).generate(swipe, pad)
    naive = NaiveBeamSearch(model, TOKENIZER, options, trie).generate(swipe, pad)
    assert_same_candidates(cached, naive)


def test_naive_equals_cached_without_lexicon():
    model = build_standin(seed=4)
    swipe, pad = random_swipes(4, seed=5)
    options = BeamOptions(beam_size=4, num_candidates=4, max_length=6)
    cached = build_generator("beam", options, model, TOKENIZER).generate(swipe, pad)
    naive = NaiveBeamSearch(model, TOKENIZER, options, batch_beams=True).generate(swipe, pad)
    assert_same_candidates(cached, naive)


def test_lexicon_candidates_are_unique_lexicon_words_best_first(trie):
    words = set(make_words()[0])
    model = build_standin(seed=5)
    swipe, pad = random_swipes(12, seed=3)
    results = build_generator("beam", {"beam_size": 8}, model, TOKENIZER, trie).generate(swipe, pad)
    for row in results:
        assert len(row) == 8
        assert all(isinstance(c, tuple) and isinstance(c[0], float) for c in row)
        assert {w for _, w in row} <= words
        assert len({w for _, w in row}) == len(row)
        scores = [s for s, _ in row]
        assert scores == sorted(scores, reverse=True)


def test_without_lexicon_words_are_unique_and_bounded_by_max_length():
    model = build_standin(seed=6)
    swipe, pad = random_swipes(5, seed=4)
    generator = build_generator("beam", {"beam_size": 6, "max_length": 4}, model, TOKENIZER)
    results = generator.generate(swipe, pad)
    for row in results:
        assert len({w for _, w in row}) == len(row)
        assert all(len(w) <= 3 for _, w in row)


@pytest.mark.parametrize("use_lexicon", [True, False])
def test_greedy_equals_beam_of_size_one(trie, use_lexicon):
    model = build_standin(seed=7)
    swipe, pad = random_swipes(10, seed=6)
    lexicon = trie if use_lexicon else None
    common = {"length_penalty": 0.3, "prior_weight": 0.5 if use_lexicon else 0.0}
    greedy = build_generator("greedy", common, model, TOKENIZER, lexicon).generate(swipe, pad)
    beam = build_generator("beam", {"beam_size": 1, "num_candidates": 1, **common}, model, TOKENIZER,
                           lexicon).generate(swipe, pad)
    assert_same_candidates(greedy, beam, tol=1e-5)


class FixedModel(torch.nn.Module):
    """A model whose next-token logits depend only on the prefix length: 'a' is slightly preferred
    first, 'b' second, so the model ranks "ab" above "ba"."""

    def encode(self, swipe, swipe_pad_mask):
        return torch.zeros(swipe.features.size(0), 1, 1)

    def decode_step(self, last_tokens, memory, memory_pad_mask, state):
        from test_decoding_standin import StandinState, StandinStep

        n = last_tokens.size(0)
        step = 0 if state is None else state.keys.size(1)
        logits = torch.zeros(n, len(ALPHABET) + 1)
        if step == 0:
            logits[:, TOKENIZER.encode("a")[0]] = 0.5
        elif step == 1:
            logits[:, TOKENIZER.encode("b")[0]] = 0.5
        keys = torch.zeros(n, step + 1, 1)
        k = state.beams_per_curve if state is not None else 1
        return StandinStep(logits, StandinState(keys, k))


def test_prior_promotes_frequent_words():
    trie = LexiconTrie.from_words(["ab", "ba"], [1.0, 50.0], TOKENIZER)
    swipe, pad = random_swipes(1)
    model = FixedModel()
    plain = build_generator("beam", {"beam_size": 2, "length_penalty": 0.0}, model, TOKENIZER, trie)
    with_prior = build_generator("beam", {"beam_size": 2, "length_penalty": 0.0, "prior_weight": 1.0},
                                 model, TOKENIZER, trie)
    (row_plain,) = plain.generate(swipe, pad)
    (row_prior,) = with_prior.generate(swipe, pad)
    assert [w for _, w in row_plain] == ["ab", "ba"]
    assert [w for _, w in row_prior] == ["ba", "ab"]
    # The prior adds exactly weight * log(relative frequency) to each finished word.
    by_word = {w: s for s, w in row_plain}
    for score, word in row_prior:
        freq = {"ab": 1.0, "ba": 50.0}[word]
        assert score == pytest.approx(by_word[word] + math.log(freq / 51.0), abs=1e-6)


def test_prior_weight_zero_is_identity(trie):
    model = build_standin(seed=8)
    swipe, pad = random_swipes(4, seed=9)
    a = build_generator("beam", {"prior_weight": 0.0}, model, TOKENIZER, trie).generate(swipe, pad)
    b = build_generator("beam", {}, model, TOKENIZER, trie).generate(swipe, pad)
    assert a == b


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("beam", {"beam_sise": 4}, "did you mean 'beam_size'"),
        ("greedy", {"beam_size": 4}, "beam_size: unknown key"),
        ("beam", {"beam_size": 0}, "beam_size must be >= 1"),
        ("beam", {"beam_size": 4, "num_candidates": 5}, "num_candidates must be between 1 and beam_size"),
        ("beam", {"beam_size": "4"}, "beam_size: expected int"),
        ("beam", {"prior_weight": -1.0}, "prior_weight must be finite and >= 0"),
        ("greedy", {"max_length": 0}, "max_length must be >= 1"),
        ("sample", {}, "unknown generator 'sample'"),
    ],
)
def test_bad_options_fail_clearly(name, options, message):
    with pytest.raises(GeneratorError, match=message):
        generator_options(name, options)


def test_prior_without_lexicon_is_an_error():
    with pytest.raises(GeneratorError, match="needs a lexicon"):
        build_generator("beam", {"prior_weight": 1.0}, build_standin(), TOKENIZER, None)


def test_stopping_criteria():
    alive = np.array([0, 2, 1])
    assert MaxLengthCriteria(3)(2, alive).tolist() == [False, False, False]
    assert MaxLengthCriteria(3)(3, alive).tolist() == [True, True, True]
    assert AllBeamsFinishedCriteria()(1, alive).tolist() == [True, False, False]
    both = StoppingCriteriaList([MaxLengthCriteria(5), AllBeamsFinishedCriteria()])
    assert both(1, alive).tolist() == [True, False, False]
    with pytest.raises(ValueError):
        MaxLengthCriteria(0)


def test_generator_works_after_trie_pickle_round_trip(trie):
    model = build_standin(seed=2)
    swipe, pad = random_swipes(3, seed=2)
    copy = pickle.loads(pickle.dumps(trie))
    a = build_generator("beam", {}, model, TOKENIZER, trie).generate(swipe, pad)
    b = build_generator("beam", {}, model, TOKENIZER, copy).generate(swipe, pad)
    assert a == b


@pytest.mark.parametrize("generator, options", [
    ("beam", BeamOptions(beam_size=6, prior_weight=0.7, length_penalty=0.7)),
    ("greedy", {"prior_weight": 0.3}),
])
def test_score_words_gives_the_searchs_own_scores(trie, generator, options):
    model = build_standin(seed=6)
    swipe, pad = random_swipes(5, seed=7)
    gen = build_generator(generator, options, model, TOKENIZER, trie)
    found = gen.generate(swipe, pad)
    # Reversed, with a repeat and words no search can output: outside the lexicon or the alphabet.
    asked = [[w for _, w in reversed(row)] + [row[0][1], "zzz", "a-b"] for row in found]
    assert_same_candidates(score_words(model, TOKENIZER, trie, gen.options, swipe, pad, asked), found)
    # Without a lexicon every spellable word is scored, the prior is off.
    asked = [["zzz"], [], ["a-b"], ["ab", "a"], []]
    free = score_words(model, TOKENIZER, None, BeamOptions(), swipe, pad, asked)
    assert [[w for _, w in row] for row in free][:3] == [["zzz"], [], []]
    assert sorted(w for _, w in free[3]) == ["a", "ab"]
    short = score_words(model, TOKENIZER, None, BeamOptions(max_length=2), swipe, pad, asked)
    assert [[w for _, w in row] for row in short][3] == ["a"]  # "ab" + <eos> is 3 tokens
    with pytest.raises(ValueError, match="needs a lexicon"):
        score_words(model, TOKENIZER, None, BeamOptions(prior_weight=0.5), swipe, pad, asked)
