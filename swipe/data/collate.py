"""Collate dataset items into padded batches with per-point features."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from swipe.batch import FEATURE_NAMES, Batch, SwipeBatch
from swipe.data.dataset import SwipeItem
from swipe.data.resample import ResampleConfig, resample_curve
from swipe.keyboard import Layout
from swipe.tokenizers import CharTokenizer

# trajectory_features computes exactly these, in this order.
assert FEATURE_NAMES == ("x", "y", "t", "dx", "dy", "ddx", "ddy")

# Time steps shorter than this (seconds) count as this long in derivatives: duplicate timestamps
# (dt = 0) are legal and must give finite features.
MIN_DT = 1e-3


def trajectory_features(
    coords: Tensor, t_ms: Tensor, lengths: Tensor, key_size: Tensor, min_dt: float = MIN_DT
) -> Tensor:
    """Per-point features :data:`swipe.batch.FEATURE_NAMES` of a padded batch, vectorised.

    ``x, y`` are pixels divided by the key width / height, ``t`` seconds since the first point.
    Derivatives are backward differences over ``max(dt, min_dt)``; the first point takes the value
    of the second (zero for one-point curves). Padding is zero.

    Parameters
    ----------
    coords : Tensor
        ``(B, T, 2)`` pixels.
    t_ms : Tensor
        ``(B, T)`` milliseconds.
    lengths : Tensor
        ``(B,)`` real points per curve.
    key_size : Tensor
        ``(B, 2)`` key width and height of each curve's layout, pixels.
    min_dt : float
        Floor of time steps, seconds.

    Returns
    -------
    Tensor
        ``(B, T, 7)`` float32.
    """
    batch, steps = t_ms.shape
    valid = torch.arange(steps, device=t_ms.device)[None, :] < lengths[:, None]  # (B, T)
    xy = coords / key_size[:, None, :]
    t = (t_ms - t_ms[:, :1]) / 1000.0
    t = torch.where(valid, t, 0.0)
    if steps < 2:
        zeros = torch.zeros(batch, steps, 2, dtype=xy.dtype, device=xy.device)
        features = torch.cat([xy, t[..., None], zeros, zeros], dim=-1)
        return features * valid[..., None]
    dt = (t[:, 1:] - t[:, :-1]).clamp_min(min_dt)[..., None]  # (B, T-1, 1)
    moved = valid[:, 1:, None]  # a step ends at a real point

    def derivative(values: Tensor) -> Tensor:
        d = torch.where(moved, (values[:, 1:] - values[:, :-1]) / dt, 0.0)
        return torch.cat([d[:, :1], d], dim=1)  # the first point copies the second's value

    velocity = derivative(xy)
    acceleration = derivative(velocity)
    features = torch.cat([xy, t[..., None], velocity, acceleration], dim=-1)
    return torch.where(valid[..., None], features, 0.0)


class SwipeCollator:
    """Turns a list of :class:`~swipe.data.dataset.SwipeItem` into a :class:`swipe.batch.Batch`.

    Parameters
    ----------
    layouts : sequence of Layout
        The model's layouts; item ``layout_id`` indexes this list (build the dataset with
        ``layout_names=[layout.name for layout in layouts]``).
    tokenizer : CharTokenizer
        The model's tokenizer; item character ids must be its ids (build the dataset with
        ``tokenizer=tokenizer``).
    max_points : int or None
        Curves with more points are thinned to this many, evenly spaced by index (first and last
        kept). Bounds the memory and time of the few very long curves, whose attention cost grows
        with the square of their length. ``None`` keeps every point.
    resample : ResampleConfig or None
        Resample every curve first (:mod:`swipe.data.resample`); ``None`` keeps the logged points.
    """

    def __init__(
        self,
        layouts: Sequence[Layout],
        tokenizer: CharTokenizer,
        max_points: int | None = None,
        resample: ResampleConfig | None = None,
    ) -> None:
        if not layouts:
            raise ValueError("SwipeCollator needs at least one layout")
        if max_points is not None and max_points < 2:
            raise ValueError(f"max_points must be at least 2, got {max_points}")
        self.layouts = list(layouts)
        self.tokenizer = tokenizer
        self.max_points = max_points
        self.resample = resample
        self._names = [layout.name for layout in self.layouts]
        self._key_size = torch.tensor(
            [[lay.key_width, lay.key_height] for lay in self.layouts], dtype=torch.float32
        )

    def _check(self, item: SwipeItem) -> None:
        if item.alphabet is not self.tokenizer.alphabet and item.alphabet != self.tokenizer.alphabet:
            raise ValueError(
                f"item {item.index} has character ids of alphabet {item.alphabet!r}, the collator's "
                f"tokenizer has {self.tokenizer.alphabet!r}; load the dataset with tokenizer=..."
            )
        if not 0 <= item.layout_id < len(self._names) or self._names[item.layout_id] != item.layout_name:
            raise ValueError(
                f"item {item.index} has layout {item.layout_name!r} as id {item.layout_id}, but the "
                f"collator's layouts are {self._names}; load the dataset with layout_names=..."
            )

    def __call__(self, items: Sequence[SwipeItem]) -> Batch:
        swipe, pad_mask = self.swipes(items)
        decoder_input, target, tokens_pad_mask = self._tokens(items)
        index = torch.tensor([item.index for item in items], dtype=torch.int64)
        return Batch(swipe, pad_mask, decoder_input, target, tokens_pad_mask, index)

    def swipes(self, items: Sequence[SwipeItem]) -> tuple[SwipeBatch, Tensor]:
        """The padded curves of ``items`` and their ``(B, T)`` padding mask: the part of a
        :class:`~swipe.batch.Batch` that decoding reads, without its target tokens."""
        if not items:
            raise ValueError("cannot collate an empty batch")
        for item in items:
            self._check(item)
        if self.resample is not None:
            items = [self._resample(item, self.resample) for item in items]
        if self.max_points is not None:
            items = [self._thin(item, self.max_points) for item in items]
        size = len(items)
        lengths = np.fromiter((len(item.t) for item in items), np.int64, size)
        steps = int(lengths.max())
        # Scatter the concatenated points into the padded (B, T) grid by flat index.
        rows = np.repeat(np.arange(size), lengths)
        cols = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = torch.from_numpy(rows * steps + cols)
        scale = np.repeat(np.fromiter((1.0 / item.coord_scale for item in items), np.float32, size), lengths)
        points = np.empty((len(rows), 3), np.float32)  # x, y (pixels), t (ms)
        points[:, 0] = np.concatenate([item.x for item in items]) * scale
        points[:, 1] = np.concatenate([item.y for item in items]) * scale
        points[:, 2] = np.concatenate([item.t for item in items])
        keys = torch.from_numpy(np.concatenate([item.nearest_keys for item in items]).astype(np.int64))
        padded = torch.zeros(size * steps, 3)
        padded[flat] = torch.from_numpy(points)
        padded = padded.view(size, steps, 3)
        nearest = torch.zeros(size * steps, dtype=torch.int64)
        nearest[flat] = keys
        coords = padded[..., :2].contiguous()
        layout_ids = torch.tensor([item.layout_id for item in items], dtype=torch.int64)
        lengths_t = torch.from_numpy(lengths)
        features = trajectory_features(coords, padded[..., 2], lengths_t, self._key_size[layout_ids])
        pad_mask = torch.arange(steps)[None, :] >= lengths_t[:, None]
        return SwipeBatch(coords, features, nearest.view(size, steps), layout_ids, lengths_t), pad_mask

    def _resample(self, item: SwipeItem, config: ResampleConfig) -> SwipeItem:
        layout = self.layouts[item.layout_id]
        scale = 1.0 / item.coord_scale
        x, y, t = resample_curve(item.x * scale, item.y * scale, item.t, layout.key_width, config,
                                 self.max_points)
        return item._replace(
            x=x * item.coord_scale, y=y * item.coord_scale, t=t, nearest_keys=layout.nearest_keys(x, y)
        )

    @staticmethod
    def _thin(item: SwipeItem, max_points: int) -> SwipeItem:
        if len(item.t) <= max_points:
            return item
        keep = np.round(np.linspace(0, len(item.t) - 1, max_points)).astype(np.int64)
        return item._replace(
            x=item.x[keep], y=item.y[keep], t=item.t[keep], nearest_keys=item.nearest_keys[keep]
        )

    def _tokens(self, items: Sequence[SwipeItem]) -> tuple[Tensor, Tensor, Tensor]:
        """``<sos> c1..cn`` and ``c1..cn <eos>`` padded with ``<pad>``, and the padding mask."""
        tok = self.tokenizer
        size = len(items)
        word_lengths = np.fromiter((len(item.chars) for item in items), np.int64, size)
        width = int(word_lengths.max()) + 1
        decoder_input = torch.full((size, width), tok.pad_id, dtype=torch.int64)
        target = torch.full((size, width), tok.pad_id, dtype=torch.int64)
        decoder_input[:, 0] = tok.sos_id
        if word_lengths.any():
            rows = torch.from_numpy(np.repeat(np.arange(size), word_lengths))
            cols = torch.from_numpy(
                np.arange(len(rows)) - np.repeat(np.cumsum(word_lengths) - word_lengths, word_lengths)
            )
            chars = torch.from_numpy(np.concatenate([item.chars for item in items]).astype(np.int64))
            decoder_input[rows, cols + 1] = chars
            target[rows, cols] = chars
        lengths = torch.from_numpy(word_lengths)
        target[torch.arange(size), lengths] = tok.eos_id
        tokens_pad_mask = torch.arange(width)[None, :] > lengths[:, None]
        return decoder_input, target, tokens_pad_mask
