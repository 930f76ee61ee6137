"""Recording in the demo without a browser: which words are prompted, and undoing a recorded swipe."""

from __future__ import annotations

import numpy as np
import pytest

from swipe.demo import RequestError, Swipe
from swipe.demo.recorder import Recorder, words_worth_recording
from swipe.keyboard import bundled_layout

LAYOUT = bundled_layout("hws_fitted")


def a_swipe() -> Swipe:
    x = np.array([20.0, 120.0, 200.0], np.float32)
    return Swipe(LAYOUT, x, np.full(3, 90.0, np.float32), np.array([0.0, 80.0, 160.0]))


def test_short_words_abbreviations_and_contraction_pieces_are_not_prompted():
    words = ["the", "of", "a", "tv", "mrs", "iii", "didn", "don", "people", "ive", "rhythm"]
    assert words_worth_recording(words) == ["the", "people", "ive", "rhythm"]


def test_undo_takes_the_last_recorded_swipe_back_out_of_the_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_bytes(b'{"word": "old"}')  # an earlier line, cut off before its newline
    before = path.read_bytes()
    recorder = Recorder(path)
    device = {"screen_width": 390, "screen_height": 844, "pixel_ratio": 3, "scale": 1,
              "pointer_type": "touch"}
    try:
        recorder.append(a_swipe(), "world", device)
        assert recorder.append(a_swipe(), "people", device) == 3
        assert recorder.undo() == "people" and recorder.undo() == "world"
        assert path.read_bytes() == before and recorder.count == 1
        with pytest.raises(RequestError, match="nothing recorded"):
            recorder.undo()
        recorder.append(a_swipe(), "world", device)
        with open(path, "ab") as f:  # another program appends: the file is left alone
            f.write(b'{"word": "theirs"}\n')
        changed = path.read_bytes()
        with pytest.raises(RequestError, match="changed"):
            recorder.undo()
        assert path.read_bytes() == changed
    finally:
        recorder.close()
