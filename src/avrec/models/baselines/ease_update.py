"""Low-rank updates of EASE's solution: forgetting users and adding events without a re-solve.

EASE's weights are ``B = I - P diag(1 / d)`` with ``P = (G + diag(penalty))^-1`` and
``d = diag(P)`` (models.baselines.ease). Replacing some users' rows of the input ``X`` (removing a
user: their rows become empty; new events: their rows grow) changes the regularised Gram matrix
``A = G + diag(penalty)`` only in the rows and columns of the items ``S`` those rows touch: by
``dG = X_new^T X_new - X_old^T X_old`` there, plus, with EASE's denoising (``dropout``), the change
of the penalty ``dropout / (1 - dropout) * diag(dG)``. Woodbury's identity restricted to ``S``

    P' = P - P[:, S] (I + E P[S, S])^-1 E P[S, :],    E = dA[S, S],

costs ``O(n^2 |S|)`` instead of the ``O(n^3)`` of a fit. ``P`` is not kept: it is recovered from
the weights and ``d`` (``P = (I - B) diag(d)``: ``B[i, j] = -P[i, j] / d[j]``), a block of rows at a
time, so no float64 items x items array is ever whole. Float32 weights give ``P`` to about 1e-7
relative; the updated weights agree with a refit to about 1e-7 (docs/benchmarks.md, "unlearning").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from avrec.models.arrays import row_blocks


def penalty_scale(dropout: float) -> float:
    """The factor of an item's count (``diag(G)``) in EASE's penalty (denoising EASE)."""
    return dropout / (1.0 - dropout)


def gram_change(
    old: sp.csr_matrix, new: sp.csr_matrix, dropout: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The items ``S`` that rows ``old`` -> ``new`` touch (both users x items, the same users'
    rows before and after, float64 inputs of EASE) and ``E = dA[S, S]``, the change of the
    regularised Gram matrix there (``dG`` plus the denoising penalty's change)."""
    old, new = sp.csr_matrix(old, dtype=np.float64), sp.csr_matrix(new, dtype=np.float64)
    items = np.union1d(old.indices, new.indices).astype(np.int64)
    xo, xn = old[:, items], new[:, items]
    delta = np.asarray((xn.T @ xn - xo.T @ xo).todense(), dtype=np.float64)
    delta[np.diag_indices_from(delta)] *= 1.0 + penalty_scale(dropout)
    return items, delta


def inverse_columns(weights: np.ndarray, diag: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``P[:, items]`` (float64) recovered from the weights (zero diagonal) and ``d``."""
    u = -np.asarray(weights[:, items], dtype=np.float64)
    u[items, np.arange(len(items))] = 1.0
    u *= diag[items]
    return u


def update_weights(
    weights: np.ndarray, diag: np.ndarray, items: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """EASE's weights and ``d`` after ``A -> A + E`` (``E`` zero outside ``items`` x ``items``,
    ``delta`` there): a new weights array of ``weights``' dtype and a new float64 ``d``."""
    n, s = len(diag), len(items)
    if s == 0:
        return weights.copy(), diag.copy()
    u = inverse_columns(weights, diag, items)  # P[:, S]
    core = np.linalg.solve(np.eye(s) + delta @ u[items], delta)  # (I + E P_SS)^-1 E
    um = u @ core
    new_diag = diag - np.einsum("ij,ij->i", um, u)
    if np.any(new_diag <= 0):
        raise ValueError("EASE update: the updated Gram matrix is not positive definite")
    scale = -1.0 / new_diag
    out = np.empty_like(weights)
    for rows in row_blocks(n):
        p = np.asarray(weights[rows], dtype=np.float64) * -diag  # P[rows] off the diagonal
        idx = np.arange(rows.start, rows.stop)
        p[idx - rows.start, idx] = diag[idx]
        p -= um[rows] @ u.T
        out[rows] = p * scale
    out[np.diag_indices_from(out)] = 0.0
    return out, new_diag


def update_rows(
    weights: np.ndarray,
    diag: np.ndarray,
    old: sp.csr_matrix,
    new: sp.csr_matrix,
    dropout: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """EASE's weights and ``d`` after some users' input rows ``old`` became ``new``."""
    items, delta = gram_change(old, new, dropout)
    return update_weights(weights, diag, items, delta)
