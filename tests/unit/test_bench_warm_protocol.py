"""The warm-start benchmark's evaluation: the random holdout of every user's items and the
paired comparison of two models' per-user NDCG@10 (benchmarks/bench_unlearn.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.bench_unlearn import paired, warm_split


@pytest.fixture
def events() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    sizes = {"a": 1, "b": 7, "c": 20, "d": 40}
    users = np.repeat(list(sizes), list(sizes.values()))
    return pd.DataFrame(
        {
            "user_id": users,
            "item_id": [f"i{k}" for k in range(len(users))],
            "timestamp": rng.permutation(len(users)),
        }
    )


def test_the_holdout_takes_a_share_of_every_users_items(events):
    held, rest = warm_split(events, 0.15, seed=0)
    assert held.groupby("user_id").size().to_dict() == {"a": 1, "b": 1, "c": 3, "d": 6}
    assert len(held) + len(rest) == len(events)
    assert not set(held["item_id"]) & set(rest["item_id"])
    assert rest["timestamp"].is_monotonic_increasing


def test_the_holdout_is_seeded(events):
    one, two, other = (warm_split(events, 0.15, seed=s)[0] for s in (0, 0, 1))
    assert list(one["item_id"]) == list(two["item_id"])
    assert list(one["item_id"]) != list(other["item_id"])


def test_equal_models_compare_as_equal():
    scores = np.random.default_rng(0).random(300)
    out = paired(scores, scores.copy())
    assert out["diff"] == out["diff_lo"] == out["diff_hi"] == 0.0
    assert out["ratio"] == pytest.approx(1.0) and out["users_differ"] == 0
    assert out["ratio_lo"] == pytest.approx(1.0) and out["ratio_hi"] == pytest.approx(1.0)


def test_the_paired_interval_holds_a_known_gap():
    rng = np.random.default_rng(1)
    full = rng.random(2000)
    warm = full * 0.9 + rng.normal(0, 0.01, 2000)  # 10% lower, paired noise
    out = paired(warm, full)
    assert out["diff_lo"] < warm.mean() - full.mean() < out["diff_hi"] < 0
    assert out["ratio_lo"] < 0.9 < out["ratio_hi"] < 0.95
