"""A learned mapping from item content to the collaborative item-item space, for cold items.

EASE's weight matrix ``B`` holds, in column ``j``, how each history item predicts item ``j``.
For warm items a ridge regression learns ``B[:, j] ~= M f_j`` from content features ``f_j``
(pretrained text vector, genres, people named in ``tags`` such as director and cast, release
period); a cold item's column is then ``M f_cold``. Content-only, so it never sees the cold
items' interactions (they have none in training). :func:`propagate_to_cold` gives the other
estimate the hybrid mixes in: a cold item's column and row as the similarity-weighted average of
its nearest warm items' in the text space.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from avrec.fusion.features import people_matrix, period_matrix
from avrec.models.arrays import row_blocks


def cold_features(items: pd.DataFrame, text: np.ndarray, genres: np.ndarray | None) -> np.ndarray:
    blocks = [np.asarray(text, np.float32), people_matrix(items), period_matrix(items)]
    if genres is not None:
        blocks.append(np.asarray(genres, np.float32))
    return np.hstack([*blocks, np.ones((len(items), 1), np.float32)])


def ridge_cold_columns(
    weights: np.ndarray, features: np.ndarray, warm: np.ndarray, lam: float
) -> np.ndarray:
    """``[n_items, n_cold]``: the cold items' columns predicted from their features by a
    ridge map fitted on the warm items' columns."""
    f = features.astype(np.float64)
    fw = f[warm]
    g = np.linalg.solve(fw.T @ fw + lam * np.eye(f.shape[1]), fw.T)  # [d, n_warm]
    mapping = np.empty((len(weights), g.shape[0]), np.float64)  # [n_items, d]
    for rows in row_blocks(len(weights)):  # no float64 copy of the whole matrix
        mapping[rows] = weights[rows][:, warm].astype(np.float64) @ g.T
    return (mapping @ f[~warm].T).astype(np.float32)


def propagate_to_cold(
    weights: np.ndarray, vectors: np.ndarray, warm: np.ndarray, neighbors: int, temperature: float
) -> np.ndarray:
    """Fill cold items' columns and rows of an item x item weight matrix from warm neighbours."""
    cold = np.flatnonzero(~warm)
    warm_idx = np.flatnonzero(warm)
    if len(cold) == 0 or len(warm_idx) == 0:
        return weights
    sim = vectors[cold] @ vectors[warm_idx].T
    k = min(neighbors, len(warm_idx))
    nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sim, nn, axis=1) / temperature
    w = np.exp(s - s.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    mix = np.zeros((len(cold), len(weights)), dtype=np.float32)
    np.put_along_axis(mix, warm_idx[nn], w.astype(np.float32), axis=1)
    out = weights.copy()
    out[:, cold] = weights @ mix.T
    out[cold, :] = mix @ weights
    out[cold, cold] = 0.0
    return out
