"""Array helpers of the recommender contract: recency ranks, row-wise top-k, one CSR row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def recency_matrix(rows: np.ndarray, cols: np.ndarray, times: np.ndarray,
                   shape: tuple[int, int]) -> sp.csr_matrix:
    """1 for each user's most recent item, 2 for the one before, ... (ties: file order)."""
    frame = pd.DataFrame({"r": rows, "c": cols, "t": times, "o": np.arange(len(rows))})
    frame = frame.sort_values(["r", "t", "o"]).drop_duplicates(["r", "c"], keep="last")
    rank = frame.groupby("r").cumcount(ascending=False).to_numpy() + 1
    return sp.csr_matrix((rank.astype(np.float32), (frame["r"], frame["c"])), shape=shape)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score matrix, best first; ``-inf`` entries sort last."""
    n, m = scores.shape
    k = min(k, m)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)


def csr_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Row ``n`` of ``m`` as a 1-row CSR matrix sharing its arrays (``m[n]`` without the
    indexing machinery: explanations take one row per request)."""
    a, b = m.indptr[n], m.indptr[n + 1]
    return sp.csr_matrix((m.data[a:b], m.indices[a:b], np.array([0, b - a], m.indptr.dtype)),
                         shape=(1, m.shape[1]))
