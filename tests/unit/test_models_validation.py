"""Validation inside fit: the holdout metric and ALS choosing its regularization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from avrec.data.dataset import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.baselines.factorization import ALS
from avrec.models.validation import ndcg_rows


def test_ndcg_rows_by_hand():
    scores = np.array(
        [
            [0.9, 0.8, 0.7, 0.1],  # item 0 is a training item: ranking 1, 2, 3
            [0.1, 0.2, 0.3, 0.4],  # ranking 3, 2, 1, 0
            [0.5, 0.5, 0.5, 0.5],
        ]
    )  # no validation items: not counted
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    val = sp.csr_matrix(np.array([[0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]], np.float32))
    user0 = (1 / np.log2(3)) / 1.0  # its item at rank 2
    user1 = (1.0 + 1 / np.log2(5)) / (1.0 + 1 / np.log2(3))  # ranks 1 and 4 of 2 relevant
    np.testing.assert_allclose(ndcg_rows(scores, train, val, k=10), [user0, user1])
    np.testing.assert_allclose(ndcg_rows(scores, train, val, k=1), [0.0, 1.0])


def _blocks(n_users: int = 80, n_items: int = 60, seed: int = 0) -> TrainData:
    """Four taste groups, each user picks 12 items of their group's quarter of the catalog."""
    rng = np.random.default_rng(seed)
    rows = [
        (f"u{u}", f"i{i}")
        for u in range(n_users)
        for i in rng.choice(np.arange(u % 4, n_items, 4), size=12, replace=False)
    ]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]})
    return TrainData.from_dataset(
        Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id"]))
    )


def test_als_chooses_regularization_on_validation_and_keeps_it(tmp_path):
    data = _blocks()
    model = ALS(regularization_grid=(0.5, 5.0, 500.0)).fit(data)
    # 500 flattens the factors to popularity; on the holdout the others rank the group first
    assert model.regularization_ in (0.5, 5.0)
    assert model.config.regularization is None  # the choice is fitted, the config unchanged
    recs = model.recommend(["u1"], k=3).items[0]  # the 3 group items u1 has not picked
    assert all(int(r[1:]) % 4 == 1 for r in recs), recs
    loaded = Recommender.load(model.save(tmp_path / "als"))
    assert loaded.regularization_ == model.regularization_
    assert loaded.config.regularization is None
    np.testing.assert_array_equal(
        loaded.score(np.array([-1]), data.matrix[1]), model.score(np.array([-1]), data.matrix[1])
    )
    fixed = ALS(regularization=500.0).fit(data)
    assert fixed.regularization_ == 500.0
    with pytest.raises(ValidationError):
        ALS(regularization_grid=())


def test_als_saved_before_regularization_was_fitted_still_loads(tmp_path):
    """Older saves kept the chosen value in the config and had no ``regularization_`` array."""
    import json

    data = _blocks()
    model = ALS(regularization_grid=(0.5, 5.0, 500.0)).fit(data)
    path = model.save(tmp_path / "als")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["config"]["regularization"] = model.regularization_
    del manifest["fitted"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with np.load(path / "state.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "state__regularization_"}
    np.savez(path / "state.npz", **arrays)
    loaded = Recommender.load(path)
    assert loaded.regularization_ == model.regularization_
    assert loaded.time_capped_ == []
    np.testing.assert_array_equal(
        loaded.score(np.array([-1]), data.matrix[1]), model.score(np.array([-1]), data.matrix[1])
    )
