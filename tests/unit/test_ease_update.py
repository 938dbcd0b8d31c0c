"""Low-rank updates of EASE (models.baselines.ease_update): forgetting users equals a fit
without them, adding and changing rows equals a fit on the new rows (float64 weights: 1e-9;
the float32 weights of a saved model: 1e-6), for the plain model and the hybrid's backbone."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from avrec.data import Dataset
from avrec.data.npz import Streamed
from avrec.models import forget
from avrec.models.base import Recommender, TrainData
from avrec.models.baselines.ease import gram_matrix
from avrec.models.baselines.ease_update import gram_change, rows_update, update_rows
from avrec.models.forget import unlearn_users
from avrec.models.registry import create_model

GONE = ["u7", "u30"]


def _exact(x: sp.csr_matrix, l2: float, dropout: float, side: np.ndarray | None = None):
    """EASE in float64 by ``np.linalg.inv``: weights and diag(P)."""
    g = gram_matrix(x)
    counts = np.diag(g).copy()
    if side is not None:
        g += side @ side.T
    g[np.diag_indices_from(g)] += l2 + dropout / (1 - dropout) * counts
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b, np.diag(p).copy()


def _random(seed: int, users: int = 80, items: int = 35, weighted: bool = False):
    x = sp.random(users, items, density=0.15, random_state=seed, format="csr")
    x.data = x.data + 0.5 if weighted else np.ones_like(x.data)
    return x


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_removing_rows_equals_a_fit_without_them(dropout, weighted):
    x = _random(1, weighted=weighted)
    side = np.random.default_rng(0).normal(size=(x.shape[1], 4))
    b, d = _exact(x, 5.0, dropout, side)
    gone = np.array([3, 17, 40])
    kept = np.setdiff1d(np.arange(x.shape[0]), gone)
    old = x[gone]
    b2, d2 = update_rows(b, d, old, sp.csr_matrix(old.shape), dropout)
    want_b, want_d = _exact(x[kept], 5.0, dropout, side)
    assert np.abs(b2 - want_b).max() < 1e-9
    assert np.abs(d2 - want_d).max() < 1e-9


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocks_of_rows_in_place_and_streamed_give_one_update(dtype):
    # 150 items: three blocks of rows (BLOCK_ROWS 64), the last one short
    x = _random(4, users=300, items=150)
    b, d = _exact(x, 4.0, 0.0)
    b = b.astype(dtype)
    change = rows_update(b, d, x[[2, 8]], sp.csr_matrix((2, 150)))
    streamed = np.concatenate([blk.copy() for blk in change.blocks(b)])
    fresh, d2 = update_rows(b, d, x[[2, 8]], sp.csr_matrix((2, 150)))
    assert np.array_equal(streamed, fresh) and np.array_equal(d2, change.diag)
    in_place, _ = update_rows(b.copy(), d, x[[2, 8]], sp.csr_matrix((2, 150)), in_place=True)
    assert np.array_equal(in_place, fresh) and np.all(np.diag(fresh) == 0)
    want, _ = _exact(x[np.setdiff1d(np.arange(300), [2, 8])], 4.0, 0.0)
    assert np.abs(fresh - want).max() < (1e-9 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.3])  # 0: the update's factors are the rows
def test_adding_and_changing_rows_equals_a_fit_on_the_new_rows(dropout):
    x = _random(2)
    y = x.tolil()
    y[5, :] = 0
    y[5, [1, 2, 3]] = 1  # a changed history
    y[9, 30] = 1  # one new event
    y = sp.vstack([y.tocsr(), _random(3, users=4)]).tocsr()  # four new users
    b, d = _exact(x, 3.0, dropout)
    old = sp.vstack([x, sp.csr_matrix((4, x.shape[1]))]).tocsr()
    changed = [5, 9, *range(x.shape[0], y.shape[0])]
    b2, _ = update_rows(b, d, old[changed], y[changed], dropout)
    want_b, _ = _exact(y, 3.0, dropout)
    assert np.abs(b2 - want_b).max() < 1e-9


def test_new_events_with_denoising_update_by_the_rows_and_the_counts_they_change():
    x = _random(5)
    y = x.tolil()
    y[3, [0, 1]] = 1  # one user's new events: rank 2 rows + the items whose counts changed
    y = y.tocsr()
    y.eliminate_zeros()
    b, d = _exact(x, 3.0, 0.4)
    items, factor, core = gram_change(x[[3]], y[[3]], 0.4)
    assert sp.issparse(factor) and core.shape[0] < len(items)
    b2, _ = update_rows(b, d, x[[3]], y[[3]], 0.4)
    want_b, _ = _exact(y, 3.0, 0.4)
    assert np.abs(b2 - want_b).max() < 1e-9


@pytest.mark.parametrize("users", [[3], list(range(60))])  # the rows' form; F = I
def test_new_events_without_the_penalty_change_keep_the_items_previous_penalty(users):
    x = _random(5)
    y = x.tolil()
    for u in users:
        y[u, [0, 1, u % 35]] = 1
    y = y.tocsr()
    b, d = _exact(x, 3.0, 0.4)
    items, _, core = gram_change(x[users], y[users], 0.4, penalty=False)
    assert core.shape[0] == min(2 * len(users), len(items))
    b2, _ = update_rows(b, d, x[users], y[users], 0.4, penalty=False)
    # the new Gram matrix with the penalty of the old counts
    g = gram_matrix(y)
    g[np.diag_indices_from(g)] += 3.0 + 0.4 / 0.6 * np.diag(gram_matrix(x))
    p = np.linalg.inv(g)
    want = -p / np.diag(p)
    np.fill_diagonal(want, 0.0)
    assert np.abs(b2 - want).max() < 1e-9
    assert np.abs(b2 - _exact(y, 3.0, 0.4)[0]).max() > 1e-6  # the penalty did change


def test_an_empty_change_leaves_the_weights():
    x = _random(4)
    b, d = _exact(x, 3.0, 0.0)
    empty = sp.csr_matrix((0, x.shape[1]))
    b2, d2 = update_rows(b, d, empty, empty)
    assert np.array_equal(b2, b) and np.array_equal(d2, d)


@pytest.fixture(scope="module")
def data(synthetic_dataset_module):
    return synthetic_dataset_module


@pytest.fixture(scope="module")
def synthetic_dataset_module():
    from tests.conftest import synthetic_dataset as make

    return make.__wrapped__()


def _without(ds: Dataset, users: list[str]) -> Dataset:
    inter = ds.interactions
    return Dataset(ds.items, inter[~inter.user_id.isin(users)], name=ds.name)


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
@pytest.mark.parametrize(
    "config", [{}, {"dropout": 0.5, "binary": False, "l2": 50.0}], ids=["plain", "denoising"]
)
def test_forgetting_users_of_a_saved_ease_equals_a_fit_without_them(
    data, tmp_path, config, mapped, monkeypatch
):
    # mapped: the weights are mapped from the folder and the update streamed to the new file
    # (what large models get); read: updated in memory, then saved
    monkeypatch.setattr(forget, "MAP_FROM", 1 if mapped else 1 << 40)
    folder = create_model("ease", config).fit(TrainData.from_dataset(data)).save(tmp_path / "m")
    removed, change = unlearn_users(folder, GONE)
    assert removed == 2 and change.pending == []
    after = Recommender.load(folder)
    refit = create_model("ease", config).fit(TrainData.from_dataset(_without(data, GONE)))
    assert np.abs(after.weights - refit.weights).max() < 1e-6
    assert np.abs(after.inverse_diag_ - refit.inverse_diag_).max() < 1e-9
    assert list(after.user_vocab.ids) == list(refit.user_vocab.ids)
    assert unlearn_users(folder, GONE) == (0, change.__class__({}))  # nothing left


def test_an_ease_mapped_read_only_streams_its_update_and_keeps_its_weights(data, tmp_path):
    model = create_model("ease", {"dropout": 0.3}).fit(TrainData.from_dataset(data))
    folder = model.save(tmp_path / "m")
    mapped = Recommender.load(folder, map_from=1, read_catalog=False)
    assert mapped.catalog is None and not mapped.weights.flags.writeable
    rows = np.flatnonzero(np.isin(model.user_vocab.ids, GONE))
    change = mapped.unlearn(rows).arrays["state.npz"]
    stream = change["state__weights"]
    assert isinstance(stream, Streamed) and stream.shape == model.weights.shape
    streamed = np.concatenate([b.copy() for b in stream.blocks()])
    model.unlearn(rows)  # in memory, in place
    assert np.array_equal(streamed, model.weights)
    assert np.array_equal(change["state__inverse_diag"], model.inverse_diag_)
    assert np.array_equal(mapped.weights, Recommender.load(folder).weights)  # unchanged


def test_an_ease_saved_without_its_solution_is_left_for_a_retrain(data, tmp_path):
    model = create_model("ease").fit(TrainData.from_dataset(data))
    model.inverse_diag_ = None  # as saved by an earlier avrec
    folder = model.save(tmp_path / "m")
    before = Recommender.load(folder).weights
    removed, change = unlearn_users(folder, GONE)
    assert removed == 2 and "retrain" in change.pending[0]
    assert np.array_equal(Recommender.load(folder).weights, before)


HYBRID = {"content": {"query_encoder": None}, "vae": {"weight": 0.0}}


@pytest.mark.parametrize("center", [None, 4.0])
def test_forgetting_users_of_a_hybrid_updates_its_backbone(data, tmp_path, center):
    cfg = {**HYBRID, "backbone": {"rating_center": center}, "short_history": {"prefix": 0}}
    model = create_model("hybrid", cfg).fit(TrainData.from_dataset(data))
    folder = model.save(tmp_path / "m")
    removed, change = unlearn_users(folder, GONE)
    assert removed == 2
    after = Recommender.load(folder)
    refit = create_model("hybrid", cfg).fit(TrainData.from_dataset(_without(data, GONE)))
    gap = np.abs(after.weights - refit.weights).max()
    np.testing.assert_allclose(after.short_history.prior_, refit.short_history.prior_, atol=1e-6)
    # the recency weighting the validation chose from everyone's times waits for a retrain
    recency = ["recency's learned weighting"] if model.recency.learned_ else []
    if center is None:  # the ratings' mean moved: the backbone keeps the old centre
        centre = "backbone's rating centre (the mean of all training ratings)"
        assert change.pending == [centre, *recency]
        assert gap < 1e-3
    else:
        assert change.pending == recency and gap < 1e-6
    assert np.abs(np.asarray(model.weights) - refit.weights).max() > 1e-4  # they mattered


def test_a_hybrid_lists_what_it_cannot_update(data, tmp_path):
    cfg = {**HYBRID, "vae": {"weight": 0.3, "settings": {"epochs": 1}}}
    model = create_model("hybrid", cfg).fit(TrainData.from_dataset(data))
    _, change = unlearn_users(model.save(tmp_path / "m"), GONE)
    assert "vae" in change.pending and "short_history's first-items map" in change.pending


def test_warm_start_equals_a_full_fit(data):
    inter = data.interactions.sort_values("timestamp")
    cut = int(len(inter) * 0.95)
    early = Dataset(data.items, inter.iloc[:cut], name="early")
    model = create_model("ease", {"dropout": 0.3}).fit(TrainData.from_dataset(early))
    full = TrainData.from_dataset(data)
    assert model.warm_start(full, max_share=1.0) is None
    refit = create_model("ease", {"dropout": 0.3}).fit(full)
    assert np.abs(model.weights - refit.weights).max() < 1e-6
    assert list(model.user_vocab.ids) == list(refit.user_vocab.ids)
    assert (model.train_matrix != refit.train_matrix).nnz == 0


def test_warm_start_refuses_a_large_change_or_another_catalog(data):
    inter = data.interactions
    half = Dataset(data.items, inter[inter.user_id.isin([f"u{n}" for n in range(30)])], name="h")
    model = create_model("ease").fit(TrainData.from_dataset(half))
    before = model.weights.copy()
    assert "warm-start share" in model.warm_start(TrainData.from_dataset(data), max_share=0.01)
    fewer = Dataset(data.items.iloc[:-1], inter[inter.item_id != data.items.item_id.iloc[-1]])
    assert model.warm_start(TrainData.from_dataset(fewer), 1.0) == "the catalog changed"
    assert np.array_equal(model.weights, before)
    pop = create_model("popularity").fit(TrainData.from_dataset(half))
    assert "no exact update" in pop.warm_start(TrainData.from_dataset(data), 1.0)
