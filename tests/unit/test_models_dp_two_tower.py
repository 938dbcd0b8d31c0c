"""dp-two-tower: user-level DP-SGD (Opacus) for the two-tower model. One sample is one user
(Opacus's per-sample gradient of a batch equals each user's own gradient), the noise multiplier
meets the budget (round trip through the avrec accountant, cross-checked against Opacus's),
the manifest records the mechanism, and seeded noise repeats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.capabilities import TrainsPrivately
from avrec.models.private import accountant as acc
from avrec.models.registry import create_model

SMALL = {"dim": 8, "epochs": 3, "batch_size": 8, "negatives": 10, "noise_seed": 0}


@pytest.fixture(scope="module")
def data() -> TrainData:
    rng = np.random.default_rng(0)
    n_items = 20
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": "x"})
    rows = []
    for u in range(40):  # users prefer items of their parity, which the text vectors show
        for i in rng.choice(np.arange(u % 2, n_items, 2), size=6, replace=False):
            rows.append((f"u{u}", f"i{i}", 1_000 + len(rows)))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    text = rng.normal(size=(n_items, 12)).astype(np.float32)
    text[1::2, 0] += 3.0
    return TrainData.from_dataset(Dataset(items, inter), {"text": text})


def test_trains_at_epsilon_8_records_the_mechanism_and_loads(data, tmp_path):
    model = create_model("dp-two-tower", SMALL).with_budget(8.0)
    assert isinstance(model, TrainsPrivately)
    model.fit(data)
    record = json.loads((model.save(tmp_path / "m") / "manifest.json").read_text())["privacy"]
    assert record["epsilon"] == 8.0 and record["delta"] == acc.default_delta(40)
    assert record["mechanism"].startswith("dp-sgd")
    q, steps = 8 / 40, round(3 / (8 / 40))
    assert record["sampling_rate"] == q and record["steps"] == steps
    assert record["clipping"]["max_grad_norm"] == 1.0 and record["noise_multiplier"] > 0
    # the accountant's round trip: the noise used gives at most the epsilon asked for, and
    # Opacus's own RDP accountant agrees
    sigma = record["noise_multiplier"]
    assert record["epsilon_spent"] <= 8.0
    assert acc.dpsgd_epsilon(sigma, q, steps, record["delta"]) == record["epsilon_spent"]
    assert acc.dpsgd_epsilon(sigma * 0.99, q, steps, record["delta"]) > 8.0  # the smallest
    assert record["epsilon_spent_opacus_rdp"] == pytest.approx(8.0, rel=0.02)
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.privacy() == record
    users = np.arange(5)
    np.testing.assert_allclose(
        loaded.score(users, data.matrix[:5]), model.score(users, data.matrix[:5]), rtol=1e-5
    )


@pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")
def test_a_users_per_sample_gradient_is_their_own_gradient(data):
    """Opacus's per-sample gradient for each user in a batch (the shared negatives included)
    equals that user's gradient alone: nothing of one user leaks into another's sample."""
    import torch

    from avrec.models.private.two_tower import (
        _examples,
        _scorer_class,
        _user_losses,
        per_user_module,
    )

    model = create_model("dp-two-tower", {**SMALL, "epsilon": None}).fit(data)
    net = model.net
    net.train()
    net.items.id_dropout = 0.0  # the same forward pass with and without the hooks
    m = data.matrix.tocsr()
    rows = [m.indices[m.indptr[u] : m.indptr[u + 1]] for u in range(3)]
    rng = np.random.default_rng(0)
    hist, cands, (valid, width) = _examples(rows, m.shape[1], model.config, rng)
    hist_t, cands_t, valid_t = map(torch.from_numpy, (hist, cands, valid))
    scorer = per_user_module(net, 0.1)
    _user_losses(scorer(hist_t, cands_t), valid_t, width).sum().backward()
    weight = net.user.weight
    per_sample = weight.grad_sample.clone()
    scorer.remove_hooks()
    for n in range(3):
        weight.grad = None
        one = _scorer_class()(net, 0.1)(hist_t[n : n + 1], cands_t[n : n + 1])
        _user_losses(one, valid_t[n : n + 1], width).sum().backward()
        torch.testing.assert_close(per_sample[n], weight.grad, rtol=1e-4, atol=1e-6)


def test_seeded_noise_repeats_and_the_noise_moves_the_weights(data):
    def weights(**extra):
        model = create_model("dp-two-tower", {**SMALL, **extra}).fit(data)
        return model.net.user.weight.detach().numpy().copy()

    a, b = weights(epsilon=1.0), weights(epsilon=1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, weights(epsilon=1.0, noise_seed=1))
    assert not np.array_equal(a, weights(epsilon=None))


def test_without_item_ids_no_item_is_warm_and_the_ids_stay_untrained(data):
    model = create_model("dp-two-tower", {**SMALL, "epsilon": 8.0, "item_ids": False}).fit(data)
    tower = model.net.items
    assert not tower.warm.any()
    assert not any(p.requires_grad for p in tower.ids.parameters())


@pytest.mark.parametrize(
    "setting", [{"media": "auto"}, {"user_attributes": True}, {"finetune_text_layers": 1}]
)
def test_parts_outside_dp_sgd_are_refused(setting):
    with pytest.raises(ValueError, match="not trained under DP-SGD"):
        create_model("dp-two-tower", setting)


def test_steps_that_draw_no_user_still_step(data):
    """Poisson sampling at q = 1/40: about a third of the 40 steps draw nobody; they still add
    their noise (the accounting counts them)."""
    model = create_model("dp-two-tower", {**SMALL, "batch_size": 1, "epochs": 1, "epsilon": 8.0})
    record = model.fit(data).privacy()
    assert record["steps"] == 40 and record["sampling_rate"] == 1 / 40
    assert np.isfinite(model.item_vectors).all()
