"""The shared pieces every model uses: top-k, vocabularies, TrainData, masking, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from avrec.data import Dataset
from avrec.data.vocab import Vocabulary
from avrec.models.arrays import csr_row, top_k
from avrec.models.base import Recommender, TrainData
from avrec.models.registry import create_model


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(1, 30)),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    st.integers(1, 40),
)
def test_top_k_matches_full_sort(scores, k):
    idx, top = top_k(scores, k)
    kk = min(k, scores.shape[1])
    assert idx.shape == (scores.shape[0], kk)
    expected = -np.sort(-scores, axis=1)[:, :kk]
    np.testing.assert_array_equal(top, expected)
    np.testing.assert_array_equal(np.take_along_axis(scores, idx, 1), top)
    assert all(len(set(row)) == kk for row in idx)


def test_csr_row_is_the_row_with_its_stored_order():
    import scipy.sparse as sp

    m = sp.csr_matrix(
        (
            np.array([3.0, 1.0, 2.0, 5.0], np.float32),
            np.array([4, 0, 2, 1]),
            np.array([0, 3, 3, 4]),
        ),
        shape=(3, 6),
    )
    for n in range(3):
        row = csr_row(m, n)
        assert row.shape == (1, 6)
        np.testing.assert_array_equal(row.toarray(), m[n].toarray())
        np.testing.assert_array_equal(row.indices, m[n].indices)  # unsorted order kept
    assert csr_row(m, 1).nnz == 0


def test_vocabulary_round_trip(tmp_path):
    vocab = Vocabulary(["b", "a", "中文"])
    assert vocab.index("中文") == 2 and "a" in vocab
    np.testing.assert_array_equal(vocab.lookup(["a", "zz", "b"]), [1, -1, 0])
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    with pytest.raises(KeyError, match="unknown id 'zz'"):
        vocab.index("zz")
    with pytest.raises(ValueError):
        Vocabulary(["a", "a"])


def test_train_data_keeps_cold_items_and_dedups(synthetic_dataset):
    items = pd.concat([synthetic_dataset.items, pd.DataFrame({"item_id": ["cold"]})])
    inter = pd.concat([synthetic_dataset.interactions, synthetic_dataset.interactions.iloc[:1]])
    data = TrainData.from_dataset(Dataset(items, inter))
    assert data.n_items == 41 and "cold" in data.item_vocab
    assert data.matrix.nnz == len(synthetic_dataset.interactions)  # repeated pair counted once
    assert data.matrix[:, data.item_vocab.index("cold")].nnz == 0
    assert data.ratings is not None and data.ratings.nnz == data.matrix.nnz


def test_recommend_masks_history_candidates_and_handles_unknown_users(synthetic_dataset, tmp_path):
    data = TrainData.from_dataset(synthetic_dataset)
    model = create_model("popularity").fit(data)
    seen = set(synthetic_dataset.interactions.query("user_id == 'u0'")["item_id"])
    recs = model.recommend(
        ["u0", "nobody", "u1"], k=5, candidates=[None, None, ["i1", "i3", "unknown-item"]]
    )
    assert not seen & set(recs.items[0])
    assert len(recs.items[1]) == 5  # unknown user: plain popularity
    assert set(recs.items[2]) <= {"i1", "i3"}
    assert all(s1 >= s2 for s1, s2 in zip(recs.scores[0], recs.scores[0][1:], strict=False))
    with_history = model.recommend(["nobody"], k=40, histories=[["i0", "i2"]])
    assert not {"i0", "i2"} & set(with_history.items[0])
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.recommend(["u0"], k=5).items == model.recommend(["u0"], k=5).items


def test_load_rejects_a_folder_without_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved avrec model"):
        Recommender.load(tmp_path)


def test_unknown_model_name():
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        create_model("nope")
