"""EASE extensions: denoising emphasis and side information (models.ease.ease_weights), and
the in-place inverse it is computed with (models.arrays.spd_inverse)."""

import numpy as np
import pytest
import scipy.sparse as sp

from avrec.models.arrays import spd_inverse
from avrec.models.baselines.ease import ease_weights


def _matrix(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = (rng.random((40, 8)) < 0.35).astype(np.float64)
    x[:, 7] = 0.0  # item 7: no interactions (a cold item)
    return sp.csr_matrix(x)


def test_defaults_are_plain_ease():
    x = _matrix()
    gram = (x.T @ x).toarray() + 5.0 * np.eye(8)
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease_weights(x, 5.0), expected, atol=1e-5)


def test_dropout_penalises_frequent_items_more():
    x = _matrix()
    plain, denoised = ease_weights(x, 5.0), ease_weights(x, 5.0, dropout=0.5)
    assert np.abs(denoised).sum() < np.abs(plain).sum()  # stronger shrinkage
    assert not np.allclose(plain, denoised)
    with pytest.raises(ValueError, match="dropout"):
        ease_weights(x, 5.0, dropout=1.0)


def test_side_information_links_a_cold_item_to_its_content_twin():
    x = _matrix()
    side = np.zeros((8, 3))
    side[[2, 7], 0] = 1.0  # items 2 and 7 share a director
    side[[0, 1, 3, 4, 5, 6], 1] = 1.0
    without = ease_weights(x, 5.0)
    with_side = ease_weights(x, 5.0, side=side, side_weight=10.0)
    assert np.allclose(without[:, 7], 0.0)  # no interactions, no collaborative signal
    assert with_side[2, 7] > 0 and with_side[2, 7] == with_side[:, 7].max()


@pytest.mark.parametrize("n", [1, 7, 2500])
def test_spd_inverse_in_place_matches_numpy(n):
    """Blocks of 1024 rows: 2500 crosses two block edges."""
    rng = np.random.default_rng(n)
    x = rng.random((n + 3, n))
    a = x.T @ x + np.eye(n)
    expected = np.linalg.inv(a)
    got = spd_inverse(a)
    assert got is a  # overwritten, no second n x n array
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_array_equal(got, got.T)


def test_spd_inverse_rejects_what_it_cannot_invert():
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        spd_inverse(np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues 3 and -1
    with pytest.raises(ValueError, match="float64"):
        spd_inverse(np.eye(3, dtype=np.float32))
    singular = sp.csr_matrix(np.ones((4, 2)))  # two identical items, no regularisation
    with pytest.raises(ValueError, match="l2 > 0"):
        ease_weights(singular, 0.0)
