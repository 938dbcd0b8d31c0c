"""Scoring a split's test users the way every evaluation does: users in sorted order, in
batches of dense ``[batch, n_items]`` score matrices with training items and (where the
protocol has them) non-candidates masked, ties broken in a seeded random order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.evaluation.protocols import Split
from avrec.models.base import Recommender

BATCH = 256
#: called with ``(start, stop, histories, masked scores)`` of each batch of test users
BatchHook = Callable[[int, int, sp.csr_matrix, np.ndarray], None]


@dataclass
class EvalUsers:
    """A split's test users (external ids, sorted), their test items, the model's item
    mask of the protocol's candidates (None: the whole catalog) and the seeded tie-break
    order (rank ``scores[:, tiebreak]``, then map positions back through it)."""

    users: list[str]
    test: pd.Series
    candidates: np.ndarray | None
    tiebreak: np.ndarray

    def batches(
        self, model: Recommender, split: Split
    ) -> Iterator[tuple[int, int, sp.csr_matrix, np.ndarray]]:
        """``(start, stop, histories, masked scores)`` per batch of ``users[start:stop]``."""
        user_vocab, _, _ = model.fitted_parts()
        rows = user_vocab.lookup(self.users)
        for start in range(0, len(rows), BATCH):
            stop = min(start + BATCH, len(rows))
            given = (
                [split.histories.get(u) for u in self.users[start:stop]]
                if split.histories
                else None
            )
            hist = model.history_matrix(rows[start:stop], given)
            scores = model.masked_scores(
                rows[start:stop], hist, exclude=hist, candidates=self.candidates
            )
            yield start, stop, hist, scores


def eval_users(model: Recommender, split: Split, seed: int = 0) -> EvalUsers:
    _, item_vocab, _ = model.fitted_parts()
    test = split.test.groupby("user_id", sort=True)["item_id"].agg(list)
    candidates = None
    if split.candidates is not None:
        candidates = np.zeros(len(item_vocab), dtype=np.bool_)
        idx = item_vocab.lookup(split.candidates)
        candidates[idx[idx >= 0]] = True
    tiebreak = np.random.default_rng(seed).permutation(len(item_vocab))
    return EvalUsers(list(test.index), test, candidates, tiebreak)
