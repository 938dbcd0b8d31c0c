"""Validation inside ``fit``: a holdout of each user's training interactions and a quick
ranking metric, for models that choose their own settings from the training data only."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from avrec.models.arrays import top_k
from avrec.models.base import TrainData


def holdout(
    data: TrainData, fraction: float, min_items: int, seed: int
) -> tuple[TrainData, sp.csr_matrix]:
    """Split each user's row (users with ``>= min_items``): ``fraction`` to a validation matrix."""
    rng = np.random.default_rng(seed)
    m = (data.matrix > 0).astype(np.float32).tocsr()
    val_rows, val_cols = [], []
    for u in range(m.shape[0]):
        idx = m.indices[m.indptr[u] : m.indptr[u + 1]]
        if len(idx) < min_items:
            continue
        n_val = max(1, round(fraction * len(idx)))
        chosen = rng.choice(idx, size=n_val, replace=False)
        val_rows += [u] * n_val
        val_cols += chosen.tolist()
    val = sp.csr_matrix((np.ones(len(val_rows), np.float32), (val_rows, val_cols)), shape=m.shape)
    train = (m - val.multiply(m)).tocsr()
    train.eliminate_zeros()
    recency = None
    if data.recency is not None:
        recency = data.recency.multiply(train > 0).tocsr()
        recency.eliminate_zeros()
    return dataclasses.replace(data, matrix=train, recency=recency, ratings=None), val


def ndcg_rows(
    scores: np.ndarray, train: sp.csr_matrix, val: sp.csr_matrix, k: int = 10
) -> np.ndarray:
    """NDCG@k (:func:`avrec.metrics.ndcg`) of each row of ``val`` that has items,
    ``scores`` (rows x items, the same rows as ``train`` and ``val``) ranked with the row's
    ``train`` items excluded."""
    from avrec.metrics import ndcg

    rows = np.flatnonzero(np.diff(val.indptr) > 0)
    s = np.array(scores[rows], dtype=np.float32, copy=True)
    t = train[rows].tocoo()
    s[t.row, t.col] = -np.inf
    top, top_scores = top_k(s, k)
    return np.array(
        [
            ndcg(
                top[n][np.isfinite(top_scores[n])],
                val.indices[val.indptr[u] : val.indptr[u + 1]].tolist(),
                k,
            )
            for n, u in enumerate(rows)
        ]
    )
