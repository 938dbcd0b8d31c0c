"""``WeightAverage``: the moving average of a module's weights, swapped in for validation and
out again without touching the weights being trained."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")


def _module(value: float):
    m = torch.nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(value)
        m.bias.fill_(value)
    return m


def test_the_average_follows_the_steps_and_swaps_cleanly():
    from avrec.models.neural.towers import WeightAverage

    m = _module(0.0)
    avg = WeightAverage(m, 0.5)
    for value in (1.0, 2.0):  # two "optimiser steps"
        with torch.no_grad():
            m.weight.fill_(value)
            m.bias.fill_(value)
        avg.update(m)
    avg.swap_in(m)
    # warm-up decays 1/10 then 2/11 (under 0.5): 0 -> 0.9 -> 0.9 * 2/11 + 2 * 9/11 = 1.8
    assert torch.allclose(m.weight, torch.full_like(m.weight, 1.8))
    avg.swap_out(m)
    assert torch.allclose(m.weight, torch.full_like(m.weight, 2.0))
    assert torch.allclose(m.bias, torch.full_like(m.bias, 2.0))


def test_decay_zero_leaves_the_module_alone():
    from avrec.models.neural.towers import WeightAverage

    m = _module(3.0)
    avg = WeightAverage(m, 0.0)
    with torch.no_grad():
        m.weight.fill_(4.0)
    avg.update(m)
    avg.swap_in(m)
    avg.swap_out(m)
    assert torch.allclose(m.weight, torch.full_like(m.weight, 4.0))

    assert not avg.active


def test_the_decay_warms_up_to_its_setting():
    """min(decay, (1 + t) / (10 + t)): fast at first, then the decay set (0.99 from t = 890)."""
    from avrec.models.neural.towers import WeightAverage

    m = _module(0.0)
    avg = WeightAverage(m, 0.99)
    seen = []
    for _ in range(1000):
        seen.append(avg.current_decay())
        avg.update(m)
    assert seen[0] == pytest.approx(0.1) and seen[1] == pytest.approx(2 / 11)
    assert all(a <= b for a, b in itertools.pairwise(seen))
    assert seen[889] < 0.99 and seen[890] == pytest.approx(0.99) and seen[-1] == 0.99


def test_buffers_are_copied_not_averaged():
    """A buffer (the item tower's frozen content) comes back bit for bit, however many updates."""
    from avrec.models.neural.towers import WeightAverage

    m = _module(0.0)
    m.register_buffer("content", torch.full((3,), 0.70710683))
    avg = WeightAverage(m, 0.99)
    for _ in range(50):
        avg.update(m)
    avg.swap_in(m)
    assert torch.equal(m.content, torch.full((3,), 0.70710683))
