"""EASE extensions: denoising emphasis and side information (models.ease.ease_weights)."""

import numpy as np
import pytest
import scipy.sparse as sp

from avrec.models.ease import ease_weights


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
