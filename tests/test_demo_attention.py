"""Tests of the models' attention maps (``EncoderDecoder.attention_maps``), which the demo draws."""

from __future__ import annotations

import pytest
import torch
from test_models import LAYOUTS, make_swipes, tiny_model

from swipe.batch import SwipeBatch
from swipe.models.attention import MultiHeadAttention

WORDS = ["hello", "ok", "привет"]


def test_attention_weights_are_what_attend_averages_with():
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 4, dropout=0.0).eval()
    x, context = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    mask = torch.ones(3, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 4:] = False
    key, value = attention.keys_values(context)
    with torch.no_grad():
        weights = attention.weights(x, key, mask)
        by_hand = attention.out((weights @ value).transpose(1, 2).reshape(3, 5, 16))
        torch.testing.assert_close(by_hand, attention.attend(x, key, value, mask))
    assert float(weights[1, ..., 4:].abs().max()) == 0.0


@pytest.mark.parametrize("arch", ["transformer-postnorm", "transformer-prenorm", "conformer", "lstm"])
def test_attention_maps_cover_each_character_and_ignore_padding(arch):
    model = tiny_model(arch)
    ids = [next(i for i, lay in enumerate(LAYOUTS) if lay.can_type(w[0])) for w in WORDS]
    swipe, pad = make_swipes([30, 12, 21], ids, seed=1)
    maps = model.attention_maps(swipe, pad, WORDS)
    layers, heads = (2, 2) if arch != "lstm" else (1, 1)
    assert maps.weights.shape == (3, layers, heads, len("привет") + 1, 30)
    assert maps.word_lengths.tolist() == [5, 2, 6]
    for b, word in enumerate(WORDS):
        n = int(maps.lengths[b])
        rows = maps.weights[b, :, :, : len(word) + 1, :n].sum(-1)
        torch.testing.assert_close(rows, torch.ones_like(rows))  # a distribution per character
        assert float(maps.weights[b, :, :, len(word) + 1 :].abs().sum()) == 0.0
        assert float(maps.weights[b, ..., n:].abs().sum()) == 0.0
    # A swipe alone, unpadded, gets the same maps as within the padded batch.
    alone = SwipeBatch(*(t[1:2, :12] if t.dim() > 1 else t[1:2] for t in swipe))
    single = model.attention_maps(alone, pad[1:2, :12], WORDS[1:2]).weights[0]
    torch.testing.assert_close(single, maps.weights[1, :, :, :3, :12], atol=1e-5, rtol=1e-4)

def test_attention_maps_refuse_words_the_model_cannot_write_and_training_mode():
    model = tiny_model("transformer-postnorm")
    swipe, pad = make_swipes([10], [0])
    with pytest.raises(ValueError, match="cannot write"):
        model.attention_maps(swipe, pad, ["a1"])
    with pytest.raises(ValueError, match="1 words for"):
        model.attention_maps(*make_swipes([10, 9], [0, 0]), ["a"])
    with pytest.raises(ValueError, match="eval mode"):
        model.train().attention_maps(swipe, pad, ["a"])
