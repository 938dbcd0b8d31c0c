"""Sparse EASE: exact EASE when every item is a neighbour, bounded columns otherwise, memory
that grows with the neighbour count; and the hybrid with the sparse backbone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from avrec.data import Dataset
from avrec.models.base import Recommender, TrainData
from avrec.models.baselines.ease import ease_weights
from avrec.models.baselines.sparse_ease import SparseEASE, sparse_bytes, sparse_ease_weights
from avrec.models.hybrid import Hybrid
from tests.unit.test_models_hybrid_parts import SMALL, _data


def _matrix(n_users: int = 120, n_items: int = 40, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    pop = rng.pareto(1.5, n_items) + 0.2  # uneven popularity, as real catalogs
    x = rng.random((n_users, n_items)) < 0.25 * pop / pop.max()
    return sp.csr_matrix(x.astype(np.float64))


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_every_item_a_neighbour_is_ease(dropout):
    x = sp.csr_matrix((np.random.default_rng(2).random((150, 40)) < 0.3).astype(float))
    n = x.shape[1]
    assert (x.T @ x).toarray().all()  # every pair co-occurs: every item is a candidate
    rng = np.random.default_rng(3)
    # dense columns (as text vectors) and thin ones (as people named on one or two items)
    thin = np.zeros((n, 8))
    thin[rng.integers(0, n, 12), rng.integers(0, 8, 12)] = 1.0
    side = np.hstack([rng.normal(size=(n, 6)), thin])
    for f, w in ((None, 0.0), (side, 4.0)):
        dense = ease_weights(x, 20.0, dropout, f, w)
        sparse = sparse_ease_weights(x, 20.0, n - 1, dropout, f, w)
        h = x[:30]
        np.testing.assert_allclose((h @ sparse).toarray(), h @ dense, atol=1e-6)
        np.testing.assert_allclose(sparse.toarray(), dense, atol=1e-6)


def test_columns_have_at_most_k_entries_and_no_diagonal():
    x = _matrix(n_items=60)
    for k in (1, 5, 17):
        b = sparse_ease_weights(x, 10.0, k)
        assert b.shape == (60, 60)
        assert np.diff(b.tocsc().indptr).max() <= k
        assert not b.diagonal().any()


def test_memory_grows_with_k_not_with_the_catalog():
    rng = np.random.default_rng(1)
    small, large = (sp.csr_matrix((rng.random((200, n)) < 0.1).astype(float)) for n in (100, 400))
    b_small, b_large = (sparse_ease_weights(m, 10.0, 8) for m in (small, large))
    # 4x the items: 4x the bytes (linear), not 16x (square); and far below dense float32
    assert b_large.nnz == 400 * 8 and b_small.nnz == 100 * 8
    ratio = sparse_bytes(b_large) / sparse_bytes(b_small)
    assert 3.5 < ratio < 4.5
    assert sparse_bytes(b_large) < 0.05 * 4 * 400**2
    assert sparse_bytes(sparse_ease_weights(large, 10.0, 16)) > 1.8 * sparse_bytes(b_large)


def test_items_that_never_co_occur_are_not_neighbours():
    # two blocks of users and items with no interaction across them
    x = sp.block_diag([_matrix(60, 20, seed=1), _matrix(60, 20, seed=2)]).tocsr()
    b = sparse_ease_weights(x, 10.0, 30)
    assert b[:20, 20:].nnz == 0 and b[20:, :20].nnz == 0
    assert np.diff(b.tocsc().indptr).max() <= 19


def test_fit_is_deterministic():
    x = _matrix(seed=5)
    a, b = (sparse_ease_weights(x, 10.0, 7) for _ in range(2))
    assert (a != b).nnz == 0


def test_bad_settings_are_refused():
    x = _matrix()
    with pytest.raises(ValueError, match="l2"):
        sparse_ease_weights(x, 0.0, 5)
    with pytest.raises(ValueError, match="neighbors"):
        sparse_ease_weights(x, 1.0, 0)


def _train(x: sp.csr_matrix) -> TrainData:
    items = pd.DataFrame({"item_id": [f"i{n}" for n in range(x.shape[1])]})
    r, c = x.nonzero()
    inter = pd.DataFrame({"user_id": [f"u{u}" for u in r], "item_id": [f"i{i}" for i in c]})
    return TrainData.from_dataset(Dataset(items, inter))


def test_model_saves_sparse_and_loads_the_same(tmp_path):
    data = _train(_matrix())
    model = SparseEASE(neighbors=6).fit(data)
    assert sp.issparse(model.weights)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    users = np.arange(10)
    h = model.history_matrix(users)
    np.testing.assert_array_equal(model.score(users, h), loaded.score(users, h))


@pytest.fixture(scope="module")
def data() -> TrainData:
    return _data()


def test_the_hybrid_takes_the_sparse_backbone_by_config(data, tmp_path):
    config = {**SMALL, "backbone": {"kind": "sparse", "neighbors": 12}}
    model = Hybrid(config).fit(data)
    assert sp.issparse(model.weights)
    warm_cols = np.diff(model.weights[:50, :50].tocsc().indptr)
    cold_cols = np.diff(model.weights[:, 50:].tocsc().indptr)
    cold_rows = np.diff(model.weights[50:].indptr)
    assert warm_cols.max() <= 12  # the cold items' columns and rows: filled in, pruned
    assert cold_cols.min() > 0 and cold_cols.max() <= 12 and 0 < cold_rows.min() <= 12
    assert {"vae", "cold_ranker"} <= set(model.parts())
    path = model.save(tmp_path / "m")
    saved = json.loads((path / "parts" / "backbone" / "config.json").read_text())
    assert saved["kind"] == "sparse"
    with np.load(path / "parts" / "backbone" / "state.npz") as z:
        assert "w_data" in z.files and "weights" not in z.files
    loaded = Recommender.load(path)
    users = np.arange(20)
    h = model.history_matrix(users)
    np.testing.assert_array_equal(model.score(users, h), loaded.score(users, h))
    ids = [str(u) for u in model.user_vocab.ids[users]]
    recs = loaded.recommend(ids, k=5, explain=True)
    assert all(len(items) == 5 for items in recs.items) and recs.explanations


def test_the_sparse_backbone_with_every_neighbour_is_close_to_the_dense_one(data):
    # items of one parity never co-occur with the other's (test_models_hybrid_parts._data):
    # the sparse backbone leaves those pairs out, and within a parity it regresses on
    # every co-occurring item, as the dense one does
    off = {**SMALL, "vae": {"weight": 0.0}, "cold_ranker": {"share": 0.0}}
    dense = Hybrid(off).fit(data).weights[:50, :50]
    sparse = Hybrid({**off, "backbone": {"kind": "sparse", "neighbors": 100}}).fit(data)
    w = sparse.weights.toarray()[:50, :50]
    same = (np.arange(50)[:, None] % 2) == (np.arange(50)[None, :] % 2)
    assert not w[~same].any()
    assert np.corrcoef(w[same], dense[same])[0, 1] > 0.8  # 0.85: side information differs


def test_the_sparse_hybrid_grows_its_catalog(data):
    model = Hybrid({**SMALL, "backbone": {"kind": "sparse", "neighbors": 12}}).fit(data)
    new = pd.DataFrame({"item_id": ["new1"], "title": ["Film new"], "genres": ["Drama"]})
    assert model.add_items(new) == ["new1"]
    assert model.weights.shape == (61, 61) and model.weights[:, 60].nnz > 0
    recs = model.recommend(["u1"], k=61)
    assert "new1" in recs.items[0] or len(recs.items[0]) > 0


def test_large_catalog_settings_keep_the_users_own():
    from avrec.models.registry import large_catalog_settings

    sparse_english = {"backbone": {"kind": "sparse"}, "content": {"query_encoder": "text-en"}}
    assert large_catalog_settings({}) == sparse_english
    merged = large_catalog_settings({"backbone": {"neighbors": 50}, "l2": 300.0})
    assert merged == {
        **sparse_english,
        "backbone": {"kind": "sparse", "neighbors": 50},
        "l2": 300.0,
    }
    assert Hybrid(merged).config.backbone.l2 == 300.0
    # large catalogs match requests with the text encoder the catalog is read with anyway,
    # unless the user names one (flat or nested)
    assert Hybrid(merged).config.content.query_encoder == "text-en"
    for own in ({"query_encoder": "text-multi"}, {"content": {"query_encoder": "text-multi"}}):
        assert Hybrid(large_catalog_settings(own)).config.content.query_encoder == "text-multi"


def test_sparse_cold_items_match_the_dense_ones_when_nothing_is_pruned():
    from avrec.models.hybrid.coldmap import (
        propagate_to_cold,
        propagate_to_cold_sparse,
        ridge_cold_columns,
        ridge_cold_columns_sparse,
        with_cold_columns,
    )

    rng = np.random.default_rng(4)
    n = 30
    warm = np.arange(n) % 4 != 0
    w = rng.normal(size=(n, n)).astype(np.float32) * (rng.random((n, n)) < 0.4)
    w[~warm] = 0.0
    w[:, ~warm] = 0.0
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = propagate_to_cold(w, vectors, warm, 5, 0.2)
    rows, cols = propagate_to_cold_sparse(sp.csr_matrix(w), vectors, warm, 5, 0.2, keep=n)
    np.testing.assert_allclose(with_cold_columns(rows, cols, warm).toarray(), dense, atol=1e-5)
    feats = rng.normal(size=(n, 5)).astype(np.float32)
    ridge = ridge_cold_columns(w, feats, warm, 1.0)
    sparse, sd = ridge_cold_columns_sparse(sp.csr_matrix(w), feats, warm, 1.0, keep=n)
    np.testing.assert_allclose(sparse.toarray(), ridge, atol=1e-4)
    assert sd == pytest.approx(float(ridge.std()), rel=1e-4)
    pruned, _ = ridge_cold_columns_sparse(sp.csr_matrix(w), feats, warm, 1.0, keep=3)
    assert np.diff(pruned.indptr).max() <= 3


@pytest.mark.parametrize("binary", [True, False])
def test_rows_product_is_scipys_product_bit_for_bit(binary):
    from avrec.models.baselines.sparse_ease import rows_product

    rng = np.random.default_rng(3)
    for seed in range(40):
        n = int(rng.integers(2, 120))
        w = sp.random(n, n, density=0.1, format="csr", dtype=np.float32, random_state=seed)
        w.data = rng.choice([-0.5, 0.5, 0.25, 1.5], w.nnz).astype(np.float32)  # sums cancel
        w.data[::3] = rng.normal(size=len(w.data[::3]))
        h = sp.random(4, n, density=0.2, format="csr", dtype=np.float32, random_state=seed + 99)
        h.data = np.ones_like(h.data) if binary else rng.integers(1, 9, h.nnz).astype(np.float32)
        want = (h @ w).tocsr()  # scipy drops exact zeros and sums in float32
        want.sort_indices()
        got = rows_product(h, w)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.array_equal(got.indptr, want.indptr)
        assert np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data, want.data)
    with pytest.raises(ValueError, match="do not match"):
        rows_product(sp.csr_matrix((1, 3), dtype=np.float32), w)


def test_contributions_are_the_weights_at_history_and_items():
    x = sp.csr_matrix((np.random.default_rng(1).random((50, 30)) < 0.2).astype(np.float64))
    model = SparseEASE()
    model.weights = sparse_ease_weights(x, 5.0, 8)
    history = sp.csr_matrix(x[4])
    items = np.array([0, 7, 7, 29, 3])
    want = model.weights[history.indices][:, items].toarray().T
    got = model.contributions(history, items)
    assert got.shape == (5, history.nnz) and np.array_equal(got, want)


def test_binary_rows_is_scipys_comparison():
    from avrec.models.baselines.sparse_ease import binary_rows

    h = sp.csr_matrix(np.array([[0, 2, -1, 3], [0, 0, 0, 0], [5, 0, 0, -2]], np.float32))
    h.data[0] = 0.0  # a stored zero is dropped too
    want = (h > 0).astype(np.float32)
    got = binary_rows(h)
    assert got.dtype == np.float32
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got, name), getattr(want, name))
    assert binary_rows(h, 6).shape == (3, 6)
