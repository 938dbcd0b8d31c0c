"""Vector indexes: exact matches a full sort; HNSW recall against exact on low-rank data."""

from __future__ import annotations

import numpy as np
import pytest

from avrec.index.base import ExactIndex, make_index, recall_at_k


def _vectors(n, d=32, rank=8, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + 0.1 * rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_exact_matches_full_sort_across_blocks():
    v = _vectors(5_000)
    index = ExactIndex(32, block=700)
    index.add(v[:2_000])
    index.add(v[2_000:])
    q = v[:7]
    idx, scores = index.search(q, 10)
    expected = np.argsort(-(q @ v.T), axis=1)[:, :10]
    np.testing.assert_array_equal(idx, expected)
    assert idx[:, 0].tolist() == list(range(7))  # each vector is its own nearest
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_hnsw_recall_against_exact():
    v = _vectors(20_000)
    exact, hnsw = make_index("exact", 32), make_index("hnsw", 32)
    exact.add(v)
    hnsw.add(v)
    q = _vectors(200, seed=1)
    assert recall_at_k(hnsw.search(q, 10)[0], exact.search(q, 10)[0]) >= 0.9
    assert len(hnsw) == 20_000


def test_bad_shapes_and_kinds():
    with pytest.raises(ValueError, match=r"shape \[n, 32\]"):
        ExactIndex(32).add(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="unknown index kind"):
        make_index("lsh", 8)
