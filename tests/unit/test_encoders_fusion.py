"""Fusion of modality vectors with missing modalities: properties (Hypothesis) and known cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from avrec.fusion.fuse import FusionConfig, fuse


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_fused_rows_are_unit_or_zero(n, seed):
    rng = np.random.default_rng(seed)
    vecs = {
        "text": rng.normal(size=(n, 5)),
        "image": rng.normal(size=(n, 7)),
        "audio": rng.normal(size=(n, 3)),
    }
    present = {m: rng.random(n) < 0.6 for m in vecs}
    out = fuse(vecs, present)
    norms = np.linalg.norm(out.vectors, axis=1)
    any_present = np.stack(list(present.values()), 1).any(1)
    assert np.allclose(norms[any_present], 1.0, atol=1e-5)
    assert np.allclose(norms[~any_present], 0.0)
    assert out.vectors.shape == (n, 15)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_similarity_is_weighted_mean_of_shared_cosines(seed):
    rng = np.random.default_rng(seed)
    t, i = _unit(rng.normal(size=(2, 4))), _unit(rng.normal(size=(2, 6)))
    cfg = FusionConfig({"text": 1.0, "image": 0.5})
    out = fuse({"text": t, "image": i}, config=cfg).vectors
    expected = (1.0 * t[0] @ t[1] + 0.5 * i[0] @ i[1]) / 1.5
    assert np.isclose(out[0] @ out[1], expected, atol=1e-5)


def test_missing_modality_compares_on_what_is_there():
    text = _unit(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    image = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # item 1 has no poster
    out = fuse({"text": text, "image": image}).vectors
    # item 1 (same text as item 0, no image) stays nearer to item 0 than to item 2
    assert out[1] @ out[0] > out[1] @ out[2]
    assert np.isclose(np.linalg.norm(out[1]), 1.0)
    assert np.allclose(out[1, 2:], 0.0)


def test_mismatched_rows_and_no_weights_are_errors():
    import pytest

    with pytest.raises(ValueError, match="rows"):
        fuse({"text": np.ones((2, 2)), "image": np.ones((3, 2))})
    with pytest.raises(ValueError, match="nothing to fuse"):
        fuse({"text": np.ones((2, 2))}, config=FusionConfig({"text": 0.0}))
