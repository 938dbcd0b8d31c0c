"""``WeightAverage``: the moving average of a module's weights, swapped in for validation and
out again without touching the weights being trained."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _module(value: float):
    m = torch.nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(value)
        m.bias.fill_(value)
    return m


def test_the_average_follows_the_steps_and_swaps_cleanly():
    from avrec.models.neural import WeightAverage

    m = _module(0.0)
    avg = WeightAverage(m, 0.5)
    for value in (1.0, 2.0):  # two "optimiser steps"
        with torch.no_grad():
            m.weight.fill_(value)
            m.bias.fill_(value)
        avg.update(m)
    avg.swap_in(m)
    assert torch.allclose(m.weight, torch.full_like(m.weight, 1.25))  # 0 -> 0.5 -> 1.25
    avg.swap_out(m)
    assert torch.allclose(m.weight, torch.full_like(m.weight, 2.0))
    assert torch.allclose(m.bias, torch.full_like(m.bias, 2.0))


def test_decay_zero_leaves_the_module_alone():
    from avrec.models.neural import WeightAverage

    m = _module(3.0)
    avg = WeightAverage(m, 0.0)
    with torch.no_grad():
        m.weight.fill_(4.0)
    avg.update(m)
    avg.swap_in(m)
    avg.swap_out(m)
    assert torch.allclose(m.weight, torch.full_like(m.weight, 4.0))

    assert not avg.active
