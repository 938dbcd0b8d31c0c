"""Score scaling shared by the models that blend scores."""

from __future__ import annotations

import numpy as np


def zscore_rows(x: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its standard deviation (rows with no spread: centred)."""
    sd = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
