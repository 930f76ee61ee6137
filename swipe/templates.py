"""Word templates on a keyboard and how well a swipe matches them, after SHARK2 (Kristensson and
Zhai, UIST 2004).

A word's template is the polyline through its key centres. A swipe and a template, both resampled to
equidistant points, are compared through channels, each a Gaussian log-likelihood
``-d**2 / (2 sigma**2)`` of a distance ``d``:

* location: the mean distance between corresponding points, which knows *where* the swipe was drawn;
* shape: the same after both curves are centred and scaled to unit size, which forgives a swipe
  drawn too small, too large or shifted;
* ends: the distances from the swipe's first and last points to the word's first and last keys;
* elastic location and elastic shape: dynamic-time-warping distances per point, as drawn and
  normalised, which forgive uneven speed, cut corners and overshoot.

A tap (a swipe shorter than ``tap_length``) has no shape: it is scored by location alone.

Distances are in key units (x in key widths, y in key heights of the layout), so one unit of error
costs the same along both axes whatever the keys' aspect ratio.

:class:`TemplateRescorer` adds these scores to a neural decoder's candidates (``predict.py
--template-weight``): the network reads the curve point by point, the templates compare whole
shapes, and real swipes drawn on keyboards of other sizes or positions are often matched better by
the second. The SHARK2-style full-lexicon baseline (:mod:`swipe.shark2`) is built on the
same functions.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from swipe.keyboard import Layout, LayoutError

Candidate = tuple[float, str]

# Templates per DTW call: bounds the (templates, n, m) cost tables' memory.
_DTW_CHUNK = 2048


# ---- geometry ------------------------------------------------------------------------------------


def key_units(layout: Layout, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pixel coordinates as an ``(n, 2)`` float64 array in key widths / key heights."""
    return np.stack(
        [np.asarray(x, np.float64) / layout.key_width, np.asarray(y, np.float64) / layout.key_height],
        axis=-1,
    )


def path_length(points: np.ndarray) -> float:
    """Total length of the polyline through ``points`` (``(P, 2)``)."""
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def resample(points: np.ndarray, n: int) -> np.ndarray:
    """``n`` points spaced equally along the polyline through ``points``.

    Parameters
    ----------
    points : numpy.ndarray
        ``(P, 2)`` polyline vertices, ``P >= 1``; repeated points are allowed.
    n : int
        Number of output points, ``n >= 2``.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float64; the first and last points are the polyline's ends. A polyline of zero
        length (a tap) gives ``n`` copies of its first point.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"expected a non-empty (P, 2) array of points, got shape {points.shape}")
    return resample_many(points[None], n)[0]


def pad_polylines(polylines: Sequence[np.ndarray]) -> np.ndarray:
    """Stack polylines of different lengths into ``(count, P, 2)``, repeating each last vertex."""
    if any(len(p) == 0 for p in polylines):
        raise ValueError("cannot pad an empty polyline")
    most = max((len(p) for p in polylines), default=1)
    verts = np.empty((len(polylines), most, 2))
    for i, p in enumerate(polylines):
        verts[i, : len(p)] = p
        verts[i, len(p) :] = p[-1]
    return verts


def resample_many(verts: np.ndarray, n: int) -> np.ndarray:
    """:func:`resample` for many polylines at once, vectorised.

    Parameters
    ----------
    verts : numpy.ndarray
        ``(count, P, 2)`` polylines of ``P`` vertices each (see :func:`pad_polylines`).
    n : int
        Number of output points per polyline, ``n >= 2``.

    Returns
    -------
    numpy.ndarray
        ``(count, n, 2)`` float64.
    """
    if n < 2:
        raise ValueError(f"resampling needs at least 2 points, got n={n}")
    verts = np.asarray(verts, np.float64)
    count, most = verts.shape[:2]
    if count == 0 or most == 1:
        return np.repeat(verts[:, :1], n, axis=1)
    seg = point_distances(verts[:, 1:], verts[:, :-1])  # (count, most - 1)
    cum = np.concatenate([np.zeros((count, 1)), np.cumsum(seg, axis=1)], axis=1)  # (count, most)
    targets = np.linspace(0.0, 1.0, n)[None, :] * cum[:, -1:]  # (count, n)
    # One global searchsorted: shift row r by r * stride so that the rows never overlap.
    stride = float(cum[:, -1].max()) + 1.0
    offset = np.arange(count)[:, None] * stride
    pos = np.searchsorted((cum + offset).ravel(), (targets + offset).ravel(), side="right") - 1
    row = np.repeat(np.arange(count), n)
    col = np.clip(pos - row * most, 0, most - 2)  # the segment each target point falls on
    seg_len = seg[row, col]
    frac = (targets.ravel() - cum[row, col]) / np.where(seg_len > 0, seg_len, 1.0)
    frac = np.clip(np.where(seg_len > 0, frac, 0.0), 0.0, 1.0)[:, None]
    out = verts[row, col] * (1.0 - frac) + verts[row, col + 1] * frac
    return out.reshape(count, n, 2)


def point_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between corresponding points of ``a`` and ``b`` (``(..., 2)``, broadcast):
    ``np.linalg.norm(a - b, axis=-1)`` to the last bit, without its slow reduction over two values."""
    d = np.subtract(a, b)
    d *= d
    return np.sqrt(d[..., 0] + d[..., 1])


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


class Scratch(threading.local):
    """Work arrays kept from call to call (one set per thread): the allocator hands large fresh
    arrays back to the system when they are freed, and then every new one costs page faults."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def __reduce__(self) -> tuple[type, tuple]:
        return Scratch, ()  # a copy (a pickled matcher's) starts with no work arrays

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 array of ``shape`` (its values left over), the same memory for each ``name``."""
        size = math.prod(shape)
        flat = self.arrays.get(name)
        if flat is None or len(flat) < size:
            flat = self.arrays[name] = np.empty(max(size, 2 * len(flat) if flat is not None else 0),
                                                np.float32)
        return flat[:size].reshape(shape)


# The DTW tables of up to this many entries are kept between calls (larger ones are made afresh).
_KEPT_TABLE = 1 << 20
_DTW_SCRATCH = Scratch()


def dtw_distances(query: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """DTW distances from a sequence to many equally long ones, vectorised over the templates.

    The local cost is the Euclidean distance between points; steps are (1, 0), (0, 1) and (1, 1);
    the distance is the cost of the cheapest warping path from the first to the last points.

    Parameters
    ----------
    query : numpy.ndarray
        ``(n, 2)`` points, or ``(C, n, 2)``: one query per template.
    templates : numpy.ndarray
        ``(C, m, 2)`` points.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` float32 distances.
    """
    query = np.asarray(query, np.float32)
    templates = np.asarray(templates, np.float32)
    if query.ndim == 2:
        query = query[None]
    if len(templates) > _DTW_CHUNK:
        chunks = range(0, len(templates), _DTW_CHUNK)
        return np.concatenate([dtw_distances(query if len(query) == 1 else query[s : s + _DTW_CHUNK],
                                             templates[s : s + _DTW_CHUNK]) for s in chunks])
    # running[i, j + 1, c] = cost of query[c, i] against templates[c, 0..j] (a running sum along
    # the row; running[i, 0] = 0), the templates innermost, so that each step below is one
    # operation over all of them; cost = |query[c, i] - templates[c, j]|. The sums are taken with
    # j outermost (each step adds whole blocks), then the table is laid out row by row.
    q = np.ascontiguousarray(query.transpose(1, 2, 0))  # (n, 2, 1 or C)
    t = np.ascontiguousarray(templates.transpose(1, 2, 0))  # (m, 2, C)
    n, m = q.shape[0], t.shape[0]
    shape = (m + 1, n, len(templates))
    scratch = _DTW_SCRATCH if math.prod(shape) <= _KEPT_TABLE else Scratch()
    by_column = scratch.array("by_column", shape)
    by_column[0] = 0.0
    dx = np.subtract(q[None, :, 0], t[:, None, 0], out=by_column[1:])
    dy = np.subtract(q[None, :, 1], t[:, None, 1], out=scratch.array("dy", (m, n, len(templates))))
    np.hypot(dx, dy, out=dx)
    for j in range(2, m + 1):
        by_column[j] += by_column[j - 1]
    running = scratch.array("running", (n, m + 1, len(templates)))
    running[...] = by_column.transpose(1, 0, 2)
    # Row i of the DTW table from row i - 1 in closed form (a min-plus prefix scan):
    #   D[i, j] = c[i, j] + min(D[i-1, j], D[i-1, j-1], D[i, j-1])
    #           = S[j] + min_{k <= j} (a[k] - S[k-1]),  a[k] = min(D[i-1, k], D[i-1, k-1]),
    # where S is the running sum of row i's costs; prev[1:] holds row i - 1, prev[0] = inf.
    prev = np.empty((m + 1, len(templates)), np.float32)
    prev[0] = np.inf
    prev[1:] = running[0, 1:]
    a = np.empty((m, len(templates)), np.float32)
    for i in range(1, n):
        np.minimum(prev[1:], prev[:-1], out=a)
        a -= running[i, :-1]
        np.minimum.accumulate(a, axis=0, out=a)
        np.add(running[i, 1:], a, out=prev[1:])
    return prev[-1]


def gaussian_log_likelihood(distance: np.ndarray, sigma: float) -> np.ndarray:
    """``-distance**2 / (2 sigma**2)`` in float64: a channel's score."""
    return -0.5 * (np.asarray(distance, np.float64) / sigma) ** 2


# ---- scoring words -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateScoring:
    """Settings of :func:`template_log_likelihoods` (distances in key units).

    The defaults are those of the SHARK2-style baseline, tuned on the odd rows of the real English
    development swipes (``bench/baselines/tune_shark2.py``; the runs are in ``bench/RESULTS.md``).

    Attributes
    ----------
    num_points : int
        Points the swipe and the templates are resampled to for the location and shape channels.
    dtw_points : int
        Points per curve for the elastic (DTW) channels.
    sigma_location, sigma_shape, sigma_ends, sigma_elastic_location, sigma_elastic_shape : float
        Standard deviations of the channel distances (``sigma_ends`` applies to the root of the
        sum of the squared start and end distances).
    sigma_tap : float
        Standard deviation of the location channel for taps.
    tap_length : float
        Swipes shorter than this are taps, scored by location only (0: none are).
    """

    num_points: int = 64
    dtw_points: int = 32
    sigma_location: float = 5.0
    sigma_shape: float = 0.08
    sigma_ends: float = 0.5
    sigma_elastic_location: float = 0.28
    sigma_elastic_shape: float = 0.035
    sigma_tap: float = 0.5
    tap_length: float = 0.5

    def __post_init__(self) -> None:
        if self.num_points < 2 or self.dtw_points < 2:
            raise ValueError(f"num_points and dtw_points must be at least 2, got "
                             f"{self.num_points} and {self.dtw_points}")
        for name in ("sigma_location", "sigma_shape", "sigma_ends", "sigma_elastic_location",
                     "sigma_elastic_shape", "sigma_tap"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.tap_length >= 0:
            raise ValueError(f"tap_length must be >= 0 (0: no taps), got {self.tap_length}")


def rigid_log_likelihood(
    location: np.ndarray, shape: np.ndarray, ends: np.ndarray, is_tap: bool, scoring: TemplateScoring
) -> np.ndarray:
    """The location, shape and end channels' log-likelihood of each word (distances in key units;
    ``ends`` the root of the summed squared start and end distances); a tap's is the location
    channel alone, of width ``sigma_tap``."""
    if is_tap:
        return gaussian_log_likelihood(location, scoring.sigma_tap)
    return (gaussian_log_likelihood(location, scoring.sigma_location)
            + gaussian_log_likelihood(shape, scoring.sigma_shape)
            + gaussian_log_likelihood(ends, scoring.sigma_ends))


def elastic_log_likelihood(
    elastic_location: np.ndarray, elastic_shape: np.ndarray, scoring: TemplateScoring
) -> np.ndarray:
    """The elastic (DTW per point) channels' log-likelihood of each word."""
    return (gaussian_log_likelihood(elastic_location, scoring.sigma_elastic_location)
            + gaussian_log_likelihood(elastic_shape, scoring.sigma_elastic_shape))


def word_polyline(layout: Layout, word: str) -> np.ndarray:
    """``(len(word), 2)`` key centres of ``word``'s letters in key units.

    Raises
    ------
    swipe.keyboard.LayoutError
        The layout has no key for one of the letters.
    """
    keys = [layout.key_index_for_char(c) for c in word]
    centers = np.asarray(layout.centers, np.float64)[keys]
    return key_units(layout, centers[:, 0], centers[:, 1])


class WordTemplate(NamedTuple):
    """A word's template resampled for the channels: ``points`` ``(num_points, 2)`` and ``dtw``
    ``(dtw_points, 2)`` in key units, each also normalised (``shape``, ``dtw_shape``)."""

    points: np.ndarray
    shape: np.ndarray
    dtw: np.ndarray
    dtw_shape: np.ndarray


class TemplateCache:
    """The :class:`WordTemplate` of each word met on one layout, kept between calls: a decoder
    scores the same words view after view and swipe after swipe.

    Parameters
    ----------
    layout : Layout
        The keyboard.
    scoring : TemplateScoring
        The channels' point counts.
    size : int
        Most words kept (the cache starts afresh when full).
    """

    def __init__(self, layout: Layout, scoring: TemplateScoring, size: int = 20_000) -> None:
        self.layout, self.scoring, self.size = layout, scoring, size
        self._templates: dict[str, WordTemplate | None] = {}

    def get(self, words: Sequence[str]) -> list[WordTemplate | None]:
        """Each word's template; None where the layout cannot type it (or it is empty)."""
        new = [w for w in dict.fromkeys(words) if w not in self._templates]
        if len(self._templates) + len(new) > self.size:
            self._templates.clear()
            new = list(dict.fromkeys(words))
        typeable = [w for w in new if w and all(map(self.layout.can_type, w))]
        self._templates.update(dict.fromkeys(new))
        if typeable:  # one batch, as template_distances computes them without a cache
            s = self.scoring
            points = resample_many(pad_polylines([word_polyline(self.layout, w) for w in typeable]),
                                   s.num_points)
            shapes, dtw = normalize_shape(points), resample_many(points, s.dtw_points)
            dtw_shapes = normalize_shape(dtw)
            for i, w in enumerate(typeable):
                self._templates[w] = WordTemplate(points[i], shapes[i], dtw[i], dtw_shapes[i])
        return [self._templates[w] for w in words]


class TemplateDistances(NamedTuple):
    """How far a swipe lies from each of several words' templates, per channel (key units).

    Attributes
    ----------
    location, shape, ends : numpy.ndarray
        ``(words,)`` the rigid channels' distances (``ends``: the root of the summed squared start
        and end distances).
    elastic_location, elastic_shape : numpy.ndarray or None
        ``(words,)`` the elastic channels' distances per point; None for a tap.
    is_tap : bool
        Whether the swipe is a tap (shorter than ``tap_length``).
    """

    location: np.ndarray
    shape: np.ndarray
    ends: np.ndarray
    elastic_location: np.ndarray | None
    elastic_shape: np.ndarray | None
    is_tap: bool


def template_distances(
    layout: Layout, x: np.ndarray, y: np.ndarray, words: Sequence[str],
    scoring: TemplateScoring = TemplateScoring(), cache: TemplateCache | None = None,
) -> TemplateDistances:
    """The channels' distances from a swipe (``x``, ``y`` in pixels) to each word's template;
    see :func:`template_log_likelihoods`. ``cache``: the words' templates (for ``layout`` and
    ``scoring``), else computed."""
    return template_distances_many(layout, [(x, y)], [words], scoring, cache)[0]


def template_distances_many(
    layout: Layout, swipes: Sequence[tuple[np.ndarray, np.ndarray]], words: Sequence[Sequence[str]],
    scoring: TemplateScoring = TemplateScoring(), cache: TemplateCache | None = None,
) -> list[TemplateDistances]:
    """:func:`template_distances` of several swipes (``(x, y)`` in pixels), each to its own
    words ``words[i]``, all in one pass over the words (one DTW call): the same distances, to the
    last bit, for a fraction of the calls' overhead."""
    gestures = [key_units(layout, x, y) for x, y in swipes]
    taps = [path_length(gesture) < scoring.tap_length for gesture in gestures]
    counts = [len(w) for w in words]
    flat = [word for group in words for word in group]
    if not flat:
        return [TemplateDistances(*(np.zeros(0),) * 5, is_tap=tap) for tap in taps]
    if cache is not None:
        cached = cache.get(flat)
        if any(t is None for t in cached):
            raise LayoutError(f"layout {layout.name!r} cannot type all of {list(flat)}")
        templates = np.stack([t.points for t in cached])  # type: ignore[union-attr]
        shapes = np.stack([t.shape for t in cached])  # type: ignore[union-attr]
    else:
        polylines = pad_polylines([word_polyline(layout, w) for w in flat])
        templates = resample_many(polylines, scoring.num_points)
        shapes = normalize_shape(templates)
    # Each word's swipe (one swipe's arrays broadcast over all the words).
    owner = np.repeat(np.arange(len(swipes)), counts)
    by_word = (lambda values: values[0]) if len(swipes) == 1 else (lambda values: values[owner])
    points = np.stack([resample(gesture, scoring.num_points) for gesture in gestures])
    points_shape = np.stack([normalize_shape(p) for p in points])
    location = point_distances(templates, by_word(points)).mean(axis=1)
    shape = point_distances(shapes, by_word(points_shape)).mean(axis=1)
    ends = np.hypot(point_distances(templates[:, 0], by_word(points[:, 0])),
                    point_distances(templates[:, -1], by_word(points[:, -1])))
    # Both elastic channels of every word of a swipe that is not a tap in one DTW pass: as drawn,
    # then normalised.
    n = scoring.dtw_points
    elastic_rows = np.flatnonzero(~np.array(taps)[owner])
    elastic = np.zeros((2, len(flat)), np.float32)
    if len(elastic_rows):
        queries = [resample(gesture, n) for gesture in gestures]
        queries = np.stack([queries, [normalize_shape(q) for q in queries]])  # (2, swipes, n, 2)
        queries = queries[:, owner[elastic_rows]].reshape(-1, n, 2)
        if cache is not None:
            dtw_templates = np.stack([cached[i].dtw for i in elastic_rows]  # type: ignore[union-attr]
                                     + [cached[i].dtw_shape for i in elastic_rows])  # type: ignore[union-attr]
        else:
            dtw = resample_many(templates[elastic_rows], n)
            dtw_templates = np.concatenate([dtw, normalize_shape(dtw)])
        elastic[:, elastic_rows] = (dtw_distances(queries, dtw_templates) / n).reshape(2, -1)
    out, start = [], 0
    for tap, count in zip(taps, counts, strict=True):
        rows = slice(start, start + count)
        start += count
        if tap:
            out.append(TemplateDistances(location[rows], shape[rows], ends[rows], None, None, is_tap=True))
        else:
            out.append(TemplateDistances(location[rows], shape[rows], ends[rows], elastic[0, rows],
                                         elastic[1, rows], is_tap=False))
    return out


def distances_log_likelihood(distances: TemplateDistances, scoring: TemplateScoring) -> np.ndarray:
    """The sum of the channels' log-likelihoods of each word, from its distances."""
    d = distances
    rigid = rigid_log_likelihood(d.location, d.shape, d.ends, d.is_tap, scoring)
    if distances.is_tap:
        return rigid
    assert distances.elastic_location is not None and distances.elastic_shape is not None
    return rigid + elastic_log_likelihood(distances.elastic_location, distances.elastic_shape, scoring)


def template_log_likelihoods(
    layout: Layout, x: np.ndarray, y: np.ndarray, words: Sequence[str],
    scoring: TemplateScoring = TemplateScoring(),
) -> np.ndarray:
    """How well a swipe matches each word's template: the sum of the channels' log-likelihoods.

    Parameters
    ----------
    layout : Layout
        The keyboard the swipe was drawn on.
    x, y : numpy.ndarray
        The swipe's points in pixels.
    words : sequence of str
        Words the layout can type (a few: every word costs a DTW table).
    scoring : TemplateScoring
        Channel settings.

    Returns
    -------
    numpy.ndarray
        ``(len(words),)`` float64, higher is a better match.
    """
    if not words:
        return np.zeros(0)
    return distances_log_likelihood(template_distances(layout, x, y, words, scoring), scoring)


@dataclass(frozen=True)
class TemplateRescorer:
    """Re-ranks a decoder's candidates by their score plus ``weight`` times the template score.

    The template score of a word is how well the swipe matches its template, plus ``prior_weight``
    times its log relative frequency in the lexicon (the SHARK2 ranking), so ``weight`` trades the
    decoder's score against a whole-shape matcher's.

    The match is a mixture of two ways of drawing a word: the usual, sloppy one that
    :func:`template_log_likelihoods` scores (its widths fitted to real swipes, lenient enough that
    the templates of "party" and "pay" score almost alike), and, with prior log-odds
    ``precise_log_odds``, a swipe drawn precisely through the key centres, whose location and end
    distances have width ``sigma_precise``. A real swipe lies far from every template in the second
    sense and is ranked as by the first alone; a swipe drawn through the key centres of a word
    gains up to ``precise_log_odds`` over every word whose template lies off its path.

    Attributes
    ----------
    weight : float
        Weight of the template score (0 leaves the candidates as they are).
    prior_weight : float
        Weight of the word's log relative frequency within the template score.
    scoring : TemplateScoring
        Channel settings.
    precise_log_odds : float
        Prior log-odds of a precisely drawn swipe (``-inf``: none are).
    sigma_precise : float
        Width, in key units, of the location and end distances of a precisely drawn swipe.
    """

    weight: float
    prior_weight: float = 1.0
    scoring: TemplateScoring = TemplateScoring()
    precise_log_odds: float = 8.0
    sigma_precise: float = 0.03
    _caches: dict[int, TemplateCache] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"template weight must be a finite number >= 0, got {self.weight}")
        if not (math.isfinite(self.prior_weight) and self.prior_weight >= 0):
            raise ValueError(f"template prior weight must be a finite number >= 0, got {self.prior_weight}")
        if math.isnan(self.precise_log_odds) or self.precise_log_odds == math.inf:
            raise ValueError(f"precise_log_odds must be a number or -inf, got {self.precise_log_odds}")
        if not (math.isfinite(self.sigma_precise) and self.sigma_precise > 0):
            raise ValueError(f"sigma_precise must be a positive number, got {self.sigma_precise}")

    def match_log_likelihoods(self, layout: Layout, x: np.ndarray, y: np.ndarray,
                              words: Sequence[str]) -> np.ndarray:
        """How well the swipe (``x``, ``y`` in pixels) matches each of ``words`` (which ``layout``
        can type): the mixture of a sloppy and a precise drawing, higher is better."""
        return self.match_log_likelihoods_many(layout, [(x, y)], [words])[0]

    def match_log_likelihoods_many(self, layout: Layout, swipes: Sequence[tuple[np.ndarray, np.ndarray]],
                                   words: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """:meth:`match_log_likelihoods` of several swipes, each to its own words, in one pass."""
        out = []
        for distances in template_distances_many(layout, swipes, words, self.scoring, self.cache(layout)):
            sloppy = distances_log_likelihood(distances, self.scoring)
            if self.precise_log_odds == -math.inf:
                out.append(sloppy)
                continue
            precise = self.precise_log_odds + gaussian_log_likelihood(
                np.hypot(distances.location, distances.ends), self.sigma_precise)
            out.append(np.logaddexp(sloppy, precise))
        return out

    def cache(self, layout: Layout) -> TemplateCache:
        """The templates of the words this rescorer has met on ``layout``."""
        cache = self._caches.get(id(layout))
        if cache is None or cache.layout is not layout:
            cache = self._caches[id(layout)] = TemplateCache(layout, self.scoring)
        return cache

    def may_be_precise(self, layout: Layout, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether the swipe (``x``, ``y`` in pixels) starts and ends within ``2 sigma_precise`` of
        key centres, as a precisely drawn swipe does (real swipes hardly ever do): a search that
        missed its word is worth a template matcher's proposals."""
        if self.precise_log_odds == -math.inf or len(x) == 0:
            return False
        centres = np.asarray(layout.centers, np.float64)
        centres = key_units(layout, centres[:, 0], centres[:, 1])
        ends = key_units(layout, np.asarray(x)[[0, -1]], np.asarray(y)[[0, -1]])
        nearest = np.linalg.norm(centres[None] - ends[:, None], axis=2).min(axis=1)
        return bool(nearest.max() <= 2 * self.sigma_precise)

    def rescore(
        self, candidates: Sequence[Candidate], layout: Layout, x: np.ndarray, y: np.ndarray,
        log_priors: np.ndarray | None = None,
    ) -> list[Candidate]:
        """``candidates`` of one swipe with new scores, best first (ties keep their order; words
        the layout cannot type, and empty ones, score ``-inf`` and come last).

        Parameters
        ----------
        candidates : sequence of (float, str)
            The decoder's ``(score, word)`` pairs.
        layout : Layout
            The keyboard the swipe was drawn on.
        x, y : numpy.ndarray
            The swipe's points in pixels.
        log_priors : numpy.ndarray, optional
            Each candidate's log relative frequency (None: no prior term).
        """
        return self.rescore_many([candidates], layout, [(x, y)], [log_priors])[0]

    def rescore_many(
        self, rows: Sequence[Sequence[Candidate]], layout: Layout,
        swipes: Sequence[tuple[np.ndarray, np.ndarray]], log_priors: Sequence[np.ndarray | None],
    ) -> list[list[Candidate]]:
        """:meth:`rescore` of several rows, row ``i`` that of swipe ``swipes[i]`` (``(x, y)`` in
        pixels, all on ``layout``) with priors ``log_priors[i]``, the templates matched in one pass:
        the same rows, for a fraction of the calls' overhead."""
        if self.weight == 0:
            return [list(row) for row in rows]
        out: list[list[Candidate]] = [[] for _ in rows]
        busy = [i for i, row in enumerate(rows) if row]
        words = [[word for _, word in rows[i]] for i in busy]
        # A word the layout cannot type (or an empty one, decoded without a lexicon) has no
        # template: it goes to the bottom.
        cache = self.cache(layout)
        typeable = [[k for k, template in enumerate(cache.get(row_words)) if template is not None]
                    for row_words in words]
        matched = self.match_log_likelihoods_many(
            layout, [swipes[i] for i in busy],
            [[row_words[k] for k in keep] for row_words, keep in zip(words, typeable, strict=True)])
        for i, row_words, keep, match in zip(busy, words, typeable, matched, strict=True):
            template = np.full(len(row_words), -np.inf)
            template[keep] = match
            if log_priors[i] is not None:
                template = template + self.prior_weight * np.asarray(log_priors[i], np.float64)
            scores = np.array([score for score, _ in rows[i]], np.float64) + self.weight * template
            order = np.argsort(-scores, kind="stable")
            out[i] = [(float(scores[k]), row_words[k]) for k in order]
        return out
