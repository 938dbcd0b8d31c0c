"""The hybrid as a pipeline of parts: nested configs, one sub-folder per part, swapping a part
by config, and old flat configs read into the parts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.errors import AvrecError
from avrec.models.base import Recommender, TrainData
from avrec.models.hybrid import Hybrid, HybridConfig

N_ITEMS, COLD = 60, list(range(50, 60))


def _data() -> TrainData:
    rng = np.random.default_rng(1)
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(N_ITEMS)],
            "title": [f"Film {n}" for n in range(N_ITEMS)],
            "genres": ["Drama" if n % 2 else "Action" for n in range(N_ITEMS)],
        }
    )
    rows = [
        (f"u{u}", f"i{n}", float(rng.integers(1, 6)), 1_000_000 + 60 * n)
        for u in range(80)
        for n in range(N_ITEMS)
        if n not in COLD and n % 2 == u % 2 and rng.random() < 0.3
    ]
    text = rng.normal(size=(N_ITEMS, 384)).astype(np.float32) * 0.3
    text[:, 0] += np.where(np.arange(N_ITEMS) % 2, 1.0, -1.0)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return TrainData.from_dataset(Dataset(items, inter), {"text": text})


SMALL = {
    "content": {"query_encoder": None},
    "vae": {"settings": {"epochs": 3, "hidden": 16}},
    "cold_ranker": {"folds": 2, "trees": 10},
}


@pytest.fixture(scope="module")
def data() -> TrainData:
    return _data()


def test_flat_config_reads_into_the_parts():
    flat = HybridConfig(
        l2=300.0,
        vae_weight=2.0,
        vae={"epochs": 7},
        query_encoder=None,
        cold_rank_share=0.0,
        recency_mix=0.5,
    )
    nested = HybridConfig(
        backbone={"l2": 300.0},
        vae={"weight": 2.0, "settings": {"epochs": 7}},
        content={"query_encoder": None},
        cold_ranker={"share": 0.0},
        recency={"mix": 0.5},
    )
    assert flat == nested
    assert HybridConfig(**json.loads(nested.model_dump_json())) == nested
    with pytest.raises(ValueError):
        HybridConfig(backbone={"no_such_field": 1})
    with pytest.raises(ValueError):  # parts are frozen: settings do not change after the fact
        nested.backbone.l2 = 1.0


def test_each_part_saves_to_its_own_folder_and_loads_the_same(data, tmp_path):
    model = Hybrid(SMALL).fit(data)
    assert set(model.parts()) == {
        "content",
        "backbone",
        "cold_items",
        "short_history",
        "recency",
        "vae",
        "cold_ranker",
    }
    path = model.save(tmp_path / "m")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["parts"] == list(model.parts()) and manifest["config_schema"] == 2
    for name in manifest["parts"]:
        saved = json.loads((path / "parts" / name / "config.json").read_text())
        assert saved == model.parts()[name].config.model_dump(mode="json")
    loaded = Recommender.load(path)
    users = np.arange(20)
    h = model.history_matrix(users)
    np.testing.assert_array_equal(model.score(users, h), loaded.score(users, h))


def test_swapping_the_backbone_is_a_config_change(data):
    users = np.arange(20)
    ease = Hybrid(SMALL).fit(data)
    knn = Hybrid({**SMALL, "backbone": {"kind": "itemknn", "neighbors": 20}}).fit(data)
    assert knn.backbone.rating_factor_ is None and ease.backbone.rating_factor_ is not None
    # item-kNN keeps 20 neighbours per item (the cold items' rows are filled from content)
    warm = knn.weights[:50, :50]
    assert (warm != 0).sum(axis=0).max() <= 20 and (ease.weights[:50, :50] != 0).sum() > 2000
    assert not np.allclose(ease.weights, knn.weights)
    recs = knn.recommend([str(u) for u in knn.user_vocab.ids[users]], k=5)
    assert all(len(items) == 5 for items in recs.items)


def test_a_part_turned_off_is_not_saved(data, tmp_path):
    model = Hybrid({**SMALL, "vae": {"weight": 0.0}, "cold_ranker": {"share": 0.0}}).fit(data)
    path = model.save(tmp_path / "m")
    assert not (path / "parts" / "vae").exists() and not (path / "parts" / "cold_ranker").exists()
    assert Recommender.load(path).vae_params is None


def test_the_vae_is_skipped_above_its_item_count_and_logs_each_part(data, caplog):
    """Large catalogs train without the VAE (its decoder is batch x items dense per step);
    each part's seconds are logged at INFO, the sub-models' one level deeper."""
    caplog.set_level("INFO", logger="avrec.models.hybrid.model")
    n_items = data.matrix.shape[1]
    small = Hybrid({**SMALL, "vae": {**SMALL["vae"], "max_items": n_items - 1}}).fit(data)
    assert small.vae is None and "vae" not in small.parts()
    assert Hybrid({**SMALL, "vae_max_items": n_items}).fit(data).vae is not None
    assert HybridConfig().vae.max_items == 20_000
    parts = [r.getMessage() for r in caplog.records if "hybrid fit depth 0" in r.getMessage()]
    assert any(": vae " in m for m in parts) and any(": backbone " in m for m in parts)


def test_the_learned_request_blend_is_skipped_above_its_item_count(data):
    """Above ``request.max_items`` the fixed blend answers requests (the learned one costs a
    second fit of the whole hybrid)."""
    n_items = data.matrix.shape[1]
    cfg = {
        **SMALL,
        "content": {"query_encoder": "text-en"},
        "vae": {"weight": 0.0},
        "cold_ranker": {"share": 0.0},
        "request": {"min_users": 10, "requests": 200, "trees": 10},
    }
    learned = Hybrid(cfg).fit(data)
    assert learned.request_rank is not None
    cfg["request"] = {**cfg["request"], "max_items": n_items - 1}
    fixed = Hybrid(cfg).fit(data)
    assert fixed.request_rank is None and fixed.content.query_vectors is not None
    assert HybridConfig().request.max_items == 20_000


def test_a_folder_from_before_the_parts_is_refused_clearly(data, tmp_path):
    path = Hybrid({**SMALL, "vae": {"weight": 0.0}}).fit(data).save(tmp_path / "m")
    import shutil

    shutil.rmtree(path / "parts")
    with pytest.raises(AvrecError, match=r"earlier avrec.*retrain"):
        Recommender.load(path)
