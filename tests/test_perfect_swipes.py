"""Words drawn through their key centres read first with the shipped English model's own settings
(``bench/perfect_swipes.py`` measures the share over the 2,000 most frequent words)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.perfect_swipes import key_centre_swipe, stops
from swipe.decoder import load_decoder


@pytest.fixture(scope="module")
def decoder():
    return load_decoder("en_hws")


def test_a_key_centre_swipe_is_drawn_at_a_real_swipes_pace(decoder) -> None:
    layout = decoder.layouts[0]
    curve = key_centre_swipe("hello", layout)
    assert stops("hello") == "helo"
    assert np.all(np.diff(curve.t) > 0) and 700 < curve.t[-1] < 1500  # about 60 Hz, 10 keys/s
    centre = layout.centers[layout.key_index_for_char("o")]
    assert (curve.x[-1], curve.y[-1]) == pytest.approx(centre, abs=0.01)
    tap = key_centre_swipe("a", layout)
    assert len(tap.x) == 2 and tap.x[0] == tap.x[1]


def test_perfectly_drawn_words_read_first(decoder) -> None:
    # Read as a rival when the templates knew only sloppy drawings: hello -> help, party -> pay,
    # power -> per, child -> cold; quite -> que (the search never finds it: the template matcher
    # proposes it for a swipe that starts and ends on key centres).
    words = ["hello", "party", "power", "child", "quite"]
    rows = decoder.decode([key_centre_swipe(word, decoder.layouts[0]) for word in words])
    assert [row[0].word for row in rows] == words
