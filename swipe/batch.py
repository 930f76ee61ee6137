"""The tensors that flow from the dataset's collate function into the models.

Padding masks follow PyTorch's convention: ``True`` marks a padded position.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

# Per-point trajectory features computed by collate, in this order along the last axis.
#   x, y       coordinates in key widths / key heights of the curve's layout
#   t          seconds since the first point
#   dx, dy     first derivatives by time (keys per second), finite differences
#   ddx, ddy   second derivatives by time (keys per second squared)
FEATURE_NAMES = ("x", "y", "t", "dx", "dy", "ddx", "ddy")


class SwipeBatch(NamedTuple):
    """A padded batch of swipe curves: everything an encoder may read.

    Attributes
    ----------
    coords : Tensor
        ``(B, T, 2)`` float32 raw coordinates in pixels of each curve's layout.
    features : Tensor
        ``(B, T, len(FEATURE_NAMES))`` float32 per-point features, zero at padding.
    nearest_keys : Tensor
        ``(B, T)`` int64 index of the nearest key within the curve's layout, 0 at padding.
    layout_ids : Tensor
        ``(B,)`` int64 index of each curve's layout in the model's layout list.
    lengths : Tensor
        ``(B,)`` int64 number of real points per curve.
    """

    coords: Tensor
    features: Tensor
    nearest_keys: Tensor
    layout_ids: Tensor
    lengths: Tensor

    def to(self, device: str | object) -> SwipeBatch:
        return SwipeBatch(*(t.to(device, non_blocking=True) for t in self))


class Batch(NamedTuple):
    """A training / evaluation batch.

    Attributes
    ----------
    swipe : SwipeBatch
        The curves.
    swipe_pad_mask : Tensor
        ``(B, T)`` bool, ``True`` at padded points.
    decoder_input : Tensor
        ``(B, L)`` int64 ``<sos> c1 .. cn`` padded with ``<pad>``.
    target : Tensor
        ``(B, L)`` int64 ``c1 .. cn <eos>`` padded with ``<pad>`` (the loss ignores ``<pad>``).
    tokens_pad_mask : Tensor
        ``(B, L)`` bool, ``True`` at padded target positions.
    index : Tensor
        ``(B,)`` int64 row of each curve in its dataset.
    """

    swipe: SwipeBatch
    swipe_pad_mask: Tensor
    decoder_input: Tensor
    target: Tensor
    tokens_pad_mask: Tensor
    index: Tensor

    def to(self, device: str | object) -> Batch:
        return Batch(
            self.swipe.to(device),
            *(t.to(device, non_blocking=True) for t in self[1:]),
        )
