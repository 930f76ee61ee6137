"""Learning-rate schedule: linear warm-up, then a plateau scheduler keyed on validations.

The plateau part is stepped once per validation, so its patience is counted in validations: a
run that validates every ``N`` optimizer steps reacts to a stalled metric after ``patience * N``
steps, whatever the epoch length. Early stopping counts the same way.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

Mode = Literal["min", "max"]


class PlateauTracker:
    """Counts validations without improvement of a metric.

    Parameters
    ----------
    mode : {"min", "max"}
        Whether a lower or a higher metric is better.
    patience : int
        Validations without improvement tolerated; the next one triggers.
    threshold : float
        Relative improvement needed to count as better (``0.01`` = 1 %).
    """

    def __init__(self, mode: Mode, patience: int, threshold: float = 0.0) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.mode = mode
        self.patience = patience
        self.threshold = threshold
        self.best: float | None = None
        self.bad_validations = 0

    def is_better(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < self.best - abs(self.best) * self.threshold
        return value > self.best + abs(self.best) * self.threshold

    def update(self, value: float) -> bool:
        """Record one validation; ``True`` when patience has just run out (the counter restarts)."""
        if self.is_better(value):
            self.best = value
            self.bad_validations = 0
            return False
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.bad_validations = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.bad_validations = int(state["bad_validations"])


class WarmupPlateauScheduler:
    """Linear warm-up over ``warmup_steps`` optimizer steps, then multiply the learning rate by
    ``factor`` whenever the monitored validation metric has not improved for ``patience``
    validations, down to ``min_lr``.

    Call :meth:`step` after every optimizer step and :meth:`validation_step` after every
    validation. The learning rate of step ``s`` (0-based) is
    ``base_lr * min(1, (s + 1) / warmup_steps) * scale`` where ``scale`` is the product of the
    plateau reductions so far (floored so that the rate never falls below ``min_lr``).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its parameter groups' ``lr`` are set by this scheduler.
    warmup_steps : int
        Steps of linear warm-up; 0 disables it.
    mode, patience, threshold
        See :class:`PlateauTracker`.
    factor : float
        Multiplier applied on a plateau, in ``(0, 1)``.
    min_lr : float
        Lower bound of the learning rate after reductions.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        mode: Mode,
        patience: int,
        factor: float,
        min_lr: float = 0.0,
        threshold: float = 0.0,
    ) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.optimizer = optimizer
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["initial_lr"] = lr
        self.warmup_steps = warmup_steps
        self.factor = factor
        self.min_lr = min_lr
        self.plateau = PlateauTracker(mode, patience, threshold)
        self.scale = 1.0
        self.num_reductions = 0
        self.steps_done = 0
        self._apply()

    def lr_factor(self, step: int) -> float:
        """Warm-up factor of 0-based optimizer step ``step``."""
        if self.warmup_steps == 0:
            return 1.0
        return min(1.0, (step + 1) / self.warmup_steps)

    def _apply(self) -> None:
        warm = self.lr_factor(self.steps_done)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = max(base * self.scale, min(self.min_lr, base)) * warm

    def step(self) -> None:
        """Advance by one optimizer step (sets the rate of the next step)."""
        self.steps_done += 1
        self._apply()

    def validation_step(self, metric: float) -> bool:
        """Record a validation result; ``True`` when it reduced the learning rate."""
        if not self.plateau.update(metric):
            return False
        if all(base * self.scale <= self.min_lr for base in self.base_lrs):
            return False
        self.scale *= self.factor
        self.num_reductions += 1
        self._apply()
        return True

    def get_last_lr(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "base_lrs": list(self.base_lrs),
            "scale": self.scale,
            "num_reductions": self.num_reductions,
            "steps_done": self.steps_done,
            "plateau": self.plateau.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self.scale = float(state["scale"])
        self.num_reductions = int(state["num_reductions"])
        self.steps_done = int(state["steps_done"])
        self.plateau.load_state_dict(state["plateau"])
        self._apply()


class EarlyStopping:
    """Stop when the monitored metric has not improved for ``patience`` validations."""

    def __init__(self, mode: Mode, patience: int, threshold: float = 0.0) -> None:
        self.tracker = PlateauTracker(mode, patience, threshold)

    def update(self, metric: float) -> bool:
        """Record a validation; ``True`` when training should stop."""
        return self.tracker.update(metric)

    def state_dict(self) -> dict[str, Any]:
        return self.tracker.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state)
