"""Shared pieces of the baseline decoders: lexicon-wide word templates, candidates and data.

Coordinates are measured in key units (x in key widths, y in key heights of the layout), so one
unit of error costs the same along both axes whatever the key aspect ratio. The geometry
(resampling, key units) is the package's own, in :mod:`swipe.templates`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from swipe.formats import BadRowError, Curve, read_curves
from swipe.keyboard import Layout
from swipe.lexicon import Lexicon
from swipe.templates import key_units, pad_polylines, path_length, resample, resample_many

__all__ = [
    "Candidates", "WordTemplates", "build_templates", "key_units", "pad_polylines", "path_length",
    "read_labelled_curves", "resample", "resample_many", "select_half", "top_candidates",
]

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
        raise ValueError(f"lexicon {lexicon.name!r}: layout {layout.name!r} cannot type any of its words")
    points = resample_many(pad_polylines(polylines), n)
    # Zero frequencies are raised to the smallest positive one, so that no log prior is -inf.
    freq = np.asarray(freqs, np.float64)
    freq = np.maximum(freq, freq[freq > 0].min() if (freq > 0).any() else 1.0)
    log_prior = np.log(freq / freq.sum())
    return WordTemplates(words, log_prior, points.astype(np.float32), np.asarray(first, np.int64), skipped)


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
