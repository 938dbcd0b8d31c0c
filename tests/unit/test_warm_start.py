"""Warm starts beside EASE's (tests/unit/test_ease_update.py). The hybrid (models.hybrid.warm):
its backbone updated with the changed users' rows equals a fit of the backbone on the new data
(same rating centre), the cheap parts are refitted, the others kept; a warm start it cannot take
leaves the model as it was. ALS: a few iterations from the previous factors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model

#: the VAE off and no request encoder: seconds on the synthetic data
HYBRID = {"content": {"query_encoder": None}, "vae": {"weight": 0.0}}


@pytest.fixture(scope="module")
def data():
    from tests.conftest import synthetic_dataset as make

    return make.__wrapped__()


def _early(data: Dataset, share: float = 0.9) -> Dataset:
    inter = data.interactions.sort_values("timestamp", kind="stable")
    return Dataset(data.items, inter.iloc[: int(len(inter) * share)], name="early")


@pytest.mark.parametrize("center", [None, 4.0])
def test_a_warm_started_backbone_equals_a_full_fit(data, tmp_path, center):
    cfg = {**HYBRID, "backbone": {"rating_center": center, "warm_penalty_share": 1.0}}
    model = create_model("hybrid", cfg).fit(TrainData.from_dataset(_early(data)))
    full = TrainData.from_dataset(data)
    assert model.warm_start(full, max_share=1.0, source="hybrid-000000000001") is None
    # the same centre as the first fit (None: the mean of its ratings, kept for the new rows)
    fixed = {**cfg, "backbone": {**cfg["backbone"], "rating_center": model.backbone.rating_center_}}
    refit = create_model("hybrid", fixed).fit(full)
    assert center is None or model.backbone.rating_center_ == center
    assert np.abs(np.asarray(model.weights) - np.asarray(refit.weights)).max() < 1e-5
    assert np.abs(model.backbone.inverse_diag_ - refit.backbone.inverse_diag_).max() < 1e-9
    assert (model.rating_factor != refit.rating_factor).nnz == 0
    np.testing.assert_allclose(model.short_history.prior_, refit.short_history.prior_, atol=1e-6)
    np.testing.assert_allclose(model.short_history.short_, refit.short_history.short_, atol=1e-5)
    assert list(model.user_vocab.ids) == list(refit.user_vocab.ids)
    assert (model.train_matrix != refit.train_matrix).nnz == 0
    started = model.warm_started_
    assert started["from"] == "hybrid-000000000001" and started["users_changed"] > 0
    assert started["updated"] == ["backbone"] and "recency" in started["kept"]
    # the saved model says where it came from; a later full fit forgets it
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert loaded.warm_started_ == started
    assert loaded.backbone.rating_center_ == model.backbone.rating_center_
    assert loaded.fit(full).warm_started_ is None


def test_new_events_over_many_items_keep_their_previous_penalty(data):
    # each item whose count changed is one rank of the exact update; over the share they
    # keep the first fit's denoising penalty: rank = the changed rows, close to a full fit
    first = create_model("hybrid", HYBRID).fit(TrainData.from_dataset(_early(data)))
    full = TrainData.from_dataset(data)
    exact, cheap = copy.deepcopy(first), first
    exact.config = exact.config.with_parts(backbone={"warm_penalty_share": 1.0})
    assert exact.warm_start(full, max_share=1.0) is None
    assert cheap.config.backbone.warm_penalty_share < 1.0
    assert cheap.warm_start(full, max_share=1.0) is None
    kept = cheap.warm_started_["penalty_kept_items"]
    assert exact.warm_started_["penalty_kept_items"] == 0 and kept > 0
    assert cheap.warm_started_["rank"] < exact.warm_started_["rank"]
    gap = np.abs(np.asarray(cheap.weights) - np.asarray(exact.weights))
    assert 1e-7 < gap.max() < 0.05 * np.abs(np.asarray(exact.weights)).max()
    # until a full fit, forgetting a user is exact only up to those penalties: said so
    assert f"backbone's denoising penalty of {kept} items" in cheap.unlearn(np.array([0])).pending
    assert not any("penalty" in p for p in exact.unlearn(np.array([0])).pending)


def test_recommendations_of_a_warm_start_follow_the_new_rows(data):
    model = create_model("hybrid", HYBRID).fit(TrainData.from_dataset(_early(data)))
    full = TrainData.from_dataset(data)
    assert model.warm_start(full, max_share=1.0) is None
    fixed = {**HYBRID, "backbone": {"rating_center": model.backbone.rating_center_}}
    refit = create_model("hybrid", fixed).fit(full)
    users = [str(u) for u in full.user_vocab.ids]
    assert model.recommend(users, 5).items == refit.recommend(users, 5).items


def test_a_warm_start_trains_the_vae_on_from_its_weights(data):
    cfg = {**HYBRID, "vae": {"weight": 0.3, "settings": {"epochs": 2, "hidden": 8}}}
    model = create_model("hybrid", cfg).fit(TrainData.from_dataset(_early(data, 0.2)))
    before = {k: v.copy() for k, v in model.vae_params.items()}
    full = TrainData.from_dataset(data)
    assert model.warm_start(full, max_share=1.0) is None
    assert model.warm_started_["updated"] == ["backbone", "vae"]
    assert "vae" not in model.warm_started_["kept"]
    assert np.abs(model.vae_params["dec_w"] - before["dec_w"]).max() > 0
    assert model.vae_warm.sum() > before["warm"].sum()  # items first seen in the new rows
    kept = create_model("hybrid", {**cfg, "vae": {**cfg["vae"], "warm_epochs": 0}})
    kept.fit(TrainData.from_dataset(_early(data, 0.2)))
    assert kept.warm_start(full, max_share=1.0) is None and "vae" in kept.warm_started_["kept"]


def test_what_a_hybrid_cannot_warm_start_leaves_it_unchanged(data):
    early = TrainData.from_dataset(_early(data))
    full = TrainData.from_dataset(data)
    model = create_model("hybrid", HYBRID).fit(early)
    before = np.array(model.weights, copy=True)
    assert "warm-start share" in model.warm_start(full, max_share=0.01)
    last = data.items.item_id.iloc[-1]
    inter = data.interactions
    fewer = Dataset(data.items.iloc[:-1], inter[inter.item_id != last], name="fewer")
    assert model.warm_start(TrainData.from_dataset(fewer), 1.0) == "the catalog changed"
    assert np.array_equal(model.weights, before) and model.warm_started_ is None
    knn = create_model("hybrid", {**HYBRID, "backbone": {"kind": "itemknn"}}).fit(early)
    assert "kind itemknn" in knn.warm_start(full, 1.0)
    model.backbone.rating_center_ = None  # as saved by an earlier avrec
    assert "rating centre" in model.warm_start(full, 1.0)


def test_als_warm_starts_from_its_factors(data):
    early, full = TrainData.from_dataset(_early(data, 0.8)), TrainData.from_dataset(data)
    cfg = {"factors": 8, "regularization": 5.0, "iterations": 10, "warm_iterations": 2}
    model = create_model("als", cfg).fit(early)
    before = model.item_factors.copy()
    assert model.warm_start(full, 1.0, source="als-000000000001") is None
    assert model.warm_started_["from"] == "als-000000000001"
    assert model.warm_started_["users_new"] > 0 and model.warm_started_["iterations"] == 2
    assert model.user_factors.shape == (len(full.user_vocab), 8)
    fresh = create_model("als", cfg).fit(full)  # from a random start: elsewhere
    assert np.abs(model.item_factors - before).mean() < np.abs(fresh.item_factors - before).mean()
    # the two taste groups (even and odd items) hold for the users new to the data
    new = [u for u in full.user_vocab.ids if u not in early.user_vocab.ids]
    recs = model.recommend(new, 3)
    pairs = zip(new, recs.items, strict=True)
    same = [int(i[1:]) % 2 == int(u[1:]) % 2 for u, items in pairs for i in items]
    assert np.mean(same) > 0.9
    inter = data.interactions[data.interactions.item_id != data.items.item_id.iloc[-1]]
    other = TrainData.from_dataset(Dataset(data.items.iloc[:-1], inter, name="fewer"))
    assert model.warm_start(other, 1.0) == "the catalog changed"
