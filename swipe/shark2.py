"""A SHARK2-style template matcher (Kristensson and Zhai, UIST 2004).

Every lexicon word has a template: the polyline through its key centres, resampled to ``n``
equidistant points (precomputed once for the whole lexicon). A swipe, resampled the same way, is
compared with the templates of the words that survive start/end pruning (first and last key
centres near the swipe's first and last points) through these channels:

* location: the mean distance between corresponding points (key units), which knows *where* on
  the keyboard the swipe was drawn;
* shape: the same distance after both curves are centred and scaled to unit size, which forgives a
  swipe drawn too small, too large or shifted;
* ends: the distances from the swipe's first and last points to the word's first and last keys
  (SHARK2 weights a curve's ends most in its location channel);
* elastic location and elastic shape: the dynamic-time-warping distances per point between the
  swipe and the template, as drawn and after normalisation, which forgive uneven speed, cut
  corners and overshoot. They are the costliest channels, so they only re-rank the
  ``rescore_top`` best words of the others.

Each channel distance ``d`` gives a Gaussian log-likelihood ``-d**2 / (2 sigma**2)``; their sum
plus ``prior_weight`` times the word's log relative frequency ranks the words.

A tap (a swipe shorter than ``tap_length``) has no shape, and its location, ends and elastic
distances all measure the same thing: how far the tap is from the word's keys. Taps are therefore
ranked by the location channel alone, with its own width ``sigma_tap``, and the prior.

The result is that of scoring every word that passes pruning, but computed faster: the templates
are kept per coordinate in contiguous arrays and grouped by their first point, and the elastic
channels are computed only for the words whose score could still reach the ``top_k``: a lower
bound of each DTW distance (see :func:`dtw_lower_bounds`) bounds every word's score from above, and
the words are rescored in the order of that bound until the next bound falls below the ``top_k``-th
best score.

The matcher is a baseline decoder of its own (``bench/baselines/run_baselines.py``) and proposes
words to the neural decoder that its beam search may have lost (``predict.py
--template-candidates``, :class:`swipe.predict.DecodeJob`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from swipe.keyboard import Layout
from swipe.lexicon import Lexicon
from swipe.templates import (
    Scratch,
    TemplateScoring,
    dtw_distances,
    elastic_log_likelihood,
    gaussian_log_likelihood,
    key_units,
    normalize_shape,
    pad_polylines,
    path_length,
    point_distances,
    resample,
    resample_many,
    rigid_log_likelihood,
)

Candidates = list[tuple[float, str]]


# Templates computed at a time: bounds the temporaries of building the whole lexicon's.
_BUILD_CHUNK = 2048

# Words whose DTW distances are computed first (the best by their score's upper bound), before the
# others whose bound still reaches the best scores found.
_ELASTIC_FIRST = 12

# The DTW recursion runs in float32, and the lower bounds are summed from distances computed
# another way (not by hypot): a computed DTW distance may lie below the exact one, and a bound above
# it, by a little rounding. Each row of the recursion (running sums, then one subtraction and one
# addition per entry) rounds by at most (2 m + 2) * 2**-24 of the table's total T (the sum of all its
# point distances, which no running sum or partial path cost exceeds), so an n x m table by at most
# 2 (n + m) * 2**-24 * T; the bounds allow four times that, and a relative 1e-5 for the distances.
_ROUNDING_OF_TABLE = 8 * 2.0**-24
_ROUNDING_RELATIVE = 1e-5


def in_chunks(compute: Callable[[Any], np.ndarray], items: Any, count: int) -> np.ndarray:
    """``compute(items)`` as float32, computed ``_BUILD_CHUNK`` items at a time (``items``: a
    sequence or array of ``count``), so the temporaries stay small."""
    out = None
    for start in range(0, count, _BUILD_CHUNK):
        part = compute(items[start : start + _BUILD_CHUNK])
        if out is None:  # one array for all, filled in place: no list of parts to join
            out = np.empty((count, *part.shape[1:]), np.float32)
        out[start : start + len(part)] = part
    assert out is not None
    return out


class NoTemplatesError(ValueError):
    """The layout can type no word of the lexicon."""


class WordTemplates(NamedTuple):
    """Every typeable lexicon word as a resampled polyline through its key centres (key units).

    Attributes
    ----------
    words : list of str
        The words, in lexicon order (words the layout cannot type are left out).
    log_prior : numpy.ndarray
        ``(W,)`` log relative frequency of each word (the frequencies normalised to sum to 1).
    points : numpy.ndarray
        ``(W, n, 2)`` float32, ``n`` equidistant points along each word's key-centre polyline.
    first_key : numpy.ndarray
        ``(W,)`` int64 index of each word's first key in the layout.
    skipped : int
        Number of lexicon words left out because the layout has no key for one of their letters.
    """

    words: list[str]
    log_prior: np.ndarray
    points: np.ndarray
    first_key: np.ndarray
    skipped: int


def build_templates(layout: Layout, lexicon: Lexicon, n: int) -> WordTemplates:
    """Resampled key-centre polylines of every lexicon word the layout can type.

    Parameters
    ----------
    layout : Layout
        The keyboard.
    lexicon : Lexicon
        Words and frequencies.
    n : int
        Points per template.

    Raises
    ------
    NoTemplatesError
        The layout can type no word of the lexicon.
    """
    centers = key_units(layout, layout.centers[:, 0], layout.centers[:, 1])
    key_of: dict[str, int | None] = {}  # character -> key index, None where the layout has none
    words, freqs, polylines, first = [], [], [], []
    skipped = 0
    for word, freq in zip(lexicon.words, lexicon.frequencies, strict=True):
        for c in word:
            if c not in key_of:
                key_of[c] = layout.key_index_for_char(c) if layout.can_type(c) else None
        keys = [key_of[c] for c in word]
        if not keys or None in keys:
            skipped += 1
            continue
        words.append(word)
        freqs.append(freq)
        polylines.append(centers[keys])
        first.append(keys[0])
    if not words:
        raise NoTemplatesError(
            f"lexicon {lexicon.name!r}: layout {layout.name!r} cannot type any of its words"
        )
    points = in_chunks(lambda chunk: resample_many(pad_polylines(chunk), n), polylines, len(polylines))
    # Zero frequencies are raised to the smallest positive one, so that no log prior is -inf.
    freq = np.asarray(freqs, np.float64)
    freq = np.maximum(freq, freq[freq > 0].min() if (freq > 0).any() else 1.0)
    log_prior = np.log(freq / freq.sum())
    return WordTemplates(words, log_prior, points, np.asarray(first, np.int64), skipped)


def top_candidates(scores: np.ndarray, words: Sequence[str], index: np.ndarray, k: int) -> Candidates:
    """The ``k`` best ``(score, word)`` pairs, best (highest score) first.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(C,)`` scores of candidate words ``words[index[c]]``; higher is better.
    """
    best = np.argsort(-scores, kind="stable")[:k]  # equal scores keep their order in ``index``
    return [(float(scores[b]), words[int(index[b])]) for b in best]


@dataclass(frozen=True)
class Shark2Config:
    """Settings of :class:`Shark2Decoder` (distances in key units: key widths / key heights).

    The defaults were tuned on the odd lines of the real English development swipes
    (``bench/baselines/tune_shark2.py``); the tuning runs are in ``bench/RESULTS.md``. The channel settings'
    defaults are :class:`swipe.templates.TemplateScoring`'s, which ``predict.py
    --template-weight`` scores with.

    Attributes
    ----------
    num_points : int
        Points the swipe and every template are resampled to for the location and shape channels.
    dtw_points : int
        Points per curve for the elastic (DTW) channels.
    start_radius, end_radius : float
        A word is a candidate only if its first (last) key centre is this close to the swipe's
        first (last) point.
    sigma_location, sigma_shape, sigma_ends, sigma_elastic_location, sigma_elastic_shape : float
        Standard deviations of the channel distances (``sigma_ends`` applies to the root of the
        sum of the squared start and end distances).
    prior_weight : float
        Weight of the log word frequency (1 = plain Bayes, 0 = no prior).
    rescore_top : int
        How many of the best words by the other channels the elastic channels re-rank.
    sigma_tap : float
        Standard deviation of the location channel for taps.
    tap_length : float
        Swipes shorter than this are taps, ranked by location and prior only.
    top_k : int
        Candidates returned per swipe.
    """

    num_points: int = TemplateScoring.num_points
    dtw_points: int = TemplateScoring.dtw_points
    start_radius: float = 1.0
    end_radius: float = 2.0
    sigma_location: float = TemplateScoring.sigma_location
    sigma_shape: float = TemplateScoring.sigma_shape
    sigma_ends: float = TemplateScoring.sigma_ends
    sigma_elastic_location: float = TemplateScoring.sigma_elastic_location
    sigma_elastic_shape: float = TemplateScoring.sigma_elastic_shape
    prior_weight: float = 1.0
    rescore_top: int = 100
    sigma_tap: float = TemplateScoring.sigma_tap
    tap_length: float = TemplateScoring.tap_length
    top_k: int = 10

    def __post_init__(self) -> None:
        _ = self.scoring  # building them checks the channel settings
        if not (self.start_radius > 0 and self.end_radius > 0):
            raise ValueError(f"start_radius and end_radius must be positive, got "
                             f"{self.start_radius} and {self.end_radius}")
        if self.rescore_top < 1 or self.top_k < 1:
            raise ValueError("rescore_top and top_k must be at least 1")

    @property
    def scoring(self) -> TemplateScoring:
        """The channel settings, as ``predict.py --template-weight`` takes them."""
        return TemplateScoring(
            num_points=self.num_points, dtw_points=self.dtw_points, sigma_location=self.sigma_location,
            sigma_shape=self.sigma_shape, sigma_ends=self.sigma_ends,
            sigma_elastic_location=self.sigma_elastic_location, sigma_elastic_shape=self.sigma_elastic_shape,
            sigma_tap=self.sigma_tap, tap_length=self.tap_length,
        )


class ChannelDistances(NamedTuple):
    """Per-candidate channel distances for one swipe (``(C,)`` arrays; candidates = ``index``)."""

    index: np.ndarray  # rows of the word templates
    start: np.ndarray  # swipe's first point to the word's first key centre
    end: np.ndarray  # swipe's last point to the word's last key centre
    location: np.ndarray
    shape: np.ndarray
    log_prior: np.ndarray
    is_tap: bool


def base_scores(distances: ChannelDistances, config: Shark2Config) -> np.ndarray:
    """Log-score of each candidate from the location, shape and end channels and the prior."""
    ends = np.hypot(distances.start.astype(np.float64), distances.end.astype(np.float64))
    rigid = rigid_log_likelihood(distances.location, distances.shape, ends, distances.is_tap, config.scoring)
    return rigid + config.prior_weight * distances.log_prior


class ElasticDistances(NamedTuple):
    """DTW distances per point between a swipe and some templates (``(C,)`` arrays)."""

    location: np.ndarray  # as drawn, key units
    shape: np.ndarray  # both curves centred and scaled to unit size (see normalize_shape)


def elastic_scores(elastic: ElasticDistances, config: Shark2Config) -> np.ndarray:
    """Log-likelihood of the elastic (DTW) channel distances."""
    return elastic_log_likelihood(elastic.location, elastic.shape, config.scoring)


def min_over_axis_1(values: np.ndarray) -> np.ndarray:
    """``values.min(axis=1)`` of an ``(a, b, c)`` array, by halves, in place (numpy reduces a
    middle axis slowly): ``values`` is overwritten."""
    size = values.shape[1]
    while size > 1:
        half = size // 2
        np.minimum(values[:, :half], values[:, half : 2 * half], out=values[:, :half])
        if size % 2:
            np.minimum(values[:, 0], values[:, size - 1], out=values[:, 0])
        size = half
    return values[:, 0]


def dtw_lower_bounds(query: np.ndarray, templates_x: np.ndarray, templates_y: np.ndarray,
                     scratch: Scratch | None = None) -> np.ndarray:
    """Lower bounds of :func:`swipe.templates.dtw_distances` from a query to many templates.

    A warping path visits every row and every column of the table, and its first and last cells
    are the corners, so its cost is at least the corners' costs plus the cheapest cell of each
    other row (and likewise of each other column). The bound is lowered by an allowance for
    rounding, so that it lies below the computed distance too.

    Parameters
    ----------
    query : numpy.ndarray
        ``(n, 2)`` float32 points.
    templates_x, templates_y : numpy.ndarray
        ``(m, C)`` float32 coordinates of the templates' points (template ``c`` in column ``c``).
    scratch : Scratch, optional
        Where to keep the work arrays.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float64, each at most the template's computed DTW distance (and at least 0).
    """
    n, m = len(query), len(templates_x)
    # squared[i, j, c] = |query[i] - template c's point j|**2, the templates innermost.
    scratch = Scratch() if scratch is None else scratch
    shape = (n, m, templates_x.shape[1])
    squared = np.subtract(templates_x[None], query[:, 0, None, None], out=scratch.array("table", shape))
    squared *= squared
    dy = np.subtract(templates_y[None], query[:, 1, None, None], out=scratch.array("table_y", shape))
    dy *= dy
    squared += dy
    corners = (np.sqrt(squared[0, 0].astype(np.float64))
               + np.sqrt(squared[-1, -1].astype(np.float64)))
    columns = np.sqrt(squared[:, 1:-1].min(axis=0)).sum(axis=0, dtype=np.float64)
    rows = np.sqrt(min_over_axis_1(squared[1:-1])).sum(axis=0, dtype=np.float64)
    bound = corners + np.maximum(rows, columns)
    # The table's total, at most m * sum_i |q_i - c| + n * sum_j |t_j - c| for any point c.
    centre = query.mean(axis=0, dtype=np.float64)
    table = (m * np.sqrt(((query - centre) ** 2).sum(axis=1)).sum()
             + n * np.sqrt((templates_x - centre[0]) ** 2 + (templates_y - centre[1]) ** 2).sum(axis=0))
    slack = _ROUNDING_RELATIVE * bound + _ROUNDING_OF_TABLE * (n + m) * table
    return np.maximum(bound - slack, 0.0)


class PreparedSwipe(NamedTuple):
    """A swipe resampled for the channels, in key units (float32)."""

    points: np.ndarray  # (num_points, 2)
    shape: np.ndarray  # (num_points, 2) the points normalised (see normalize_shape)
    dtw: np.ndarray  # (2, dtw_points, 2) for the elastic channels: as drawn, normalised
    is_tap: bool


class Near(NamedTuple):
    """Words that pass start/end pruning: template rows and end distances (``(C,)`` arrays)."""

    index: np.ndarray
    start: np.ndarray
    end: np.ndarray


def near_rows(near: Near, rows: np.ndarray) -> Near:
    """Rows ``rows`` of ``near``."""
    return Near(near.index[rows], near.start[rows], near.end[rows])


def planar(curves: np.ndarray) -> np.ndarray:
    """Curves ``(W, n, 2)`` as ``(W, 2, n)`` float32: each curve's x row, then its y row."""
    return np.ascontiguousarray(curves.transpose(0, 2, 1), np.float32)


def mean_distances(curves: np.ndarray, points: np.ndarray, scratch: Scratch) -> np.ndarray:
    """Mean distance between corresponding points of ``curves`` (``(C, 2, n)``, see :func:`planar`)
    and ``points`` (``(n, 2)``): ``point_distances(curves, points).mean(axis=1)`` to the last bit."""
    dx = np.subtract(curves[:, 0], points[:, 0], out=scratch.array("dx", curves[:, 0].shape))
    dx *= dx
    dy = np.subtract(curves[:, 1], points[:, 1], out=scratch.array("dy", curves[:, 1].shape))
    dy *= dy
    dx += dy
    return np.sqrt(dx, out=dx).mean(axis=1)


class Shark2Decoder:
    """Ranks lexicon words for a swipe with location, shape, end, elastic and frequency channels.

    Parameters
    ----------
    layout : Layout
        The keyboard the swipes were drawn on.
    lexicon : Lexicon
        Candidate words and their frequencies.
    config : Shark2Config
        Settings.
    """

    def __init__(self, layout: Layout, lexicon: Lexicon, config: Shark2Config = Shark2Config()) -> None:
        self.layout = layout
        self.config = config
        templates = build_templates(layout, lexicon, config.num_points)
        points, count = templates.points, len(templates.words)
        n = config.dtw_points

        def elastic(chunk: np.ndarray) -> np.ndarray:
            dtw = chunk if n == config.num_points else resample_many(chunk, n).astype(np.float32)
            return np.concatenate([planar(dtw), planar(normalize_shape(dtw))], axis=1)

        # Per word, x and y rows (:func:`planar`): its template and its shape for the location and
        # shape channels, and both (in 4 rows) for the elastic ones. Built a chunk at a time into
        # their final arrays, so that the build needs little more memory than they do.
        self._points = in_chunks(planar, points, count)
        self.templates: WordTemplates = templates._replace(points=self._points.transpose(0, 2, 1))
        self._shapes = in_chunks(lambda chunk: planar(normalize_shape(chunk)), points, count)
        self._elastic = in_chunks(elastic, points, count)
        del templates, points
        # Words grouped by the first point of their template (one per key that starts a word):
        # rows ``_start_rows[_start_bounds[s]:_start_bounds[s + 1]]`` start at ``_start_points[s]``.
        self._start_points, start_of = np.unique(self._points[:, :, 0], axis=0, return_inverse=True)
        self._start_of = start_of.reshape(-1)
        self._start_rows = np.argsort(self._start_of, kind="stable")
        self._start_bounds = np.searchsorted(self._start_of[self._start_rows],
                                             np.arange(len(self._start_points) + 1))
        self._end_points, end_of = np.unique(self._points[:, :, -1], axis=0, return_inverse=True)
        self._end_of = end_of.reshape(-1)
        self._scratch = Scratch()

    def prepare(self, x: np.ndarray, y: np.ndarray) -> PreparedSwipe:
        """A swipe given in pixels, resampled for the channels."""
        cfg = self.config
        gesture = key_units(self.layout, x, y)
        points = resample(gesture, cfg.num_points).astype(np.float32)
        dtw = resample(gesture, cfg.dtw_points)
        return PreparedSwipe(points, normalize_shape(points),
                             np.stack([dtw, normalize_shape(dtw)]).astype(np.float32),
                             path_length(gesture) < cfg.tap_length)

    def near(self, swipe: PreparedSwipe, start_radius: float, end_radius: float) -> Near:
        """The words whose first and last points lie within these radii (key units) of the swipe's."""
        # Distances to each distinct first and last template point, then to each word's.
        start_by_point = point_distances(self._start_points, swipe.points[0])
        end_by_point = point_distances(self._end_points, swipe.points[-1])
        near_end = end_by_point <= end_radius
        groups = [self._start_rows[self._start_bounds[s] : self._start_bounds[s + 1]]
                  for s in np.flatnonzero(start_by_point <= start_radius)]
        index = np.concatenate(groups) if groups else np.zeros(0, np.intp)
        index = np.sort(index[near_end[self._end_of[index]]])
        return Near(index, start_by_point[self._start_of[index]], end_by_point[self._end_of[index]])

    def mean_distances(self, curves: np.ndarray, index: np.ndarray, points: np.ndarray) -> np.ndarray:
        """:func:`mean_distances` of ``points`` from rows ``index`` of ``curves`` (``_points`` or
        ``_shapes``)."""
        rows = np.take(curves, index, axis=0, mode="clip",
                       out=self._scratch.array("rows", (len(index), *curves.shape[1:])))
        return mean_distances(rows, points, self._scratch)

    def rigid_distances(self, swipe: PreparedSwipe, near: Near) -> ChannelDistances:
        """The location and shape channels' distances of words ``near``."""
        location = self.mean_distances(self._points, near.index, swipe.points)
        if swipe.is_tap:
            shape = np.zeros(len(near.index), np.float32)
        else:
            shape = self.mean_distances(self._shapes, near.index, swipe.shape)
        return ChannelDistances(near.index, near.start, near.end, location, shape,
                                self.templates.log_prior[near.index], swipe.is_tap)

    def channel_distances(self, x: np.ndarray, y: np.ndarray, start_radius: float,
                          end_radius: float) -> ChannelDistances:
        """The cheap channels' distances for the words that pass start/end pruning with these radii.

        Parameters
        ----------
        x, y : numpy.ndarray
            The swipe's points in pixels.
        start_radius, end_radius : float
            Pruning radii in key units.
        """
        swipe = self.prepare(x, y)
        return self.rigid_distances(swipe, self.near(swipe, start_radius, end_radius))

    def best_rigid(self, swipe: PreparedSwipe, near: Near, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` best words ``near`` by :func:`base_scores` (rows, best first, equal scores
        in the order of ``near.index``) and their scores.

        Each channel only lowers a score, so the end channel and the prior bound it from above,
        and then those and the shape channel: the words are scored in the order of the first bound,
        first ``4 count`` of them, then those whose bounds reach the ``count``-th best score found.
        """
        cfg = self.config
        prior = cfg.prior_weight * self.templates.log_prior[near.index]
        ends = gaussian_log_likelihood(np.hypot(near.start.astype(np.float64), near.end.astype(np.float64)),
                                       cfg.sigma_ends)
        bound = prior if swipe.is_tap else ends + prior
        scores = np.full(len(near.index), -np.inf)
        order = np.argsort(-bound, kind="stable")
        first, rest = order[: 4 * count], order[4 * count :]
        scores[first] = base_scores(self.rigid_distances(swipe, near_rows(near, first)), cfg)
        if len(rest):
            threshold = np.sort(scores[first])[-count]
            rest = rest[bound[rest] >= threshold]
        if len(rest) and not swipe.is_tap:
            shape = self.mean_distances(self._shapes, near.index[rest], swipe.shape)
            reach = (gaussian_log_likelihood(shape, cfg.sigma_shape) + ends[rest]) + prior[rest] >= threshold
            rest, shape = rest[reach], shape[reach]
            location = self.mean_distances(self._points, near.index[rest], swipe.points)
            scores[rest] = base_scores(ChannelDistances(
                near.index[rest], near.start[rest], near.end[rest], location, shape,
                self.templates.log_prior[near.index[rest]], False), cfg)
        elif len(rest):
            scores[rest] = base_scores(self.rigid_distances(swipe, near_rows(near, rest)), cfg)
        best = np.argsort(-scores, kind="stable")[:count]
        return near.index[best], scores[best]

    def dtw_queries(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The swipe (pixels) resampled for the elastic channels and its normalised shape:
        ``(2, dtw_points, 2)`` float32."""
        return self.prepare(x, y).dtw

    def elastic_distances(self, x: np.ndarray, y: np.ndarray, index: np.ndarray) -> ElasticDistances:
        """DTW distances per point between the swipe (pixels) and the templates of words ``index``."""
        return self._elastic_distances(self.dtw_queries(x, y), self._elastic[index])

    def _elastic_distances(self, queries: np.ndarray, templates: np.ndarray) -> ElasticDistances:
        """:meth:`elastic_distances` from :meth:`dtw_queries` and rows of ``_elastic``, both
        channels in one DTW pass."""
        n, count = self.config.dtw_points, len(templates)
        curves = np.concatenate([templates[:, :2], templates[:, 2:]]).transpose(0, 2, 1)
        per_curve = np.concatenate([np.broadcast_to(queries[0], (count, n, 2)),
                                    np.broadcast_to(queries[1], (count, n, 2))])
        distances = dtw_distances(per_curve, curves) / n
        return ElasticDistances(distances[:count], distances[count:])

    def rescored(self, swipe: PreparedSwipe, index: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """``scores`` of words ``index`` plus their elastic channels' log-likelihood, for the words
        that may be among the ``top_k`` best of all; ``-inf`` for the others.

        Each elastic channel only lowers a score, by at least what the lower bound of its DTW
        distance (:func:`dtw_lower_bounds`) gives. The words whose scores' upper bounds from the
        shape channel's are best are rescored first; then, of the others, those whose bounds from
        both channels still reach the ``top_k``-th best score found. A word left out scores less
        than ``top_k`` rescored ones, so the best ``top_k`` (with ties in the order of ``index``)
        are those of rescoring every word.
        """
        cfg, n = self.config, self.config.dtw_points
        queries, templates = swipe.dtw, np.take(self._elastic, index, axis=0)
        out = np.full(len(index), -np.inf)
        first_count = max(cfg.top_k, _ELASTIC_FIRST)
        if len(index) <= first_count:
            out[:] = scores + elastic_scores(self._elastic_distances(queries, templates), cfg)
            return out
        columns = np.ascontiguousarray(templates.transpose(1, 2, 0))  # (4, m, words)
        shape = dtw_lower_bounds(queries[1], columns[2], columns[3], self._scratch) / n
        bound = scores + gaussian_log_likelihood(shape, cfg.sigma_elastic_shape)
        order = np.argsort(-bound, kind="stable")
        first, rest = order[:first_count], order[first_count:]
        out[first] = scores[first] + elastic_scores(self._elastic_distances(queries, templates[first]), cfg)
        kth_best = np.sort(out[first])[-cfg.top_k]
        rest = rest[bound[rest] >= kth_best]
        if len(rest):
            location = dtw_lower_bounds(queries[0], columns[0][:, rest], columns[1][:, rest],
                                        self._scratch) / n
            rest = rest[scores[rest] + elastic_log_likelihood(location, shape[rest], cfg.scoring) >= kth_best]
        if len(rest):
            out[rest] = scores[rest] + elastic_scores(self._elastic_distances(queries, templates[rest]), cfg)
        return out

    def decode(self, x: np.ndarray, y: np.ndarray) -> Candidates:
        """The ``top_k`` best ``(score, word)`` candidates for a swipe given in pixels.

        If no word passes pruning, the radii are doubled (up to three times) before giving up.
        """
        cfg = self.config
        swipe = self.prepare(x, y)
        start_radius, end_radius = cfg.start_radius, cfg.end_radius
        for _ in range(4):
            near = self.near(swipe, start_radius, end_radius)
            if len(near.index):
                break
            start_radius, end_radius = 2 * start_radius, 2 * end_radius
        if swipe.is_tap:
            index, scores = self.best_rigid(swipe, near, cfg.top_k)
            return top_candidates(scores, self.templates.words, index, cfg.top_k)
        index, scores = self.best_rigid(swipe, near, cfg.rescore_top)
        return top_candidates(self.rescored(swipe, index, scores), self.templates.words, index, cfg.top_k)
