"""A SHARK2-style template matcher (Kristensson and Zhai, UIST 2004).

Every lexicon word has a template: the polyline through its key centres, resampled to ``n``
equidistant points (precomputed once for the whole lexicon). A swipe, resampled the same way, is
compared with the templates that survive start/end pruning through two channels:

* location: the mean distance between corresponding points (key units), which knows *where* on
  the keyboard the swipe was drawn;
* shape: the same distance after both curves are centred and scaled to unit size, which forgives a
  swipe drawn too small, too large or shifted.

Each channel distance ``d`` gives a Gaussian log-likelihood ``-d**2 / (2 sigma**2)``; their sum
plus ``prior_weight`` times the word's log frequency ranks the words. A tap (a swipe shorter than
``tap_length``) carries no shape, so taps are ranked by location and frequency alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bench.baselines.common import (
    Candidates,
    WordList,
    WordTemplates,
    build_templates,
    key_units,
    path_length,
    resample,
    top_candidates,
)
from swipe.keyboard import Layout


@dataclass(frozen=True)
class Shark2Config:
    """Settings of :class:`Shark2Decoder` (distances in key units: key widths / key heights).

    Attributes
    ----------
    num_points : int
        Points the swipe and every template are resampled to.
    start_radius, end_radius : float
        A word is a candidate only if its first (last) key centre is this close to the swipe's
        first (last) point.
    sigma_location, sigma_shape : float
        Standard deviations of the location and shape channel distances.
    prior_weight : float
        Weight of the log word frequency (1 = plain Bayes, 0 = no prior).
    tap_length : float
        Swipes shorter than this are taps: ranked without the shape channel.
    top_k : int
        Candidates returned per swipe.
    """

    num_points: int = 64
    start_radius: float = 1.5
    end_radius: float = 1.5
    sigma_location: float = 0.5
    sigma_shape: float = 0.1
    prior_weight: float = 1.0
    tap_length: float = 0.5
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.num_points < 2:
            raise ValueError(f"num_points must be at least 2, got {self.num_points}")
        for name in ("start_radius", "end_radius", "sigma_location", "sigma_shape"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


class ChannelDistances(NamedTuple):
    """Per-candidate quantities for one swipe (all ``(C,)`` arrays, candidates = ``index``)."""

    index: np.ndarray  # rows of the word templates
    start: np.ndarray  # distance from the swipe's first point to the word's first key centre
    end: np.ndarray  # distance from the swipe's last point to the word's last key centre
    location: np.ndarray
    shape: np.ndarray
    log_prior: np.ndarray
    is_tap: bool


def normalize_shape(points: np.ndarray) -> np.ndarray:
    """Centre curves on their centroid and scale them so the larger bounding-box side is 1.

    Parameters
    ----------
    points : numpy.ndarray
        ``(..., n, 2)`` curves; curves of zero size are centred only.
    """
    centred = points - points.mean(axis=-2, keepdims=True)
    size = (points.max(axis=-2) - points.min(axis=-2)).max(axis=-1)[..., None, None]
    return centred / np.where(size > 1e-9, size, 1.0)


class Shark2Decoder:
    """Ranks lexicon words for a swipe with location, shape and frequency channels.

    Parameters
    ----------
    layout : Layout
        The keyboard the swipes were drawn on.
    lexicon : WordList
        Candidate words and their frequencies.
    config : Shark2Config
        Settings.
    """

    def __init__(self, layout: Layout, lexicon: WordList, config: Shark2Config = Shark2Config()) -> None:
        self.layout = layout
        self.config = config
        self.templates: WordTemplates = build_templates(layout, lexicon, config.num_points)
        self._shapes = normalize_shape(self.templates.points).astype(np.float32)
        self._starts = np.ascontiguousarray(self.templates.points[:, 0])
        self._ends = np.ascontiguousarray(self.templates.points[:, -1])

    def channel_distances(self, x: np.ndarray, y: np.ndarray, start_radius: float,
                          end_radius: float) -> ChannelDistances:
        """Channel distances of the words that pass start/end pruning with the given radii."""
        gesture = key_units(self.layout, x, y)
        is_tap = path_length(gesture) < self.config.tap_length
        points = resample(gesture, self.config.num_points).astype(np.float32)
        start = np.linalg.norm(self._starts - points[0], axis=1)
        end = np.linalg.norm(self._ends - points[-1], axis=1)
        index = np.flatnonzero((start <= start_radius) & (end <= end_radius))
        location = np.linalg.norm(self.templates.points[index] - points, axis=2).mean(axis=1)
        if is_tap:
            shape = np.zeros(len(index), np.float32)
        else:
            shape = np.linalg.norm(self._shapes[index] - normalize_shape(points), axis=2).mean(axis=1)
        return ChannelDistances(index, start[index], end[index], location, shape,
                                self.templates.log_prior[index], is_tap)

    def scores(self, distances: ChannelDistances) -> np.ndarray:
        """Log-score of each candidate: Gaussian channel log-likelihoods plus the weighted prior."""
        cfg = self.config
        return (-0.5 * (distances.location / cfg.sigma_location) ** 2
                - 0.5 * (distances.shape / cfg.sigma_shape) ** 2
                + cfg.prior_weight * distances.log_prior)

    def decode(self, x: np.ndarray, y: np.ndarray) -> Candidates:
        """The ``top_k`` best ``(score, word)`` candidates for a swipe given in pixels.

        If no word passes pruning, the radii are doubled (up to three times) before giving up.
        """
        start_radius, end_radius = self.config.start_radius, self.config.end_radius
        for _ in range(4):
            distances = self.channel_distances(x, y, start_radius, end_radius)
            if len(distances.index):
                break
            start_radius, end_radius = 2 * start_radius, 2 * end_radius
        return top_candidates(self.scores(distances), self.templates.words, distances.index,
                              self.config.top_k)
