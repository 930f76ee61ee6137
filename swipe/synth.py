"""Synthetic swipes: a fast, calibrated generator of gesture-typing curves for any layout.

A curve for a word is built in three steps.

1. Targets: the centres of the word's keys (a run of one repeated key is one target that the
   finger dwells on), each moved by Gaussian noise in key units, with an occasional larger miss, and
   the whole word moved and scaled a little (users and devices place the keyboard differently).
2. Path: a superposition of minimum-jerk movements, one per pair of consecutive targets
   (Flash & Hogan). Each movement lasts a Fitts-like time ``a + b log2(1 + distance)`` and starts
   before the previous one has ended, so corners are cut smoothly; each bows sideways a little.
3. Sampling: touch events at a per-curve rate with jitter, rounded to whole pixels and
   milliseconds; samples where the finger has not moved are mostly dropped, as touch screens
   report only movement (so pauses show up as longer gaps between points).

The defaults of :class:`SynthConfig` are fitted to 800 real English swipes (How-We-Swipe); the
comparison is in ``docs/synth.md`` and ``bench/synth_calibration.py``.

Command line::

    python -m swipe.synth --layout hws_fitted --lexicon en --count 100000 --seed 0 --out synth.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from swipe.config import ConfigError, load_json
from swipe.keyboard import Layout, LayoutError, bundled_layout, load_layouts_file
from swipe.lexicon import Lexicon, LexiconError, load_lexicon


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic swipe generator (defaults: fitted to real English swipes).

    Lengths are in key widths (``x``) and key heights (``y``), times in milliseconds; "median"
    parameters are medians of log-normal draws with log standard deviation ``dwell_log_std``.

    Attributes
    ----------
    target_std_x, target_std_y : float
        Standard deviation of a target's offset from its key centre.
    miss_prob, miss_scale : float
        Probability that a target misses by ``miss_scale`` times more.
    shift_std_x, shift_std_y : float
        Standard deviation of the offset shared by all targets of a curve.
    scale_std : float
        Standard deviation of a per-curve relative scale of the layout about its centre.
    corner_overshoot : float
        How far past a key the finger turns at a full reversal (less at gentler corners).
    bow_std : float
        Standard deviation of a movement's sideways bow, as a fraction of its length.
    point_std : float
        Standard deviation of per-event position noise.
    fitts_a_ms, fitts_b_ms : float
        Movement time ``a + b log2(1 + d)`` for a distance ``d`` in key widths.
    speed_log_std : float
        Standard deviation of a per-curve log time factor (slow and fast writers).
    movement_log_std : float
        Standard deviation of a per-movement log time factor.
    overlap, overlap_spread : float
        A movement starts ``overlap +- overlap_spread`` (uniform) of the previous movement's time
        before that one ends; more overlap cuts corners more.
    start_cut : float
        The finger lands up to this fraction into its first movement (a flying start).
    end_cut : float
        The finger lifts up to this fraction before the end of its last movement (a flying end).
    end_overshoot : float
        Where the finger lifts, past the last key along the last movement.
    start_dwell_ms, repeat_dwell_ms : float
        Median pause before moving, and on a repeated letter.
    pause_prob, pause_ms : float
        Probability and median length of a pause on an inner key.
    end_event_ms : float
        Median delay of the final event (lift-off, reported at the last position).
    dwell_log_std : float
        Log standard deviation of pauses, taps and the final event's delay.
    tap_ms : float
        Median duration of a tap (a word on a single key).
    rate_hz_min, rate_hz_max : float
        Per-curve sampling rate, uniform in this range.
    jitter_ms : float
        Standard deviation of each event's time jitter.
    still_keep_prob : float
        Probability of keeping an event at the same (rounded) position as the one before.
    margin : float
        Points are clipped to the layout's area grown by this many key widths / heights.
    quantize : bool
        Round coordinates to whole pixels and times to whole milliseconds, as touch screens do.
    """

    target_std_x: float = 0.2
    target_std_y: float = 0.15
    miss_prob: float = 0.05
    miss_scale: float = 3.0
    shift_std_x: float = 0.1
    shift_std_y: float = 0.1
    scale_std: float = 0.04
    corner_overshoot: float = 0.3
    bow_std: float = 0.06
    point_std: float = 0.01
    fitts_a_ms: float = 60.0
    fitts_b_ms: float = 130.0
    speed_log_std: float = 0.35
    movement_log_std: float = 0.2
    overlap: float = 0.3
    overlap_spread: float = 0.15
    start_cut: float = 0.3
    end_cut: float = 0.3
    end_overshoot: float = 0.15
    start_dwell_ms: float = 20.0
    repeat_dwell_ms: float = 80.0
    pause_prob: float = 0.1
    pause_ms: float = 60.0
    end_event_ms: float = 7.0
    dwell_log_std: float = 0.8
    tap_ms: float = 80.0
    rate_hz_min: float = 58.0
    rate_hz_max: float = 62.0
    jitter_ms: float = 1.0
    still_keep_prob: float = 0.3
    margin: float = 0.5
    quantize: bool = True

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, float) and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not 0 < self.rate_hz_min <= self.rate_hz_max:
            rates = f"{self.rate_hz_min}, {self.rate_hz_max}"
            raise ValueError(f"need 0 < rate_hz_min <= rate_hz_max, got {rates}")
        for name in ("miss_prob", "pause_prob", "still_keep_prob", "start_cut", "end_cut"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be at most 1, got {getattr(self, name)}")
        if self.start_cut >= 0.9 or self.end_cut >= 0.9:
            raise ValueError("start_cut and end_cut must be below 0.9")
        if self.overlap + self.overlap_spread >= 1:
            raise ValueError("overlap + overlap_spread must be below 1")
        if self.fitts_a_ms + self.fitts_b_ms <= 0:
            raise ValueError("fitts_a_ms + fitts_b_ms must be positive")


class SynthCurve(NamedTuple):
    """One synthetic swipe: ``x``, ``y`` float32 pixels, ``t`` float64 ms from 0, non-decreasing."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray


class _Geometry(NamedTuple):
    """Per-layout arrays the generator needs, computed once per layout."""

    layout: Layout
    char_keys: dict[str, int]
    centers: np.ndarray  # (num_keys, 2) float64
    key_sizes: np.ndarray  # (num_keys, 2) float64 width, height
    unit: np.ndarray  # (2,) median key width, height
    size: np.ndarray  # (2,) width, height of the layout


_geometry_cache: dict[int, _Geometry] = {}


def _geometry(layout: Layout) -> _Geometry:
    cached = _geometry_cache.get(id(layout))
    if cached is not None and cached.layout is layout:
        return cached
    char_keys = {}
    for key in layout.keys:
        if not key.is_action and len(key.name) == 1:
            char_keys.setdefault(key.name, layout.key_index(key.name))
    geometry = _Geometry(
        layout=layout,
        char_keys=char_keys,
        centers=layout.centers.astype(np.float64),
        key_sizes=np.array([(k.w, k.h) for k in layout.keys], dtype=np.float64),
        unit=np.array([layout.key_width, layout.key_height]),
        size=np.array([layout.width, layout.height]),
    )
    _geometry_cache[id(layout)] = geometry
    return geometry


def word_keys(word: str, layout: Layout) -> np.ndarray:
    """Key index of each character of ``word`` (``Layout.key_index_for_char``).

    Raises
    ------
    LayoutError
        A character has no key on the layout.
    """
    char_keys = _geometry(layout).char_keys
    keys = [char_keys.get(ch) for ch in word]
    if None in keys:
        keys = [layout.key_index_for_char(ch) for ch in word]
    return np.array(keys, dtype=np.int64)


def _min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile on ``[0, 1]``: ``10 tau^3 - 15 tau^4 + 6 tau^5``."""
    return tau * tau * tau * (10.0 + tau * (6.0 * tau - 15.0))


def _lognormal(rng: np.random.Generator, median: float, log_std: float, size: int | None = None) -> Any:
    return median * np.exp(log_std * rng.standard_normal(size))


def synthesize_curve(
    word: str, layout: Layout, rng: np.random.Generator, config: SynthConfig = SynthConfig()
) -> SynthCurve:
    """Generate one swipe of ``word`` on ``layout``.

    Parameters
    ----------
    word : str
        A normalised word; every character must have a key (see :func:`word_keys`).
    layout : Layout
        The keyboard.
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same curve.
    config : SynthConfig
        Generator parameters.

    Returns
    -------
    SynthCurve
        ``x``, ``y`` (float32 px) and ``t`` (float64 ms, starting at 0, non-decreasing).
    """
    if not word:
        raise ValueError("cannot synthesize an empty word")
    c = config
    geo = _geometry(layout)
    keys = word_keys(word, layout)
    # A run of one key is one target; its extra letters are typed by dwelling on it.
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    targets = keys[first]
    repeated = np.diff(np.r_[first, len(keys)]) > 1
    n = len(targets)
    unit = geo.unit
    # All random numbers of a curve but the per-event ones, in two draws; row 0 is per curve.
    z = rng.standard_normal((n + 1, 6))
    u = rng.random((n + 1, 3))

    # Targets: key centres, per-curve scale and shift, per-target noise with occasional misses.
    scale = 1.0 + c.scale_std * z[0, 0]
    shift = z[0, 1:3] * (c.shift_std_x, c.shift_std_y) * unit
    miss = np.where(u[1:, 0] < c.miss_prob, c.miss_scale, 1.0)[:, None]
    points = (geo.centers[targets] - geo.size / 2) * scale + geo.size / 2 + shift
    points += z[1:, 0:2] * miss * (c.target_std_x, c.target_std_y) * geo.key_sizes[targets]
    dwell = np.exp(c.dwell_log_std * z[:, 3])  # log-normal factors with median 1
    start_dwell = c.start_dwell_ms * dwell[0] + (c.repeat_dwell_ms * dwell[1] if repeated[0] else 0.0)

    if n == 1:
        # A tap: the finger lands, drifts a little and lifts.
        t_land, t_move_end = 0.0, c.tap_ms * np.exp(c.dwell_log_std * z[0, 4])
        t_up = t_move_end
        drift = z[1, 4:6] * 0.02 * unit
        xy_of = lambda t: points[0] + (t / max(t_move_end, 1e-9))[:, None] * drift  # noqa: E731
    else:
        if n > 2 and c.corner_overshoot > 0:
            # Turn a little past each inner key, outwards along the corner's bisector.
            d_in, d_out = _unit_vectors(points[1:-1] - points[:-2]), _unit_vectors(points[2:] - points[1:-1])
            sharpness = (1.0 - np.sum(d_in * d_out, axis=1)) / 2.0  # 0 straight on, 1 reversal
            points[1:-1] += _unit_vectors(d_in - d_out) * (c.corner_overshoot * unit[0] * sharpness)[:, None]
        starts, ends = points[:-1].copy(), points[1:].copy()
        dist = np.hypot(*(ends - starts).T) / unit[0]
        durations = np.exp(c.speed_log_std * z[0, 4]) * (c.fitts_a_ms + c.fitts_b_ms * np.log2(1.0 + dist))
        durations *= np.exp(c.movement_log_std * z[1:n, 2])
        overlap = c.overlap + c.overlap_spread * (2.0 * u[1 : n - 1, 1] - 1.0)
        # After a pause (always on a repeated letter) the next movement starts only once the
        # previous one has ended.
        pause = np.where(u[2:n, 2] < c.pause_prob, c.pause_ms * dwell[2:n], 0.0)
        pause = np.where(repeated[1:-1], c.repeat_dwell_ms * dwell[2:n], pause)
        overlap = np.where(pause > 0, 0.0, overlap)
        onsets = np.r_[0.0, np.cumsum(durations[:-1] * (1.0 - overlap) + pause)]
        # Flying start: the finger lands part-way into its first movement, on the first target.
        tau0 = 0.0 if repeated[0] else c.start_cut * u[0, 1]
        s0 = float(_min_jerk(np.array(tau0)))
        starts[0] -= s0 / (1.0 - s0) * (ends[0] - starts[0])
        # Flying end: it lifts part-way through its last movement, a little past the last target.
        tau1 = 1.0 if repeated[-1] else 1.0 - c.end_cut * u[0, 2]
        s1 = float(_min_jerk(np.array(tau1)))
        lift = points[-1] + c.end_overshoot * unit[0] * _unit_vectors(points[-1:] - points[-2:-1])[0]
        ends[-1] = starts[-1] + (lift - starts[-1]) / s1
        t_land = tau0 * durations[0]
        t_move_end = onsets[-1] + tau1 * durations[-1]
        t_up = t_move_end + (c.repeat_dwell_ms * dwell[n] if repeated[-1] else 0.0)
        bows = c.bow_std * z[1:n, 5]
        steps = ends - starts
        normals = np.stack([-steps[:, 1], steps[:, 0]], axis=1) * bows[:, None]

        def xy_of(t: np.ndarray) -> np.ndarray:
            s = _min_jerk(np.clip((t[:, None] - onsets) / durations, 0.0, 1.0))  # (events, movements)
            # Sideways bow: a bump 4 s (1 - s) along each movement's normal, scaled by its length.
            return starts[0] + s @ steps + (4.0 * s * (1.0 - s)) @ normals

    # Events from touch-down (a pause before moving) to lift-off; the finger is still outside
    # [t_land, t_move_end].
    t = _sample_times(t_land - start_dwell, t_up, rng, c)
    xy = xy_of(np.clip(t, t_land, t_move_end))
    xy += c.point_std * unit * rng.standard_normal(xy.shape)
    xy = np.clip(xy, -c.margin * unit, geo.size + c.margin * unit)
    if c.quantize:
        xy = np.rint(xy)
        t = np.rint(t)
    if len(t) > 2:
        # Touch screens report (almost) only movement: drop most repeats of the same position.
        still = np.r_[False, np.all(xy[1:] == xy[:-1], axis=1)]
        keep = ~still | (rng.random(len(t)) < c.still_keep_prob)
        xy, t = xy[keep], t[keep]
    # The lift-off event repeats the last position a moment later.
    t_end = t[-1] + c.end_event_ms * np.exp(c.dwell_log_std * z[0, 5])
    t = np.r_[t, np.rint(t_end) if c.quantize else t_end] - t[0]
    xy = np.concatenate([xy, xy[-1:]])
    return SynthCurve(xy[:, 0].astype(np.float32), xy[:, 1].astype(np.float32), t)


def _unit_vectors(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` scaled to length 1 (zero rows stay zero)."""
    norm = np.hypot(v[:, 0], v[:, 1])[:, None]
    return v / np.where(norm > 0, norm, 1.0)


def _sample_times(start: float, stop: float, rng: np.random.Generator, c: SynthConfig) -> np.ndarray:
    """Event times on ``[start, stop]`` at a random rate with jitter, both ends included."""
    rate = c.rate_hz_min + (c.rate_hz_max - c.rate_hz_min) * rng.random()
    period = 1000.0 / rate
    count = max(1, int((stop - start) / period) + 1)
    t = start + np.arange(count + 1, dtype=np.float64) * period
    t[1:-1] += c.jitter_ms * rng.standard_normal(count - 1)
    t[-1] = max(stop, t[-2])
    return np.maximum.accumulate(np.clip(t, start, None))


# ---- lexicon on a layout, jsonl writing -------------------------------------------------------


class TypeableWords(NamedTuple):
    """The words of a lexicon that a layout can type, and how many could not be typed."""

    lexicon: Lexicon
    skipped: int


def typeable_words(lexicon: Lexicon, layout: Layout) -> TypeableWords:
    """Restrict ``lexicon`` to words whose every character has a key on ``layout``."""
    chars = {ch for word in lexicon.words for ch in word}
    ok_chars = set()
    for ch in chars:
        try:
            layout.key_index_for_char(ch)
        except LayoutError:
            continue
        ok_chars.add(ch)
    if ok_chars == chars:
        return TypeableWords(lexicon, 0)
    keep = np.array([all(ch in ok_chars for ch in word) for word in lexicon.words], dtype=bool)
    return TypeableWords(lexicon.filter(keep), int((~keep).sum()))


def _format_numbers(values: np.ndarray, quantized: bool) -> str:
    if quantized:
        return json.dumps(values.astype(np.int64).tolist())
    return json.dumps(np.round(values.astype(np.float64), 2).tolist())


def write_synthetic_jsonl(
    path: str | Path,
    layout: Layout | Sequence[Layout],
    lexicon: Lexicon,
    count: int,
    seed: int,
    by_frequency: bool = True,
    inline_grid: bool = True,
    config: SynthConfig = SynthConfig(),
    overwrite: bool = False,
) -> int:
    """Write ``count`` synthetic swipes as Yandex-format jsonl.

    Each line is ``{"word": w, "curve": {"x": [...], "y": [...], "t": [...], "grid": {...}}}``, or
    with ``inline_grid=False`` ``"grid_name": name`` instead of ``"grid"``. The file is written to a
    temporary name and renamed at the end, so it is either complete or absent.

    Parameters
    ----------
    path : str or Path
        Output file; an existing file is an error unless ``overwrite``.
    layout : Layout or sequence of Layout
        Keyboard(s); with several, each curve picks one uniformly at random.
    lexicon : Lexicon
        Words to swipe; words with a character that has no key on a layout are not used on it.
    count : int
        Number of curves.
    seed : int
        The same seed (and arguments) gives a byte-identical file.
    by_frequency : bool
        Draw words by lexicon frequency (else uniformly).
    inline_grid : bool
        Put each curve's grid inline (else only its ``grid_name``).
    config : SynthConfig
        Generator parameters.
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    int
        The number of curves written (``count``).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    layouts = [layout] if isinstance(layout, Layout) else list(layout)
    if not layouts:
        raise ValueError("no layout given")
    vocabularies, cdfs, tails = [], [], []
    for lay in layouts:
        words = typeable_words(lexicon, lay).lexicon
        if not words.words:
            raise LayoutError(f"no word of lexicon {lexicon.name!r} can be typed on layout {lay.name!r}")
        weights = words.frequencies if by_frequency and words.frequencies.sum() > 0 else np.ones(len(words))
        vocabularies.append(words.words)
        cdfs.append(np.cumsum(weights))
        grid = json.dumps(lay.to_grid(), ensure_ascii=False) if inline_grid else json.dumps(lay.name)
        tails.append((',"grid":' if inline_grid else ',"grid_name":') + grid + "}}\n")

    word_seed, curve_seed = np.random.SeedSequence(seed).spawn(2)
    word_rng, curve_rng = np.random.default_rng(word_seed), np.random.default_rng(curve_seed)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    chunk = 4096
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for start in range(0, count, chunk):
                size = min(chunk, count - start)
                which = word_rng.integers(len(layouts), size=size) if len(layouts) > 1 else [0] * size
                draws = word_rng.random(size)
                lines = []
                for li, u in zip(list(which), draws.tolist(), strict=True):
                    cdf = cdfs[li]
                    index = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(cdf) - 1)
                    word = vocabularies[li][index]
                    curve = synthesize_curve(word, layouts[li], curve_rng, config)
                    lines.append(
                        '{"word":' + json.dumps(word, ensure_ascii=False)
                        + ',"curve":{"x":' + _format_numbers(curve.x, config.quantize)
                        + ',"y":' + _format_numbers(curve.y, config.quantize)
                        + ',"t":' + _format_numbers(curve.t, config.quantize)
                        + tails[li]
                    )
                out.write("".join(lines))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


def resolve_layouts(name_or_file: str) -> list[Layout]:
    """A bundled layout by name, or every layout of a grids file."""
    path = Path(name_or_file)
    if path.suffix == ".json" or path.is_file():
        return list(load_layouts_file(path).values())
    return [bundled_layout(name_or_file)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swipe.synth", description="Write synthetic swipes as Yandex-format jsonl."
    )
    parser.add_argument("--layout", required=True, action="append",
                        help="bundled layout name or grids file (repeatable; a file adds all its layouts)")
    parser.add_argument("--lexicon", default="en",
                        help="bundled lexicon (en, ru) or a word<TAB>frequency file")
    parser.add_argument("--count", type=int, required=True, help="number of curves")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    parser.add_argument("--out", type=Path, required=True, help="output jsonl file")
    parser.add_argument("--uniform", action="store_true", help="draw words uniformly, not by frequency")
    parser.add_argument("--grid-by-name", action="store_true",
                        help="write curve.grid_name instead of the grid inline")
    parser.add_argument("--config", type=Path, help="JSON file of SynthConfig fields to override")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    try:
        if args.out.exists() and not args.overwrite:
            raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it")
        config = load_json(SynthConfig, args.config) if args.config else SynthConfig()
        layouts = [lay for spec in args.layout for lay in resolve_layouts(spec)]
        lexicon = load_lexicon(args.lexicon)
        for lay in layouts:
            skipped = typeable_words(lexicon, lay).skipped
            if skipped:
                print(f"{lay.name}: skipping {skipped} of {len(lexicon)} words "
                      "with characters it has no key for", file=sys.stderr)
        written = write_synthetic_jsonl(
            args.out, layouts, lexicon, args.count, args.seed, by_frequency=not args.uniform,
            inline_grid=not args.grid_by_name, config=config, overwrite=args.overwrite,
        )
    except (FileExistsError, ConfigError, LayoutError, LexiconError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {written} curves to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
