"""The decoding pipeline's backend for a PyTorch model (:class:`swipe.decoding.pipeline.Backend`).

The encoder reads the features the training collator computes (:func:`collate_points`); the
decoder steps with its key/value cache (or recurrent state), one row per hypothesis, grouped by
curve, as ``swipe.models.EncoderDecoder.decode_step`` takes them; given words are scored in one
teacher-forced ``decode`` call (the training path).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from swipe.batch import SwipeBatch
from swipe.data.collate import trajectory_features
from swipe.decoding.generators import IncrementalModel
from swipe.keyboard import Layout


class TorchMemory(NamedTuple):
    """The encoder's output ``(C, T, D)`` and its padding mask ``(C, T)`` (True at padding)."""

    memory: Tensor
    pad_mask: Tensor


def collate_points(points: np.ndarray, lengths: np.ndarray, layout_ids: np.ndarray,
                   layouts: Sequence[Layout]) -> tuple[SwipeBatch, Tensor]:
    """A :class:`swipe.batch.SwipeBatch` and its padding mask from zero-padded points ``(B, T, 3)``
    (x, y in pixels, t in ms), as :class:`swipe.data.SwipeCollator` makes them."""
    nearest = np.zeros(points.shape[:2], np.int64)
    for i, (n, layout_id) in enumerate(zip(lengths.tolist(), layout_ids.tolist(), strict=True)):
        nearest[i, :n] = layouts[layout_id].nearest_keys(points[i, :n, 0], points[i, :n, 1])
    padded = torch.from_numpy(points)
    coords = padded[..., :2].contiguous()
    lengths_t = torch.from_numpy(lengths)
    ids = torch.from_numpy(layout_ids)
    sizes = [[layout.key_width, layout.key_height] for layout in layouts]
    key_size = torch.tensor(sizes, dtype=torch.float32)
    features = trajectory_features(coords, padded[..., 2], lengths_t, key_size[ids])
    pad_mask = torch.arange(points.shape[1])[None, :] >= lengths_t[:, None]
    return SwipeBatch(coords, features, torch.from_numpy(nearest), ids, lengths_t), pad_mask


class TorchBackend:
    """A PyTorch encoder-decoder (or anything with its ``encode`` and ``decode_step``) on ``device``.

    Parameters
    ----------
    model : IncrementalModel
        In eval mode.
    layouts : sequence of Layout
        The model's layouts, in layout-id order.
    device : str
        Where the model is.
    """

    def __init__(self, model: IncrementalModel, layouts: Sequence[Layout], device: str = "cpu") -> None:
        self.model = model
        self.layouts = list(layouts)
        self.device = device

    @torch.inference_mode()
    def encode(self, points: np.ndarray, lengths: np.ndarray, layout_ids: np.ndarray) -> TorchMemory:
        swipe, pad_mask = collate_points(points, lengths, layout_ids, self.layouts)
        pad_mask = pad_mask.to(self.device)
        return TorchMemory(self.model.encode(swipe.to(self.device), pad_mask), pad_mask)

    def take(self, memory: TorchMemory, curves: np.ndarray) -> TorchMemory:
        rows = torch.from_numpy(curves).to(self.device)
        return TorchMemory(memory.memory.index_select(0, rows), memory.pad_mask.index_select(0, rows))

    @torch.inference_mode()
    def step(self, tokens: np.ndarray, memory: TorchMemory, state: Any) -> tuple[np.ndarray, Any]:
        last = torch.from_numpy(tokens.reshape(-1)).to(self.device)
        step = self.model.decode_step(last, memory.memory, memory.pad_mask, state)
        log_probs = torch.log_softmax(step.logits.float(), dim=-1).cpu().numpy()
        return log_probs.reshape(*tokens.shape, -1), step.state

    @torch.inference_mode()
    def reorder(self, state: Any, curves: np.ndarray | None, parents: np.ndarray) -> Any:
        if curves is not None:
            state = state.select_curves(torch.from_numpy(curves).to(self.device))
        return state.select(torch.from_numpy(parents).to(self.device))

    @torch.inference_mode()
    def score(self, tokens: np.ndarray, memory: TorchMemory) -> np.ndarray:
        """Next-token log-probabilities ``(C, W, L, V)`` float32 of teacher-forced decoder inputs
        ``tokens`` ``(C, W, L)`` (``<sos>``, then each word's tokens), curve ``c`` reading row
        ``c`` of ``memory``: the model's ``decode`` on the memory repeated once per word."""
        c, w, length = tokens.shape
        rows = torch.from_numpy(tokens.reshape(c * w, length)).to(self.device)
        logits = self.model.decode(rows, memory.memory.repeat_interleave(w, 0),
                                   memory.pad_mask.repeat_interleave(w, 0), None)
        return torch.log_softmax(logits.float(), dim=-1).cpu().numpy().reshape(c, w, length, -1)
