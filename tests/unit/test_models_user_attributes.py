"""User attributes: the encoding (one-hot of common values, standardised numbers, age groups,
zip regions) and the two-tower user tower that adds them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.neural.two_tower import TwoTower
from avrec.models.neural.user_attributes import UserAttributes, age_group

USERS = pd.DataFrame(
    {
        "user_id": [f"u{n}" for n in range(12)],
        "age": ["24", "53", "23", "24", "33", "42", "57", "36", "29", "17", "61", ""],
        "gender": ["M", "F"] * 6,
        "occupation": ["student"] * 6 + ["writer"] * 5 + ["lawyer"],
        "zip": [
            "85711",
            "94043",
            "32067",
            "43537",
            "15213",
            "98101",
            "91344",
            "05201",
            "01002",
            "78741",
            "29206",
            "T8H1N",
        ],
    }
)


def test_encoding_keeps_common_values_standardises_numbers_and_groups_ages():
    enc = UserAttributes(min_count=5).fit(USERS)
    assert "occupation=student" in enc.categories and "occupation=writer" in enc.categories
    assert "occupation=lawyer" not in enc.categories  # one user: below min_count
    assert "gender=m" in enc.categories and enc.numeric == ["age"]
    assert not [c for c in enc.categories if c.startswith("zip=")]  # no region has 5 users
    x = enc.transform(USERS)
    assert x.shape == (12, enc.dim)
    ages = x[:, enc.dim - 1]
    assert abs(ages[:11].mean()) < 0.2 and ages[11] == 0.0  # missing age -> the mean
    assert x[11, enc.categories.index("occupation=writer")] == 0  # the lawyer has no column
    assert age_group(17) == "<18" and age_group(24) == "18-24" and age_group(61) == "56+"
    enc2 = UserAttributes(min_count=2).fit(USERS)
    assert "zip=9" in enc2.categories and "age_group=18-24" in enc2.categories


def test_encoding_round_trips_and_unknown_users_get_zeros():
    enc = UserAttributes(min_count=2).fit(USERS)
    again = UserAttributes.from_state(enc.state())
    np.testing.assert_array_equal(again.transform(USERS), enc.transform(USERS))
    m = again.user_matrix(USERS, np.array(["u3", "nobody", "u0"], dtype=object))
    np.testing.assert_array_equal(m[0], enc.transform(USERS.iloc[[3]])[0])
    assert not m[1].any() and m[2].any()
    unseen = pd.DataFrame({"user_id": ["x"], "occupation": ["astronaut"], "gender": ["?"]})
    assert not again.transform(unseen)[0, :-1].any()


def _planted(seed: int = 0) -> Dataset:
    """Two occupations; each likes its own 10 items. Everyone's history is 3 of those and 5
    random items from a shared pool: a short pool-only history says nothing, the occupation does."""
    rng = np.random.default_rng(seed)
    n_items, n_users = 60, 160
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(n_items)]})
    users = pd.DataFrame(
        {
            "user_id": [f"u{n}" for n in range(n_users)] + ["cold-a", "cold-b"],
            "occupation": ["artist" if n % 2 == 0 else "engineer" for n in range(n_users)]
            + ["artist", "engineer"],
        }
    )
    rows = []
    for u in range(n_users):
        own = np.arange(10) if u % 2 == 0 else np.arange(10, 20)
        picks = [
            *rng.choice(own, 3, replace=False),
            *rng.choice(np.arange(20, 60), 5, replace=False),
        ]
        rows += [(f"u{u}", f"i{i}", 1_000 + t) for t, i in enumerate(rng.permutation(picks))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset(items, inter, users)


def _share_of_own_items(model: TwoTower) -> float:
    cands = [f"i{n}" for n in range(20)]
    history = ["i20", "i31", "i45"]
    recs = model.recommend(
        ["cold-a", "cold-b"], k=10, histories=[history, history], candidates=[cands, cands]
    )
    own_a = sum(int(i[1:]) < 10 for i in recs.items[0])
    own_b = sum(int(i[1:]) >= 10 for i in recs.items[1])
    return (own_a + own_b) / 20


@pytest.fixture(scope="module")
def planted_models():
    ds = _planted()
    rng = np.random.default_rng(1)
    text = rng.normal(size=(len(ds.items), 16)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    data = TrainData.from_dataset(ds, {"text": text})
    small = {"dim": 32, "max_epochs": 15, "samples_per_user": 4, "patience": 15, "id_dropout": 0.2}
    return {
        flag: TwoTower(user_attributes=flag, user_attribute_min_count=2, **small).fit(data)
        for flag in (True, False)
    }


def test_attributes_carry_a_planted_occupation_effect(planted_models):
    with_attrs = _share_of_own_items(planted_models[True])
    without = _share_of_own_items(planted_models[False])
    assert planted_models[True].attributes.dim == 2 and planted_models[False].attributes is None
    # chance is 0.5; measured 0.75 with the item biases (their per-item popularity moves
    # some of the other group's items up), 0.85 without them and at temperature 0.07
    assert with_attrs >= 0.7 and with_attrs > without + 0.2, (with_attrs, without)


def test_attributes_survive_save_and_load(planted_models, tmp_path):
    model = planted_models[True]
    model.save(tmp_path / "tt")
    loaded = Recommender.load(tmp_path / "tt")
    assert loaded.attributes.categories == model.attributes.categories
    req = {"user_ids": ["cold-a", "u1", "stranger"], "k": 10, "histories": [["i20"], None, ["i20"]]}
    a, b = model.recommend(**req), loaded.recommend(**req)
    assert a.items == b.items
    np.testing.assert_allclose(np.concatenate(a.scores), np.concatenate(b.scores), rtol=1e-5)
    # a stranger has no attributes: the same history scores differently from cold-a's
    assert a.scores[0] != a.scores[2]
