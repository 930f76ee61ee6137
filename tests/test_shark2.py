"""The SHARK2 template matcher (swipe.shark2) proposes exactly the words and scores of scoring
every word that passes pruning the plain way (bench/bench_matcher.py's PlainMatcher), on real
English swipes and on swipes the tests draw: swipes through key centres (words with equal templates
tie), noisy ones, swipes drawn beside the keys (the radii are doubled), taps, and swipes far from
any key (nothing is found)."""

from __future__ import annotations

import json
import pickle
from functools import lru_cache

import numpy as np
import pytest

from bench.bench_matcher import PlainMatcher
from swipe.keyboard import bundled_layout
from swipe.lexicon import Lexicon, load_lexicon
from swipe.resources import REAL_EN_SWIPES
from swipe.shark2 import ChannelDistances, Shark2Config, Shark2Decoder, dtw_lower_bounds
from swipe.templates import dtw_distances

LAYOUT = bundled_layout("hws_fitted")
Swipe = tuple[np.ndarray, np.ndarray]


@lru_cache(maxsize=1)  # a matcher and its plain twin hold ~150 MB
def matchers(config: Shark2Config) -> tuple[Shark2Decoder, PlainMatcher]:
    decoder = Shark2Decoder(LAYOUT, load_lexicon("en"), config)
    return decoder, PlainMatcher(decoder)


def real_swipes(count: int) -> list[Swipe]:
    rows = [json.loads(line) for line in REAL_EN_SWIPES.read_text(encoding="utf-8").splitlines()[:count]]
    return [(np.asarray(r["curve"]["x"], np.float64), np.asarray(r["curve"]["y"], np.float64)) for r in rows]


def drawn_swipes(seed: int) -> list[Swipe]:
    """Swipes through key centres (some with noise, some shifted off the keys), taps, and a swipe
    far beside the keyboard."""
    rng = np.random.default_rng(seed)
    kw, kh = LAYOUT.key_width, LAYOUT.key_height
    out = []
    for word in ["to", "too", "hello", "helo", "pay", "party", "minimum", "the", "tee", "a", "i",
                 "good", "god", "keyboard", "swipe", "aaa"]:
        centres = np.array([LAYOUT.centers[LAYOUT.key_index_for_char(c)] for c in word], np.float64)
        t = np.linspace(0, len(centres) - 1, 6 * (len(centres) - 1) + 1)
        knots = np.arange(len(centres))
        x, y = np.interp(t, knots, centres[:, 0]), np.interp(t, knots, centres[:, 1])
        out.append((x, y))
        out.append((x + rng.normal(0, 0.3 * kw, len(x)), y + rng.normal(0, 0.3 * kh, len(y))))
        out.append((x * 0.8 + 0.3 * kw, y - 1.5 * kh))  # narrower and above the keys
    for c in "aqmp":  # taps: one point, a short wiggle
        cx, cy = (float(v) for v in LAYOUT.centers[LAYOUT.key_index_for_char(c)])
        out.append((np.array([cx]), np.array([cy])))
        out.append((cx + rng.normal(0, 0.05 * kw, 5), cy + rng.normal(0, 0.05 * kh, 5)))
    out.append((np.array([-40 * kw, -30 * kw]), np.array([0.0, kh])))  # nothing near: no candidates
    return out


def assert_same(decoder: Shark2Decoder, plain: PlainMatcher, swipes: list[Swipe]) -> None:
    for i, (x, y) in enumerate(swipes):
        have, want = decoder.decode(x, y), plain.decode(x, y)
        assert have == want, f"swipe {i}: {have} != {want}"  # words, order and scores to the bit


CONFIGS = [
    Shark2Config(top_k=4),
    Shark2Config(top_k=1, rescore_top=30),
    Shark2Config(top_k=10, rescore_top=8),
    Shark2Config(top_k=3, dtw_points=64, start_radius=0.5, end_radius=0.5),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "top1", "few_rescored", "fine"])
def test_decode_equals_scoring_every_word(config: Shark2Config) -> None:
    decoder, plain = matchers(config)
    assert_same(decoder, plain, real_swipes(60 if config == CONFIGS[0] else 20) + drawn_swipes(0))


@pytest.mark.slow
def test_decode_equals_scoring_every_word_on_all_real_swipes() -> None:
    assert_same(*matchers(CONFIGS[0]), real_swipes(800) + drawn_swipes(1))


def test_channel_distances_equal_the_plain_ones() -> None:
    decoder, plain = matchers(CONFIGS[0])
    for x, y in real_swipes(10) + drawn_swipes(2):
        for radii in [(1.0, 2.0), (0.4, 0.7), (3.0, 3.0)]:
            have, want = decoder.channel_distances(x, y, *radii), plain.channel_distances(x, y, *radii)
            for name, a, b in zip(ChannelDistances._fields, have, want, strict=True):
                assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype, name


def test_dtw_lower_bounds_lie_below_the_distances() -> None:
    rng = np.random.default_rng(3)
    query = (rng.random((32, 2)) * 10).astype(np.float32)
    templates = np.concatenate([(rng.random((200, 32, 2)) * 10),
                                query + rng.normal(0, 0.01, (50, 32, 2))]).astype(np.float32)
    distances = dtw_distances(query, templates).astype(np.float64)
    bounds = dtw_lower_bounds(query, templates[..., 0].T, templates[..., 1].T)
    assert (bounds >= 0).all() and (bounds <= distances).all()
    assert np.median(bounds / distances) > 0.3  # and bound them usefully


def test_a_pickled_matcher_decodes_the_same() -> None:
    lexicon = Lexicon(["hello", "help", "world", "word", "hell"], np.ones(5), "test")
    decoder = Shark2Decoder(LAYOUT, lexicon, Shark2Config(top_k=3))
    copy = pickle.loads(pickle.dumps(decoder))
    for x, y in drawn_swipes(4):
        assert copy.decode(x, y) == decoder.decode(x, y)
