"""Zero-shot history matching of the content model: the power mean of similarities."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from avrec.models import content
from avrec.models.content import Content, ContentConfig, history_match, user_profiles


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def test_history_match_is_the_power_mean_in_any_chunking(monkeypatch):
    rng = np.random.default_rng(0)
    vectors = _unit(rng.normal(size=(40, 8)))
    dense = (rng.random((12, 40)) < 0.15).astype(np.float32)
    dense[3] = 0  # an empty history
    hist = sp.csr_matrix(dense)
    sim = np.maximum(vectors @ vectors.T, 0)
    expected = np.zeros((12, 40))
    for u in range(12):
        idx = hist[u].indices
        if len(idx):
            expected[u] = ((sim[idx] ** 5).mean(axis=0)) ** (1 / 5)
    np.testing.assert_allclose(history_match(hist, vectors, 5.0), expected, rtol=1e-4, atol=1e-6)
    monkeypatch.setattr(content, "MATCH_BUDGET", 50)  # a few catalog items per block
    np.testing.assert_allclose(history_match(hist, vectors, 5.0), expected, rtol=1e-4, atol=1e-6)


def test_one_close_match_outweighs_loose_similarity_to_all():
    # history: two unrelated items; x is close to the first, y halfway between both
    a, b = np.eye(4, dtype=np.float32)[:2]
    x = _unit(np.array([[0.9, 0.0, np.sqrt(1 - 0.81), 0.0]]))[0]
    y = _unit((a + b)[None])[0]
    vectors = np.stack([a, b, x, y])
    hist = sp.csr_matrix(np.array([[1, 1, 0, 0]], np.float32))
    sharp = history_match(hist, vectors, 8.0)[0]
    mean = (user_profiles(hist, vectors) @ vectors.T)[0]
    assert sharp[2] > sharp[3]  # 0.825 vs 0.707
    assert mean[3] > mean[2]  # the mean vector is y itself


def test_contributions_add_up_to_the_score():
    rng = np.random.default_rng(2)
    model = Content(ContentConfig(query_encoder=None))
    model.vectors = _unit(rng.normal(size=(30, 6)))
    model.query_vectors = None
    hist = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [2, 7, 11])), shape=(1, 30))
    items = np.array([0, 5, 20])
    contrib = model.contributions(hist, items)
    score = model.score(np.array([0]), hist)[0, items]
    np.testing.assert_allclose(contrib.sum(axis=1), score, rtol=1e-4, atol=1e-6)
    assert contrib.shape == (3, 3) and (contrib >= 0).all()


def test_requests_read_by_the_catalogs_encoder_share_its_vectors(tmp_path):
    """One array for both (kept, saved and searched once), after loading and added items."""
    import pandas as pd

    from avrec.data import Dataset
    from avrec.models.base import TrainData

    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "title": ["Calm piano", "Loud drums", "Space opera"]}
    )
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "rating": [5.0, 4.0]})
    data = TrainData.from_dataset(Dataset(items, inter))
    model = Content({"encoder": "text-en", "query_encoder": "text-en"}).fit(data)
    assert model.query_vectors is model.vectors
    assert set(model.state_arrays()) == {"vectors"}
    model.save(tmp_path / "m")
    loaded = Content.load(tmp_path / "m")
    assert loaded.query_vectors is loaded.vectors
    np.testing.assert_array_equal(
        loaded.query_scores(["piano"])[0], model.query_scores(["piano"])[0]
    )
    model.add_items(pd.DataFrame({"item_id": ["d"], "title": ["Quiet piano"]}))
    assert model.query_vectors is model.vectors and len(model.vectors) == 4
