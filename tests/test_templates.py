"""Word templates (swipe.templates): resampling, DTW, channel scores and candidate rescoring."""

from __future__ import annotations

import numpy as np
import pytest

from swipe.keyboard import LayoutError, bundled_layout
from swipe.lexicon import Lexicon
from swipe.shark2 import Shark2Config, Shark2Decoder
from swipe.templates import (
    TemplateRescorer,
    TemplateScoring,
    dtw_distances,
    pad_polylines,
    resample,
    resample_many,
    template_distances,
    template_distances_many,
    template_log_likelihoods,
)

LAYOUT = bundled_layout("hws_fitted")


def word_curve(
    word: str, points_per_key: int = 8, shift: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """A pixel curve drawn through the key centres of ``word`` (moved by ``shift`` pixels)."""
    centres = np.array([LAYOUT.centers[LAYOUT.key_index_for_char(c)] for c in word], np.float64) + shift
    if len(centres) == 1:
        return centres[:, 0].repeat(3), centres[:, 1].repeat(3)
    t = np.linspace(0, len(centres) - 1, points_per_key * (len(centres) - 1) + 1)
    knots = np.arange(len(centres))
    return np.interp(t, knots, centres[:, 0]), np.interp(t, knots, centres[:, 1])


def reference_dtw(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook O(n m) DTW with Euclidean local cost."""
    n, m = len(a), len(b)
    table = np.full((n + 1, m + 1), np.inf)
    table[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = np.linalg.norm(a[i - 1] - b[j - 1])
            table[i, j] = cost + min(table[i - 1, j], table[i, j - 1], table[i - 1, j - 1])
    return float(table[n, m])


# ---- DTW --------------------------------------------------------------------------------------


def test_dtw_hand_made_sequences() -> None:
    line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    shifted = line + [0.0, 1.0]
    stretched = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 0.0]])
    got = dtw_distances(line, np.stack([line, shifted]))
    assert got == pytest.approx([0.0, 3.0])
    # A time-warped copy (points repeated) costs nothing; the reverse costs 2 + 0 + 2 at best.
    assert dtw_distances(stretched, line[None])[0] == pytest.approx(0.0)
    assert dtw_distances(line, line[None, ::-1])[0] == pytest.approx(4.0)


def test_dtw_matches_reference_on_random_sequences() -> None:
    rng = np.random.default_rng(0)
    query = rng.normal(size=(7, 2))
    templates = rng.normal(size=(5, 9, 2))
    want = [reference_dtw(query, t) for t in templates]
    assert dtw_distances(query, templates) == pytest.approx(want, rel=1e-5)


def test_dtw_takes_one_query_per_template_in_chunks() -> None:
    rng = np.random.default_rng(2)
    queries = rng.normal(size=(2100, 6, 2))
    templates = rng.normal(size=(2100, 5, 2))
    got = dtw_distances(queries, templates)
    for i in (0, 1, 2047, 2048, 2099):
        assert got[i] == pytest.approx(dtw_distances(queries[i], templates[i : i + 1])[0])
    assert got[7] == pytest.approx(reference_dtw(queries[7], templates[7]), rel=1e-5)


# ---- resampling -------------------------------------------------------------------------------


def test_resample_gives_equidistant_points_along_the_path() -> None:
    corner = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 3.0]])
    want = [[0, 0], [1, 0], [2, 0], [3, 0], [3, 1], [3, 2], [3, 3]]
    assert resample(corner, 7) == pytest.approx(np.array(want, np.float64))
    # Uneven vertex spacing and repeated vertices on a straight line: equal steps all the same.
    uneven = np.array([[0.0, 0.0], [0.1, 0.2], [0.1, 0.2], [1.0, 2.0], [3.0, 6.0]])
    steps = np.linalg.norm(np.diff(resample(uneven, 20), axis=0), axis=1)
    assert steps == pytest.approx(np.full(19, np.hypot(3.0, 6.0) / 19))


def test_resample_many_matches_one_at_a_time_and_handles_taps() -> None:
    rng = np.random.default_rng(1)
    polylines = [rng.normal(size=(k, 2)) for k in (1, 2, 5, 9)] + [np.zeros((4, 2))]
    many = resample_many(pad_polylines(polylines), 16)
    for p, got in zip(polylines, many, strict=True):
        assert got == pytest.approx(resample(p, 16))
        assert got[0] == pytest.approx(p[0]) and got[-1] == pytest.approx(p[-1])
    assert many[0] == pytest.approx(np.repeat(polylines[0], 16, axis=0))  # one point: a tap
    with pytest.raises(ValueError):
        resample(np.zeros((0, 2)), 8)


# ---- channel scores ------------------------------------------------------------------------


def test_the_drawn_word_matches_best_even_when_shifted() -> None:
    words = ["hello", "help", "jello", "hells", "world"]
    for shift in ((0.0, 0.0), (12.0, -9.0)):  # a third of a key sideways, a seventh up
        scores = template_log_likelihoods(LAYOUT, *word_curve("hello", shift=shift), words)
        assert scores.shape == (5,) and int(np.argmax(scores)) == 0
    exact = template_log_likelihoods(LAYOUT, *word_curve("hello"), ["hello"])
    assert exact[0] == pytest.approx(0.0, abs=0.01)  # every distance (nearly) 0


def test_taps_are_scored_by_distance_to_the_key() -> None:
    x, y = word_curve("i")
    scores = template_log_likelihoods(LAYOUT, x, y, ["i", "o", "in"])
    assert scores[0] == pytest.approx(0.0) and scores[0] > scores[1] > scores[2]


def test_words_the_layout_cannot_type_are_an_error() -> None:
    with pytest.raises(LayoutError, match="no key"):
        template_log_likelihoods(LAYOUT, *word_curve("cat"), ["naïve"])


def test_the_rescorers_defaults_are_the_shark2_baselines() -> None:
    assert Shark2Config().scoring == TemplateScoring()


def test_the_shark2_baseline_scores_words_as_the_templates_do() -> None:
    words = ["hello", "help", "hell", "jello", "hells", "yellow", "world"]
    freqs = np.array([50.0, 40.0, 30.0, 20.0, 10.0, 5.0, 1.0])
    config = Shark2Config(end_radius=5.0, start_radius=5.0)
    decoder = Shark2Decoder(LAYOUT, Lexicon(words, freqs, "test"), config)
    rng = np.random.default_rng(0)
    x, y = word_curve("hello")
    x, y = x + rng.normal(0, 6, len(x)), y + rng.normal(0, 6, len(y))
    ranked = decoder.decode(x, y)
    got = [score for score, _ in ranked]
    log_prior = np.log(freqs / freqs.sum())
    ranked_words = [w for _, w in ranked]
    priors = log_prior[[words.index(w) for w in ranked_words]]
    want = template_log_likelihoods(LAYOUT, x, y, ranked_words) + priors
    assert got == pytest.approx(want, rel=1e-3, abs=1e-3)


# ---- rescoring ----------------------------------------------------------------------------------


def test_rescoring_moves_the_word_the_curve_follows_to_the_top() -> None:
    candidates = [(-1.0, "help"), (-1.5, "hello"), (-4.0, "world")]
    x, y = word_curve("hello")
    assert TemplateRescorer(0.0).rescore(candidates, LAYOUT, x, y) == candidates
    rescored = TemplateRescorer(1.0).rescore(candidates, LAYOUT, x, y)
    assert [w for _, w in rescored] == ["hello", "help", "world"]
    want = -1.5 + TemplateRescorer(1.0).match_log_likelihoods(LAYOUT, x, y, ["hello"])[0]
    assert rescored[0][0] == pytest.approx(want)
    # The prior enters the template score with its own weight.
    priors = np.array([0.0, -50.0, 0.0])
    rescored = TemplateRescorer(1.0, prior_weight=1.0).rescore(candidates, LAYOUT, x, y, priors)
    assert rescored[0][1] == "help"
    assert TemplateRescorer(1.0, prior_weight=0.0).rescore(candidates, LAYOUT, x, y, priors)[0][1] == "hello"


def test_a_swipe_through_the_key_centres_reads_its_word_first() -> None:
    # "party" and "pay" have close templates (r and t lie near the line from a to y): the channels,
    # as wide as real swipes need, score them almost alike, and the decoder prefers "pay".
    x, y = word_curve("party")
    candidates = [(-1.0, "pay"), (-2.4, "party"), (-2.5, "part")]
    sloppy = TemplateRescorer(0.5, precise_log_odds=-np.inf).rescore(candidates, LAYOUT, x, y)
    assert [w for _, w in sloppy][0] == "pay"
    assert [w for _, w in TemplateRescorer(0.5).rescore(candidates, LAYOUT, x, y)] == ["party", "pay", "part"]


def test_the_precise_drawing_leaves_a_sloppy_swipe_ranked_as_before() -> None:
    rng = np.random.default_rng(3)
    x, y = word_curve("party")
    x, y = x + rng.normal(0, 6, len(x)) + 8, y + rng.normal(0, 6, len(y)) - 6
    words = ["pay", "party", "part", "play", "past"]
    sloppy = template_log_likelihoods(LAYOUT, x, y, words)
    mixed = TemplateRescorer(0.5).match_log_likelihoods(LAYOUT, x, y, words)
    assert mixed == pytest.approx(sloppy, abs=1e-6)


def test_only_a_swipe_from_key_centre_to_key_centre_may_be_precise() -> None:
    rescorer = TemplateRescorer(0.5)
    assert rescorer.may_be_precise(LAYOUT, *word_curve("hello"))
    assert rescorer.may_be_precise(LAYOUT, *word_curve("a"))  # a tap on a key's centre
    assert not rescorer.may_be_precise(LAYOUT, *word_curve("hello", shift=(0.0, 0.2 * LAYOUT.key_height)))
    assert not TemplateRescorer(0.5, precise_log_odds=-np.inf).may_be_precise(LAYOUT, *word_curve("hello"))


def test_words_without_a_template_go_last() -> None:
    candidates = [(-0.5, "naïve"), (-0.7, ""), (-1.0, "hello"), (-2.0, "help")]
    rescored = TemplateRescorer(1.0).rescore(candidates, LAYOUT, *word_curve("hello"), np.zeros(4))
    assert [w for _, w in rescored] == ["hello", "help", "naïve", ""]
    assert rescored[2][0] == rescored[3][0] == -np.inf


def test_rescoring_keeps_the_order_of_ties_and_handles_no_candidates() -> None:
    x, y = word_curve("the")
    assert TemplateRescorer(1.0).rescore([], LAYOUT, x, y) == []
    rescored = TemplateRescorer(1.0).rescore([(-1.0, "the"), (-1.0, "the")], LAYOUT, x, y)
    assert [s for s, _ in rescored] == [rescored[0][0]] * 2


def test_several_swipes_are_matched_in_one_pass_to_the_last_bit() -> None:
    # Swipes of different lengths, one a tap, one with no words: each as if matched alone.
    swipes = [word_curve("hello", shift=(3.0, -2.0)), word_curve("e"), word_curve("world"), word_curve("the")]
    words = [["hello", "help", "jello"], ["e", "we"], ["world", "would", "word", "eorld"], []]
    rescorer = TemplateRescorer(0.5)
    for cache in (None, rescorer.cache(LAYOUT)):
        together = template_distances_many(LAYOUT, swipes, words, rescorer.scoring, cache)
        for (x, y), group, got in zip(swipes, words, together, strict=True):
            alone = template_distances(LAYOUT, x, y, group, rescorer.scoring, cache)
            assert got.is_tap == alone.is_tap
            for name in ("location", "shape", "ends", "elastic_location", "elastic_shape"):
                a, b = getattr(got, name), getattr(alone, name)
                assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))
                assert a is None or not len(a) or a.dtype == b.dtype
    assert together[1].is_tap and together[1].elastic_location is None and len(together[3].location) == 0
    rows = [[(-1.0, w) for w in group] for group in words[:3]] + [[]]
    priors = [np.full(len(row), -3.0) if i % 2 else None for i, row in enumerate(rows)]
    alone = [rescorer.rescore(row, LAYOUT, x, y, prior)
             for row, (x, y), prior in zip(rows, swipes, priors, strict=True)]
    assert rescorer.rescore_many(rows, LAYOUT, swipes, priors) == alone


@pytest.mark.parametrize("weight, prior, message", [
    (-1.0, 1.0, "template weight"), (float("nan"), 1.0, "template weight"), (1.0, -0.5, "prior weight"),
])
def test_rescorer_rejects_bad_weights(weight: float, prior: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TemplateRescorer(weight, prior)
    with pytest.raises(ValueError, match="sigma_shape"):
        TemplateScoring(sigma_shape=0.0)


def test_a_layout_that_types_no_lexicon_word_has_no_templates():
    from swipe.keyboard import bundled_layout
    from swipe.lexicon import Lexicon
    from swipe.shark2 import NoTemplatesError, Shark2Decoder

    with pytest.raises(NoTemplatesError, match="layout 'default' cannot type any of its words"):
        Shark2Decoder(bundled_layout("default"), Lexicon(["hello", "world"], [2.0, 1.0], name="latin"))
