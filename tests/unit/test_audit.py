"""The membership-inference audit: a model that memorises its training people is found out,
one that does not is not; the AUC is the Mann-Whitney statistic; groups must both exist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.evaluation.audit import AuditError, auc, membership_audit
from avrec.models.base import TrainData
from avrec.models.registry import create_model


def _data() -> Dataset:
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(80)]})
    rows = [
        (f"u{u}", f"i{i}")
        for u in range(160)
        for i in rng.choice(
            80, 12, replace=False, p=np.linspace(2, 1, 80) / np.linspace(2, 1, 80).sum()
        )
    ]
    return Dataset(items, pd.DataFrame(rows, columns=["user_id", "item_id"]))


def _trained(name: str, config: dict, data: Dataset):
    inter = data.interactions[data.interactions.user_id.isin([f"u{u}" for u in range(80)])]
    return create_model(name, config).fit(TrainData.from_dataset(Dataset(data.items, inter)))


def test_a_memorising_model_is_found_out_and_popularity_is_not():
    data = _data()
    memorising = membership_audit(_trained("ease", {"l2": 1.0}, data), data)
    assert memorising["members"] == 80 and memorising["non_members"] == 80
    assert memorising["auc"] > 0.75
    assert memorising["member_mean_percentile"] > memorising["non_member_mean_percentile"]
    blind = membership_audit(_trained("popularity", {}, data), data)
    assert abs(blind["auc"] - 0.5) < 0.12


def test_auc_is_the_share_of_pairs_ranked_right():
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    assert auc(np.array([0.3, 0.7]), np.array([0.5])) == 0.5


def test_both_groups_are_needed():
    data = _data()
    model = _trained("popularity", {}, data)
    only_members = Dataset(
        data.items, data.interactions[data.interactions.user_id.isin(["u1", "u2"])]
    )
    with pytest.raises(AuditError, match="trained on and people it was not"):
        membership_audit(model, only_members)
