"""Stopping criteria: when a curve's search is over.

A criterion is called after each decoding step with the number of tokens generated so far and
the ``(B,)`` number of live (unfinished) hypotheses per curve, and returns a ``(B,)`` bool
array, ``True`` for curves whose search must stop (their live hypotheses are dropped). They work on
numpy arrays, as the generators' per-step bookkeeping does: these arrays are tiny, and torch would
spend more on dispatch than on the work.
"""

from __future__ import annotations

from typing import Iterable, Protocol

import numpy as np


class StoppingCriteria(Protocol):
    """Decides, per curve, that decoding is over."""

    def __call__(self, num_tokens: int, num_alive: np.ndarray) -> np.ndarray: ...


class MaxLengthCriteria:
    """Stops every curve once ``max_length`` tokens (``<eos>`` included) have been generated."""

    def __init__(self, max_length: int) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length

    def __call__(self, num_tokens: int, num_alive: np.ndarray) -> np.ndarray:
        done = np.zeros(num_alive.shape, dtype=bool)
        if num_tokens >= self.max_length:
            done[:] = True
        return done


class AllBeamsFinishedCriteria:
    """Stops a curve once none of its hypotheses is still being extended."""

    def __call__(self, num_tokens: int, num_alive: np.ndarray) -> np.ndarray:
        return num_alive == 0


class StoppingCriteriaList(list):
    """Stops a curve when any of its criteria does."""

    def __init__(self, criteria: Iterable[StoppingCriteria] = ()) -> None:
        super().__init__(criteria)

    def __call__(self, num_tokens: int, num_alive: np.ndarray) -> np.ndarray:
        if not self:
            return np.zeros(num_alive.shape, dtype=bool)
        done = self[0](num_tokens, num_alive)
        for criterion in self[1:]:
            done = done | criterion(num_tokens, num_alive)
        return done
