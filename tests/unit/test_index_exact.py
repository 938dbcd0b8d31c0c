"""Exact indexes (blocked numpy, faiss flat) match a full sort; persistence round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from avrec.index import ExactIndex, load_index, load_or_build, make_index, save_index


def vectors(n, d=32, rank=8, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + 0.1 * rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_exact_matches_full_sort_across_blocks():
    v = vectors(5_000)
    index = ExactIndex(32, block=700)
    index.add(v[:2_000])
    index.add(v[2_000:])
    q = v[:7]
    idx, scores = index.search(q, 10)
    expected = np.argsort(-(q @ v.T), axis=1)[:, :10]
    np.testing.assert_array_equal(idx, expected)
    assert idx[:, 0].tolist() == list(range(7))  # each vector is its own nearest
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_faiss_flat_agrees_with_numpy_exact():
    v, q = vectors(3_000), vectors(50, seed=3)
    numpy_idx, faiss_idx = make_index("exact", 32), make_index("flat", 32)
    numpy_idx.add(v)
    faiss_idx.add(v)
    a, sa = numpy_idx.search(q, 10)
    b, sb = faiss_idx.search(q, 10)
    np.testing.assert_allclose(sa, sb, atol=1e-5)
    assert (a == b).mean() > 0.99  # ties aside, the same rows


def test_k_larger_than_the_index_and_empty_index():
    index = make_index("exact", 32)
    assert index.search(vectors(2), 5)[0].shape == (2, 0)
    index.add(vectors(3))
    idx, _ = index.search(vectors(2, seed=1), 10)
    assert idx.shape == (2, 3) and sorted(idx[0]) == [0, 1, 2]


@pytest.mark.parametrize("kind", ["exact", "flat"])
def test_save_load_round_trip_and_rebuild_on_change(tmp_path, kind):
    v = vectors(1_000)
    index = make_index(kind, 32)
    index.add(v)
    save_index(index, tmp_path / kind, "fp")
    loaded, manifest = load_index(tmp_path / kind)
    assert manifest["kind"] == kind and len(loaded) == 1_000
    np.testing.assert_array_equal(loaded.search(v[:5], 4)[0], index.search(v[:5], 4)[0])
    folder = tmp_path / "cache"
    first = load_or_build(v, kind, folder)
    again = load_or_build(v, kind, folder)  # loaded, same answers
    np.testing.assert_array_equal(first.search(v[:3], 3)[0], again.search(v[:3], 3)[0])
    grown = load_or_build(np.vstack([v, vectors(10, seed=9)]), kind, folder)  # stale: rebuilt
    assert len(grown) == 1_010


def test_bad_shapes_kinds_and_folders(tmp_path):
    with pytest.raises(ValueError, match=r"shape \[n, 32\]"):
        ExactIndex(32).add(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"shape \[n, 32\]"):
        make_index("flat", 32).add(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="unknown index kind"):
        make_index("lsh", 8)
    with pytest.raises(FileNotFoundError, match="not a saved index"):
        load_index(tmp_path)
