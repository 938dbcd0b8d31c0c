"""The cold-items part's IVF searches on large catalogs, against the exact ones."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from avrec.models.arrays import top_k_per_column, top_k_per_row
from avrec.models.hybrid import coldmap, coldsearch


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``n // 100`` centres; the centre of item ``i`` is ``i % (n // 100)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(4, n // 100), d))
    v = centres[np.arange(n) % len(centres)] + 0.3 * rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def backbone(n: int, warm: np.ndarray, seed: int = 1) -> sp.csr_matrix:
    """Weights among items of the same centre (as :func:`clustered`), like a trained
    backbone's neighbours."""
    rng = np.random.default_rng(seed)
    w = sp.random(n, n, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    w.data = rng.normal(size=w.nnz).astype(np.float32)
    groups = max(4, n // 100)
    same = (w.tocoo().row % groups) == (w.tocoo().col % groups)
    w = sp.csr_matrix((w.tocoo().data * same, (w.tocoo().row, w.tocoo().col)), shape=w.shape)
    on = sp.diags(warm.astype(np.float32))
    return (on @ w @ on).tocsr()


@pytest.mark.parametrize("density", [0.02, 0.6])  # padded block / the transpose's sort
def test_top_k_per_row_keeps_the_same_entries_as_per_column(density):
    m = sp.random(40, 300, density=density, random_state=3, format="csr")
    m.data = np.random.default_rng(3).normal(size=m.nnz)
    fast = top_k_per_row(m, 5)
    assert (fast != top_k_per_column(m.T, 5).T).nnz == 0
    assert np.diff(fast.indptr).max() <= 5


def test_neighbour_mix_by_ivf_finds_the_exact_neighbours():
    n = 3000
    vectors = clustered(n, 16)
    warm = np.arange(n) % 5 != 0
    exact = coldmap.neighbour_mix(vectors, warm, 10, 0.2)
    approx = coldmap.neighbour_mix(vectors, warm, 10, 0.2, ann_above=0)
    assert approx.shape == exact.shape
    np.testing.assert_allclose(np.asarray(approx.sum(axis=1)).ravel(), 1.0, rtol=1e-5)
    assert not approx[:, ~warm].nnz  # only warm neighbours
    same = approx.multiply(exact > 0).sum() / exact.sum()
    assert same > 0.9  # the softmax mass on the exact neighbours


def test_ridge_columns_by_ivf_keep_the_largest_entries_and_the_spread():
    n = 2500
    vectors = clustered(n, 12)
    warm = np.arange(n) % 4 != 0
    w = backbone(n, warm)
    feats = np.hstack([vectors, np.ones((n, 1), np.float32)])
    exact, sd = coldmap.ridge_cold_columns_sparse(w, feats, warm, 1.0, keep=20)
    approx, sd_ivf = coldmap.ridge_cold_columns_sparse(w, feats, warm, 1.0, 20, ann_above=0)
    assert sd_ivf == pytest.approx(sd, rel=1e-4)
    assert np.diff(approx.indptr).max() <= 20
    found = approx.multiply(exact != 0)
    # found entries carry the exact values; most of the exact entries are found
    np.testing.assert_allclose(found.data, exact.multiply(approx != 0).data, rtol=1e-3, atol=1e-5)
    assert (found != 0).sum() / (exact != 0).sum() > 0.8


def test_below_the_threshold_no_index_is_built(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("IVF index built below ann_above")

    monkeypatch.setattr(coldsearch, "ivf_index", refuse)
    n = 400
    vectors = clustered(n, 8)
    warm = np.arange(n) % 3 != 0
    w = backbone(n, warm)
    coldmap.propagate_to_cold_sparse(w, vectors, warm, 10, 0.2, keep=30)
    coldmap.ridge_cold_columns_sparse(w, vectors, warm, 1.0, keep=30)
    with pytest.raises(AssertionError, match="IVF"):
        coldmap.neighbour_mix(vectors, warm, 10, 0.2, ann_above=10)


def test_the_default_threshold_is_far_above_the_movielens_catalogs():
    from avrec.models.hybrid.config import ColdItemsConfig

    assert ColdItemsConfig().ann_above == coldmap.ANN_ABOVE == 50_000  # ml-latest-small: 9,742
