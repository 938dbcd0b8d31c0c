"""What the private models share: the budget settings, bounding each user's contribution, the
exact sensitivities that bounding gives, the Gaussian noise, and the record of a release.

Bounding one user's contribution (:func:`bound_contributions`) keeps at most
``max_items_per_user`` of each user's items, chosen by a keyed hash of (seed, user ID, item ID):
a user's choice depends on nothing but that user's own items, so adding or removing one user
changes no other user's rows (a sequential random stream would shift every later user's
choice). Each kept row is then weighted by :func:`row_weights`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from avrec.models.arrays import row_blocks
from avrec.models.base import ModelConfig, TrainData
from avrec.models.private.accountant import (
    check_budget,
    default_delta,
    gaussian_epsilon,
    gaussian_noise_multiplier,
)

Weighting = Literal["unit", "binary"]


class PrivateConfig(ModelConfig):
    """The privacy settings of a model trained with user-level differential privacy."""

    #: the privacy budget of the fit; None: no noise at all (not private; for comparisons)
    epsilon: float | None = Field(default=1.0, gt=0)
    #: None: ``min(1e-5, 1 / (10 n_users))`` (accountant.default_delta)
    delta: float | None = Field(default=None, gt=0, lt=1)
    #: at most this many items of each user count (chosen at random with ``seed``)
    max_items_per_user: int = Field(default=100, ge=1)
    #: None: noise from the operating system's entropy (a release); an int: reproducible
    #: noise for experiments and tests, not private against anyone who knows the number
    noise_seed: int | None = None


def bound_contributions(data: TrainData, max_items: int, seed: int) -> sp.csr_matrix:
    """The binary users x items matrix with at most ``max_items`` items per user, those with
    the smallest keyed hash of (``seed``, user ID, item ID)."""
    x = (data.matrix > 0).astype(np.float32).tocsr()
    x.eliminate_zeros()
    lengths = np.diff(x.indptr)
    if lengths.max(initial=0) <= max_items:
        return x
    rows = np.repeat(np.arange(x.shape[0]), lengths)
    pairs = pd.Series(data.user_vocab.ids[rows].astype(str)) + "\x1f"
    pairs += pd.Series(data.item_vocab.ids[x.indices].astype(str))
    keys = pd.util.hash_array(pairs.to_numpy(object), hash_key=f"{seed % 10**16:016d}")
    # within each row, order by key; keep the first max_items
    order = np.lexsort((keys, rows))
    rank = np.arange(len(order)) - np.repeat(x.indptr[:-1], lengths)
    keep = np.zeros(len(order), dtype=bool)
    keep[order[rank < max_items]] = True
    kept = sp.csr_matrix(
        (x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape, dtype=np.float32
    )
    return kept


def row_weights(counts: np.ndarray, weighting: Weighting) -> np.ndarray:
    """The squared weight ``w_u^2`` of each user's row given their kept item count ``n_u``.

    ``unit``: ``1 / sqrt(n_u (n_u + 1) / 2)``, so that every user's contribution to the upper
    triangle of the Gram matrix has L2 norm exactly 1; ``binary``: 1."""
    n = np.asarray(counts, dtype=np.float64)
    if weighting == "binary":
        return np.ones_like(n)
    if weighting == "unit":
        return np.where(n > 0, 1.0 / np.sqrt(np.maximum(n * (n + 1) / 2, 1.0)), 0.0)
    raise ValueError(f"unknown weighting {weighting!r} (unit or binary)")


def gram_sensitivity(max_items: int, weighting: Weighting) -> float:
    """The L2 sensitivity of the released upper triangle (with diagonal) of ``X^T W X``: the
    largest ``||triu(w^2 x x^T)||_2 = w^2 sqrt(n (n + 1) / 2)`` over users with ``n <=
    max_items`` binary items (the Frobenius norm ``w^2 n`` of a user's contribution is at most
    ``sqrt(2)`` times it)."""
    n = np.arange(1, max_items + 1, dtype=np.float64)
    return float(np.max(row_weights(n, weighting) * np.sqrt(n * (n + 1) / 2)))


def count_sensitivity(max_items: int) -> float:
    """The L2 sensitivity of per-item user counts with at most ``max_items`` items per user."""
    return math.sqrt(max_items)


def add_symmetric_noise(gram: np.ndarray, std: float, rng: np.random.Generator) -> None:
    """Add ``N(0, std^2)`` noise to each entry of the upper triangle (with the diagonal) of
    ``gram`` and mirror it onto the lower one, in place, a block of rows at a time."""
    n = len(gram)
    for rows in row_blocks(n):
        start = rows.start
        z = np.triu(rng.standard_normal((rows.stop - start, n - start)) * std)
        gram[rows, start:] += z
        gram[start:, rows] += np.triu(z, 1).T


def noise_rng(noise_seed: int | None) -> np.random.Generator:
    """The generator of a release's noise: seeded from ``noise_seed``, or from the operating
    system's entropy where it is None."""
    return np.random.default_rng(None if noise_seed is None else [noise_seed, 0x5EED])


def noise_multiplier(config: PrivateConfig, n_users: int) -> tuple[float, float | None]:
    """The noise multiplier of the config's budget for one Gaussian release and the delta
    that budget has (0 and None: no noise)."""
    if config.epsilon is None:
        return 0.0, None
    delta = config.delta if config.delta is not None else default_delta(n_users)
    check_budget(config.epsilon, delta, n_users)
    return gaussian_noise_multiplier(config.epsilon, delta), delta


def release_record(
    config: PrivateConfig,
    n_users: int,
    sigma: float,
    delta: float | None,
    sensitivity: float,
    released: str,
    clipping: dict[str, Any],
) -> dict[str, Any]:
    """The ``privacy`` entry of a saved model's manifest: what was released and spent."""
    noise = (
        "operating-system entropy"
        if config.noise_seed is None
        else "seeded by noise_seed (reproducible; not private against anyone who knows it)"
    )
    return {
        "epsilon": config.epsilon,
        # what the accountant gives for the noise used (at most the epsilon asked for)
        "epsilon_spent": gaussian_epsilon(sigma, delta) if delta is not None else None,
        "delta": delta,
        "delta_rule": ("given" if config.delta is not None else "min(1e-5, 1/(10 n_users))"),
        "unit": "user (adding or removing all of one user's interactions)",
        "n_users": int(n_users),
        "mechanism": (
            "gaussian, one release, analytic accounting (dp-accounting)"
            if delta is not None
            else "none: no noise, not private"
        ),
        "released": released,
        "clipping": {**clipping, "sensitivity_l2": sensitivity},
        "noise_multiplier": sigma,
        "noise_std": sigma * sensitivity,
        "noise": noise if delta is not None else None,
    }
