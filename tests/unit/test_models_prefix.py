"""models.prefix: the first-choices map for users with short histories."""

import numpy as np
import pytest
import scipy.sparse as sp

from avrec.models.arrays import recency_matrix
from avrec.models.hybrid.prefix import first_items, prefix_weights


def _data():
    # users 0-5 start with item 0 then pick item 3; users 6-11 start with item 1 then pick 4;
    # item 2 is everyone's late pick (popular, not a start)
    rows, cols, times = [], [], []
    for u in range(12):
        seq = [0, 3, 2] if u < 6 else [1, 4, 2]
        for t, i in enumerate(seq):
            rows.append(u), cols.append(i), times.append(float(t))
    rows, cols = np.array(rows), np.array(cols)
    shape = (12, 5)
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    return matrix, recency_matrix(rows, cols, np.array(times), shape)


def test_first_items_are_the_earliest():
    _, recency = _data()
    first = first_items(recency, 1).toarray()
    assert first[:6, 0].all() and first[6:, 1].all() and first.sum() == 12


def test_a_first_choice_predicts_what_followed_it():
    matrix, recency = _data()
    w = prefix_weights(matrix, recency, 1, 1.0)
    assert w[0, 3] > 0.5 and abs(w[0, 4]) < 1e-6  # started with 0 -> went on to 3, never 4
    assert w[1, 4] > 0.5 and abs(w[1, 3]) < 1e-6
    with pytest.raises(ValueError):
        prefix_weights(matrix, recency, 0, 1.0)


def test_solved_over_starting_items_equals_the_full_ridge():
    """Items that start no history (2, 3 and 4 with prefix 1) get zero rows, and the others
    what the full (P^T P + l2 I)^-1 P^T X gives."""
    matrix, recency = _data()
    p = first_items(recency, 1).toarray()
    x = (matrix > 0).toarray().astype(np.float64)
    expected = np.linalg.solve(p.T @ p + 2.0 * np.eye(5), p.T @ x)
    w = prefix_weights(matrix, recency, 1, 2.0)
    np.testing.assert_allclose(w, expected, atol=1e-6)
    assert not w[2:].any()
