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
import scipy.sparse as sp

from avrec.fusion.features import people_matrix, period_matrix
from avrec.models.arrays import row_blocks, top_k_per_column


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
    cold = f[~warm].T  # [d, n_cold]
    # the product weights[:, warm] @ g.T @ cold, with the narrower of d and n_cold inside
    right, tail = (g.T @ cold, None) if cold.shape[1] < cold.shape[0] else (g.T, cold)
    out = np.empty((len(weights), right.shape[1]), np.float64)
    for rows in row_blocks(len(weights)):  # no float64 copy of the whole matrix
        out[rows] = weights[rows][:, warm].astype(np.float64) @ right
    return (out if tail is None else out @ tail).astype(np.float32)


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


#: cells of one dense block of the sparse path (cold x warm similarities, ridge predictions)
BLOCK_CELLS = 1 << 24


def _block(n: int) -> int:
    """Rows of a ``[rows, n]`` block of :data:`BLOCK_CELLS` cells."""
    return max(1, min(1024, BLOCK_CELLS // max(n, 1)))


def neighbour_mix(
    vectors: np.ndarray, warm: np.ndarray, neighbors: int, temperature: float
) -> sp.csr_matrix:
    """``[n_cold, n_items]``: each cold item's softmax weights over its ``neighbors`` nearest
    warm items in the text space (cosines over ``temperature``), a block of cold items at a
    time."""
    cold, warm_idx = np.flatnonzero(~warm), np.flatnonzero(warm)
    k = min(neighbors, len(warm_idx))
    rows, cols, vals = [], [], []
    for block in row_blocks(len(cold), _block(len(warm_idx))):
        sim = vectors[cold[block]] @ vectors[warm_idx].T
        nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sim, nn, axis=1) / temperature
        w = np.exp(s - s.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        rows.append(np.repeat(np.arange(block.start, block.stop), k))
        cols.append(warm_idx[nn].ravel())
        vals.append(w.ravel().astype(np.float32))
    if not rows:
        return sp.csr_matrix((len(cold), len(warm)), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(cold), len(warm)),
    )


def propagate_to_cold_sparse(
    weights: sp.csr_matrix,
    vectors: np.ndarray,
    warm: np.ndarray,
    neighbors: int,
    temperature: float,
    keep: int,
) -> tuple[sp.csr_matrix, sp.csc_matrix]:
    """:func:`propagate_to_cold` for sparse weights: the weights with the cold items' rows
    filled in (each row's ``keep`` largest entries), and separately the cold items' columns
    ``[n_items, n_cold]`` (each column's ``keep`` largest entries), which the caller mixes
    with other estimates before :func:`with_cold_columns` writes them."""
    cold = np.flatnonzero(~warm)
    on = sp.diags(warm.astype(np.float32))
    w = (on @ sp.csr_matrix(weights, dtype=np.float32) @ on).tocsr()  # warm x warm only
    w.eliminate_zeros()
    if len(cold) == 0 or warm.sum() == 0:
        return w, sp.csc_matrix((w.shape[0], 0), dtype=np.float32)
    mix = neighbour_mix(vectors, warm, neighbors, temperature)
    wt = w.T.tocsr()
    col_blocks, row_parts = [], []
    for block in row_blocks(len(cold), 256):  # the products are pruned a block at a time
        m = mix[block]
        col_blocks.append(top_k_per_column(w @ m.T, keep))  # zero in the cold rows
        row_parts.append(top_k_per_column(wt @ m.T, keep))  # rows as columns; zero in cold
    columns = sp.hstack(col_blocks, format="csc")
    rows = sp.hstack(row_parts, format="csc").T.tocsr()
    placed = sp.csr_matrix(
        (rows.data, rows.indices, _spread_indptr(rows.indptr, cold, w.shape[0])), shape=w.shape
    )
    return (w + placed).tocsr(), columns


def _spread_indptr(indptr: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """The indptr of an ``n``-row CSR matrix whose rows ``at`` are the rows of a CSR matrix
    with ``indptr`` (every other row empty)."""
    counts = np.zeros(n, np.int64)
    counts[at] = np.diff(indptr)
    return np.concatenate([[0], np.cumsum(counts)])


def with_cold_columns(
    weights: sp.csr_matrix, columns: sp.csc_matrix, warm: np.ndarray
) -> sp.csr_matrix:
    """``weights`` (zero in the cold columns) plus ``columns`` (``[n_items, n_cold]``) as its
    cold items' columns, the cold x cold block left zero."""
    cold = np.flatnonzero(~warm)
    c = sp.coo_matrix(columns)
    keep = warm[c.row]
    placed = sp.csr_matrix(
        (c.data[keep], (c.row[keep], cold[c.col[keep]])), shape=weights.shape, dtype=np.float32
    )
    return (weights + placed).tocsr()


def ridge_cold_columns_sparse(
    weights: sp.csr_matrix, features: np.ndarray, warm: np.ndarray, lam: float, keep: int
) -> tuple[sp.csc_matrix, float]:
    """:func:`ridge_cold_columns` for sparse weights: each predicted cold column's ``keep``
    largest entries, a block of columns at a time, and the standard deviation of the whole
    (unpruned) prediction."""
    f = features.astype(np.float64)
    fw = f[warm]
    g = np.linalg.solve(fw.T @ fw + lam * np.eye(f.shape[1]), fw.T)  # [d, n_warm]
    mapping = np.asarray(sp.csr_matrix(weights)[:, np.flatnonzero(warm)] @ g.T)  # [n, d]
    cold = np.flatnonzero(~warm)
    mapping_t = np.ascontiguousarray(mapping.T)
    blocks, total, total_sq = [], 0.0, 0.0
    for block in row_blocks(len(cold), _block(len(mapping))):
        # the block's columns as contiguous rows: the top k of each is a row-wise partition
        pred = (f[cold[block]] @ mapping_t).astype(np.float32)  # [block, n_items]
        total += float(pred.sum(dtype=np.float64))
        total_sq += float(np.square(pred, dtype=np.float64).sum())
        blocks.append(_top_k_rows(pred, keep))
    cells = max(len(mapping) * len(cold), 1)
    sd = float(np.sqrt(max(total_sq / cells - (total / cells) ** 2, 0.0)))
    out = sp.vstack(blocks).T.tocsc() if blocks else sp.csc_matrix((len(mapping), 0))
    return out, sd


def _top_k_rows(a: np.ndarray, k: int) -> sp.csr_matrix:
    """``a`` as CSR with only each row's ``k`` entries of largest magnitude."""
    if k >= a.shape[1]:
        return sp.csr_matrix(a)
    part = np.argpartition(-np.abs(a), k - 1, axis=1)[:, :k]
    part.sort(axis=1)
    vals = np.take_along_axis(a, part, axis=1)
    indptr = np.arange(0, a.shape[0] * k + 1, k)
    out = sp.csr_matrix((vals.ravel(), part.ravel(), indptr), shape=a.shape)
    out.eliminate_zeros()
    return out


def sparse_std(m: sp.spmatrix) -> float:
    """Standard deviation of all cells of ``m``, implicit zeros included."""
    cells = max(m.shape[0] * m.shape[1], 1)
    data = np.asarray(m.data, np.float64)
    mean = data.sum() / cells
    return float(np.sqrt(max(np.square(data).sum() / cells - mean**2, 0.0)))
