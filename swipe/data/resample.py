"""Resample curves onto a regular grid of time or of distance along the path.

Touch logs differ in how they sample a swipe: rates, jitter, events that stop while the finger
rests, bursts after a stall. A model that sees the raw events learns those habits of its training
data. Resampling every curve the same way, in training and in decoding, hides them:

- ``time``: one point every ``step`` milliseconds, positions interpolated in time (the speed of the
  finger stays visible in the spacing of the points);
- ``path``: one point every ``step`` key widths along the path, times interpolated likewise; with
  ``keep_time=False`` the times are replaced by a uniform clock (one ``step`` per 10 ms), so the
  model sees the shape of the path and nothing of its timing.

The first and last points are always kept. A curve is resampled to at most ``max_points``
points (the model's ``data.max_points``, and never more than :data:`MAX_RESAMPLED_POINTS`): where
the grid would hold more, only the grid points that thinning to that many would keep are computed,
so the cost is bounded however long the path is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLE_MODES = ("time", "path")

# Clock of ``path`` resampling without time: milliseconds per step.
UNTIMED_STEP_MS = 10.0
# Most points a resampled curve has, whatever the model's max_points (None included).
MAX_RESAMPLED_POINTS = 4096


@dataclass(frozen=True)
class ResampleConfig:
    """How curves are resampled before features are computed.

    Attributes
    ----------
    mode : str
        ``"time"`` (a point every ``step`` ms) or ``"path"`` (a point every ``step`` key widths
        along the path).
    step : float
        Grid step: milliseconds for ``time``, key widths for ``path``.
    keep_time : bool
        ``path`` only: interpolate the real times (``True``) or use a uniform clock (``False``).
    """

    mode: str = "time"
    step: float = 1000.0 / 60.0
    keep_time: bool = True

    def __post_init__(self) -> None:
        if self.mode not in RESAMPLE_MODES:
            raise ValueError(f"resample mode must be one of {RESAMPLE_MODES}, got {self.mode!r}")
        if not self.step > 0:
            raise ValueError(f"resample step must be positive, got {self.step}")
        if self.mode == "time" and not self.keep_time:
            raise ValueError("keep_time=False only applies to mode 'path'")


def _steps_below(end: np.ndarray | float, step: np.ndarray | float) -> np.ndarray:
    """How many of ``0, step, 2 step, ...`` lie below ``end``."""
    return np.ceil(np.asarray(end) / step - 1e-9).astype(np.int64)


def _grid(end: float, step: float, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``0, step, 2 step, ...`` below ``end``, then ``end`` itself, and the index of each point in
    that grid; over ``max_points`` points, only those that thinning to ``max_points`` keeps."""
    size = int(_steps_below(end, step)) + 1
    index = np.arange(size) if size <= max_points else thin_index(size, max_points)
    return np.where(index < size - 1, index * step, end), index


def thin_index(size: int, max_points: int) -> np.ndarray:
    """Indices of ``max_points`` of ``size`` points, evenly spaced, the first and last kept."""
    return np.round(np.linspace(0, size - 1, max_points)).astype(np.int64)


def point_cap(max_points: int | None) -> int:
    """Most points of a resampled curve: ``max_points``, at most :data:`MAX_RESAMPLED_POINTS`."""
    return MAX_RESAMPLED_POINTS if max_points is None else min(max_points, MAX_RESAMPLED_POINTS)


def resampled_lengths(num_points: np.ndarray, extent: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    """Points per curve after :func:`resample_curve`, without resampling.

    Parameters
    ----------
    num_points : numpy.ndarray
        Logged points per curve.
    extent : numpy.ndarray
        Per curve, its path length in pixels (mode ``path``) or its duration in ms (``time``).
    step : numpy.ndarray or float
        The grid step in the same unit (for ``path``, ``config.step`` times the key width).
    """
    num_points = np.asarray(num_points, dtype=np.int64)
    moved = (num_points >= 2) & (np.asarray(extent) > 0)
    return np.where(moved, np.minimum(_steps_below(extent, step) + 1, MAX_RESAMPLED_POINTS), num_points)


def _interpolate(at: np.ndarray, along: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` given at the non-decreasing ``along``.

    Where ``along`` repeats (a rest, or events logged at the same time), points before it are
    interpolated towards the first of the repeated points and points from it on start from the
    last: a rest at a corner keeps its arrival time on one side and its departure on the other.
    """
    left = np.clip(np.searchsorted(along, at, side="right") - 1, 0, len(along) - 2)
    span = along[left + 1] - along[left]
    weight = np.divide(at - along[left], span, out=np.ones_like(at), where=span > 0)
    return values[left] + np.clip(weight, 0.0, 1.0) * (values[left + 1] - values[left])


def resample_curve(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, key_width: float, config: ResampleConfig,
    max_points: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample one curve.

    Parameters
    ----------
    x, y : numpy.ndarray
        Pixel coordinates.
    t : numpy.ndarray
        Non-decreasing milliseconds.
    key_width : float
        Key width of the curve's layout in pixels (the unit of ``path`` steps).
    config : ResampleConfig
    max_points : int, optional
        Keep at most this many of the grid's points (at most :data:`MAX_RESAMPLED_POINTS`),
        evenly spaced by index, the first and last kept: the points that resampling and then
        thinning to ``max_points`` would give, without computing the others.

    Returns
    -------
    tuple of numpy.ndarray
        ``x, y, t`` as ``float64``. A curve that does not move (``path``) or takes no time
        (``time``) is returned as it is, apart from the clock of untimed ``path`` resampling.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if config.mode == "time":
        along = t - t[0]
        step = config.step
    else:
        along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        step = config.step * key_width
    if len(x) < 2 or along[-1] <= 0:
        if config.mode == "path" and not config.keep_time:
            t = np.arange(len(x), dtype=np.float64) * UNTIMED_STEP_MS
        return x, y, t
    at, index = _grid(along[-1], step, point_cap(max_points))
    new_x, new_y = _interpolate(at, along, x), _interpolate(at, along, y)
    if config.mode == "time":
        new_t = t[0] + at
    elif config.keep_time:
        new_t = _interpolate(at, along, t)
    else:
        new_t = index * UNTIMED_STEP_MS
    return new_x, new_y, new_t
