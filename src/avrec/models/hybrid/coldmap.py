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
from avrec.models.arrays import row_blocks, top_k_per_column, top_k_per_row


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


#: above this many warm items (content neighbours) or items (ridge columns) the sparse
#: path's searches are approximate (models.hybrid.coldsearch); at or below, exact
ANN_ABOVE = 50_000

#: cells of one dense block of the sparse path (cold x warm similarities, ridge predictions)
BLOCK_CELLS = 1 << 24


def _block(n: int) -> int:
    """Rows of a ``[rows, n]`` block of :data:`BLOCK_CELLS` cells."""
    return max(1, min(1024, BLOCK_CELLS // max(n, 1)))


def neighbour_mix(
    vectors: np.ndarray,
    warm: np.ndarray,
    neighbors: int,
    temperature: float,
    ann_above: int = ANN_ABOVE,
) -> sp.csr_matrix:
    """``[n_cold, n_items]``: each cold item's softmax weights over its ``neighbors`` nearest
    warm items in the text space (cosines over ``temperature``), a block of cold items at a
    time; above ``ann_above`` warm items the neighbours come from an IVF index."""
    cold, warm_idx = np.flatnonzero(~warm), np.flatnonzero(warm)
    k = min(neighbors, len(warm_idx))
    if len(warm_idx) > ann_above and len(cold) and k:
        return _neighbour_mix_ivf(vectors, warm, k, temperature)
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


def _neighbour_mix_ivf(
    vectors: np.ndarray, warm: np.ndarray, k: int, temperature: float
) -> sp.csr_matrix:
    """:func:`neighbour_mix` with each cold item's ``k`` nearest warm items from an IVF index
    over the warm items' vectors (missing neighbours, if its clusters hold fewer, get 0)."""
    from avrec.models.hybrid.coldsearch import ivf_index, search

    cold, warm_idx = np.flatnonzero(~warm), np.flatnonzero(warm)
    sim, nn = search(ivf_index(vectors[warm_idx]), vectors[cold], k)
    s = sim / temperature
    best = np.where(np.isfinite(s[:, :1]), s[:, :1], 0.0)  # best first
    w = np.exp(s - best)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-30)
    found = nn >= 0
    rows = np.repeat(np.arange(len(cold)), k).reshape(nn.shape)
    return sp.csr_matrix(
        (w[found].astype(np.float32), (rows[found], warm_idx[nn[found]])),
        shape=(len(cold), len(warm)),
    )


def propagate_to_cold_sparse(
    weights: sp.csr_matrix,
    vectors: np.ndarray,
    warm: np.ndarray,
    neighbors: int,
    temperature: float,
    keep: int,
    ann_above: int = ANN_ABOVE,
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
    mix = neighbour_mix(vectors, warm, neighbors, temperature, ann_above)
    wt = w.T.tocsr()
    col_parts, row_parts = [], []
    # a block of cold items at a time, each product pruned; the mix on the left, so each
    # costs the block's neighbours' columns (rows) of w, not a pass over all of w
    for block in row_blocks(len(cold), 256):
        m = mix[block]
        col_parts.append(top_k_per_row(m @ wt, keep))  # columns as rows; zero in cold rows
        row_parts.append(top_k_per_row(m @ w, keep))  # zero in the cold columns
    columns = sp.vstack(col_parts, format="csr").T.tocsc()
    rows = sp.vstack(row_parts, format="csr")
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
    weights: sp.csr_matrix,
    features: np.ndarray,
    warm: np.ndarray,
    lam: float,
    keep: int,
    ann_above: int = ANN_ABOVE,
) -> tuple[sp.csc_matrix, float]:
    """:func:`ridge_cold_columns` for sparse weights: each predicted cold column's ``keep``
    largest entries, a block of columns at a time, and the standard deviation of the whole
    (unpruned) prediction. Above ``ann_above`` items the largest entries come from an IVF
    index over the map's rows (:func:`_ridge_columns_ivf`)."""
    if weights.shape[0] > ann_above and keep > 0 and (~warm).any():
        return _ridge_columns_ivf(sp.csr_matrix(weights), features, warm, lam, keep)
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


def _ridge_columns_ivf(
    weights: sp.csr_matrix, features: np.ndarray, warm: np.ndarray, lam: float, keep: int
) -> tuple[sp.csc_matrix, float]:
    """:func:`ridge_cold_columns_sparse` on large catalogs. The map ``weights[:, warm] fw
    (fw'fw + lam I)^-1`` (the same as ``weights[:, warm] @ g.T``, ``g`` never formed) is built
    a block of rows at a time into float32; each cold column ``map @ f`` at its ``keep``
    entries of largest magnitude is found as the ``keep`` largest inner products of ``f`` and
    of ``-f`` with the map's rows in an IVF index; the standard deviation of the whole product
    comes from the two sides' Gram matrices (sum of squares ``<map'map, fc'fc>``)."""
    from avrec.models.hybrid.coldsearch import ivf_index, search

    warm_idx = np.flatnonzero(warm)
    fw = features[warm_idx].astype(np.float64)
    solve = np.linalg.inv(fw.T @ fw + lam * np.eye(fw.shape[1]))
    # the map's rows plus one column that brings each to the largest row's norm, all scaled
    # to unit norm: their inner products with [f, 0] rank as with f (over the largest norm),
    # and the IVF's lists of directions stay right for rows of unequal norms
    mapping = np.empty((weights.shape[0], fw.shape[1] + 1), np.float32)
    gram, total = np.zeros((fw.shape[1],) * 2), np.zeros(fw.shape[1])
    for rows in row_blocks(weights.shape[0], 65_536):
        part = (weights[rows][:, warm_idx] @ fw) @ solve
        gram += part.T @ part
        total += part.sum(axis=0)
        mapping[rows, :-1] = part
    del fw
    square = np.einsum("ij,ij->i", mapping[:, :-1], mapping[:, :-1], dtype=np.float64)
    norm = float(np.sqrt(max(square.max(initial=0.0), 1e-30)))
    mapping[:, -1] = np.sqrt(np.maximum(norm**2 - square, 0.0))
    mapping /= np.float32(norm)
    fc = features[~warm].astype(np.float64)
    cells = max(weights.shape[0] * len(fc), 1)
    mean = float(total @ fc.sum(axis=0)) / cells
    sd = float(np.sqrt(max(float(np.sum(gram * (fc.T @ fc))) / cells - mean**2, 0.0)))
    queries = np.hstack([fc, np.zeros((len(fc), 1))]).astype(np.float32)
    del fc
    index = ivf_index(mapping)
    del mapping
    k = min(keep, weights.shape[0])
    up, up_rows = search(index, queries, k)
    down, down_rows = search(index, -queries, k)
    vals = np.hstack([up, -down]) * np.float32(norm)
    rows_found = np.hstack([up_rows, down_rows])
    # a row found on the wrong side is the other side's (or too small to matter)
    ok = (rows_found >= 0) & np.hstack([up >= 0, down > 0])
    col = np.repeat(np.arange(len(queries)), 2 * k).reshape(rows_found.shape)
    out = sp.csc_matrix(
        (vals[ok], (rows_found[ok], col[ok])), shape=(weights.shape[0], len(queries))
    )
    out.eliminate_zeros()
    return top_k_per_column(out, keep), sd


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
