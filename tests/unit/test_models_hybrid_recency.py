"""The hybrid's recency learned by a validation split by time (models.hybrid.recency): it moves
off 0 where the latest items predict the next one, stays at 0 where times carry no signal, is
off without times, and is saved, shown in the manifest and fixed by settled_config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.hybrid import Hybrid, HybridConfig
from avrec.models.hybrid.recency import Recency, choose, latest_holdout

N_ITEMS, BLOCK, GROUP = 60, 15, 5
#: the validation alone: no side information to fit, learning on, no guard
BACKBONE = HybridConfig(backbone={"side_weight": 0.0}).backbone


def _data(times: str = "ordered", n_users: int = 200) -> TrainData:
    """Each user: 10 of the 15 items of a taste block, then the 5 items of a group outside it
    (the latest). ``times``: "ordered" (the group's items are the latest), "shuffled" (times in
    a random order: they say nothing) or "none" (no times)."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(N_ITEMS)],
            "title": [f"Film {n}" for n in range(N_ITEMS)],
            "genres": ["Drama"] * N_ITEMS,
        }
    )
    rows = []
    for u in range(n_users):
        block = rng.integers(N_ITEMS // BLOCK)
        old = block * BLOCK + rng.choice(BLOCK, size=10, replace=False)
        group = rng.choice([g for g in range(N_ITEMS // GROUP) if g * GROUP // BLOCK != block])
        recent = group * GROUP + rng.permutation(GROUP)
        seq = np.r_[old, recent]
        stamps = np.arange(len(seq)) * 60.0 + 1e6
        if times == "shuffled":
            stamps = rng.permutation(stamps)
        for item, t in zip(seq, stamps, strict=True):
            rows.append((f"u{u}", f"i{item}", t if times != "none" else np.nan))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    text = rng.normal(size=(N_ITEMS, 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return TrainData.from_dataset(Dataset(items, inter), {"text": text})


def _fit(data: TrainData, **recency) -> Recency:
    part = Recency(HybridConfig(recency=recency).recency)
    part.fit(data, data.item_features["text"], BACKBONE, seed=0)
    return part


def test_the_holdout_takes_the_latest_and_one_earlier_item_out_of_training():
    data = _data()
    split = latest_holdout(data, min_items=5, max_users=1000, seed=0)
    assert split is not None and len(split.users) == data.n_users
    rec = data.recency.tocsr()
    for n, u in enumerate(split.users[:20]):
        row = dict(zip(rec[u].indices, rec[u].data, strict=True))
        assert row[split.next_items[n]] == 1  # the latest training item
        assert row[split.random_items[n]] > 1
        seen = set(split.view.matrix[u].indices)
        assert split.next_items[n] not in seen and split.random_items[n] not in seen
        # the view's ranks are renumbered 1..n in the old order
        view = dict(zip(split.view.recency[u].indices, split.view.recency[u].data, strict=True))
        assert sorted(view.values()) == list(range(1, len(row) - 1))
        order = sorted(view, key=view.get)
        assert order == sorted(order, key=row.get)


def test_recency_is_learned_where_the_latest_items_predict_the_next_one():
    part = _fit(_data("ordered"), keep_random=None)
    assert part.learned_ and part.mix_ > 0
    table = {(r["mix"], r["tau"]): r["next_ndcg"] for r in part.validation_}
    assert table[(part.mix_, part.tau_)] > table[(0.0, 5.0)] + 0.05


def test_recency_stays_off_where_times_carry_no_signal():
    part = _fit(_data("shuffled"), keep_random=None)
    assert part.learned_ and part.mix_ == 0.0


def test_the_guard_refuses_a_recency_that_costs_the_earlier_items():
    # here the latest items (one group) say nothing of the earlier ones (a taste block)
    data = _data("ordered")
    guarded, free = _fit(data, keep_random=0.01), _fit(data, keep_random=None)
    assert (free.mix_, free.tau_) == (1.0, 2.0)
    rows = {(r["mix"], r["tau"]): r for r in guarded.validation_}
    assert rows[(1.0, 2.0)]["random_ndcg"] < 0.99 * rows[(0.0, 5.0)]["random_ndcg"]
    assert guarded.learned_ and guarded.mix_ < 1.0
    chosen = rows[(guarded.mix_, guarded.tau_)]
    assert chosen["random_ndcg"] >= 0.99 * rows[(0.0, 5.0)]["random_ndcg"]


def test_choose_takes_the_best_allowed_point_only_where_its_gain_is_clear():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    nxt = np.stack([base, base + 0.05, base + 0.10, base + rng.normal(0, 0.5, 400) * 0.1])
    rnd = np.stack([base, base, base * 0.5, base])
    assert choose(nxt, rnd, None, 2.0) == 2
    assert choose(nxt, rnd, 0.01, 2.0) == 1  # point 2 loses half of the random items
    assert choose(nxt[[0, 3]], rnd[[0, 3]], None, 2.0) == 0  # noise, not a gain


def test_without_times_or_with_learning_off_the_config_values_are_used():
    for data, recency in (
        (_data("none"), {}),
        (_data("ordered"), {"learn": False, "mix": 0.5, "tau": 3.0}),
    ):
        part = _fit(data, **recency)
        assert not part.learned_ and not part.validation_
        assert (part.mix_, part.tau_) == (recency.get("mix", 0.0), recency.get("tau", 5.0))


SMALL = {
    "content": {"query_encoder": None},
    "backbone": {"side_weight": 0.0},
    "vae": {"weight": 0.0},
    "recency": {"keep_random": None},
}


@pytest.fixture(scope="module")
def fitted() -> tuple[TrainData, Hybrid]:
    data = _data("ordered", n_users=120)
    return data, Hybrid(SMALL).fit(data)


def test_the_learned_recency_weighs_the_history_and_is_saved(fitted, tmp_path):
    _, model = fitted
    assert model.recency.learned_ and model.recency.mix_ > 0
    users = np.arange(10)
    h = model.history_matrix(users)
    w = model.history_weights(h, users)
    assert w.max() > w.min()  # the latest items weigh more than the old ones
    path = model.save(tmp_path / "m")
    learned = json.loads((path / "manifest.json").read_text())["learned"]["recency"]
    assert learned["chosen_by"] == "validation" and learned["mix"] == model.recency.mix_
    assert len(learned["validation"]) == len(model.config.recency.grid)
    loaded = Recommender.load(path)
    assert isinstance(loaded, Hybrid)
    assert (loaded.recency.mix_, loaded.recency.tau_) == (model.recency.mix_, model.recency.tau_)
    assert loaded.recency.validation_ == model.recency.validation_
    np.testing.assert_array_equal(model.score(users, h), loaded.score(users, h))


def test_settled_config_fixes_the_learned_values(fitted):
    data, model = fitted
    settled = HybridConfig(**model.settled_config()).recency
    assert not settled.learn
    assert (settled.mix, settled.tau) == (model.recency.mix_, model.recency.tau_)
    again = Hybrid(model.settled_config()).fit(data)
    assert not again.recency.learned_ and again.recency.mix_ == model.recency.mix_


def test_the_saved_part_holds_no_array_with_a_row_per_user(fitted, tmp_path):
    # models.forget treats arrays with one row per training user as per-user state
    _, model = fitted
    path = model.save(tmp_path / "m")
    with np.load(path / "parts" / "recency" / "state.npz", allow_pickle=False) as z:
        assert all(z[k].ndim == 0 for k in z.files)
