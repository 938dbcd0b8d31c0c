"""Low-rank updates of EASE's solution: forgetting users and adding events without a re-solve.

EASE's weights are ``B = I - P diag(1 / d)`` with ``P = (G + diag(penalty))^-1`` and
``d = diag(P)`` (models.baselines.ease). Replacing some users' rows of the input ``X`` (removing a
user: their rows become empty; new events: their rows grow) changes the regularised Gram matrix
``A = G + diag(penalty)`` only in the rows and columns of the items ``S`` those rows touch: by
``dG = X_new^T X_new - X_old^T X_old`` there, plus, with EASE's denoising (``dropout``), the change
of the penalty ``dropout / (1 - dropout) * diag(dG)``. Written ``dA[S, S] = F C F^T``, Woodbury's
identity

    P' = P - P[:, S] F (I + C F^T P[S, S] F)^-1 C F^T P[S, :]

costs ``O(n^2 r)`` instead of the ``O(n^3)`` of a fit: ``r`` is the number of changed rows
(``F``: the rows, ``C = diag(-1 old, +1 new)``; rank one to forget a user) without denoising;
with it, the smaller of the rows plus one unit column per item whose count changed (the
penalty's change, diagonal: new events add the items they name) and ``|S|`` (``F = I``,
``C = dA[S, S]``; a forgotten user's rows change the counts of all their items).

``P`` is not kept: its columns ``S`` are recovered from the weights and ``d``
(``P = (I - B) diag(d)``: ``B[i, j] = -P[i, j] / d[j]``), and the weights are rewritten in one
pass, a block of rows at a time, so no float64 items x items array is ever whole. From float32
weights the result agrees with a fit to float32's rounding (docs/benchmarks.md, "Unlearning
and warm start").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import get_blas_funcs

from avrec.models.arrays import row_blocks


def penalty_scale(dropout: float) -> float:
    """The factor of an item's count (``diag(G)``) in EASE's penalty (denoising EASE)."""
    return dropout / (1.0 - dropout)


def gram_change(
    old: sp.csr_matrix, new: sp.csr_matrix, dropout: float = 0.0, penalty: bool = True
) -> tuple[np.ndarray, np.ndarray | sp.csr_matrix, np.ndarray]:
    """The change of the regularised Gram matrix when rows ``old`` become ``new`` (both users x
    items, the same users' rows before and after, float64 inputs of EASE), as
    ``dA[S, S] = F C F^T``: the items ``S`` the rows touch, ``F`` ``[|S|, r]`` and ``C``
    ``[r, r]``, of the smaller rank of two forms. The rows: ``F`` holds the rows themselves and
    ``C = diag(-1 old, +1 new)``, plus, with denoising, a unit column per item ``D`` whose
    count changed, with the penalty's change on ``C``'s diagonal (rank: the non-empty rows plus
    ``|D|``; ``F`` sparse). Or ``F = I`` and ``C = dG`` plus the penalty's change on its
    diagonal (rank ``|S|``): narrower where the changed rows hold most of their items'
    counts, such as users forgotten. ``penalty`` False: the penalty's change is left out (no
    unit columns, or ``dG`` alone; rank: the rows, at most ``|S|``), so the items ``D`` keep
    their previous penalty: far cheaper where ``D`` is large, not exact."""
    old, new = sp.csr_matrix(old, dtype=np.float64), sp.csr_matrix(new, dtype=np.float64)
    items = np.union1d(old.indices, new.indices).astype(np.int64)
    xo, xn = old[:, items], new[:, items]
    xo, xn = xo[np.diff(xo.indptr) > 0], xn[np.diff(xn.indptr) > 0]
    rows = xo.shape[0] + xn.shape[0]
    scale = penalty_scale(dropout)
    counts = np.asarray(xn.multiply(xn).sum(axis=0) - xo.multiply(xo).sum(axis=0)).ravel()
    changed = np.flatnonzero(counts) if dropout > 0 and penalty else np.zeros(0, dtype=np.int64)
    if rows + len(changed) < len(items):
        unit = sp.csr_matrix(
            (np.ones(len(changed)), (changed, np.arange(len(changed)))),
            shape=(len(items), len(changed)),
        )
        factor = sp.hstack([xo.T, xn.T, unit]).tocsr()
        core = np.diag(np.r_[-np.ones(xo.shape[0]), np.ones(xn.shape[0]), scale * counts[changed]])
        return items, factor, core
    delta = np.asarray((xn.T @ xn - xo.T @ xo).todense(), dtype=np.float64)
    if penalty:
        delta[np.diag_indices_from(delta)] *= 1.0 + scale
    return items, np.eye(len(items)), delta


def inverse_columns(weights: np.ndarray, diag: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``P[:, items]`` (float64) recovered from the weights (zero diagonal) and ``d``."""
    u = -np.asarray(weights[:, items], dtype=np.float64)
    u[items, np.arange(len(items))] = 1.0
    u *= diag[items]
    return u


#: rows of the weights updated at a time: a block and its update stay in the processor's cache
BLOCK_ROWS = 64


@dataclass(frozen=True)
class WeightsUpdate:
    """EASE's weights after a low-rank change of ``A``: off the diagonal
    ``B' = B diag(ratio) + um v^T`` (``ratio``, ``um``, ``v`` in the weights' dtype), and the
    new ``d`` (float64). Applied a block of rows at a time, so no float64 items x items array
    is ever whole, nor a second copy of the weights where they are updated in place or
    streamed to a file (:meth:`blocks`)."""

    ratio: np.ndarray
    um: np.ndarray
    v: np.ndarray
    diag: np.ndarray

    def apply(self, weights: np.ndarray, rows: slice, out: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of the updated weights into ``out`` (may be ``weights[rows]``)."""
        np.multiply(weights[rows], self.ratio, out=out)
        if not self.um.shape[1]:
            pass
        elif out.flags.c_contiguous:  # out^T += v um[rows]^T by BLAS, in place (one pass)
            gemm = get_blas_funcs("gemm", (out,))
            done = gemm(1.0, self.v, self.um[rows], beta=1.0, c=out.T, trans_b=True,
                        overwrite_c=True)  # fmt: skip
            if not np.shares_memory(done, out):
                out[...] = done.T
        else:
            out += self.um[rows] @ self.v.T
        diagonal = np.arange(rows.start, rows.stop)
        out[diagonal - rows.start, diagonal] = 0.0
        return out

    def blocks(self, weights: np.ndarray) -> Iterator[np.ndarray]:
        """The updated weights, :data:`BLOCK_ROWS` rows at a time, in one reused buffer."""
        n = weights.shape[0]
        buf = np.empty((min(BLOCK_ROWS, n), weights.shape[1]), dtype=weights.dtype)
        for rows in row_blocks(n, BLOCK_ROWS):
            yield self.apply(weights, rows, buf[: rows.stop - rows.start])


def weights_update(
    weights: np.ndarray,
    diag: np.ndarray,
    items: np.ndarray,
    factor: np.ndarray | sp.csr_matrix,
    core: np.ndarray,
) -> WeightsUpdate:
    """The update of EASE's weights and ``d`` for ``A -> A + E``, ``E`` zero outside
    ``items`` x ``items`` and ``factor @ core @ factor.T`` there (:func:`gram_change`).
    Woodbury: with ``U = P[:, S] F``, ``P' = P - U (I + C F^T P[S, S] F)^-1 C U^T``, so
    ``d' = d - diag(um U^T)`` with ``um = U (I + C F^T P[S, S] F)^-1 C`` and off the diagonal
    ``B' = -P' / d' = B d / d' + um (U / d')^T``. Reads only the columns ``items`` of the
    weights."""
    n, r = len(diag), core.shape[0]
    dtype = weights.dtype
    if r == 0:
        ones = np.ones(n, dtype=dtype)
        return WeightsUpdate(ones, np.zeros((n, 0), dtype), np.zeros((n, 0), dtype), diag.copy())
    cols = inverse_columns(weights, diag, items)  # P[:, S]
    if sp.issparse(factor):  # the rows' form: a product over its few entries
        f = sp.csr_matrix(factor)
        u = np.asarray((f.T @ cols.T).T)
        small = np.asarray(f.T @ u[items])  # F^T P[S, S] F
    else:
        dense = np.asarray(factor)
        u = cols if _identity(dense) else cols @ dense
        small = dense.T @ u[items]
    um = u @ np.linalg.solve(np.eye(r) + core @ small, core)
    new_diag = diag - np.einsum("ij,ij->i", um, u)
    if np.any(new_diag <= 0):
        raise ValueError("EASE update: the updated Gram matrix is not positive definite")
    # in the weights' dtype (float32 rounds the update to float32's 6e-8, as a fit's weights)
    return WeightsUpdate(
        (diag / new_diag).astype(dtype),
        np.ascontiguousarray(um, dtype=dtype),
        np.ascontiguousarray(u / new_diag[:, None], dtype=dtype),
        new_diag,
    )


def update_weights(
    weights: np.ndarray,
    diag: np.ndarray,
    items: np.ndarray,
    factor: np.ndarray | sp.csr_matrix,
    core: np.ndarray,
    in_place: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """EASE's weights and ``d`` after ``A -> A + E`` (:func:`weights_update`): a new weights
    array of ``weights``' dtype (``in_place``: ``weights`` itself, overwritten, which spares
    writing a fresh items x items array) and a new float64 ``d``."""
    change = weights_update(weights, diag, items, factor, core)
    out = weights if in_place else np.empty_like(weights)
    for rows in row_blocks(len(diag), BLOCK_ROWS):
        change.apply(weights, rows, out[rows])
    return out, change.diag


def _identity(m: np.ndarray) -> bool:
    return m.shape[0] == m.shape[1] and bool(np.array_equal(m, np.eye(m.shape[0])))


def update_rows(
    weights: np.ndarray,
    diag: np.ndarray,
    old: sp.csr_matrix,
    new: sp.csr_matrix,
    dropout: float = 0.0,
    in_place: bool = False,
    penalty: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """EASE's weights and ``d`` after some users' input rows ``old`` became ``new``
    (``penalty``: as :func:`gram_change`'s)."""
    change = gram_change(old, new, dropout, penalty)
    return update_weights(weights, diag, *change, in_place=in_place)


def rows_update(
    weights: np.ndarray,
    diag: np.ndarray,
    old: sp.csr_matrix,
    new: sp.csr_matrix,
    dropout: float = 0.0,
) -> WeightsUpdate:
    """:func:`update_rows` not yet applied (the weights are only read: they may be mapped
    read-only from a saved model)."""
    return weights_update(weights, diag, *gram_change(old, new, dropout))
