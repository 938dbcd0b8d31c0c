"""MMR re-ranking and the cosine matrix it shares with the diversity metric."""

import numpy as np
import pytest

from avrec import metrics as M
from avrec.metrics import cosine_matrix
from avrec.rerank.diversity import mmr

# items 0 and 1 point the same way, item 2 elsewhere, item 3 is all zeros
VECTORS = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.0, 0.0]])


def test_mmr_trades_relevance_for_a_different_item():
    cand, scores = np.array([0, 1, 2]), np.array([3.0, 2.9, 1.0])
    assert mmr(cand, scores, VECTORS, 3, 0.0).tolist() == [0, 1, 2]
    assert mmr(cand, scores, VECTORS, 2, 0.7).tolist() == [0, 2]
    # non-finite scores are dropped, k is capped at what is left
    assert mmr(cand, np.array([np.nan, 2.9, 1.0]), VECTORS, 5, 0.7).tolist() == [1, 2]


def test_cosine_matrix_is_what_the_diversity_metric_measures():
    sim = cosine_matrix(VECTORS)
    assert np.allclose(np.diag(sim)[:3], 1.0) and sim[3].tolist() == [0.0] * 4
    assert sim[0, 2] == pytest.approx(0.0) and sim[0, 1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert M.intra_list_diversity([0, 1, 2], VECTORS) == pytest.approx(
        np.mean([1 - sim[0, 1], 1 - sim[0, 2], 1 - sim[1, 2]])
    )
    assert cosine_matrix(VECTORS * 1e-200) == pytest.approx(sim, abs=1e-12)
