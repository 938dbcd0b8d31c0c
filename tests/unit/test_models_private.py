"""User-level differential privacy: the accountant in both directions, the sensitivity that
contribution bounding gives, dp-ease without noise equal to EASE on the bounded data, seeded
noise, and the privacy record in the saved manifest."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.baselines.ease import EASE
from avrec.models.capabilities import TrainsPrivately
from avrec.models.private import accountant as acc
from avrec.models.private.clipping import bound_contributions, gram_sensitivity, row_weights
from avrec.models.registry import create_model


def _data(n_users=50, n_items=30, seed=0, drop_user=None) -> TrainData:
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": "x"})
    rows = []
    for u in range(n_users):
        n = int(rng.integers(1, n_items))
        # a taste: users prefer items of their parity
        p = np.where(np.arange(n_items) % 2 == u % 2, 3.0, 1.0)
        for i in rng.choice(n_items, size=n, replace=False, p=p / p.sum()):
            rows.append((f"u{u}", f"i{i}", 1_000 + len(rows)))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    inter = inter[inter["user_id"] != f"u{drop_user}"]
    return TrainData.from_dataset(Dataset(items, inter))


@pytest.mark.parametrize("eps", [0.5, 2.0, 8.0])
def test_gaussian_accountant_round_trip_and_minimal(eps):
    sigma = acc.gaussian_noise_multiplier(eps, 1e-5)
    assert acc.gaussian_epsilon(sigma, 1e-5) == pytest.approx(eps, rel=1e-6)
    assert acc.gaussian_epsilon(sigma, 1e-5) <= eps
    assert acc.gaussian_epsilon(sigma * (1 - 1e-6), 1e-5) > eps  # the smallest such sigma


def test_accountant_is_monotone():
    sigmas = [acc.gaussian_noise_multiplier(e, 1e-5) for e in (0.5, 1, 2, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(sigmas))
    eps = [acc.gaussian_epsilon(s, 1e-5) for s in (0.5, 1, 2, 4)]
    assert all(a > b for a, b in itertools.pairwise(eps))
    assert acc.gaussian_epsilon(1.0, 1e-6) > acc.gaussian_epsilon(1.0, 1e-4)
    assert acc.gaussian_epsilon(0.0, 1e-5) == float("inf")


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_dpsgd_accountant_round_trip(accountant):
    eps = acc.dpsgd_epsilon(1.5, 0.05, 40, 1e-5, accountant)
    assert 0 < eps < acc.dpsgd_epsilon(1.5, 0.05, 80, 1e-5, accountant)  # more steps: more
    assert eps < acc.dpsgd_epsilon(1.5, 0.1, 40, 1e-5, accountant)  # larger batches: more
    sigma = acc.dpsgd_noise_multiplier(eps, 1e-5, 0.05, 40, accountant)
    assert sigma == pytest.approx(1.5, rel=1e-3)
    assert acc.dpsgd_epsilon(sigma, 0.05, 40, 1e-5, accountant) <= eps


def test_pld_is_tighter_than_rdp_and_rdp_bounds_the_exact_single_release():
    assert acc.dpsgd_epsilon(1.5, 0.05, 40, 1e-5, "pld") < acc.dpsgd_epsilon(
        1.5, 0.05, 40, 1e-5, "rdp"
    )
    exact = acc.gaussian_epsilon(2.0, 1e-5)
    assert exact <= acc.dpsgd_epsilon(2.0, 1.0, 1, 1e-5, "rdp")
    assert exact == pytest.approx(acc.dpsgd_epsilon(2.0, 1.0, 1, 1e-5, "pld"), rel=0.02)


def test_default_delta_is_below_one_over_the_users_and_bad_budgets_are_refused():
    for n in (10, 943, 10**5, 10**7):
        assert acc.default_delta(n) < 1 / n and acc.default_delta(n) <= 1e-5
    with pytest.raises(acc.PrivacyBudgetError, match="1/n_users"):
        acc.check_budget(1.0, 0.01, 943)
    with pytest.raises(acc.PrivacyBudgetError, match="positive"):
        acc.gaussian_noise_multiplier(0.0, 1e-5)
    with pytest.raises(acc.PrivacyBudgetError, match="delta"):
        acc.gaussian_noise_multiplier(1.0, 1.5)


@pytest.mark.parametrize("weighting", ["unit", "binary"])
@pytest.mark.parametrize("k", [1, 4, 12])
def test_each_users_gram_contribution_is_within_the_sensitivity(weighting, k):
    data = _data()
    x = bound_contributions(data, k, seed=3)
    lengths = np.diff(x.indptr)
    assert lengths.max() == k and (lengths <= k).all()
    assert ((x > 0).multiply(data.matrix > 0) != (x > 0)).nnz == 0  # kept items are the user's
    w2 = row_weights(lengths, weighting)
    delta = gram_sensitivity(k, weighting)
    norms, frob = [], []
    for u in range(x.shape[0]):
        row = x[u].toarray().ravel() * np.sqrt(w2[u])
        share = np.outer(row, row)  # the user's term of X^T W X
        norms.append(np.linalg.norm(share[np.triu_indices(len(row))]))
        frob.append(np.linalg.norm(share))
    assert max(norms) <= delta * (1 + 1e-9)
    assert max(norms) == pytest.approx(delta)  # the bound is exact: a user reaches it
    assert max(frob) <= np.sqrt(2) * delta * (1 + 1e-9)


def test_a_users_kept_items_do_not_depend_on_other_users():
    full, less = _data(), _data(drop_user=7)
    a = bound_contributions(full, 5, seed=1)
    b = bound_contributions(less, 5, seed=1)

    def kept(data, x):
        users, items = x.nonzero()
        ids = zip(data.user_vocab.ids[users], data.item_vocab.ids[items], strict=True)
        return {(str(u), str(i)) for u, i in ids}

    assert kept(full, a) - {p for p in kept(full, a) if p[0] == "u7"} == kept(less, b)
    assert kept(full, bound_contributions(full, 5, seed=2)) != kept(full, a)  # the seed counts


def test_dp_ease_without_noise_equals_ease_on_the_bounded_data():
    data = _data()
    model = create_model("dp-ease", {"epsilon": None, "max_items_per_user": 6, "l2": 2.0})
    model.fit(data)
    x = bound_contributions(data, 6, seed=0)
    weighted = sp.diags(np.sqrt(row_weights(np.diff(x.indptr), "unit"))) @ x
    ease = EASE(l2=2.0, binary=False).fit(
        TrainData(data.items, data.interactions, data.user_vocab, data.item_vocab, weighted)
    )
    np.testing.assert_allclose(model.weights, ease.weights, rtol=1e-5, atol=1e-7)
    hist = model.history_matrix(np.arange(5))
    np.testing.assert_allclose(
        model.score(np.arange(5), hist), ease.score(np.arange(5), (hist > 0) * 1.0), rtol=1e-5
    )
    assert model.privacy()["mechanism"].startswith("none")


@pytest.mark.parametrize(
    "name,config",
    [
        ("dp-ease", {"count_share": 0.3, "popularity_weight": 0.2}),
        ("dp-popularity", {}),
    ],
)
def test_noise_is_seeded(name, config):
    data = _data()

    def arrays(**extra):
        model = create_model(name, {**config, "epsilon": 2.0, **extra}).fit(data)
        return model.state_arrays()

    a, b = arrays(noise_seed=4), arrays(noise_seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = arrays(noise_seed=5)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    d, e = arrays(), arrays()  # no noise seed: fresh noise from the operating system
    assert not all(np.array_equal(d[k], e[k]) for k in d)


def test_more_budget_less_noise_and_the_noise_has_the_calibrated_spread():
    data = _data(n_users=400, n_items=40)
    base = create_model("dp-popularity", {"epsilon": None, "max_items_per_user": 9}).fit(data)
    noisy = create_model(
        "dp-popularity", {"epsilon": 1.0, "max_items_per_user": 9, "noise_seed": 0}
    ).fit(data)
    std = noisy.privacy()["noise_std"]
    assert std == pytest.approx(3.0 * acc.gaussian_noise_multiplier(1.0, acc.default_delta(400)))
    assert np.std(noisy.item_counts - base.item_counts) == pytest.approx(std, rel=0.35)


@pytest.mark.parametrize("name", ["dp-ease", "dp-popularity"])
def test_manifest_records_the_budget_and_load_reads_it(name, tmp_path):
    data = _data()
    model = create_model(name, {"noise_seed": 0}).with_budget(2.0, 1e-4)
    assert isinstance(model, TrainsPrivately) and model.privacy() is None
    model.fit(data)
    manifest = json.loads((model.save(tmp_path / "m") / "manifest.json").read_text())
    record = manifest["privacy"]
    assert record["epsilon"] == 2.0 and record["delta"] == 1e-4
    assert record["epsilon_spent"] == pytest.approx(2.0, rel=1e-6)
    assert record["mechanism"].startswith("gaussian") and record["noise_multiplier"] > 0
    assert record["clipping"]["sensitivity_l2"] > 0
    assert record["clipping"]["max_items_per_user"] == model.config.max_items_per_user
    assert Recommender.load(tmp_path / "m").privacy() == record
    default = create_model(name, {"noise_seed": 0}).fit(data).privacy()
    assert default["delta"] == acc.default_delta(data.n_users)


def test_a_delta_not_below_one_over_the_users_is_refused():
    with pytest.raises(acc.PrivacyBudgetError, match="1/n_users"):
        create_model("dp-ease", {"epsilon": 1.0, "delta": 0.05}).fit(_data())


def test_non_private_models_lack_the_capability():
    assert not isinstance(create_model("ease"), TrainsPrivately)
