"""The learning-loop simulator on a tiny world: deterministic, and retraining beats the static
model when new items arrive (the static model cannot show them)."""

import numpy as np
import pytest

from avrec.evaluation.simulate import SimulationError, WorldConfig, compare, make_world, simulate

TINY = WorldConfig(users=60, initial_items=30, new_items=20, rounds=4, history=10, k=5)
EASE = {"l2": 5.0}


def test_same_seed_same_run_and_world_shape():
    a = simulate(TINY, 3, "ease", EASE)
    b = simulate(TINY, 3, "ease", EASE)
    for name in ("static", "retrain"):
        np.testing.assert_array_equal(a.hits[name], b.hits[name])
        # every served person gets k items each round
        np.testing.assert_array_equal(a.shown[name], np.full(TINY.rounds, TINY.users * TINY.k))
    world = make_world(TINY, 3)
    assert world.tastes.shape == (TINY.rounds + 1, TINY.users, TINY.dim)
    assert len(world.catalog(0)) == 30 and len(world.catalog(TINY.rounds)) == 30 + 4 * 20
    assert set(world.first["item_id"]) <= set(world.catalog(0)["item_id"])


def test_retraining_beats_the_static_model_when_items_arrive():
    result = compare(TINY, [0, 1, 2], "ease", EASE, n_bootstrap=2000)
    # the static model knows only the first catalog; the retrained one learns the arrivals
    assert result.new_shown["static"].sum() == 0
    assert (result.new_shown["retrain"][:, -1] > 0).all()
    totals = {name: h.sum(axis=1) for name, h in result.hits.items()}
    assert (totals["retrain"] > totals["static"]).all(), totals
    assert result.bootstrap[0] > 0


def test_bad_world_is_refused():
    with pytest.raises(SimulationError):
        WorldConfig(users=0)
    with pytest.raises(SimulationError):
        compare(TINY, [0])
