"""Approximate indexes (faiss HNSW, IVF): recall@10 against exact on low-rank data, the
speed/recall knobs move recall the right way, persistence keeps answers."""

from __future__ import annotations

import numpy as np
import pytest

from avrec.index import load_index, make_index, recall_at_k, save_index
from tests.unit.test_index_exact import vectors


@pytest.fixture(scope="module")
def data():
    v, q = vectors(20_000), vectors(200, seed=1)
    exact = make_index("exact", 32)
    exact.add(v)
    return v, q, exact.search(q, 10)[0]


@pytest.mark.parametrize("kind,options", [("hnsw", {}), ("ivf", {"nprobe": 16})])
def test_recall_against_exact(data, kind, options):
    v, q, truth = data
    index = make_index(kind, 32, **options)
    index.add(v)
    assert len(index) == 20_000
    assert recall_at_k(index.search(q, 10)[0], truth) >= 0.9


def test_ivf_nprobe_trades_speed_for_recall(data):
    v, q, truth = data
    index = make_index("ivf", 32, nlist=256)
    index.add(v)
    recalls = []
    for nprobe in (1, 8, 256):
        index.set_nprobe(nprobe)
        recalls.append(recall_at_k(index.search(q, 10)[0], truth))
    assert recalls[0] < recalls[1] <= recalls[2]
    assert recalls[2] == pytest.approx(1.0)  # scanning every cell is exact
    assert recalls[0] < 0.9


def test_hnsw_ef_search_raises_recall(data):
    v, q, truth = data
    index = make_index("hnsw", 32, m=8, ef_construction=40)
    index.add(v)
    index.set_ef_search(10)
    low = recall_at_k(index.search(q, 10)[0], truth)
    index.set_ef_search(256)
    assert recall_at_k(index.search(q, 10)[0], truth) > low


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_save_load_keeps_answers(tmp_path, data, kind):
    v, q, _ = data
    index = make_index(kind, 32)
    index.add(v[:5_000])
    save_index(index, tmp_path)
    loaded, _ = load_index(tmp_path)
    np.testing.assert_array_equal(loaded.search(q, 10)[0], index.search(q, 10)[0])
