"""The Yandex Cup 2023 baseline: first-letter candidates ranked by DTW to the key-centre polyline.

Candidates are the lexicon words whose first key is the key nearest to the swipe's first point
(optionally also keys whose centres lie within ``first_key_radius`` of that point). Each candidate
is scored by the dynamic-time-warping distance between the resampled swipe and the resampled
polyline through the centres of the word's keys; the closest words win.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.baselines.common import (
    Candidates,
    WordTemplates,
    build_templates,
    key_units,
    resample,
    top_candidates,
)
from swipe.keyboard import Layout
from swipe.lexicon import Lexicon
from swipe.templates import dtw_distances

__all__ = ["DTWConfig", "DTWDecoder", "dtw_distances"]

@dataclass(frozen=True)
class DTWConfig:
    """Settings of :class:`DTWDecoder`.

    Attributes
    ----------
    num_points : int
        Points the swipe and every template are resampled to.
    first_key_radius : float
        Besides the nearest key, also keys whose centres are within this distance (key units) of
        the first point start candidates; 0 keeps the nearest key only.
    top_k : int
        Candidates returned per swipe.
    """

    num_points: int = 32
    first_key_radius: float = 0.0
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.num_points < 2:
            raise ValueError(f"num_points must be at least 2, got {self.num_points}")
        if self.first_key_radius < 0 or self.top_k < 1:
            raise ValueError("first_key_radius must be >= 0 and top_k >= 1")


class DTWDecoder:
    """First-letter candidates ranked by DTW distance (smaller is better; score = -distance).

    Parameters
    ----------
    layout : Layout
        The keyboard the swipes were drawn on.
    lexicon : Lexicon
        Candidate words; frequencies are not used (equal distances keep lexicon order).
    config : DTWConfig
        Settings.
    """

    def __init__(self, layout: Layout, lexicon: Lexicon, config: DTWConfig = DTWConfig()) -> None:
        self.layout = layout
        self.config = config
        self.templates: WordTemplates = build_templates(layout, lexicon, config.num_points)
        self._centers = key_units(layout, layout.centers[:, 0], layout.centers[:, 1])
        self._by_first_key = [np.flatnonzero(self.templates.first_key == k) for k in range(layout.num_keys)]

    def start_keys(self, x0: float, y0: float) -> np.ndarray:
        """Indices of the keys a swipe starting at pixel ``(x0, y0)`` may begin a word on."""
        nearest = int(self.layout.nearest_keys_exact(np.array([x0]), np.array([y0]))[0])
        if self.config.first_key_radius <= 0:
            return np.array([nearest])
        start = key_units(self.layout, np.array([x0]), np.array([y0]))[0]
        near = np.flatnonzero(np.linalg.norm(self._centers - start, axis=1) <= self.config.first_key_radius)
        return np.union1d(near, [nearest])

    def decode(self, x: np.ndarray, y: np.ndarray) -> Candidates:
        """The ``top_k`` best ``(score, word)`` candidates for a swipe given in pixels."""
        index = np.concatenate([self._by_first_key[k] for k in self.start_keys(float(x[0]), float(y[0]))])
        if len(index) == 0:
            return []
        query = resample(key_units(self.layout, x, y), self.config.num_points)
        distances = dtw_distances(query, self.templates.points[index])
        return top_candidates(-distances, self.templates.words, index, self.config.top_k)
