"""The content -> collaborative map for cold items: feature parsing and the ridge map."""

from __future__ import annotations

import numpy as np
import pandas as pd

from avrec.fusion.features import people_matrix, period_matrix
from avrec.models.hybrid.coldmap import ridge_cold_columns


def test_people_matrix_splits_roles_and_drops_singletons():
    items = pd.DataFrame(
        {"tags": ["director:Ann|cast:Bo, Cy", "director:Ann|cast:Bo", "cast:Dee", None]}
    )
    m = people_matrix(items)
    assert m.shape == (4, 2)  # director:Ann and cast:Bo appear twice; Cy and Dee once
    assert np.allclose(np.linalg.norm(m[:2], axis=1), 1.0) and not m[2:].any()


def test_period_matrix_bins_years_and_unknown():
    m = period_matrix(pd.DataFrame({"year": [1994, 1996, None]}))
    assert m.sum() == 3 and m[0].argmax() != m[1].argmax() and m[2, -1] == 1


def test_ridge_map_recovers_columns_that_are_linear_in_content():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 5))
    true_map = rng.normal(size=(60, 5))
    weights = true_map @ feats.T  # column j = M f_j
    warm = np.ones(60, dtype=bool)
    warm[-10:] = False
    cold = ridge_cold_columns(weights, feats, warm, lam=1e-6)
    np.testing.assert_allclose(cold, weights[:, ~warm], rtol=1e-3, atol=1e-3)
