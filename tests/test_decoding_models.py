"""Decoding with the real models: the cached, batched search equals the naive full-prefix one."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from swipe.batch import FEATURE_NAMES, SwipeBatch
from swipe.decoding import BeamOptions, LexiconTrie, build_generator
from swipe.decoding.naive import NaiveBeamSearch
from swipe.keyboard import bundled_layout
from swipe.models import build_model, preset
from swipe.tokenizers import CharTokenizer

LAYOUT = bundled_layout("qwerty_en")
TOKENIZER = CharTokenizer.from_layouts([LAYOUT])
WORDS = ["the", "they", "them", "then", "hello", "help", "world", "word", "work", "a", "an", "and",
         "swipe", "sweet", "keyboard", "key", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"]


def tiny(name: str):
    config = preset(name)
    if config.transformer is not None:
        arch = dataclasses.replace(config.transformer, d_model=32, num_encoder_layers=1, num_decoder_layers=2,
                                   num_heads=2, dim_feedforward=32)
        return dataclasses.replace(config, transformer=arch)
    arch = dataclasses.replace(config.rnn, d_model=32, encoder_hidden_size=32, decoder_hidden_size=32,
                               attention_size=32, num_encoder_layers=1)
    return dataclasses.replace(config, rnn=arch)


def random_batch(num: int, seed: int) -> tuple[SwipeBatch, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 20, (num,), generator=gen)
    t = int(lengths.max())
    pad = torch.arange(t).unsqueeze(0) >= lengths.unsqueeze(1)
    coords = torch.rand(num, t, 2, generator=gen) * torch.tensor([LAYOUT.width, LAYOUT.height])
    keys = torch.from_numpy(LAYOUT.nearest_keys(coords[..., 0].numpy(), coords[..., 1].numpy())).long()
    features = torch.randn(num, t, len(FEATURE_NAMES), generator=gen)
    swipe = SwipeBatch(
        coords=coords.masked_fill(pad.unsqueeze(-1), 0.0),
        features=features.masked_fill(pad.unsqueeze(-1), 0.0),
        nearest_keys=keys.masked_fill(pad, 0),
        layout_ids=torch.zeros(num, dtype=torch.int64),
        lengths=lengths,
    )
    return swipe, pad


@pytest.mark.parametrize("name", ["base", "small", "rnn"])
def test_real_model_cached_beam_equals_naive(name):
    torch.manual_seed(0)
    model = build_model(tiny(name), [LAYOUT], TOKENIZER).eval()
    trie = LexiconTrie.from_words(WORDS, list(range(1, len(WORDS) + 1)), TOKENIZER)
    swipe, pad = random_batch(5, seed=1)
    options = BeamOptions(beam_size=4, prior_weight=0.3)
    cached = build_generator("beam", options, model, TOKENIZER, trie).generate(swipe, pad)
    naive = NaiveBeamSearch(model, TOKENIZER, options, trie).generate(swipe, pad)
    for row_c, row_n in zip(cached, naive, strict=True):
        assert [w for _, w in row_c] == [w for _, w in row_n]
        assert [s for s, _ in row_c] == pytest.approx([s for s, _ in row_n], abs=1e-4)
        assert len(row_c) == 4 and {w for _, w in row_c} <= set(WORDS)
    greedy = build_generator("greedy", {"prior_weight": 0.3}, model, TOKENIZER, trie).generate(swipe, pad)
    beam1 = build_generator("beam", {"beam_size": 1, "prior_weight": 0.3}, model, TOKENIZER, trie)
    for row_g, row_b in zip(greedy, beam1.generate(swipe, pad), strict=True):
        assert row_g[0][1] == row_b[0][1] and row_g[0][0] == pytest.approx(row_b[0][0], abs=1e-6)
