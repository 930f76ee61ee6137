"""Shared pieces of the baseline decoders: resampling, word templates, lexicon and data loading.

Coordinates are measured in key units (x in key widths, y in key heights of the layout), so one
unit of error costs the same along both axes whatever the key aspect ratio.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from swipe.keyboard import Layout, LayoutError, normalize_label

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hws_real_en_dev.jsonl"
DEFAULT_LAYOUT = "hws_fitted"

Candidates = list[tuple[float, str]]


class WordList(NamedTuple):
    """A lexicon as parallel arrays: words and their relative frequencies (any positive scale)."""

    words: list[str]
    frequencies: np.ndarray  # float64, one per word


class Gesture(NamedTuple):
    """One swipe to decode: its points in pixels and, where known, the target word."""

    x: np.ndarray
    y: np.ndarray
    word: str | None
    line: int


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
    length : numpy.ndarray
        ``(W,)`` float32 path length of each polyline.
    first_key : numpy.ndarray
        ``(W,)`` int64 index of each word's first key in the layout.
    skipped : int
        Number of lexicon words left out because the layout has no key for one of their letters.
    """

    words: list[str]
    log_prior: np.ndarray
    points: np.ndarray
    length: np.ndarray
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
    return resample_many([np.asarray(points, np.float64)], n)[0]


def resample_many(polylines: Sequence[np.ndarray], n: int) -> np.ndarray:
    """:func:`resample` for many polylines at once, vectorised.

    Returns
    -------
    numpy.ndarray
        ``(len(polylines), n, 2)`` float64.
    """
    if n < 2:
        raise ValueError(f"resampling needs at least 2 points, got n={n}")
    count = len(polylines)
    if count == 0:
        return np.zeros((0, n, 2))
    most = max(len(p) for p in polylines)
    if min(len(p) for p in polylines) < 1:
        raise ValueError("cannot resample an empty polyline")
    # Pad every polyline to the same number of vertices by repeating its last vertex.
    verts = np.empty((count, most, 2))
    for i, p in enumerate(polylines):
        verts[i, : len(p)] = p
        verts[i, len(p) :] = p[-1]
    seg = np.linalg.norm(np.diff(verts, axis=1), axis=2)  # (count, most - 1)
    cum = np.concatenate([np.zeros((count, 1)), np.cumsum(seg, axis=1)], axis=1)  # (count, most)
    total = cum[:, -1]
    targets = np.linspace(0.0, 1.0, n)[None, :] * total[:, None]  # (count, n)
    if most == 1:
        return np.repeat(verts, n, axis=1)
    # One global searchsorted: shift row r by r * stride so the rows never overlap.
    stride = float(total.max()) + 1.0
    offset = np.arange(count)[:, None] * stride
    flat = (cum + offset).ravel()
    pos = np.searchsorted(flat, (targets + offset).ravel(), side="right") - 1
    row = np.repeat(np.arange(count), n)
    col = np.clip(pos - row * most, 0, most - 2)  # the segment each target point falls on
    seg_len = seg[row, col]
    frac = np.where(seg_len > 0, (targets.ravel() - cum[row, col]) / np.where(seg_len > 0, seg_len, 1), 0.0)
    frac = np.clip(frac, 0.0, 1.0)[:, None]
    out = verts[row, col] * (1.0 - frac) + verts[row, col + 1] * frac
    return out.reshape(count, n, 2)


def build_templates(layout: Layout, lexicon: WordList, n: int) -> WordTemplates:
    """Resampled key-centre polylines of every lexicon word the layout can type.

    Parameters
    ----------
    layout : Layout
        The keyboard.
    lexicon : WordList
        Words and frequencies.
    n : int
        Points per template.
    """
    centers = key_units(layout, layout.centers[:, 0], layout.centers[:, 1])
    key_of: dict[str, int] = {}
    words, freqs, polylines, first = [], [], [], []
    skipped = 0
    for word, freq in zip(lexicon.words, lexicon.frequencies, strict=True):
        try:
            keys = [key_of[c] if c in key_of else key_of.setdefault(c, layout.key_index_for_char(c))
                    for c in word]
        except LayoutError:
            skipped += 1
            continue
        if not keys:
            skipped += 1
            continue
        words.append(word)
        freqs.append(freq)
        polylines.append(centers[keys])
        first.append(keys[0])
    points = resample_many(polylines, n)
    freq_arr = np.asarray(freqs, np.float64)
    log_prior = np.log(np.maximum(freq_arr, 1e-300) / max(freq_arr.sum(), 1e-300))
    length = np.array([path_length(p) for p in polylines], np.float32)
    return WordTemplates(words, log_prior, points.astype(np.float32), length,
                         np.asarray(first, np.int64), skipped)


def top_candidates(scores: np.ndarray, words: Sequence[str], index: np.ndarray, k: int) -> Candidates:
    """The ``k`` best ``(score, word)`` pairs, best (highest score) first.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(C,)`` scores of candidate words ``words[index[c]]``; higher is better.
    """
    if len(scores) == 0:
        return []
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(float(scores[b]), words[int(index[b])]) for b in best]


# ---- data and lexicon ------------------------------------------------------------------------


def read_gestures(path: str | Path) -> list[Gesture]:
    """Read a Yandex-style jsonl file (``word``, ``curve.x/y``): one gesture per line.

    Raises ``ValueError("<file>:<line>: <reason>")`` on a malformed line.
    """
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                x = np.asarray(row["curve"]["x"], np.float64)
                y = np.asarray(row["curve"]["y"], np.float64)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}:{line_no}: malformed swipe: {err!r}") from None
            if x.ndim != 1 or x.shape != y.shape or len(x) == 0 or not np.isfinite(x).all() \
                    or not np.isfinite(y).all():
                raise ValueError(f"{path}:{line_no}: curve.x and curve.y must be equal-length finite lists")
            word = row.get("word")
            out.append(Gesture(x, y, None if word is None else normalize_label(word), line_no))
    return out


def load_word_list(spec: str) -> WordList:
    """A lexicon by bundled name (``"en"``) or from a file.

    A file is a JSON list of ``[word, frequency]`` pairs or a text file of ``word<TAB>frequency``
    lines (frequency optional, default 1). Words are normalised; duplicates keep the first.
    """
    path = Path(spec)
    if not path.is_file():
        from swipe.lexicon import load_lexicon

        lexicon = load_lexicon(spec)
        return _dedupe(list(lexicon.words), np.asarray(lexicon.frequencies, np.float64))
    words: list[str] = []
    freqs: list[float] = []
    if path.suffix == ".json":
        for i, item in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            if not (isinstance(item, list) and len(item) == 2):
                raise ValueError(f"{path}: item {i}: expected [word, frequency], got {item!r}")
            words.append(str(item[0]))
            freqs.append(float(item[1]))
    else:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split("\t")
            if not parts[0].strip():
                continue
            try:
                freqs.append(float(parts[1]) if len(parts) > 1 else 1.0)
            except ValueError:
                raise ValueError(f"{path}:{line_no}: bad frequency {parts[1]!r}") from None
            words.append(parts[0].strip())
    return _dedupe(words, np.asarray(freqs, np.float64))


def _dedupe(words: list[str], freqs: np.ndarray) -> WordList:
    seen: dict[str, int] = {}
    keep = []
    for i, w in enumerate(words):
        w = normalize_label(w)
        if w and w not in seen:
            seen[w] = i
            keep.append(i)
    return WordList([normalize_label(words[i]) for i in keep], freqs[keep])


# ---- metrics ---------------------------------------------------------------------------------

MRR_WEIGHTS = (1.0, 0.1, 0.09, 0.08)


def unique_words(candidates: Candidates, k: int) -> list[str]:
    """The first ``k`` distinct words of a ranked candidate list."""
    out: list[str] = []
    for _, word in candidates:
        if word not in out:
            out.append(word)
            if len(out) == k:
                break
    return out


class Scores(NamedTuple):
    """Mean metrics over a set of gestures with targets."""

    swipe_mrr: float
    accuracy: float
    recall_at_4: float
    count: int


def score_candidates(all_candidates: Sequence[Candidates], targets: Sequence[str | None]) -> Scores:
    """Swipe MRR (weights 1, 0.1, 0.09, 0.08 over the first 4 unique words), accuracy@1 and
    recall@4, averaged over the rows that have a target."""
    mrr = acc = rec = 0.0
    count = 0
    for cands, target in zip(all_candidates, targets, strict=True):
        if target is None:
            continue
        count += 1
        top = unique_words(cands, len(MRR_WEIGHTS))
        if target in top:
            rank = top.index(target)
            mrr += MRR_WEIGHTS[rank]
            acc += rank == 0
            rec += 1
    if count == 0:
        return Scores(math.nan, math.nan, math.nan, 0)
    return Scores(mrr / count, acc / count, rec / count, count)
