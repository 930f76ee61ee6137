"""The decoding pipeline (numpy, any backend): its beam search gives the PyTorch generator's
candidates, its word scoring the search's own scores, and it imports without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_decoding import TOKENIZER, assert_same_candidates, make_words
from test_decoding_standin import StandinCurves, build_standin

from swipe.decoding import BeamOptions, LexiconTrie, build_generator
from swipe.decoding.pipeline import (
    Pipeline,
    Preprocessing,
    Settings,
    Vocabulary,
    merge_views,
    scoring_below,
)
from swipe.decoding.torch_backend import TorchBackend

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trie() -> LexiconTrie:
    words, freqs = make_words()
    return LexiconTrie.from_words(words, freqs, TOKENIZER)


def pipeline(curves: StandinCurves, settings: Settings, trie: LexiconTrie | None) -> Pipeline:
    backend = TorchBackend(build_standin(), curves.layouts)
    vocabulary = Vocabulary(TOKENIZER.alphabet, TOKENIZER.eos_id, TOKENIZER.sos_id)
    return Pipeline(backend, vocabulary, curves.layouts, Preprocessing(None, None), settings,
                    None if trie is None else trie.flat())


@pytest.mark.parametrize("use_lexicon", [True, False])
@pytest.mark.parametrize("beam_size", [1, 5])
def test_search_equals_the_pytorch_generator(trie, use_lexicon, beam_size):
    curves = StandinCurves(23, seed=3)
    prior = 0.4 if use_lexicon else 0.0
    options = BeamOptions(beam_size=beam_size, prior_weight=prior, length_penalty=0.7, max_length=8)
    lexicon = trie if use_lexicon else None
    expected = build_generator("beam", options, build_standin(), TOKENIZER, lexicon).generate(
        *curves.batch(range(len(curves))))
    settings = Settings(beam_size=beam_size, prior_weight=prior, length_penalty=0.7, max_length=8)
    got = pipeline(curves, settings, lexicon).decode([curves.swipe(i) for i in range(len(curves))])
    assert_same_candidates(got, expected, tol=1e-6)
    assert any(got)


def test_scored_words_get_the_searchs_own_scores(trie):
    curves = StandinCurves(9, seed=5)
    decoder = pipeline(curves, Settings(beam_size=6, prior_weight=0.5, length_penalty=0.6), trie)
    swipes = [curves.swipe(i) for i in range(len(curves))]
    found = decoder.decode(swipes)
    memory = decoder.encode([(swipe, 1.0) for swipe in swipes])
    # Reversed, with a word outside the lexicon and one the alphabet cannot spell: left out.
    asked = [[w for _, w in row][::-1] + ["zzzzzz", "A!"] for row in found]
    scored = decoder.score_words(memory, asked)
    assert_same_candidates(scored, found, tol=1e-9)


def test_views_keep_each_words_best_score(trie):
    curves = StandinCurves(6, seed=7)
    swipes = [curves.swipe(i) for i in range(len(curves))]

    def decode(x_scales: tuple[float, ...], views_below: float | None = None,
               views_margin: float | None = None) -> list:
        settings = Settings(beam_size=4, prior_weight=0.3, x_scales=x_scales, views_below=views_below,
                            views_margin=views_margin)
        return pipeline(curves, settings, trie).decode(swipes)

    one, wide = decode((1.0,)), decode((1.3,))
    merged = [merge_views([a, b]) for a, b in zip(one, wide, strict=True)]
    assert_same_candidates(decode((1.0, 1.3)), merged, tol=1e-5)  # one batch of both views
    assert_same_candidates(decode((1.0, 1.3), views_below=1e9), merged, tol=1e-5)  # views after
    assert decode((1.0, 1.3), views_below=-1e9) == one  # no swipe scores below -1e9
    assert_same_candidates(decode((1.0, 1.3), views_below=1e9, views_margin=1e9), merged, tol=1e-5)
    # No two words are less than 0 apart: only the rows of one word get the other view.
    narrow = decode((1.0, 1.3), views_below=1e9, views_margin=0.0)
    assert narrow == [row if len(row) >= 2 else got for row, got in zip(one, narrow, strict=True)]
    assert any(len(row) >= 2 for row in one)


def test_views_after_the_first_search_use_their_own_beam(trie):
    curves = StandinCurves(6, seed=7)
    swipes = [curves.swipe(i) for i in range(len(curves))]

    def decode(x_scales: tuple[float, ...], beam_size: int, views_beam_size: int | None = None,
               views_below: float | None = None, wide: tuple[float, ...] = ()) -> list:
        settings = Settings(beam_size=beam_size, prior_weight=0.3, x_scales=x_scales, views_below=views_below,
                            views_beam_size=views_beam_size, wide_x_scales=wide)
        return pipeline(curves, settings, trie).decode(swipes)

    one, other = decode((1.0,), 4), decode((1.3,), 2)
    merged = [merge_views([a, b]) for a, b in zip(one, other, strict=True)]
    assert_same_candidates(decode((1.0, 1.3), 4, views_beam_size=2, views_below=1e9), merged, tol=1e-5)
    assert decode((1.0, 1.3), 4, views_beam_size=4, views_below=1e9) == decode((1.0, 1.3), 4, views_below=1e9)
    # Every view of the first search has the full beam, whatever views_beam_size says.
    assert decode((1.0, 1.3), 4, views_beam_size=2) == decode((1.0, 1.3), 4)
    assert decode((1.3,), 2) != decode((1.3,), 4)


def test_scoring_below_asks_for_a_low_best_score_and_a_close_second():
    rows = [[(-9.0, "a"), (-9.5, "b")], [(-9.0, "a"), (-14.0, "b")], [(-7.0, "a"), (-7.1, "b")],
            [(-9.0, "a")], []]
    assert scoring_below(rows, -8.0) == [0, 1, 3, 4]
    assert scoring_below(rows, -8.0, margin=4.0) == [0, 3, 4]  # row 1's best is 5 clear of its second


def test_the_pipeline_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` now raises ImportError
            "import swipe.decoding.pipeline\n"
            "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_empty_batch_decodes_to_nothing(trie):
    curves = StandinCurves(1)
    assert pipeline(curves, Settings(), trie).decode([]) == []
    assert np.isfinite(pipeline(curves, Settings(), trie).decode([curves.swipe(0)])[0][0][0])


def test_template_candidates_go_to_the_swipes_below_templates_below(trie):
    curves = StandinCurves(6, seed=11)
    swipes = [curves.swipe(i) for i in range(len(curves))]

    def decode(**settings: float | None) -> list:
        chosen = Settings(beam_size=2, prior_weight=0.3, template_candidates=3, **settings)
        return pipeline(curves, chosen, trie).decode(swipes)

    every = decode()  # views_below None: every swipe gets the matcher's words
    none = pipeline(curves, Settings(beam_size=2, prior_weight=0.3), trie).decode(swipes)
    assert every != none
    assert decode(templates_below=1e9) == every
    assert decode(templates_below=-1e9) == none
    assert decode(views_below=-1e9, templates_below=1e9) == every  # its own threshold, not the views'
