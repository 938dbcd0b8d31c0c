"""Array helpers of the recommender contract: recency ranks, row-wise top-k, one CSR row, the
in-place inverse of a symmetric positive definite matrix."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

# recency ranks are built with the training matrix (data layer); re-exported for model code
from avrec.data.matrix import recency_matrix as recency_matrix


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score matrix, best first; ``-inf`` entries sort last."""
    n, m = scores.shape
    k = min(k, m)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    part = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)


def csr_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Row ``n`` of ``m`` as a 1-row CSR matrix sharing its arrays (``m[n]`` without the
    indexing machinery: explanations take one row per request)."""
    a, b = m.indptr[n], m.indptr[n + 1]
    return sp.csr_matrix(
        (m.data[a:b], m.indices[a:b], np.array([0, b - a], m.indptr.dtype)), shape=(1, m.shape[1])
    )


def row_blocks(n: int, size: int = 1024) -> Iterator[slice]:
    """Consecutive slices of ``size`` rows covering ``range(n)``: for work on an n x n matrix
    done a block of rows at a time, so no second n x n temporary is ever whole."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def spd_inverse(a: np.ndarray) -> np.ndarray:
    """The inverse of the symmetric positive definite float64 matrix ``a``, computed in place
    (``a`` is overwritten and returned) by a Cholesky factorisation (LAPACK ``potrf`` and
    ``potri``): about a third of the time of ``np.linalg.inv`` and no second n x n array.
    Raises ``np.linalg.LinAlgError`` if ``a`` is not positive definite."""
    from scipy.linalg import lapack

    if a.dtype != np.float64 or a.ndim != 2 or a.shape[0] != a.shape[1] or not a.flags.c_contiguous:
        raise ValueError("spd_inverse needs a square, C-contiguous float64 array")
    # a's transpose is a Fortran-ordered view of the same (symmetric) matrix, so LAPACK works
    # on a's memory; its lower triangle is a's upper triangle
    factor, info = lapack.dpotrf(a.T, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (leading minor {info})")
    inverse, info = lapack.dpotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix is singular (diagonal element {info})")
    if not np.shares_memory(inverse, a):  # LAPACK's wrapper copied after all
        a[...] = inverse.T
    for rows in row_blocks(len(a)):  # mirror the upper triangle onto the lower
        diag = a[rows, rows]
        a[rows, rows] = np.triu(diag) + np.triu(diag, 1).T
        a[rows.stop :, rows] = a[rows, rows.stop :].T
    return a


def dense_product(a: sp.spmatrix | np.ndarray, b: sp.spmatrix | np.ndarray) -> np.ndarray:
    """``a @ b`` as a dense float32 array, whether ``b`` (item x item weights) is dense or a
    sparse matrix (the sparse backbone's)."""
    out = a @ b
    if sp.issparse(out):
        out = out.toarray()
    return np.asarray(out, dtype=np.float32)


def weights_block(w: sp.spmatrix | np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``w[rows][:, cols]`` as a dense array, for dense or sparse (CSR) item x item weights."""
    if sp.issparse(w):
        return sp.csr_matrix(w)[rows][:, cols].toarray()
    return np.asarray(w)[np.ix_(rows, cols)]


def top_k_per_column(m: sp.spmatrix, k: int) -> sp.csc_matrix:
    """``m`` with only the ``k`` entries of largest magnitude kept in each column."""
    m = sp.csc_matrix(m)
    m.sum_duplicates()
    counts = np.diff(m.indptr)
    if k <= 0 or counts.max(initial=0) <= k:
        return m
    col = np.repeat(np.arange(m.shape[1]), counts)
    # within each column, entries by decreasing magnitude; keep the first k
    order = np.lexsort((-np.abs(m.data), col))
    rank = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    keep = order[rank < k]
    return sp.csc_matrix((m.data[keep], (m.indices[keep], col[keep])), shape=m.shape)


def top_k_per_row(m: sp.spmatrix, k: int) -> sp.csr_matrix:
    """``m`` with only the ``k`` entries of largest magnitude kept in each row: the rows padded
    to one dense block and partitioned (linear in the entries, no sort), or by
    :func:`top_k_per_column` of the transpose where padding would be much larger than ``m``.
    Which of equal-magnitude entries at the cut is kept may differ between the two."""
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    counts = np.diff(m.indptr)
    width = int(counts.max(initial=0))
    if k <= 0 or width <= k:
        return m
    if m.shape[0] * width > 4 * m.nnz + 4096:
        return top_k_per_column(m.T, k).T.tocsr()
    row = np.repeat(np.arange(m.shape[0]), counts)
    slot = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    size = np.full((m.shape[0], width), -1.0)
    size[row, slot] = np.abs(m.data)
    best = np.argpartition(-size, k - 1, axis=1)[:, :k]
    best = best[best < counts[:, None]] + np.repeat(m.indptr[:-1], np.minimum(counts, k))
    # argpartition's picks: per row, the first min(count, k) slots are those with a real entry
    keep = np.sort(best)
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)
