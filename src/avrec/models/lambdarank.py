"""One LightGBM lambdarank fit, as the hybrid's learned parts use it (the cold-item ranker and
the request ranker): bagged rows and columns, one thread, seeded, no early stopping (fixed
trees: results do not depend on a validation split or on the machine)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def fit_lambdarank(
    xs: Sequence[np.ndarray],
    ys: Sequence[np.ndarray],
    groups: Sequence[int],
    *,
    trees: int,
    num_leaves: int,
    min_child_samples: int,
    seed: int,
) -> Any:
    """The booster of a lambdarank model over the stacked feature rows ``xs`` with labels
    ``ys``, ``groups`` giving each query's number of rows (truncated at 20 for the loss)."""
    import lightgbm as lgb

    ranker = lgb.LGBMRanker(
        n_estimators=trees,
        learning_rate=0.05,
        num_leaves=num_leaves,
        min_child_samples=min_child_samples,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        lambdarank_truncation_level=20,
        n_jobs=1,
        verbose=-1,
        random_state=seed,
    )
    ranker.fit(np.vstack(xs), np.concatenate(ys), group=list(groups))
    return ranker.booster_
