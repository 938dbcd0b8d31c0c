"""The synthetic catalog of the speed benchmarks: clusters without the vectors."""

from __future__ import annotations

import json

import numpy as np

from avrec.models.base import Recommender
from benchmarks.synthetic_catalog import item_clusters, item_vectors, save_sparse_ease_model


def test_item_clusters_are_item_vectors_clusters():
    _, cluster = item_vectors(3_000, seed=4)
    assert np.array_equal(item_clusters(3_000, seed=4), cluster)
    assert not np.array_equal(item_clusters(3_000, seed=5), cluster)


def test_saved_sparse_ease_model_loads_and_recommends_from_its_cluster(tmp_path):
    cluster = item_clusters(2_000, clusters=8)
    info = save_sparse_ease_model(tmp_path / "m", cluster, users=300, per_user=6)
    assert info["interactions"] == 300 * 6 and info["weights_nnz"] > 0
    json.dumps(info)
    model = Recommender.load(tmp_path / "m")
    assert model.name == "sparse-ease" and len(model.catalog) == 2_000
    recs = model.recommend(["u0"], 5, exclude_seen=True)
    seen = model.history_matrix(np.array([0])).indices
    got = model.item_vocab.lookup(recs.items[0])
    assert len(got) == 5 and not set(got) & set(seen.tolist())
    # neighbours come from the person's own taste cluster
    assert (cluster[got] == cluster[seen[0]]).mean() >= 0.6
