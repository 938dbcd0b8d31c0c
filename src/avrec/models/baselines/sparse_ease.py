"""Sparse EASE: EASE's item-item regression restricted to each item's nearest neighbours, so
that memory grows with the interactions and the neighbour count, not with the square of the
catalog.

EASE's column ``j`` is the ridge regression of item ``j``'s interactions on every other item's
(``b_j = argmin ||X_j - X b||² + b^T Λ b`` with ``b_j = 0``, ``Λ`` EASE's diagonal penalty).
Here the regressors are only ``N(j)``, the ``k`` items with the largest cosines of the
co-occurrence matrix with ``j`` (items that never co-occur with it are not candidates), so
each column is one ``k x k`` solve, with content side information (as in ``ease``) in it

    (G_NN + Λ_NN) b = G_Nj,    G = XᵀX (+ side_weight · F Fᵀ)

and ``B`` is an items x items CSR matrix with at most ``k`` entries per column. With
``k >= n_items - 1`` it is EASE exactly. The Gram matrix is never whole: neighbours come from
blocks of its rows, and each ``G_NN`` from the neighbours' columns of ``X``.

Both phases (neighbours by blocks of rows, solves by batches of columns) work on independent
chunks; inside an :func:`avrec.cluster.dask_client` block (``avrec train --workers N`` or
``--cluster``) the chunks run as Dask tasks, with the same result bytes as in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp

from avrec.cluster import map_chunks
from avrec.models.arrays import row_blocks
from avrec.models.base import ModelConfig, Recommender, TrainData

#: cells of one dense block of Gram rows while choosing neighbours (float64: 32 MiB)
BLOCK_CELLS = 1 << 22
#: items whose k x k systems are solved in one batched call
SOLVE_BATCH = 256
#: side-information columns nonzero on fewer than this share of items are handled as sparse
SPARSE_SIDE = 0.05
#: interactions gathered for one batch's local Gram matrices (local_grams)
LOCAL_NNZ = 1 << 20
#: Dask tasks per phase (neighbours, solves) inside an avrec.cluster.dask_client block
TASKS = 32


class SparseEASEConfig(ModelConfig):
    l2: float = 500.0
    #: neighbours ``k`` per item (the nonzeros of each column of ``B``)
    neighbors: int = 128
    #: treat every interaction as 1 (True) or use the interaction weights
    binary: bool = True
    #: denoising emphasis p in [0, 1): penalty l2 + p / (1 - p) * count on each item (as ease)
    dropout: float = 0.0
    #: weight of item side information F F^T added to the Gram matrix (0: interactions only)
    side_weight: float = 0.0
    #: how neighbours are chosen: largest cosines of the Gram matrix (``G_ij / sqrt(G_ii G_jj)``,
    #: measured better than raw co-occurrence, which favours popular items) or Gram entries
    neighbours_by: Literal["gram", "cosine"] = "cosine"
    #: whether the side information counts in choosing neighbours (else only in the solve;
    #: measured better: with it, a rare item's neighbours are its content look-alikes)
    side_in_neighbours: bool = False


def gram_neighbours(
    x: sp.csr_matrix,
    k: int,
    side: np.ndarray | None = None,
    side_weight: float = 0.0,
    by: str = "gram",
) -> np.ndarray:
    """``int64 [n_items, k]``: for each item, the ``k`` other items with the largest entries
    of its Gram row (``G = XᵀX + side_weight · F Fᵀ``; ``by="cosine"``: of ``G_ij /
    sqrt(G_ii G_jj)``), in ascending index order. Without side information only items that
    co-occur with it are candidates, and a row with fewer than ``k`` ends in ``-1``s; with it,
    rows of the Gram matrix are made dense a block at a time (:data:`BLOCK_CELLS`)."""
    n = x.shape[1]
    xt = x.T.tocsr()
    f = None if side is None or side_weight <= 0 else np.asarray(side, np.float64)
    diag = np.asarray(x.multiply(x).sum(axis=0)).ravel()
    if f is not None:
        diag = diag + side_weight * np.einsum("id,id->i", f, f)
    norm = 1.0 / np.sqrt(np.maximum(diag, 1e-12))
    if f is None:
        return _cooccurring_neighbours(xt, x, k, norm if by == "cosine" else None)
    blocks = list(row_blocks(n, max(1, min(1024, BLOCK_CELLS // max(n, 1)))))
    parts = map_chunks(_dense_neighbour_rows, _grouped(blocks), xt, x, k, f, side_weight, by, norm)
    return np.concatenate(parts) if parts else np.empty((0, k), np.int64)


def _dense_neighbour_rows(
    blocks: list[slice],
    xt: sp.csr_matrix,
    x: sp.csr_matrix,
    k: int,
    f: np.ndarray,
    side_weight: float,
    by: str,
    norm: np.ndarray,
) -> np.ndarray:
    """:func:`gram_neighbours`' rows ``blocks`` (consecutive ranges), with side information."""
    n = x.shape[1]
    out = np.empty((sum(r.stop - r.start for r in blocks), k), np.int64)
    at = 0
    for rows in blocks:
        g = (xt[rows] @ x).toarray()
        g += side_weight * (f[rows] @ f.T)
        if by == "cosine":
            g *= norm[rows, None] * norm[None, :]
        local = np.arange(rows.stop - rows.start)
        g[local, local + rows.start] = -np.inf  # never its own neighbour
        if k < n - 1:
            part = np.argpartition(-g, k - 1, axis=1)[:, :k]
        else:  # every other item
            part = np.argsort(-g, axis=1, kind="stable")[:, :k]
        out[at : at + rows.stop - rows.start] = np.sort(part, axis=1)
        at += rows.stop - rows.start
    return out


def _grouped(chunks: list, groups: int = TASKS) -> list[list]:
    """``chunks`` in at most ``groups`` runs of consecutive chunks (the tasks of
    :func:`avrec.cluster.map_chunks`; how they are grouped does not change any result)."""
    size = max(1, -(-len(chunks) // groups))
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


def _cooccurring_neighbours(
    xt: sp.csr_matrix, x: sp.csr_matrix, k: int, norm: np.ndarray | None
) -> np.ndarray:
    """:func:`gram_neighbours` over the nonzero Gram entries only (a sparse block of rows at
    a time): the work grows with the co-occurrences, not with the catalog's square."""
    n = x.shape[1]
    parts = map_chunks(_sparse_neighbour_rows, _grouped(list(row_blocks(n, 1024))), xt, x, k, norm)
    return np.concatenate(parts) if parts else np.empty((0, k), np.int64)


def _sparse_neighbour_rows(
    blocks: list[slice], xt: sp.csr_matrix, x: sp.csr_matrix, k: int, norm: np.ndarray | None
) -> np.ndarray:
    """:func:`_cooccurring_neighbours`' rows ``blocks`` (consecutive ranges)."""
    out = np.full((sum(r.stop - r.start for r in blocks), k), -1, np.int64)
    at = 0
    for rows in blocks:
        g = (xt[rows] @ x).tocsr()
        for r, j in enumerate(range(rows.start, rows.stop)):
            idx = g.indices[g.indptr[r] : g.indptr[r + 1]]
            val = g.data[g.indptr[r] : g.indptr[r + 1]]
            other = idx != j
            idx, val = idx[other], val[other]
            if norm is not None:
                val = val * norm[idx]  # the row's own norm does not change its order
            if len(idx) > k:
                idx = idx[np.argpartition(-val, k - 1)[:k]]
            out[at + r, : len(idx)] = np.sort(idx)
        at += rows.stop - rows.start
    return out


def sparse_ease_weights(
    x: sp.csr_matrix,
    l2: float,
    neighbors: int,
    dropout: float = 0.0,
    side: np.ndarray | None = None,
    side_weight: float = 0.0,
    by: str = "cosine",
    side_in_neighbours: bool = False,
) -> sp.csr_matrix:
    """The items x items float32 CSR weights ``B`` (no diagonal, at most ``neighbors``
    entries per column) from a users x items matrix; see the module docstring."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if l2 <= 0:
        raise ValueError(f"sparse-ease needs l2 > 0 (got {l2})")
    if neighbors < 1:
        raise ValueError(f"sparse-ease needs neighbors >= 1 (got {neighbors})")
    x = sp.csr_matrix(x, dtype=np.float64)
    n = x.shape[1]
    k = min(neighbors, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    counts = np.asarray(x.multiply(x).sum(axis=0)).ravel()
    penalty = l2 + dropout / (1.0 - dropout) * counts
    f = None if side is None or side_weight <= 0 else np.asarray(side, np.float64)
    nbrs = (
        gram_neighbours(x, k, f, side_weight, by)
        if side_in_neighbours
        else gram_neighbours(x, k, None, 0.0, by)
    )
    # sparse side columns (people named on a few items) join X as extra rows, so the local
    # Gram products carry them cheaply; the dense ones (text vectors) are multiplied by BLAS
    fd = f
    if f is not None:
        thin = (f != 0).mean(axis=0) < SPARSE_SIDE
        if thin.any():
            extra = sp.csr_matrix(np.sqrt(side_weight) * f[:, thin].T)
            x = sp.vstack([x, extra], format="csr")
            fd = f[:, ~thin] if (~thin).any() else None
    xc = x.tocsc()
    d = 0 if fd is None else fd.shape[1]
    # the batch's [batch, k, max(k, d)] arrays stay within BLOCK_CELLS
    batch = max(1, min(SOLVE_BATCH, BLOCK_CELLS // (k * max(k, d))))
    cols = np.concatenate([nbrs, np.arange(n)[:, None]], axis=1)  # item j last: [n, k + 1]
    col_nnz = np.diff(xc.indptr)
    load = np.where(cols >= 0, col_nnz[np.maximum(cols, 0)], 0).sum(axis=1)
    batches = _batches(load, batch, LOCAL_NNZ)
    solved = map_chunks(_solve_columns, _grouped(batches), xc, cols, penalty, fd, side_weight)
    values = np.concatenate(solved) if solved else np.empty((0, k), np.float64)
    valid = nbrs >= 0
    cols = np.repeat(np.arange(n), valid.sum(axis=1))
    b = sp.csr_matrix(
        (values[valid].astype(np.float32), (nbrs[valid], cols)), shape=(n, n), dtype=np.float32
    )
    b.eliminate_zeros()
    return b


def _solve_columns(
    batches: list[np.ndarray],
    xc: sp.csc_matrix,
    cols: np.ndarray,
    penalty: np.ndarray,
    fd: np.ndarray | None,
    side_weight: float,
) -> np.ndarray:
    """``float64 [items, k]``: the weights of the columns in ``batches`` (consecutive runs of
    items), one batched ``k x k`` solve per batch (see the module docstring)."""
    k = cols.shape[1] - 1
    eye = np.arange(k)
    out = []
    for items in batches:
        nb = cols[items, :k]
        valid = nb >= 0  # a missing neighbour (-1): an identity row, so its weight is 0
        g = local_grams(xc, cols[items])
        a = g[:, :k, :k]
        a[:, eye, eye] += np.where(valid, penalty[np.maximum(nb, 0)], 1.0)
        rhs = g[:, :k, k]
        if fd is not None:
            fn = fd[nb] * valid[..., None]  # [batch, k, d]
            a += side_weight * (fn @ fn.transpose(0, 2, 1))  # batched BLAS products
            rhs += side_weight * (fn @ fd[items][:, :, None])[..., 0]
        out.append(np.linalg.solve(a, rhs[..., None])[..., 0])
    return np.concatenate(out)


def _batches(load: np.ndarray, most: int, cap: int) -> list[np.ndarray]:
    """Consecutive runs of at most ``most`` items whose ``load`` sums to at most ``cap``
    (at least one item each)."""
    out, start, total = [], 0, 0
    for j, w in enumerate(load.tolist()):
        if j > start and (j - start >= most or total + w > cap):
            out.append(np.arange(start, j))
            start, total = j, 0
        total += w
    if start < len(load):
        out.append(np.arange(start, len(load)))
    return out


def local_grams(xc: sp.csc_matrix, cols: np.ndarray) -> np.ndarray:
    """``float64 [b, w, w]``: for each row of ``cols`` (``[b, w]`` column indices of ``xc``,
    ``-1`` for none), the Gram matrix ``X_cᵀ X_c`` of those columns (zero for ``-1``). One
    sparse product for the whole batch: each row's columns get their own copy of the users
    (a block-diagonal matrix), so only the wanted blocks are ever computed."""
    b, w = cols.shape
    flat = cols.ravel()
    pos = np.flatnonzero(flat >= 0)
    starts = xc.indptr[flat[pos]]
    lens = xc.indptr[flat[pos] + 1] - starts
    # the entries of every picked column, column after column
    idx = np.repeat(starts - np.cumsum(np.concatenate([[0], lens[:-1]])), lens) + np.arange(
        int(lens.sum())
    )
    zcol = np.repeat(pos, lens)
    keys = (zcol // w) * xc.shape[0] + xc.indices[idx]  # (batch row, user)
    uniq, zrow = np.unique(keys, return_inverse=True)
    z = sp.csc_matrix((xc.data[idx], (zrow, zcol)), shape=(len(uniq), b * w))
    g = (z.T @ z).tocoo()
    out = np.zeros((b, w, w), np.float64)
    out[g.row // w, g.row % w, g.col % w] = g.data
    return out


def csr_at(m: sp.csr_matrix, cols: np.ndarray) -> np.ndarray:
    """``float32 [n_rows, c]``: row ``r``'s entries of ``m`` at columns ``cols[r]`` (``-1``
    and absent entries: 0), by one binary search over the (row, column) keys of the
    nonzeros instead of scipy's element-wise indexing."""
    m = sp.csr_matrix(m)
    m.sum_duplicates()  # also sorts each row's indices: the keys below are ascending
    n_cols = m.shape[1]
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_cols
    keys += m.indices
    want = np.arange(cols.shape[0], dtype=np.int64)[:, None] * n_cols + np.maximum(cols, 0)
    at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    found = (cols >= 0) & (len(keys) > 0)
    if len(keys):
        found &= keys[at] == want
    return np.where(found, m.data[at] if len(keys) else 0.0, 0.0).astype(np.float32)


def rows_product(h: sp.csr_matrix, w: sp.csr_matrix) -> sp.csr_matrix:
    """``h @ w`` as a float32 CSR (sorted columns, no stored zeros) for a few rows ``h``,
    reading only the rows of ``w`` that ``h`` names: scipy's product allocates and clears work
    arrays as long as a row of ``w`` on every call, milliseconds per request at a million
    items. Each entry is summed in float32 in scipy's order (``h``'s entries as stored, then
    the row of ``w`` as stored), and exact zeros are dropped as scipy drops them, so the values
    are scipy's."""
    if not sp.isspmatrix_csr(h) or h.dtype != np.float32:
        h = sp.csr_matrix(h, dtype=np.float32)
    n_rows, n_cols = h.shape[0], w.shape[1]
    if h.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {h.shape} and {w.shape} do not match")
    starts = w.indptr[h.indices].astype(np.int64)
    lens = w.indptr[h.indices + 1].astype(np.int64) - starts
    before = np.cumsum(lens) - lens  # where each named row's entries start in the gathered arrays
    pos = np.repeat(starts - before, lens) + np.arange(int(lens.sum()), dtype=np.int64)
    vals = np.repeat(h.data, lens) * np.asarray(w.data[pos], np.float32)
    rows = np.repeat(np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(h.indptr)), lens)
    keys, inv = np.unique(rows * n_cols + w.indices[pos], return_inverse=True)
    sums = np.zeros(len(keys), np.float32)
    np.add.at(sums, inv, vals)  # in order, in float32: scipy's sums
    keep = sums != 0
    keys, sums = keys[keep], sums[keep]
    indptr = np.searchsorted(keys // max(n_cols, 1), np.arange(n_rows + 1))
    return sp.csr_matrix(
        (sums, (keys % max(n_cols, 1)).astype(w.indices.dtype), indptr), shape=(n_rows, n_cols)
    )


def binary_rows(h: sp.csr_matrix, n_cols: int | None = None) -> sp.csr_matrix:
    """``(h > 0).astype(np.float32)`` (entries in the same order) built at once, without
    scipy's comparison machinery; ``n_cols``: the result's width (default ``h``'s)."""
    if not sp.isspmatrix_csr(h):
        h = sp.csr_matrix(h)
    keep = h.data > 0
    counts = np.concatenate([[0], np.cumsum(keep)])
    return sp.csr_matrix(
        (np.ones(int(counts[-1]), np.float32), h.indices[keep], counts[h.indptr]),
        shape=(h.shape[0], h.shape[1] if n_cols is None else n_cols),
    )


def sparse_bytes(m: sp.spmatrix) -> int:
    """Bytes held by a CSR/CSC matrix's arrays."""
    m = sp.csr_matrix(m)
    return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)


class SparseEASE(Recommender):
    name = "sparse-ease"
    Config = SparseEASEConfig
    config: SparseEASEConfig
    scores_subsets = True

    def _fit(self, data: TrainData) -> None:
        from avrec.models.baselines.ease import ease_inputs

        x, side = ease_inputs(data, self.config.binary, self.config.side_weight)
        self.weights = sparse_ease_weights(
            x,
            self.config.l2,
            self.config.neighbors,
            self.config.dropout,
            side,
            self.config.side_weight,
            self.config.neighbours_by,
            self.config.side_in_neighbours,
        )

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        h = histories if not self.config.binary else (histories > 0).astype(np.float32)
        return np.asarray((sp.csr_matrix(h, dtype=np.float32) @ self.weights).toarray())

    def score_items(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        items: np.ndarray,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """:meth:`score`'s entries for ``items`` only: the sparse product ``h @ B`` (its
        nonzeros are the history's neighbours) read at the wanted places, never made dense."""
        h = histories if not self.config.binary else binary_rows(histories)
        prod = rows_product(h, self.weights)
        return csr_at(prod, np.asarray(items, dtype=np.int64))

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        """``weights[history item, item]`` read at the wanted places (a column selection
        of the weights would cost the whole catalog's width)."""
        rows = self.weights[history.indices]
        items = np.asarray(items, dtype=np.int64)
        return csr_at(rows, np.broadcast_to(items, (rows.shape[0], len(items)))).T

    def state_arrays(self) -> dict[str, np.ndarray]:
        w = self.weights
        return {
            "data": w.data,
            "indices": w.indices,
            "indptr": w.indptr,
            "shape": np.array(w.shape, np.int64),
        }

    def load_state_arrays(self, state, path) -> None:
        self.weights = sp.csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=tuple(state["shape"])
        )
