"""An exponential moving average of a model's weights (``optim.ema_decay``).

Trained at a constant learning rate, the weights wander around a minimum from step to step; their
average over the last thousand or so steps sits closer to it and decodes better, with no change
to training itself. The trainer updates the average after every optimizer step, validates with
it, and stores it in each checkpoint beside the training weights, which stay what the optimizer
continues from. :func:`~swipe.training.checkpoint.inference_state` (used by ``load_model`` and
the exporter) prefers the average.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of every floating-point entry of a model's state dict.

    After ``n`` updates the average weighs the weights of update ``i`` by ``decay ** (n - i)``,
    normalised to sum to one (bias-corrected like Adam's moments): over the first few hundred
    updates it is close to a plain mean of them, later it spans about ``1 / (1 - decay)`` steps.
    The weights it starts from (the model's when it is made) carry no weight after the first
    update. Other entries (integer buffers) are copied.

    Parameters
    ----------
    model : nn.Module
        The model whose current weights start the average.
    decay : float
        In ``(0, 1)``.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.weights = {name: t.detach().clone() for name, t in model.state_dict().items()}

    def next_weight(self) -> float:
        """How far the next update moves the average towards the model's weights:
        ``(1 - decay) / (1 - decay ** (n + 1))`` after ``n`` updates (1, then about ``1 / (n + 1)``,
        then ``1 - decay``)."""
        return (1.0 - self.decay) / (1.0 - self.decay ** (self.num_updates + 1))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s weights (call after each optimizer step)."""
        weight = self.next_weight()
        for name, tensor in model.state_dict().items():
            averaged = self.weights[name]
            if averaged.is_floating_point():
                averaged.lerp_(tensor, weight)
            else:
                averaged.copy_(tensor)
        self.num_updates += 1

    @contextmanager
    def applied_to(self, model: nn.Module) -> Iterator[None]:
        """Give ``model`` the averaged weights inside the block and its own back after it."""
        own = {name: t.detach().clone() for name, t in model.state_dict().items()}
        model.load_state_dict(self.weights)
        try:
            yield
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict[str, Any]:
        """``{"decay", "num_updates", "model"}``: ``model`` is a full state dict of the average."""
        return {"decay": self.decay, "num_updates": self.num_updates, "model": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (its decay is replaced by this average's own)."""
        if set(state["model"]) != set(self.weights):
            raise ValueError("the stored weight average does not hold this model's weights")
        self.num_updates = int(state["num_updates"])
        self.weights = {
            name: t.detach().to(self.weights[name].device, copy=True) for name, t in state["model"].items()
        }
