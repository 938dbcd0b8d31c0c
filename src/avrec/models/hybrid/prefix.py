"""What a user's first few choices say about the rest: a ridge map fitted on the training
users' own beginnings, for users who arrive with only a handful of items.

Each training user's ``prefix`` earliest interactions form an input row and all of their
interactions the target row; ``W = (P^T P + l2 I)^-1 P^T X``. A new user with a short history
is scored ``h @ W``. Unlike item-item models fitted on whole histories, this learns from the
same situation it serves (a sign-up's first picks, which lean on what is popular and recent),
so popularity is part of the prediction rather than a separate prior.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve


def first_items(recency: sp.csr_matrix, prefix: int) -> sp.csr_matrix:
    """Binary users x items matrix of each user's ``prefix`` earliest items (recency rank 1 is
    the most recent, so the earliest have the largest ranks)."""
    r = recency.tocsr()
    counts = np.diff(r.indptr)
    row_of = np.repeat(np.arange(r.shape[0]), counts)
    keep = r.data > (counts[row_of] - prefix)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float64), (row_of[keep], r.indices[keep])), shape=r.shape
    )


def prefix_weights(
    matrix: sp.csr_matrix, recency: sp.csr_matrix, prefix: int, l2: float
) -> np.ndarray:
    """``[n_items, n_items]`` float32 map from a short history to scores over the catalog."""
    if prefix < 1 or l2 <= 0:
        raise ValueError(f"prefix must be >= 1 and l2 > 0, got {prefix} and {l2}")
    p = first_items(recency, prefix)
    x = (matrix > 0).astype(np.float64)
    # an item that starts no history has an all-zero column in P: its row of the Gram matrix
    # is l2 on the diagonal alone and its row of P^T X is zero, so its row of W is zero; the
    # system is solved over the items that start histories only
    active = np.flatnonzero(p.getnnz(axis=0))
    pa = p[:, active]
    gram = (pa.T @ pa).toarray(order="F")
    gram[np.diag_indices_from(gram)] += l2
    out = np.zeros((p.shape[1], x.shape[1]), np.float32)
    # Cholesky solve in place (gram is positive definite: l2 > 0)
    out[active] = solve(
        gram,
        (pa.T @ x).toarray(order="F"),
        assume_a="pos",
        overwrite_a=True,
        overwrite_b=True,
        check_finite=False,
    )
    return out
