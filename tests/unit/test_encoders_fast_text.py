"""The static text encoder (``text-fast``, WordLlama, real weights): shape, unit rows,
batch independence, and meaning (related texts closer than unrelated ones)."""

from __future__ import annotations

import numpy as np

from avrec.encoders.registry import available_encoders, get_encoder


def test_text_fast_is_registered_and_normalised():
    assert "text-fast" in available_encoders()
    enc = get_encoder("text-fast")
    texts = ["A jazz concert at night", "Live rock show in the city", "", "zzqx"]
    vecs = enc.encode(texts)
    assert vecs.shape == (4, enc.dim) and vecs.dtype == np.float32
    norms = np.linalg.norm(vecs, axis=1)
    assert np.allclose(norms[[0, 1]], 1.0, atol=1e-5)
    assert norms[2] == 0.0  # an empty text: a zero row, never NaN
    assert np.isfinite(vecs).all()
    assert enc.encode([]).shape == (0, enc.dim)
    assert enc.key == "text-fast@wordllama-l2-supercat-256"


def test_text_fast_batches_agree_and_carry_meaning():
    enc = get_encoder("text-fast")
    texts = [
        "jazz piano trio live concert",
        "a smooth jazz saxophone evening",
        "cooking pasta with tomato sauce",
        "italian recipes for a quick dinner",
    ]
    whole = enc.encode(texts)
    one_by_one = np.vstack([enc.encode([t]) for t in texts])
    assert np.allclose(whole, one_by_one, atol=1e-5)
    sim = whole @ whole.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[0, 3]
    assert sim[2, 3] > sim[2, 0] and sim[2, 3] > sim[2, 1]
