"""Stopping criteria: when a curve's search is over.

A criterion is called after each decoding step with the number of tokens generated so far and
the ``(B,)`` number of live (unfinished) hypotheses per curve, and returns a ``(B,)`` bool
tensor, ``True`` for curves whose search must stop (their live hypotheses are dropped).
"""

from __future__ import annotations

from typing import Iterable, Protocol

import torch
from torch import Tensor


class StoppingCriteria(Protocol):
    """Decides, per curve, that decoding is over."""

    def __call__(self, num_tokens: int, num_alive: Tensor) -> Tensor: ...


class MaxLengthCriteria:
    """Stops every curve once ``max_length`` tokens (``<eos>`` included) have been generated."""

    def __init__(self, max_length: int) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length

    def __call__(self, num_tokens: int, num_alive: Tensor) -> Tensor:
        return torch.full(num_alive.shape, num_tokens >= self.max_length, dtype=torch.bool)


class AllBeamsFinishedCriteria:
    """Stops a curve once none of its hypotheses is still being extended."""

    def __call__(self, num_tokens: int, num_alive: Tensor) -> Tensor:
        return num_alive == 0


class StoppingCriteriaList(list):
    """Stops a curve when any of its criteria does."""

    def __init__(self, criteria: Iterable[StoppingCriteria] = ()) -> None:
        super().__init__(criteria)

    def __call__(self, num_tokens: int, num_alive: Tensor) -> Tensor:
        done = torch.zeros(num_alive.shape, dtype=torch.bool)
        for criterion in self:
            done |= criterion(num_tokens, num_alive)
        return done
