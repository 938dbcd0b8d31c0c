"""Score scaling and blending shared by the models that mix scores."""

from __future__ import annotations

import numpy as np


def zscore_rows(x: np.ndarray, eps: float | None = None) -> np.ndarray:
    """Each row (or a single vector) minus its mean, over its standard deviation. Rows with no
    spread are centred only; with ``eps`` the spread is ``std + eps`` instead (what the request
    blend has always used)."""
    sd = x.std(axis=-1, keepdims=True)
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / (sd + eps) if eps is not None else centred / np.where(sd > 0, sd, 1.0)


def blend_request(
    taste: np.ndarray, request: np.ndarray, has_history: bool, weight: float
) -> np.ndarray:
    """One user's scores for a free-text request: ``weight * z(request) + (1 - weight) *
    z(taste)`` where the user has a history, else the request's own scores."""
    if not has_history:
        return request
    return weight * zscore_rows(request, 1e-9) + (1 - weight) * zscore_rows(taste, 1e-9)
