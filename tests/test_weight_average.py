"""The moving average of the weights (optim.ema_decay) on hand-worked cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from swipe.config import ConfigError, from_dict
from swipe.training.averaging import WeightAverage
from swipe.training.config import OptimConfig


class OneWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def _set(model: OneWeight, value: float, count: int = 0) -> None:
    with torch.no_grad():
        model.w.fill_(value)
        model.count.fill_(count)


def test_updates_weigh_past_weights_by_powers_of_the_decay():
    model = OneWeight()
    average = WeightAverage(model, decay=0.5)
    # The starting weights (0) carry no weight after the first update.
    _set(model, 1.0, count=7)
    average.update(model)
    assert average.weights["w"].item() == 1.0
    assert average.weights["count"].item() == 7  # integer buffers are copied
    # Weights 1 and 3 weighed 0.5 and 1, normalised: (0.5 + 3) / 1.5.
    _set(model, 3.0)
    average.update(model)
    assert average.weights["w"].item() == pytest.approx(3.5 / 1.5)
    # And 1, 3, 5 weighed 0.25, 0.5, 1.
    _set(model, 5.0)
    average.update(model)
    assert average.weights["w"].item() == pytest.approx((0.25 + 1.5 + 5.0) / 1.75)
    # Long after the start each update moves the average by 1 - decay.
    average.num_updates = 60
    assert average.next_weight() == pytest.approx(0.5)


def test_applied_to_lends_the_average_and_restores_the_weights():
    model = OneWeight()
    average = WeightAverage(model, decay=0.9)
    _set(model, 2.0)
    average.update(model)
    _set(model, 4.0)
    average.update(model)  # (0.9 * 2 + 4) / 1.9
    with average.applied_to(model):
        assert model.w.item() == pytest.approx(5.8 / 1.9)
    assert model.w.item() == 4.0 and model.w.requires_grad


def test_state_dict_round_trip_and_mismatch():
    model = OneWeight()
    average = WeightAverage(model, decay=0.9)
    _set(model, 1.0)
    average.update(model)
    restored = WeightAverage(OneWeight(), decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.num_updates == 1 and torch.equal(restored.weights["w"], average.weights["w"])
    with pytest.raises(ValueError, match="does not hold this model's weights"):
        WeightAverage(nn.Linear(1, 1), decay=0.9).load_state_dict(average.state_dict())


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ConfigError, match="ema_decay"):
        from_dict(OptimConfig, {"ema_decay": decay}, "cfg.json: optim")
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(OneWeight(), decay)
