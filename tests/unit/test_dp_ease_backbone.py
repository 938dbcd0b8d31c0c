"""dp-ease's backbone settings: the counts released first choose the Gram matrix's items, the
two releases compose exactly to the budget, the spectrum is cut at the noise edge, and the
fit is a deterministic function of the config, the noise seed and epsilon."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import TrainData
from avrec.models.private import accountant as acc
from avrec.models.private.ease import DPEASEConfig, count_share
from avrec.models.registry import create_model


def _data(n_users=300, n_items=40, seed=0) -> TrainData:
    """Users who prefer the items of their parity; item i's popularity falls with i."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": "x"})
    rows = []
    for u in range(n_users):
        p = np.where(np.arange(n_items) % 2 == u % 2, 4.0, 1.0) / (1 + np.arange(n_items))
        for i in rng.choice(n_items, size=int(rng.integers(2, 12)), replace=False, p=p / p.sum()):
            rows.append((f"u{u}", f"i{i}", 1_000 + len(rows)))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return TrainData.from_dataset(Dataset(items, inter))


def test_the_two_releases_compose_to_exactly_the_budget():
    data = _data()
    model = create_model("dp-ease", {"epsilon": 1.0, "noise_seed": 0}).fit(data)
    record = model.privacy()
    delta = acc.default_delta(data.n_users)
    sigma = acc.gaussian_noise_multiplier(1.0, delta)
    share = record["post_processing"]["count_share"]
    assert share == count_share(model.config, sigma, data.n_users)
    sigma_counts = record["count_noise_std"]  # count sensitivity 1
    sigma_gram = record["noise_std"] / record["clipping"]["sensitivity_l2"]
    assert sigma_counts == pytest.approx(sigma / math.sqrt(share))
    assert 1 / sigma_counts**2 + 1 / sigma_gram**2 == pytest.approx(1 / sigma**2)
    # the adaptive composition of the two Gaussian mechanisms, by dp-accounting's PLD
    # accountant (independent of the closed form), spends the budget and no more
    from dp_accounting import dp_event, pld

    accountant = pld.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(
        dp_event.ComposedDpEvent(
            [dp_event.GaussianDpEvent(sigma_counts), dp_event.GaussianDpEvent(sigma_gram)]
        )
    )
    assert accountant.get_epsilon(delta) == pytest.approx(1.0, abs=0.01)
    assert record["epsilon_spent"] == pytest.approx(1.0, rel=1e-6)


def test_the_count_share_grows_with_the_noise_against_the_users_and_is_capped():
    cfg = DPEASEConfig()
    assert count_share(cfg, 0.6, 1000) == cfg.count_share  # small noise: the floor
    assert count_share(cfg, 7.0, 600) == pytest.approx(cfg.count_share_max)  # capped
    assert count_share(cfg, 4.0, 1000) == pytest.approx(60 * 4.0 / 1000)
    assert count_share(DPEASEConfig(count_share_scale=None), 7.0, 600) == cfg.count_share


@pytest.mark.parametrize("m", [3, 10])
def test_the_gram_matrix_covers_the_items_with_the_largest_noisy_counts(m):
    data = _data()
    model = create_model(
        "dp-ease",
        {"epsilon": 2.0, "noise_seed": 1, "gram_items": m, "gram_snr": None, "block_edge": None},
    ).fit(data)
    kept = np.flatnonzero(model.kept_)
    assert len(kept) == m == model.privacy()["post_processing"]["gram_items"]
    top = np.argsort(-model.counts_, kind="stable")[:m]
    assert set(kept) == set(top)
    outside = ~model.kept_
    assert not model.weights[outside].any() and not model.weights[:, outside].any()
    # the other items rank below the Gram matrix's, in the order of their noisy counts
    scores = model.score(np.arange(4), model.history_matrix(np.arange(4)))
    assert (scores[:, outside].max(axis=1) < scores[:, model.kept_].min(axis=1)).all()
    rest = np.flatnonzero(outside)
    order = rest[np.argsort(-scores[0, rest], kind="stable")]
    np.testing.assert_array_equal(model.counts_[order], np.sort(model.counts_[rest])[::-1])


def test_gram_snr_caps_the_items_by_the_public_noise_scale():
    data = _data()
    fit = {
        eps: create_model("dp-ease", {"epsilon": eps, "noise_seed": 0}).fit(data)
        for eps in (0.5, 8.0)
    }
    sizes = {eps: m.privacy()["post_processing"]["gram_items"] for eps, m in fit.items()}
    record = fit[0.5].privacy()
    k = fit[0.5].config.max_items_per_user
    bound = data.n_users * math.sqrt(2 * k / (k + 1))  # unit weighting: a user's most is
    limit = int(bound / (2.8 * record["noise_std"]))
    assert sizes[0.5] <= max(limit, 1) < data.n_items
    assert sizes[0.5] < sizes[8.0]


def test_the_spectrum_is_cut_at_the_noise_edge():
    data = _data()
    sharp = create_model("dp-ease", {"epsilon": 4.0, "noise_seed": 0, "rank_edge": 1.0})
    sharp.fit(data)
    rank = sharp.privacy()["post_processing"]["signal_rank"]
    assert 1 <= rank < data.n_items
    capped = create_model(
        "dp-ease", {"epsilon": 4.0, "noise_seed": 0, "rank_edge": 1.0, "rank": 1}
    ).fit(data)
    assert capped.privacy()["post_processing"]["signal_rank"] == 1
    # no eigenvalue clears an edge far above the noise: no item-item signal, B = 0, and the
    # model ranks by its noisy counts alone
    blind = create_model("dp-ease", {"epsilon": 4.0, "noise_seed": 0, "rank_edge": 1e6})
    blind.fit(data)
    assert blind.privacy()["post_processing"]["signal_rank"] == 0
    assert not blind.weights.any()


def test_nothing_chosen_falls_back_to_the_counts():
    data = _data()
    model = create_model(
        "dp-ease", {"epsilon": 0.5, "noise_seed": 0, "gram_threshold": 1e6, "gram_snr": None}
    ).fit(data)
    assert not model.kept_.any()
    scores = model.score(np.arange(3), model.history_matrix(np.arange(3)))
    np.testing.assert_array_equal(scores, np.tile(model.counts_, (3, 1)))


def test_the_fit_is_a_function_of_config_seed_and_epsilon():
    data = _data()

    def state(eps, seed):
        model = create_model("dp-ease", {"epsilon": eps, "noise_seed": seed}).fit(data)
        return model.state_arrays(), model.privacy()["post_processing"]

    (a, pa), (b, pb) = state(1.0, 3), state(1.0, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a) and pa == pb
    c, _ = state(2.0, 3)
    assert not np.array_equal(a["weights"], c["weights"])


def test_selection_without_counts_is_refused():
    with pytest.raises(ValueError, match="count_share"):
        create_model("dp-ease", {"count_share": 0.0, "gram_items": 5}).fit(_data())


def test_shrinkage_and_the_restored_diagonal():
    from avrec.models.private.ease import _denoise

    rng = np.random.default_rng(0)
    u = np.linalg.qr(rng.normal(size=(30, 2)))[0]
    signal = (u * [50.0, 20.0]) @ u.T
    noise = np.triu(rng.normal(size=(30, 30)))
    noisy = signal + noise + np.triu(noise, 1).T
    edge = 2 * np.sqrt(30)
    plain, r1 = _denoise(noisy.copy(), None, edge)
    shrunk, r2 = _denoise(noisy.copy(), None, edge, spread=np.sqrt(30))
    assert r1 == r2 == 2
    # the spiked-Wigner estimate is smaller and nearer the signal than the raw projection
    assert np.trace(shrunk) < np.trace(plain)
    assert np.linalg.norm(shrunk - signal) < np.linalg.norm(plain - signal)
    data = _data()
    model = create_model(
        "dp-ease", {"epsilon": 4.0, "noise_seed": 0, "restore_diagonal": True, "shrink": True}
    ).fit(data)
    assert np.isfinite(model.weights).all() and model.weights[model.kept_].any()


def test_the_off_diagonal_cut_keeps_the_diagonal_and_the_co_occurrences():
    from avrec.models.private.ease import _denoise, _denoise_off_diagonal

    rng = np.random.default_rng(1)
    # a large diagonal (item counts) plus one co-occurrence direction of either sign
    u = np.linalg.qr(rng.normal(size=(40, 2)))[0]
    counts = np.diag(rng.uniform(20, 200, 40))
    signal = counts + (u * [60.0, -40.0]) @ u.T
    noise = np.triu(rng.normal(size=(40, 40)))
    noisy = signal + noise + np.triu(noise, 1).T
    edge = 2 * np.sqrt(40)
    cut, rank = _denoise_off_diagonal(noisy.copy(), None, edge)
    assert rank >= 2  # the two co-occurrence directions, of either sign
    assert np.array_equal(np.diag(cut), np.diag(noisy)) and np.allclose(cut, cut.T)
    off = ~np.eye(40, dtype=bool)
    full, _ = _denoise(noisy.copy(), None, edge)  # the counts take the kept directions
    assert np.linalg.norm((cut - signal)[off]) < np.linalg.norm((noisy - signal)[off])
    assert np.linalg.norm((cut - signal)[off]) < np.linalg.norm((full - signal)[off])
    assert _denoise_off_diagonal(noisy.copy(), 1, edge)[1] == 1
    model = create_model("dp-ease", {"epsilon": 4.0, "noise_seed": 0, "off_diagonal": True})
    model.fit(_data())
    assert np.isfinite(model.weights).all() and model.weights[model.kept_].any()


def test_the_cut_directions_can_keep_their_mean_eigenvalue():
    from avrec.models.private.ease import _denoise

    rng = np.random.default_rng(2)
    u = np.linalg.qr(rng.normal(size=(30, 2)))[0]
    signal = (u * [80.0, 40.0]) @ u.T + 5.0 * np.eye(30)
    noise = np.triu(rng.normal(size=(30, 30)))
    noisy = signal + noise + np.triu(noise, 1).T
    edge = 4 * np.sqrt(30)  # above the bulk: 5 plus the noise's spread 2 sqrt(30)
    zero, rank = _denoise(noisy.copy(), None, edge)
    mean, same = _denoise(noisy.copy(), None, edge, trace=float(np.trace(noisy)))
    assert rank == same == 2
    assert np.isclose(np.trace(mean), np.trace(noisy))  # trace kept: the rest at their mean
    values = np.linalg.eigvalsh(mean)
    level = (np.trace(noisy) - np.linalg.eigvalsh(zero)[-2:].sum()) / 28
    assert np.allclose(values[:-2], level) and level > 0
    # the inverse EASE takes is nearer the signal's with the mean than with zeros
    inv = [np.linalg.inv(m + 10 * np.eye(30)) for m in (signal, zero, mean)]
    assert np.linalg.norm(inv[2] - inv[0]) < np.linalg.norm(inv[1] - inv[0])
    model = create_model("dp-ease", {"epsilon": 4.0, "noise_seed": 0, "bulk": "mean"})
    model.fit(_data())
    assert np.isfinite(model.weights).all() and model.weights[model.kept_].any()


def test_the_diagonal_block_keeps_the_items_above_the_edge_of_their_block():
    from avrec.models.private.ease import _diagonal_block

    diagonal = np.array([5.0, 100.0, 30.0, 9.0, 50.0])
    # sorted: 100, 50, 30, 9, 5 against 10 sqrt(m): 10, 14.1, 17.3, 20, 22.4
    assert _diagonal_block(diagonal, 10.0).tolist() == [False, True, True, False, True]
    assert not _diagonal_block(diagonal, 200.0).any()
    data = _data()
    plain = create_model("dp-ease", {"epsilon": 8.0, "noise_seed": 0}).fit(data)
    block = create_model("dp-ease", {"epsilon": 8.0, "noise_seed": 0, "diagonal_edge": 1.0})
    block.fit(data)
    assert 0 < block.kept_.sum() <= plain.kept_.sum()
    assert np.isfinite(block.weights).all() and not block.weights[~block.kept_].any()


def test_the_full_rank_block_has_the_closed_form_of_equal_counts():
    from avrec.models.private.ease import full_rank_items

    # n equal counts: the m-th item's estimate is trace / m, at least edge 2 std sqrt(m)
    # while m^(3/2) <= trace / (2 edge std) = 500: m <= 62 (63^1.5 = 500.05)
    counts = np.full(200, 7.0)
    assert full_rank_items(counts, 1000.0, 1.0, 1.0, 0.0) == 62
    assert full_rank_items(counts, 1000.0, 0.5, 1.0, 0.0) == 100  # (1000)^(2/3)
    # the block's share of the counts: 62 / 200 = 0.31
    assert full_rank_items(counts, 1000.0, 1.0, 1.0, 0.3) == 62
    assert full_rank_items(counts, 1000.0, 1.0, 1.0, 0.32) is None
    assert full_rank_items(counts, 1.0, 10.0, 1.0, 0.0) is None  # not even one item
    assert full_rank_items(np.zeros(5), 1000.0, 1.0, 1.0, 0.0) is None


def test_the_full_rank_block_grows_with_epsilon_and_the_users():
    from avrec.models.private.accountant import gaussian_noise_multiplier
    from avrec.models.private.ease import full_rank_items

    counts = 1e4 / (1 + np.arange(3000)) ** 0.8  # a long tail
    sizes = [
        full_rank_items(counts, 1e5, gaussian_noise_multiplier(eps, 1e-6), 1.0, 0.0)
        for eps in (0.5, 1.0, 2.0, 4.0, 8.0)
    ]
    assert all(s is not None for s in sizes) and sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert full_rank_items(counts, 1e6, 1.0, 1.0, 0.0) > full_rank_items(counts, 1e5, 1.0, 1.0, 0.0)
    # a larger multiple of the edge keeps fewer items
    assert full_rank_items(counts, 1e5, 1.0, 2.0, 0.0) < full_rank_items(counts, 1e5, 1.0, 1.0, 0.0)


def test_the_full_rank_block_reads_only_the_released_counts():
    """The fit's block is the rule applied to what was released (its noisy counts, noise
    std) and public numbers (users, clipping): recomputed from the saved state it agrees,
    and other raw counts with the same noisy ones would give the same block."""
    from avrec.models.private.ease import full_rank_items

    data = _data(n_users=3000, n_items=120, seed=3)
    model = create_model(
        "dp-ease", {"epsilon": 8.0, "noise_seed": 0, "block_edge": 1.0, "block_cover": 0.0}
    ).fit(data)
    record = model.privacy()
    block = record["post_processing"]["full_rank_block"]
    k = model.config.max_items_per_user
    trace = record["n_users"] * math.sqrt(2 * k / (k + 1))
    again = full_rank_items(model.counts_.astype(np.float64), trace, record["noise_std"], 1.0, 0)
    assert block == again and 0 < block < data.n_items
    assert record["post_processing"]["gram_items"] == block
    top = np.argsort(-model.counts_.astype(np.float64), kind="stable")[:block]
    assert set(np.flatnonzero(model.kept_)) <= set(top)
    # the low-rank regime where the block holds too little of the counts: gram_snr's items
    low = create_model(
        "dp-ease", {"epsilon": 8.0, "noise_seed": 0, "block_edge": 1.0, "block_cover": 1.0}
    ).fit(data)
    assert low.privacy()["post_processing"]["full_rank_block"] is None
    assert low.privacy()["post_processing"]["gram_items"] > block
