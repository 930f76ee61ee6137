"""Swipe point embedders: per-point trajectory features and keyboard features -> vectors.

Every embedder returns ``(B, T, d_model)``: a learned projection of (normalised) trajectory
features plus a key embedding, either of the nearest key or a weighted sum of all the layout's key
embeddings. Keyboard weights are computed here, on the model's device, from the raw coordinates
and per-layout buffers built from the :class:`~swipe.keyboard.Layout` objects, so datasets store
nothing keyboard-specific beyond the nearest key.

| name                 | trajectory features      | keyboard features                         |
| -------------------- | ------------------------ | ----------------------------------------- |
| ``phrase_swipe``     | none                     | nearest-key embedding                     |
| ``google_2015``      | x, y, t                  | nearest key                               |
| ``indiswipe``        | x, y, dx, dy             | nearest key                               |
| ``nearest``          | x, y, dx, dy, ddx, ddy   | nearest-key embedding                     |
| ``weighted``         | x, y, dx, dy, ddx, ddy   | key embeddings weighted by f(distance)    |
| ``trainable_gaussian`` | x, y, dx, dy, ddx, ddy | key embeddings weighted by trainable Gaussians |

(A one-hot nearest key followed by a linear layer is a nearest-key embedding, so the "nearest key"
and "nearest-key embedding" rows share their implementation.)
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from swipe.batch import FEATURE_NAMES, SwipeBatch
from swipe.keyboard import Layout
from swipe.models.config import EmbedderConfig

_ALL_TRAJECTORY = ("x", "y", "dx", "dy", "ddx", "ddy")

# name -> (trajectory features, keyboard part)
EMBEDDER_SPECS: dict[str, tuple[tuple[str, ...], str]] = {
    "phrase_swipe": ((), "nearest"),
    "google_2015": (("x", "y", "t"), "nearest"),
    "indiswipe": (("x", "y", "dx", "dy"), "nearest"),
    "nearest": (_ALL_TRAJECTORY, "nearest"),
    "weighted": (_ALL_TRAJECTORY, "weighted"),
    "trainable_gaussian": (_ALL_TRAJECTORY, "gaussian"),
}

# Derivatives are squashed with asinh(v / scale): linear for ordinary speeds, logarithmic for the
# spikes that near-zero time steps produce. Scales are typical magnitudes (keys/s, keys/s^2).
_DERIVATIVE_SCALES = {"dx": 10.0, "dy": 10.0, "ddx": 100.0, "ddy": 100.0}
_FEATURE_CLAMP = 20.0


def sinusoidal_positions(
    length: int, dim: int, offset: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """The ``(length, dim)`` positional encoding of "Attention is all you need" for positions
    ``offset .. offset + length - 1``."""
    position = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = position * freq
    table = torch.stack((angles.sin(), angles.cos()), dim=-1).reshape(length, dim)
    return table.to(dtype)


class PositionTable:
    """Rows of the sinusoidal positional encoding from a table kept between calls, grown (and
    moved to another device or dtype) as needed.

    Parameters
    ----------
    dim : int
        Width of the encoding.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._table: Tensor | None = None

    def rows(self, offset: int, length: int, like: Tensor) -> Tensor:
        """Rows ``offset .. offset + length - 1``, ``(length, dim)``, on ``like``'s device and
        dtype (the same values as :func:`sinusoidal_positions`)."""
        table = self._table
        end = offset + length
        if table is None or table.shape[0] < end or table.device != like.device or table.dtype != like.dtype:
            # A plain tensor even when first needed under inference_mode: training reuses it.
            with torch.inference_mode(False), torch.no_grad():
                table = sinusoidal_positions(max(end, 64), self.dim, 0, like.device, like.dtype)
            self._table = table
        return table[offset:end]


class KeyboardGeometry(NamedTuple):
    """Per-layout key tables, padded to the largest key count.

    Attributes
    ----------
    centers : Tensor
        ``(num_layouts, K, 2)`` float32 key centres in pixels (0 at padding).
    key_mask : Tensor
        ``(num_layouts, K)`` bool, ``True`` at real keys.
    half_diagonals : Tensor
        ``(num_layouts,)`` float32 key half-diagonal in pixels.
    key_rows : Tensor
        ``(num_layouts, K)`` int64 row of each key in the shared key-embedding table (keys with
        the same name on two layouts share a row; 0 at padding).
    num_key_rows : int
        Rows in the shared key-embedding table.
    """

    centers: Tensor
    key_mask: Tensor
    half_diagonals: Tensor
    key_rows: Tensor
    num_key_rows: int


def keyboard_geometry(layouts: Sequence[Layout]) -> KeyboardGeometry:
    """Build the padded key tables of ``layouts`` (in the model's layout order)."""
    if not layouts:
        raise ValueError("a model needs at least one layout")
    num_keys = max(layout.num_keys for layout in layouts)
    centers = torch.zeros(len(layouts), num_keys, 2)
    key_mask = torch.zeros(len(layouts), num_keys, dtype=torch.bool)
    key_rows = torch.zeros(len(layouts), num_keys, dtype=torch.int64)
    rows: dict[str, int] = {}
    for i, layout in enumerate(layouts):
        n = layout.num_keys
        centers[i, :n] = torch.from_numpy(layout.centers)
        key_mask[i, :n] = True
        key_rows[i, :n] = torch.tensor([rows.setdefault(k.name, len(rows)) for k in layout.keys])
    half_diagonals = torch.tensor([layout.half_diagonal for layout in layouts], dtype=torch.float32)
    return KeyboardGeometry(centers, key_mask, half_diagonals, key_rows, len(rows))


class SwipePointEmbedder(nn.Module):
    """Embeds every point of a :class:`~swipe.batch.SwipeBatch` into ``d_model`` dimensions.

    Parameters
    ----------
    config : EmbedderConfig
        Which embedder (see the module docstring) and its weight function.
    layouts : sequence of Layout
        The model's layouts; ``SwipeBatch.layout_ids`` index this list.
    d_model : int
        Output width.
    """

    def __init__(self, config: EmbedderConfig, layouts: Sequence[Layout], d_model: int) -> None:
        super().__init__()
        self.config = config
        features, keyboard = EMBEDDER_SPECS[config.name]
        self.feature_names = features
        self.keyboard = keyboard
        geometry = keyboard_geometry(layouts)
        self.register_buffer(
            "feature_index",
            torch.tensor([FEATURE_NAMES.index(f) for f in features], dtype=torch.int64),
            persistent=False,
        )
        self.register_buffer(
            "feature_scale",
            torch.tensor([_DERIVATIVE_SCALES.get(f, 1.0) for f in features]),
            persistent=False,
        )
        self.register_buffer(
            "feature_squash", torch.tensor([f in _DERIVATIVE_SCALES for f in features]), persistent=False
        )
        self.register_buffer("key_centers", geometry.centers, persistent=False)
        self.register_buffer("key_mask", geometry.key_mask, persistent=False)
        self.register_buffer("half_diagonals", geometry.half_diagonals, persistent=False)
        self.register_buffer("key_rows", geometry.key_rows, persistent=False)
        self.key_embedding = nn.Embedding(geometry.num_key_rows, d_model)
        self.trajectory = nn.Linear(len(features), d_model) if features else None
        if keyboard == "gaussian":
            # One Gaussian per layout key, in key half-diagonals: its mean is the key centre plus a
            # trained offset (so weight decay pulls it back to the centre, not to the origin).
            shape = geometry.centers.shape
            self.gaussian_offset = nn.Parameter(torch.zeros(shape))
            self.gaussian_log_sigma = nn.Parameter(torch.full(shape, math.log(config.gaussian_sigma)))

    def trajectory_features(self, swipe: SwipeBatch) -> Tensor:
        """The embedder's trajectory features, normalised: ``(B, T, F)``."""
        raw = swipe.features.index_select(-1, self.feature_index)
        squashed = torch.asinh(raw / self.feature_scale)
        out = torch.where(self.feature_squash, squashed, raw)
        return out.nan_to_num(0.0).clamp(-_FEATURE_CLAMP, _FEATURE_CLAMP)

    def key_weights(self, swipe: SwipeBatch) -> Tensor:
        """Weights of every key of each curve's layout at every point: ``(B, T, K)``, zero at
        padded keys. Only for the ``weighted`` and ``trainable_gaussian`` embedders."""
        layout_ids = swipe.layout_ids
        hd = self.half_diagonals[layout_ids][:, None, None]  # (B, 1, 1)
        points = swipe.coords.float()[:, :, None, :]  # (B, T, 1, 2)
        centers = self.key_centers[layout_ids][:, None]  # (B, 1, K, 2)
        if self.keyboard == "gaussian":
            offset = self.gaussian_offset[layout_ids][:, None]  # (B, 1, K, 2)
            sigma = self.gaussian_log_sigma[layout_ids][:, None].exp()
            z = ((points - centers) / hd[..., None] - offset) / sigma
            weights = torch.exp(-0.5 * z.square().sum(-1))
        else:
            d = torch.linalg.vector_norm(points - centers, dim=-1) / hd
            if self.config.weight_function == "threshold":
                weights = (d < self.config.threshold).to(d.dtype)
            else:
                weights = torch.sigmoid(-self.config.sigmoid_slope * (d - self.config.sigmoid_center))
        return weights * self.key_mask[layout_ids][:, None, :]

    def keyboard_embedding(self, swipe: SwipeBatch) -> Tensor:
        """The keyboard part of the embedding: ``(B, T, d_model)``."""
        rows = self.key_rows[swipe.layout_ids]  # (B, K)
        if self.keyboard == "nearest":
            return self.key_embedding(rows.gather(1, swipe.nearest_keys))
        table = self.key_embedding(rows)  # (B, K, d_model)
        return torch.bmm(self.key_weights(swipe).to(table.dtype), table)

    def forward(self, swipe: SwipeBatch) -> Tensor:
        """Embed the points of ``swipe``: ``(B, T, d_model)``, in the model's dtype (values at
        padded points are meaningless; encoders ignore them)."""
        out = self.keyboard_embedding(swipe)
        if self.trajectory is not None:
            features = self.trajectory_features(swipe).to(self.trajectory.weight.dtype)
            out = out + self.trajectory(features)
        return out
