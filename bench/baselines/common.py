"""Shared pieces of the baseline decoders: resampling, word templates, candidates and data.

Coordinates are measured in key units (x in key widths, y in key heights of the layout), so one
unit of error costs the same along both axes whatever the key aspect ratio.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from swipe.formats import BadRowError, Curve, read_curves
from swipe.keyboard import Layout, LayoutError
from swipe.lexicon import Lexicon

REPO_ROOT = Path(__file__).resolve().parents[2]
# Benchmarks may read the shared development data next to the repository (the package never does).
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "hws_real_en_dev.jsonl"
DEFAULT_LAYOUT = "hws_fitted"

Candidates = list[tuple[float, str]]


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
    seg = np.linalg.norm(np.diff(verts, axis=1), axis=2)  # (count, most - 1)
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
    """
    centers = key_units(layout, layout.centers[:, 0], layout.centers[:, 1])
    key_of: dict[str, int | None] = {}  # character -> key index, None where the layout has none
    words, freqs, polylines, first = [], [], [], []
    skipped = 0
    for word, freq in zip(lexicon.words, lexicon.frequencies, strict=True):
        for c in word:
            if c not in key_of:
                key_of[c] = _key_or_none(layout, c)
        keys = [key_of[c] for c in word]
        if not keys or None in keys:
            skipped += 1
            continue
        words.append(word)
        freqs.append(freq)
        polylines.append(centers[keys])
        first.append(keys[0])
    if not words:
        raise ValueError(f"lexicon {lexicon.name!r}: layout {layout.name!r} cannot type any of its words")
    points = resample_many(pad_polylines(polylines), n)
    # Zero frequencies are raised to the smallest positive one, so that no log prior is -inf.
    freq = np.asarray(freqs, np.float64)
    freq = np.maximum(freq, freq[freq > 0].min() if (freq > 0).any() else 1.0)
    log_prior = np.log(freq / freq.sum())
    return WordTemplates(words, log_prior, points.astype(np.float32), np.asarray(first, np.int64), skipped)


def _key_or_none(layout: Layout, char: str) -> int | None:
    try:
        return layout.key_index_for_char(char)
    except LayoutError:
        return None


def top_candidates(scores: np.ndarray, words: Sequence[str], index: np.ndarray, k: int) -> Candidates:
    """The ``k`` best ``(score, word)`` pairs, best (highest score) first.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(C,)`` scores of candidate words ``words[index[c]]``; higher is better.
    """
    best = np.argsort(-scores, kind="stable")[:k]  # equal scores keep their order in ``index``
    return [(float(scores[b]), words[int(index[b])]) for b in best]


# ---- data ----------------------------------------------------------------------------------

HALVES = ("all", "odd", "even")


def read_labelled_curves(path: str | Path, layout: Layout) -> list[Curve]:
    """All curves of a jsonl file, each of which must be drawn on ``layout``.

    Raises
    ------
    swipe.formats.BadRowError
        A malformed row (the message names the file and line) or a curve on another layout.
    """
    curves = list(read_curves(path, layouts={layout.name: layout}))
    for c in curves:
        if c.grid_name != layout.name:
            raise BadRowError(
                f"{path}:{c.line}: curve is on layout {c.grid_name!r}, expected {layout.name!r}"
            )
    return curves


def select_half(curves: Sequence[Curve], half: str) -> list[Curve]:
    """The curves on odd or even source lines (``"all"``: every curve)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, got {half!r}")
    if half == "all":
        return list(curves)
    parity = 1 if half == "odd" else 0
    return [c for c in curves if c.line % 2 == parity]
