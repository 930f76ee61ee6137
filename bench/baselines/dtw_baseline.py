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

_CHUNK = 2048


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


def dtw_distances(query: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """DTW distance from one sequence to many equally long ones, vectorised over the templates.

    The local cost is the Euclidean distance between points; steps are (1, 0), (0, 1) and (1, 1);
    the distance is the cost of the cheapest warping path from the first to the last points.

    Parameters
    ----------
    query : numpy.ndarray
        ``(n, 2)`` points.
    templates : numpy.ndarray
        ``(C, m, 2)`` points.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float32 distances.
    """
    query = np.asarray(query, np.float32)
    templates = np.asarray(templates, np.float32)
    if len(templates) > _CHUNK:  # bound the (C, n, m) cost tables' memory
        return np.concatenate([dtw_distances(query, templates[s : s + _CHUNK])
                               for s in range(0, len(templates), _CHUNK)])
    # cost[c, i, j] = |query[i] - templates[c, j]|
    cost = np.hypot(query[None, :, None, 0] - templates[:, None, :, 0],
                    query[None, :, None, 1] - templates[:, None, :, 1])
    count, n, m = cost.shape
    # Row i of the DTW table from row i - 1 in closed form (a min-plus prefix scan):
    #   D[i, j] = c[i, j] + min(D[i-1, j], D[i-1, j-1], D[i, j-1])
    #           = S[j] + min_{k <= j} (a[k] - S[k-1]),  a[k] = min(D[i-1, k], D[i-1, k-1]),
    # where S is the running sum of row i's costs.
    prev = np.cumsum(cost[:, 0, :], axis=1)
    for i in range(1, n):
        shifted = np.concatenate([np.full((count, 1), np.inf, np.float32), prev[:, :-1]], axis=1)
        a = np.minimum(prev, shifted)
        running = np.cumsum(cost[:, i, :], axis=1)
        before = np.concatenate([np.zeros((count, 1), np.float32), running[:, :-1]], axis=1)
        prev = running + np.minimum.accumulate(a - before, axis=1)
    return prev[:, -1]


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
