"""The sequential model's network (models.sequential)."""

from __future__ import annotations

import numpy as np
import torch

from avrec.models.neural.sequential import _net_class, right_pad
from avrec.models.neural.towers import item_tower_class


def test_looking_items_up_in_the_catalog_pass_equals_running_the_tower():
    """Training looks each window's items up in the step's one projection of the catalog's
    content; that must give what running the tower on the window's items gives."""
    rng = np.random.default_rng(0)
    content = rng.normal(size=(30, 16)).astype(np.float32)
    warm = np.arange(30) < 20
    torch.manual_seed(0)
    net = _net_class()(item_tower_class()(content, warm, 8, 0.3), 8, 1, 2, 0.1, 12)
    net.eval()
    seq = torch.from_numpy(right_pad([np.array([1, 4, 25, 7]), np.array([29, 3])]))
    with torch.no_grad():
        projected = net.items.proj(net.items.content)
        direct, looked_up = net(seq), net(seq, projected)
        other = net(seq, projected.flip(0))
        assert torch.allclose(net.items(None, projected), net.items(), atol=1e-6)
    assert torch.allclose(direct, looked_up, atol=1e-6)
    assert not torch.allclose(looked_up, other, atol=1e-3)  # the projection is what is read


def test_id_dropout_is_drawn_per_position_when_looked_up():
    """In training, two occurrences of one warm item in a batch get independent ID dropout
    draws (as when the tower runs on the window), not one draw per step."""
    content = np.ones((5, 4), np.float32)
    net = _net_class()(item_tower_class()(content, np.ones(5, bool), 8, 0.5), 8, 1, 2, 0.0, 64)
    net.train()
    torch.manual_seed(0)
    with torch.no_grad():
        v = net.items(torch.zeros(64, dtype=torch.long), net.items.proj(net.items.content))
    assert len(torch.unique(v.round(decimals=5), dim=0)) == 2  # with and without the ID


def test_right_pad_keeps_the_most_recent_items():
    out = right_pad([np.array([1, 2, 3, 4]), np.array([5])], width=3)
    assert out.tolist() == [[2, 3, 4], [5, -1, -1]]
