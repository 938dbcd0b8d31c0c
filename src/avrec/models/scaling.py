"""Score scaling and blending shared by the models that mix scores."""

from __future__ import annotations

import numpy as np


def row_moments(
    x: np.ndarray, eps: float | None = None, floor: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's (or a single vector's) mean and the spread a z-score divides by: its
    standard deviation, or 1 for a row with no spread; ``std + eps`` with ``eps`` (what the
    request blend and the ranker's features have always used); ``max(std, floor)`` with
    ``floor``. Both keep the reduced axis, so they broadcast against ``x``."""
    mu = x.mean(axis=-1, keepdims=True)
    sd = x.std(axis=-1, keepdims=True)
    if eps is not None:
        return mu, sd + eps
    if floor is not None:
        return mu, np.maximum(sd, floor)
    return mu, np.where(sd > 0, sd, 1.0)


def zscore_rows(x: np.ndarray, eps: float | None = None, floor: float | None = None) -> np.ndarray:
    """Each row (or a single vector) minus its mean, over its spread (:func:`row_moments`)."""
    mu, sd = row_moments(x, eps, floor)
    return (x - mu) / sd


def blend_request(
    taste: np.ndarray, request: np.ndarray, has_history: bool, weight: float
) -> np.ndarray:
    """One user's scores for a free-text request: ``weight * z(request) + (1 - weight) *
    z(taste)`` where the user has a history, else the request's own scores."""
    if not has_history:
        return request
    return weight * zscore_rows(request, 1e-9) + (1 - weight) * zscore_rows(taste, 1e-9)
