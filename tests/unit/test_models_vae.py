"""Mult-VAE (models.vae) and the hybrid's VAE term: planted taste groups, the attribution
is the true first-order derivative, save/load equality, cold and added items still placed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.hybrid.explain import contribution_parts
from avrec.models.neural.vae import VAEConfig, attributions, logits, train_multvae
from avrec.models.registry import create_model

SMALL = {"hidden": 32, "epochs": 60, "batch_size": 32}


@pytest.fixture(scope="module")
def data():
    """Three taste groups of 20 items; each user has 8 items of their group; 2 cold items."""
    rng = np.random.default_rng(1)
    n_items = 60
    group = [("Calm piano", "Music"), ("Loud action", "Action"), ("Space opera", "Sci-Fi")]
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(n_items)] + ["cold-piano", "cold-space"],
            "title": [f"{group[n % 3][0]} {n}" for n in range(n_items)]
            + ["Calm piano nocturne", "Space opera saga"],
            "genres": [group[n % 3][1] for n in range(n_items)] + ["Music", "Sci-Fi"],
        }
    )
    rows = []
    for u in range(90):
        liked = [i for i in range(n_items) if i % 3 == u % 3]
        for t, i in enumerate(rng.choice(liked, size=8, replace=False)):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1_000_000 + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return TrainData.from_dataset(Dataset(items, inter))


def test_vae_learns_the_planted_groups(data):
    model = create_model("vae", SMALL).fit(data)
    for u in ["u0", "u1", "u2", "u10"]:
        top = model.recommend([u], k=6).items[0]
        g = int(u[1:]) % 3
        assert all(int(i[1:]) % 3 == g for i in top), (u, top)


def test_attribution_is_the_first_order_derivative(data):
    params = train_multvae(data.matrix, VAEConfig(**SMALL))
    hist = sp.csr_matrix(data.matrix[3])
    items = np.array([0, 3, 4, 5])
    got = attributions(params, hist, items)
    assert got.shape == (len(items), hist.nnz)
    # numeric derivative of the logits in each history input (the normalisation held fixed)
    x = hist.toarray().astype(np.float64)
    inv = 1.0 / np.sqrt(x.sum())
    base = x * inv @ params["enc_w"] + params["enc_b"]
    eps = 1e-4
    for n, j in enumerate(hist.indices):
        up = np.tanh(base + eps * inv * params["enc_w"][j]) @ params["dec_w"] + params["dec_b"]
        down = np.tanh(base - eps * inv * params["enc_w"][j]) @ params["dec_w"] + params["dec_b"]
        np.testing.assert_allclose(
            got[:, n], ((up - down) / (2 * eps))[0, items], rtol=1e-2, atol=1e-4
        )
    # and the forward pass is the same function
    np.testing.assert_allclose(
        logits(params, hist)[0],
        (np.tanh(base) @ params["dec_w"] + params["dec_b"])[0],
        rtol=1e-4,
        atol=1e-4,
    )


def test_vae_save_load(data, tmp_path):
    model = create_model("vae", SMALL).fit(data)
    model.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m")
    a, b = model.recommend(["u0", "u5"], k=5), again.recommend(["u0", "u5"], k=5)
    assert a.items == b.items
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


@pytest.fixture(scope="module")
def hybrid(data):
    return create_model(
        "hybrid", {"query_encoder": None, "vae_weight": 4.0, "vae": SMALL, "cold_rank_share": 0.0}
    ).fit(data)


def test_hybrid_vae_term_changes_scores_and_keeps_cold_items(hybrid, data):
    assert hybrid.vae_params is not None and hybrid.vae_warm.sum() == 60
    plain = create_model(
        "hybrid", {"query_encoder": None, "vae_weight": 0.0, "cold_rank_share": 0.0}
    ).fit(data)
    users = hybrid.user_vocab.lookup(["u0", "u2"])
    hist = hybrid.history_matrix(users, None)
    assert not np.allclose(hybrid.score(users, hist), plain.score(users, hist))
    # among the cold items the order is the hybrid's own: cold-space for a sci-fi user
    rec = hybrid.recommend(["u2"], k=2, candidates=[["cold-piano", "cold-space"]])
    assert rec.items[0] == ["cold-space", "cold-piano"]
    assert np.isfinite(rec.scores[0]).all()


def test_hybrid_vae_explanations_and_persistence(hybrid, tmp_path):
    hist = hybrid.history_matrix(hybrid.user_vocab.lookup(["u0"]), None)
    items = np.array([3, 6, 60])  # two warm items and a cold one
    c = hybrid.contributions(hist, items)
    assert c.shape == (3, hist.nnz) and np.isfinite(c).all()
    hybrid.save(tmp_path / "h")
    again = Recommender.load(tmp_path / "h")
    a, b = hybrid.recommend(["u0", "u1"], k=8), again.recommend(["u0", "u1"], k=8)
    assert a.items == b.items
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-5)
    # a new item joins without retraining; the VAE does not place it, the hybrid does
    added = again.add_items(
        pd.DataFrame({"item_id": ["new-piano"], "title": ["Calm piano etude"], "genres": ["Music"]})
    )
    assert added == ["new-piano"] and again.vae_params["enc_w"].shape[0] == len(again.item_vocab)
    rec = again.recommend(["u0"], k=3, candidates=[["new-piano", "cold-space", "cold-piano"]])
    assert len(rec.items[0]) == 3 and np.isfinite(rec.scores[0]).all()


def test_hybrid_skips_the_faded_prior_without_changing_scores(data, monkeypatch):
    """Rows whose short-history prior has faded below PRIOR_CUTOFF skip the co-occurrence
    products; their scores stay as with the prior computed, and mixed batches stay row-exact."""
    from avrec.models.hybrid import parts as hybrid_module

    model = create_model("hybrid", {"prior_shrink": 0.25, "vae": SMALL}).fit(data)
    users = model.user_vocab.lookup(["u0", "u1", "", "u2"])
    hist = model.history_matrix(users, [None, None, ["i3"], None])
    assert 50.0 * np.exp(-7 / 0.25) < hybrid_module.PRIOR_CUTOFF  # the 8-item rows skip it
    skipped = model.score(users, hist)
    monkeypatch.setattr(hybrid_module, "PRIOR_CUTOFF", 0.0)
    full = model.score(users, hist)
    np.testing.assert_array_equal(skipped[2], full[2])  # one item: the prior is used, same rows
    np.testing.assert_allclose(skipped, full, rtol=0, atol=1e-6 * np.abs(full).max())
    assert (np.argsort(-skipped, axis=1)[:, :10] == np.argsort(-full, axis=1)[:, :10]).all()


def test_hybrid_batch_explanations_reuse_the_scoring_state_exactly(hybrid):
    """explain_batch right after score reuses that batch's spreads and VAE state; the result
    equals a fresh computation, and a different batch is never served the kept state."""
    users = hybrid.user_vocab.lookup(["u0", "u1", "", "u2"])
    hist = hybrid.history_matrix(users, [None, None, ["i3", "i6", "i9"], None])
    items = [np.array([3, 6, 60]), np.array([1, 4]), np.array([12, 15, 61]), np.array([2, 5])]
    fresh_parts = contribution_parts(hybrid, hist, users)  # nothing kept for this batch yet
    hybrid.score(users, hist)
    kept_parts = contribution_parts(hybrid, hist, users)
    for key in ("sd_c", "sd_v", "pre", "inv", "a"):
        np.testing.assert_allclose(kept_parts[key], fresh_parts[key], rtol=1e-6, atol=1e-7)
    kept = hybrid.explain_batch(users, hist, items)
    # another histories object (even with equal content) and other users recompute
    other = contribution_parts(hybrid, hist.copy(), users)
    assert other["pre"] is not kept_parts["pre"]
    swapped = contribution_parts(hybrid, hist, users[::-1].copy())
    assert swapped["pre"] is not kept_parts["pre"]
    hybrid._last_batch = None
    assert hybrid.explain_batch(users, hist, items) == kept
    assert any("because you liked" in e for row in kept for e in row)


def test_epochs_are_cut_to_the_step_cap():
    """ml-100k and ml-latest-small keep all 100 epochs; 10,000 users get 12 (79 steps each)."""
    from avrec.models.neural.vae import planned_epochs

    assert planned_epochs(943, VAEConfig()) == 100
    assert planned_epochs(610, VAEConfig()) == 100
    assert planned_epochs(10_000, VAEConfig()) == 12
    assert planned_epochs(10_000_000, VAEConfig()) == 1
    assert planned_epochs(10_000, VAEConfig(max_steps=None)) == 100


def test_step_cap_trains_the_same_weights_as_fewer_epochs(data):
    """90 users in batches of 32 are 3 steps an epoch: a cap of 10 steps is 3 epochs."""
    x = data.matrix
    capped = train_multvae(x, VAEConfig(**{**SMALL, "max_steps": 10}))
    short = train_multvae(x, VAEConfig(**{**SMALL, "epochs": 3, "max_steps": None}))
    full = train_multvae(x, VAEConfig(**{**SMALL, "max_steps": None}))
    for name in capped:
        np.testing.assert_array_equal(capped[name], short[name])
    assert not np.array_equal(capped["dec_w"], full["dec_w"])
