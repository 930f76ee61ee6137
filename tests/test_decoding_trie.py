"""The lexicon trie: construction, stepping, masks, prior and pickling."""

from __future__ import annotations

import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from swipe.decoding.trie import LexiconTrie
from swipe.tokenizers import CharTokenizer

TOK = CharTokenizer("abcdefghijklmnopqrstuvwxyz")
WORDS = ["a", "ab", "abc", "abd", "b", "ba", "zz"]
FREQS = [10.0, 5.0, 1.0, 2.0, 8.0, 4.0, 0.0]


def ids(text: str) -> list[int]:
    return TOK.encode(text)


def allowed_set(trie: LexiconTrie, prefix: str) -> set[str]:
    node = trie.find(ids(prefix))
    row = trie.allowed_tokens(torch.tensor([node]))[0]
    return {"<eos>" if i == 0 else TOK.alphabet[i - 1] for i in row.nonzero().flatten().tolist()}


@pytest.fixture()
def trie() -> LexiconTrie:
    lexicon = SimpleNamespace(words=WORDS + ["café", "ab"], frequencies=FREQS + [3.0, 1.0])
    return LexiconTrie.from_lexicon(lexicon, TOK)


def test_words_are_found_and_others_are_not(trie):
    assert trie.num_words == len(WORDS)
    assert trie.num_skipped == 1  # "café" has a character outside the alphabet
    for word in WORDS:
        node = trie.find(ids(word))
        assert node > 0 and trie.words[trie.word_id(node)] == word
    assert trie.word_id(trie.find(ids("zz"))) >= 0
    assert trie.find(ids("z")) > 0 and trie.word_id(trie.find(ids("z"))) == -1
    assert trie.find(ids("abe")) == -1 and trie.find(ids("c")) == -1
    assert trie.max_word_length == 3


def test_duplicate_keeps_most_frequent(trie):
    node = trie.find(ids("ab"))
    assert trie.word_log_probs[trie.word_id(node)] == pytest.approx(math.log(5.0 / trie_total()), rel=1e-5)


def trie_total() -> float:
    positive = [f for f in FREQS + [1.0] if f > 0]
    return sum(positive) + 0.5 * min(positive)


def test_allowed_tokens(trie):
    assert allowed_set(trie, "") == {"a", "b", "z"}
    assert allowed_set(trie, "a") == {"<eos>", "b"}
    assert allowed_set(trie, "ab") == {"<eos>", "c", "d"}
    assert allowed_set(trie, "abc") == {"<eos>"}
    assert allowed_set(trie, "z") == {"z"}
    outside = trie.allowed_tokens(torch.tensor([-1]))
    assert outside.shape == (1, TOK.num_output_tokens) and not outside.any()


def test_step(trie):
    a, ab = trie.find(ids("a")), trie.find(ids("ab"))
    nodes = torch.tensor([0, a, a, ab, -1, a])
    tokens = torch.tensor([ids("a")[0], ids("b")[0], ids("z")[0], 0, ids("a")[0], TOK.pad_id])
    assert trie.step(nodes, tokens).tolist() == [a, ab, -1, ab, -1, -1]
    # The generators' unchecked lookup: trie nodes or -1, token ids 0 .. V - 1.
    assert trie.step_array(nodes[:5].numpy(), tokens[:5].numpy()).tolist() == [a, ab, -1, ab, -1]
    assert trie.children.shape == (trie.num_nodes, TOK.num_output_tokens)


def test_teacher_forcing_mask_matches_allowed_tokens(trie):
    words = ["abd", "zq", "b"]
    length = 5
    decoder_input = torch.full((len(words), length), TOK.pad_id)
    decoder_input[:, 0] = TOK.sos_id
    for i, w in enumerate(words):
        decoder_input[i, 1 : 1 + len(w)] = torch.tensor(ids(w))
    mask = trie.teacher_forcing_mask(decoder_input)
    assert mask.shape == (3, length, TOK.num_output_tokens) and mask.dtype == torch.bool
    for i, w in enumerate(words):
        for j in range(length):
            prefix = w[:j]
            node = trie.find(ids(prefix)) if j <= len(w) else -1
            everything = torch.ones(27, dtype=torch.bool)
            expected = trie.allowed_tokens(torch.tensor([node]))[0] if node >= 0 else everything
            assert torch.equal(mask[i, j], expected), (w, j)
    # "abd": after "abd" only <eos>; "zq" leaves the trie after "z", so rows from there are all True.
    assert mask[0, 3].nonzero().flatten().tolist() == [0]
    assert mask[1, 2].all() and mask[1, 4].all()


def test_prior_increments_telescope_to_word_log_frequency(trie):
    for word in WORDS:
        node, total = 0, 0.0
        for token in ids(word) + [0]:
            total += float(trie.prior_increments(torch.tensor([node]))[0, token])
            node = int(trie.step(torch.tensor([node]), torch.tensor([token]))[0])
        assert total == pytest.approx(float(trie.word_log_probs[trie.word_id(node)]), abs=1e-5)
    inc = trie.prior_increments(torch.tensor([trie.find(ids("ab"))]))[0]
    assert torch.isinf(inc[ids("e")[0]]) and inc[ids("e")[0]] < 0
    # Look-ahead: the best word below "ab" is "ab" itself (5.0 beats "abd" 2.0 and "abc" 1.0).
    assert trie.lookahead[trie.find(ids("ab"))] == pytest.approx(math.log(5.0 / trie_total()), rel=1e-5)


def test_pickle_round_trip_is_small_and_equal(trie):
    copy = pickle.loads(pickle.dumps(trie))
    for name in ("parent", "token", "word_ids", "word_log_probs", "lookahead", "depth"):
        assert np.array_equal(getattr(trie, name), getattr(copy, name))
    assert torch.equal(trie.children, copy.children)
    assert copy.words == trie.words
    state = trie.__getstate__()
    assert "children" not in state  # the dense table is rebuilt, not shipped


def test_errors():
    with pytest.raises(ValueError, match="no lexicon word"):
        LexiconTrie.from_words(["é"], [1.0], TOK)
    with pytest.raises(ValueError, match="non-negative"):
        LexiconTrie.from_words(["a"], [-1.0], TOK)
    with pytest.raises(ValueError, match="frequencies"):
        LexiconTrie.from_words(["a", "b"], [1.0], TOK)


def test_large_random_lexicon_round_trips():
    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("abcdef"), rng.integers(1, 9))) for _ in range(3000)})
    trie = LexiconTrie.from_words(words, list(rng.uniform(1, 10, len(words))), TOK)
    assert trie.num_words == len(words)
    for w in words:
        assert trie.words[trie.word_id(trie.find(ids(w)))] == w


def test_word_log_probs_of_looks_words_up_and_survives_pickling() -> None:
    tokenizer = CharTokenizer("abcdefghijklmnopqrstuvwxyz")
    trie = LexiconTrie.from_words(["ab", "abc", "bad"], [1.0, 2.0, 5.0], tokenizer)
    want = [float(trie.word_log_probs[trie.words.index(w)]) for w in ("bad", "ab")]
    assert trie.word_log_probs_of(["bad", "ab"]).tolist() == want
    copy = pickle.loads(pickle.dumps(trie))
    assert copy.word_log_probs_of(["bad", "ab"]).tolist() == want
    with pytest.raises(KeyError):
        trie.word_log_probs_of(["cab"])
