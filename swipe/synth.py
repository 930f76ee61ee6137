"""Synthetic swipes: a fast, calibrated generator of gesture-typing curves for any layout.

A curve for a word is built in three steps.

1. Targets: the centres of the word's keys (a run of one repeated key is one target that the
   finger dwells on), each moved by Gaussian noise in key units, with an occasional larger miss, and
   the whole word moved and scaled a little (users and devices place the keyboard differently); at
   sharp corners the finger turns a little past the key.
2. Path: a superposition of minimum-jerk movements, one per pair of consecutive targets
   (Flash & Hogan). Each movement lasts a Fitts-like time ``a + b log2(1 + distance)`` and starts
   before the previous one has ended, so corners are cut smoothly (or, after a pause, only once it
   has ended); movements bow sideways and the finger wobbles slowly. The finger lands and lifts while
   moving (flying start and end), lifting a little past the last key.
3. Sampling: touch events at a per-curve rate with jitter, reported only when the sensed position
   changes (so pauses show up as gaps between events), rounded to whole pixels and milliseconds,
   and a final lift-off event at the last position.

The defaults of :class:`SynthConfig` are fitted to 800 real English swipes (How-We-Swipe); the
comparison is printed by ``bench/synth_calibration.py`` and logged in ``bench/RESULTS.md``.

Command line::

    python -m swipe.synth --layout hws_fitted --lexicon en --count 100000 --seed 0 --out synth.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from swipe.atomic import atomic_output
from swipe.cli import command_line
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
    device_scale_x, device_scale_x_std : float
        Median and log standard deviation of a per-curve horizontal scale of the whole keyboard
        about its left edge: touch logs of devices with narrower or wider keyboards than the
        layout, each in its own pixels (real swipes hit the right-hand keys left of their centres).
    sloppiness : float
        Log standard deviation of a per-curve factor on the target noise and the overlap of
        movements (careful and sloppy writers).
    corner_overshoot : float
        How far past a key the finger turns at a full reversal (less at gentler corners).
    bow_std : float
        Standard deviation of a movement's sideways bow, as a fraction of its length.
    point_std : float
        Standard deviation of per-event position noise.
    wobble, wobble_cycles : float
        Amplitude and typical frequency (cycles per key-to-key movement) of a slow wobble of the
        finger along its path: per axis a sinusoid of random phase and of a frequency within a
        factor 2 of ``wobble_cycles``.
    fitts_a_ms, fitts_b_ms : float
        Movement time ``a + b log2(1 + d)`` for a distance ``d`` in key widths.
    speed_log_std : float
        Standard deviation of a per-curve log time factor (slow and fast writers).
    movement_log_std : float
        Standard deviation of a per-movement log time factor.
    slowdown : float
        Writers slow down along a word: the last movement takes ``1 + slowdown`` times as long as
        the first would (linearly in between).
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
    tap_ms, tap_drift : float
        Median duration of a tap (a word on a single key), and the standard deviation of how far
        the finger drifts during it.
    rate_hz_min, rate_hz_max : float
        Per-curve sampling rate, uniform in this range.
    jitter_ms : float
        Standard deviation of each event's time jitter.
    sensor_pitch : float
        Touch screens sense positions on a grid of this pitch and report an event only when the
        sensed position changes, so slow movement and pauses show up as gaps between events.
    margin : float
        Points are clipped to the layout's area grown by this many key widths / heights.
    quantize : bool
        Round coordinates to whole pixels and times to whole milliseconds, as touch screens do.
    """

    target_std_x: float = 0.24
    target_std_y: float = 0.22
    miss_prob: float = 0.1
    miss_scale: float = 3.0
    shift_std_x: float = 0.16
    shift_std_y: float = 0.12
    scale_std: float = 0.03
    device_scale_x: float = 1.0
    device_scale_x_std: float = 0.0
    sloppiness: float = 0.3
    corner_overshoot: float = 0.11
    bow_std: float = 0.09
    point_std: float = 0.0
    wobble: float = 0.06
    wobble_cycles: float = 1.6
    fitts_a_ms: float = 58.0
    fitts_b_ms: float = 130.0
    speed_log_std: float = 0.6
    movement_log_std: float = 0.2
    slowdown: float = 0.18
    overlap: float = 0.24
    overlap_spread: float = 0.1
    start_cut: float = 0.3
    end_cut: float = 0.07
    end_overshoot: float = 0.3
    start_dwell_ms: float = 25.0
    repeat_dwell_ms: float = 130.0
    pause_prob: float = 0.29
    pause_ms: float = 22.0
    end_event_ms: float = 9.0
    dwell_log_std: float = 1.3
    tap_ms: float = 60.0
    tap_drift: float = 0.006
    rate_hz_min: float = 58.0
    rate_hz_max: float = 61.0
    jitter_ms: float = 0.6
    sensor_pitch: float = 0.01
    margin: float = 0.5
    quantize: bool = True

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, float) and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not 0 < self.rate_hz_min <= self.rate_hz_max:
            rates = f"{self.rate_hz_min}, {self.rate_hz_max}"
            raise ValueError(f"need 0 < rate_hz_min <= rate_hz_max, got {rates}")
        for name in ("miss_prob", "pause_prob", "start_cut", "end_cut"):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be at most 1, got {getattr(self, name)}")
        if self.start_cut >= 0.9 or self.end_cut >= 0.9:
            raise ValueError("start_cut and end_cut must be below 0.9")
        if self.overlap + self.overlap_spread >= 1:
            raise ValueError("overlap + overlap_spread must be below 1")
        if self.fitts_a_ms + self.fitts_b_ms <= 0:
            raise ValueError("fitts_a_ms + fitts_b_ms must be positive")
        if self.device_scale_x <= 0:
            raise ValueError(f"device_scale_x must be positive, got {self.device_scale_x}")


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


def _targets(word: str, geo: _Geometry) -> tuple[list[int], list[bool]]:
    """The keys a word visits (a run of one key once) and whether each is typed more than once."""
    targets: list[int] = []
    repeated: list[bool] = []
    for ch in word:
        key = geo.char_keys.get(ch)
        if key is None:
            key = geo.layout.key_index_for_char(ch)
        if targets and key == targets[-1]:
            repeated[-1] = True
        else:
            targets.append(key)
            repeated.append(False)
    return targets, repeated


def _min_jerk(tau: float) -> float:
    """Minimum-jerk position profile on ``[0, 1]``: ``10 tau^3 - 15 tau^4 + 6 tau^5``."""
    return tau * tau * tau * (10.0 + tau * (6.0 * tau - 15.0))


_ROTATE = np.array([-1.0, 1.0])  # (x, y) -> (-y, x) after swapping the columns


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
    targets, repeated = _targets(word, geo)
    n = len(targets)
    kw = float(geo.unit[0])
    # All random numbers of a curve but the per-event ones, in two draws; row 0 is per curve.
    z = rng.standard_normal((n + 1, 7))
    np.clip(z, -3.0, 3.0, out=z)  # no absurd outliers (e.g. a 50 times longer pause) in millions of curves
    u = rng.random((n + 1, 3))
    z0, u0 = z[0].tolist(), u[0].tolist()
    dwell = np.exp(c.dwell_log_std * z[:, 3])  # log-normal factors with median 1

    # Targets: key centres, per-curve scale and shift, per-target noise with occasional misses.
    half = geo.size / 2.0
    shift = (z0[1] * c.shift_std_x, z0[2] * c.shift_std_y) * geo.unit
    miss = np.where(u[1:, 0] < c.miss_prob, c.miss_scale, 1.0)[:, None]
    sloppy = float(np.exp(c.sloppiness * z0[6]))
    noise = z[1:, 0:2] * (miss * sloppy) * (c.target_std_x, c.target_std_y) * geo.key_sizes[targets]
    points = (geo.centers[targets] - half) * (1.0 + c.scale_std * z0[0]) + (half + shift) + noise
    if c.device_scale_x != 1.0 or c.device_scale_x_std > 0:
        # Drawn only when used, so that curves of the default settings stay as they were.
        spread = c.device_scale_x_std * float(np.clip(rng.standard_normal(), -3.0, 3.0))
        points[:, 0] *= c.device_scale_x * float(np.exp(spread))
    start_dwell = c.start_dwell_ms * float(dwell[0])
    if repeated[0]:
        start_dwell += c.repeat_dwell_ms * float(dwell[1])

    if n == 1:
        # A tap: the finger lands, drifts a little and lifts.
        t_land, t_move_end = 0.0, c.tap_ms * float(np.exp(c.dwell_log_std * z0[4]))
        t_up = t_move_end
        origin, drift = points[0], z[1, 4:6] * c.tap_drift * geo.unit
    else:
        steps = points[1:] - points[:-1]
        length = np.hypot(steps[:, 0], steps[:, 1])
        if n > 2 and c.corner_overshoot > 0:
            # Turn a little past each inner key, outwards along the corner's bisector b = d_in - d_out
            # (unit directions in and out), by corner_overshoot * (1 - cos(turn)) / 2 = |b|^2 / 4.
            dirs = steps / np.maximum(length, 1e-9)[:, None]
            bisector = dirs[:-1] - dirs[1:]
            bisector *= (0.25 * c.corner_overshoot * kw * np.hypot(bisector[:, 0], bisector[:, 1]))[:, None]
            points[1:-1] += bisector
            steps = points[1:] - points[:-1]
            length = np.hypot(steps[:, 0], steps[:, 1])
        speed = float(np.exp(c.speed_log_std * z0[4]))
        durations = (speed * c.fitts_a_ms + speed * c.fitts_b_ms * np.log2(1.0 + length / kw)) * np.exp(
            c.movement_log_std * z[1:n, 2]
        )
        onsets = np.zeros(n - 1)
        if n > 2:
            durations *= np.linspace(1.0, 1.0 + c.slowdown, n - 1)
            overlap = np.minimum((c.overlap + c.overlap_spread * (2.0 * u[1 : n - 1, 1] - 1.0)) * sloppy, 0.9)
            # After a pause (always on a repeated letter) the next movement starts only once the
            # previous one has ended.
            pause = np.where(u[2:n, 2] < c.pause_prob, c.pause_ms * dwell[2:n], 0.0)
            inner_repeats = np.array(repeated[1:-1])
            pause[inner_repeats] = c.repeat_dwell_ms * dwell[2:n][inner_repeats]
            gaps = np.where(pause > 0, durations[:-1] + pause, durations[:-1] * (1.0 - overlap))
            np.cumsum(gaps, out=onsets[1:])
        # Flying start: the finger lands part-way into its first movement, on the first target.
        tau0 = 0.0 if repeated[0] else c.start_cut * u0[1]
        s0 = _min_jerk(tau0)
        origin = points[0] - s0 / (1.0 - s0) * steps[0]
        steps[0] /= 1.0 - s0
        # Flying end: it lifts part-way through its last movement, a little past the last target.
        tau1 = 1.0 if repeated[-1] else 1.0 - c.end_cut * u0[2]
        last_length = float(length[-1])
        lift = points[-1] + (c.end_overshoot * kw / max(last_length, 1e-9)) * (points[-1] - points[-2])
        last_start = origin if n == 2 else points[-2]
        steps[-1] = (lift - last_start) / _min_jerk(tau1)
        t_land = tau0 * float(durations[0])
        t_move_end = float(onsets[-1]) + tau1 * float(durations[-1])
        t_up = t_move_end + (c.repeat_dwell_ms * float(dwell[n]) if repeated[-1] else 0.0)
        # Sideways bow: a bump 4 s (1 - s) along each movement's normal, scaled by its length.
        normals = steps[:, ::-1] * (4.0 * c.bow_std * z[1:n, 5])[:, None] * _ROTATE

    # Events from touch-down (a pause before moving) to lift-off; the finger is still outside
    # [t_land, t_move_end].
    t = _sample_times(t_land - start_dwell, t_up, rng, c)
    t_motion = np.minimum(np.maximum(t, t_land), t_move_end)
    if n == 1:
        xy = origin + (t_motion / max(t_move_end, 1e-9))[:, None] * drift
    else:
        tau = (t_motion[:, None] - onsets) / durations  # (events, movements)
        np.minimum(np.maximum(tau, 0.0, out=tau), 1.0, out=tau)
        s = tau * tau * tau * (10.0 + tau * (6.0 * tau - 15.0))
        xy = origin + s @ steps + (s - s * s) @ normals
        if c.wobble > 0:
            # A function of progress along the path, so the finger stays still while it pauses.
            w = rng.random(4)
            cycles = c.wobble_cycles * np.exp2(2.0 * w[:2] - 1.0)  # per axis
            angle = s.sum(axis=1)[:, None] * (2.0 * np.pi * cycles) + 2.0 * np.pi * w[2:]
            xy += c.wobble * geo.unit * np.sin(angle)
    if c.point_std > 0:
        xy += c.point_std * geo.unit * rng.standard_normal(xy.shape)
    xy = np.minimum(np.maximum(xy, -c.margin * geo.unit), geo.size + c.margin * geo.unit)
    # Touch screens report only movement: drop events (but the touch-down) whose sensed position
    # is that of the event before; slow movement still repeats positions once rounded to pixels.
    if c.sensor_pitch > 0:
        sensed = np.rint(xy * (1.0 / (c.sensor_pitch * kw)))
        changed = sensed[1:] != sensed[:-1]
        moved = changed[:, 0] | changed[:, 1]
    else:
        moved = np.any(xy[1:] != xy[:-1], axis=1)
    if not moved.all():
        keep = np.concatenate(([True], moved))
        xy, t = xy[keep], t[keep]
    if c.quantize:
        xy = np.rint(xy)
        t = np.rint(t)
    # The lift-off event repeats the last position a moment later.
    k = len(t)
    t_end = float(t[-1]) + c.end_event_ms * float(np.exp(c.dwell_log_std * z0[5]))
    out_t = np.empty(k + 1)
    out_t[:k] = t
    out_t[k] = round(t_end) if c.quantize else t_end
    out_t -= out_t[0]
    out_xy = np.empty((2, k + 1), dtype=np.float32)
    out_xy[:, :k] = xy.T
    out_xy[:, k] = xy[-1]
    return SynthCurve(out_xy[0], out_xy[1], out_t)


def _sample_times(start: float, stop: float, rng: np.random.Generator, c: SynthConfig) -> np.ndarray:
    """Event times on ``[start, stop]`` at a random rate with jitter, both ends included."""
    period = 1000.0 / (c.rate_hz_min + (c.rate_hz_max - c.rate_hz_min) * rng.random())
    count = max(1, int((stop - start) / period) + 1)
    t = np.arange(count + 1, dtype=np.float64) * period + start
    if c.jitter_ms > 0 and count > 1:
        t[1:-1] += c.jitter_ms * rng.standard_normal(count - 1)
    t[-1] = max(stop, float(t[-2]))
    return np.maximum.accumulate(t)


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


_COMPACT = (",", ":")  # JSON separators without spaces


def _format_numbers(values: np.ndarray, quantized: bool) -> str:
    if quantized:
        return json.dumps(values.astype(np.int64).tolist(), separators=_COMPACT)
    return json.dumps(np.round(values.astype(np.float64), 2).tolist(), separators=_COMPACT)


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
    frequency_power: float = 1.0,
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
    frequency_power : float
        With ``by_frequency``, draw words in proportion to ``frequency ** frequency_power``
        (below 1 flattens the distribution towards rarer words; 0 is uniform).

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
    if not (np.isfinite(frequency_power) and frequency_power >= 0):
        raise ValueError(f"frequency_power must be finite and >= 0, got {frequency_power}")
    layouts = [layout] if isinstance(layout, Layout) else list(layout)
    if not layouts:
        raise ValueError("no layout given")
    vocabularies, cdfs, tails = [], [], []
    for lay in layouts:
        words = typeable_words(lexicon, lay).lexicon
        if not words.words:
            raise LayoutError(f"no word of lexicon {lexicon.name!r} can be typed on layout {lay.name!r}")
        weights = np.ones(len(words))
        if by_frequency and words.frequencies.sum() > 0:
            weights = words.frequencies ** frequency_power if frequency_power != 1 else words.frequencies
        vocabularies.append(words.words)
        cdfs.append(np.cumsum(weights))
        grid = json.dumps(lay.to_grid() if inline_grid else lay.name, ensure_ascii=False, separators=_COMPACT)
        tails.append((',"grid":' if inline_grid else ',"grid_name":') + grid + "}}\n")

    path.parent.mkdir(parents=True, exist_ok=True)
    word_seed, curve_seed = np.random.SeedSequence(seed).spawn(2)
    word_rng, curve_rng = np.random.default_rng(word_seed), np.random.default_rng(curve_seed)
    chunk = 4096
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as out:
            for start in range(0, count, chunk):
                size = min(chunk, count - start)
                which = np.zeros(size, dtype=np.int64)
                if len(layouts) > 1:
                    which = word_rng.integers(len(layouts), size=size)
                draws = word_rng.random(size)
                word_ids = np.empty(size, dtype=np.int64)
                for li, cdf in enumerate(cdfs):
                    mine = which == li
                    found = np.searchsorted(cdf, draws[mine] * cdf[-1], side="right")
                    word_ids[mine] = np.minimum(found, len(cdf) - 1)
                lines = []
                for li, word_id in zip(which.tolist(), word_ids.tolist(), strict=True):
                    word = vocabularies[li][word_id]
                    curve = synthesize_curve(word, layouts[li], curve_rng, config)
                    lines.append(
                        '{"word":' + json.dumps(word, ensure_ascii=False)
                        + ',"curve":{"x":' + _format_numbers(curve.x, config.quantize)
                        + ',"y":' + _format_numbers(curve.y, config.quantize)
                        + ',"t":' + _format_numbers(curve.t, config.quantize)
                        + tails[li]
                    )
                out.write("".join(lines))
    return count


def resolve_layouts(name_or_file: str) -> list[Layout]:
    """A bundled layout by name, or every layout of a grids file."""
    path = Path(name_or_file)
    if path.suffix == ".json" or path.is_file():
        return list(load_layouts_file(path).values())
    return [bundled_layout(name_or_file)]


@command_line("python -m swipe.synth")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swipe.synth", description="Write synthetic swipes as Yandex-format jsonl.",
        epilog="examples:\n"
        "  python -m swipe.synth --layout hws_fitted --lexicon en --count 1000 --out synth_en.jsonl\n"
        "  python -m swipe.synth --layout default --layout extra --lexicon ru --count 900 --out ru.jsonl\n"
        "  python -m swipe.synth --layout hws_fitted --count 1000 --uniform --seed 1 --out rare.jsonl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--layout", required=True, action="append",
                        help="bundled layout name or grids file (repeatable; a file adds all its layouts)")
    parser.add_argument("--lexicon", default="en",
                        help="bundled lexicon (en, ru) or a word<TAB>frequency file")
    parser.add_argument("--count", type=int, required=True, help="number of curves")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    parser.add_argument("--out", type=Path, required=True, help="output jsonl file")
    parser.add_argument("--uniform", action="store_true", help="draw words uniformly, not by frequency")
    parser.add_argument("--frequency-power", type=float, default=1.0,
                        help="draw words by frequency ** P (default 1; below 1 favours rarer words)")
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
            frequency_power=args.frequency_power,
        )
    except (FileExistsError, ConfigError, LayoutError, LexiconError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {written} curves to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
