"""How much recent history weighs, learned from the training data's times.

A history item of recency rank ``r`` (1 = most recent) weighs ``(1 - mix) + mix * exp(-(r - 1)
/ tau)`` in the hybrid's collaborative score. With ``RecencyConfig.learn`` and training data
with times, :class:`Recency` chooses ``(mix, tau)`` from the config's grid by a validation split
by time inside ``fit``: each user's latest training item (the "next" item) and one random
earlier item are held out, the backbone is fitted again on the rest (so no held-out item is in
the weights that score it), and every grid point ranks both held-out items. The chosen point is
the one with the best NDCG@10 on the next items among the points whose NDCG@10 on the random
items loses at most the share ``keep_random`` of the first point's (a recency that trades the
rest of the history for the next item is refused), and only where its gain over the first point
is clear of the validation's noise (``min_gain_se``); ties go to the earlier point.

Both held-out items come from the training data alone, so the choice cannot tell an evaluation
that tests each user's next item from one that tests random items: with ``keep_random`` it
stays where the random items lose (almost) nothing, without it it goes where the next item is
best (docs/benchmarks.md, "recency").
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from avrec.models.arrays import dense_product
from avrec.models.base import TrainData
from avrec.models.hybrid.config import BackboneConfig, RecencyConfig

#: users scored per batch in the validation (dense ``[batch, n_items]`` scores)
BATCH = 512


def has_times(data: TrainData) -> bool:
    """Whether the interactions carry times that order a user's items (at least two distinct
    timestamps); without them the recency ranks are only the file's order."""
    if data.recency is None or "timestamp" not in data.interactions.columns:
        return False
    return int(data.interactions["timestamp"].dropna().nunique()) > 1


def decay(ranks: np.ndarray, mix: float, tau: float | None) -> np.ndarray:
    """Each history item's weight from its recency rank (1 for all without ``tau``)."""
    if not tau:
        return np.ones_like(ranks, dtype=np.float32)
    return ((1 - mix) + mix * np.exp(-(ranks - 1.0) / tau)).astype(np.float32)


def with_rating_factor(
    h: sp.csr_matrix, factor: sp.csr_matrix | None, users: np.ndarray | None
) -> sp.csr_matrix:
    """``h`` times each known user's rating factor on its rated training pairs (``users``:
    training user indices, -1 for unknown users; other entries unchanged)."""
    if factor is None or users is None or not h.nnz:
        return h
    users = np.asarray(users)
    known = (users >= 0) & (users < factor.shape[0])
    extra = factor[np.where(known, users, 0)].tocsr()
    extra.data = extra.data - 1.0  # factor - 1 on the user's rated training pairs
    extra = (sp.diags(known.astype(np.float32)) @ extra).tocsr()
    extra.eliminate_zeros()
    extra.resize(h.shape)  # the catalog may have grown since (add_items)
    return (h + h.multiply(extra)).tocsr()


@dataclasses.dataclass
class Holdout:
    """The validation split: the training data without the held-out items, and per
    validation user (rows of ``view``) the next item and a random earlier one."""

    view: TrainData
    users: np.ndarray
    next_items: np.ndarray
    random_items: np.ndarray


def latest_holdout(data: TrainData, min_items: int, max_users: int, seed: int) -> Holdout | None:
    """Hold out each user's latest training item and one random earlier one (users with at
    least ``min_items`` items; at most ``max_users`` of them, a seeded sample). None when no
    user qualifies."""
    rec = sp.csr_matrix(data.recency)
    sizes = np.diff(rec.indptr)
    users = np.flatnonzero(sizes >= max(min_items, 3))
    if not len(users):
        return None
    rng = np.random.default_rng(seed)
    if len(users) > max_users:
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    next_items = np.empty(len(users), np.int64)
    random_items = np.empty(len(users), np.int64)
    for n, u in enumerate(users):
        idx = rec.indices[rec.indptr[u] : rec.indptr[u + 1]]
        order = idx[np.argsort(rec.data[rec.indptr[u] : rec.indptr[u + 1]], kind="stable")]
        next_items[n] = order[0]
        random_items[n] = order[1 + rng.integers(len(order) - 1)]
    out = sp.csr_matrix(
        (np.ones(2 * len(users), np.float32), (np.tile(users, 2), np.r_[next_items, random_items])),
        shape=rec.shape,
    )
    keep = ((data.matrix > 0).astype(np.float32) - out).tocsr()
    keep.eliminate_zeros()
    view = dataclasses.replace(
        data,
        matrix=data.matrix.multiply(keep).tocsr(),
        recency=_reranked(rec.multiply(keep).tocsr()),
        ratings=None if data.ratings is None else data.ratings.multiply(keep).tocsr(),
    )
    return Holdout(view, users, next_items, random_items)


def _reranked(rec: sp.csr_matrix) -> sp.csr_matrix:
    """Recency ranks renumbered 1, 2, ... within each row, in the order of the old ones."""
    rec = rec.tocsr()
    rec.eliminate_zeros()
    rows = np.repeat(np.arange(rec.shape[0]), np.diff(rec.indptr))
    order = np.lexsort((rec.data, rows))
    ranks = np.empty(len(order), np.float32)
    ranks[order] = np.arange(len(order)) - rec.indptr[rows[order]] + 1
    return sp.csr_matrix((ranks, rec.indices.copy(), rec.indptr.copy()), shape=rec.shape)


def _ndcg_of_target(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k of one relevant item per row (``-inf`` scores are excluded items)."""
    s_t = scores[np.arange(len(targets)), targets]
    rank = (scores > s_t[:, None]).sum(axis=1) + 1
    return np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)


def choose(
    next_ndcg: np.ndarray, random_ndcg: np.ndarray, keep_random: float | None, min_gain_se: float
) -> int:
    """The grid point (row of the ``[grid, users]`` NDCG arrays) of best mean NDCG on the next
    items among those whose mean on the random items loses at most the share ``keep_random``
    of the first point's (None: all points); the first point unless the best one's gain over
    it is at least ``min_gain_se`` standard errors of the paired per-user difference (a gain
    the validation's noise could give is not taken). Ties go to the earlier point."""
    means = next_ndcg.mean(axis=1)
    allowed = np.ones(len(means), bool)
    if keep_random is not None:
        allowed = random_ndcg.mean(axis=1) >= random_ndcg[0].mean() * (1 - keep_random)
    best = int(np.flatnonzero(allowed)[np.argmax(means[allowed])])
    diff = next_ndcg[best] - next_ndcg[0]
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.inf
    return best if best and diff.mean() >= min_gain_se * se and diff.mean() > 0 else 0


class Recency:
    """The hybrid's recency weighting: ``mix_`` and ``tau_`` (the config's values, or the ones
    chosen by the validation), ``learned_`` (whether the validation chose them) and
    ``validation_`` (each grid point's NDCG@10 on the next and on the random items)."""

    name = "recency"

    def __init__(self, config: RecencyConfig):
        self.config = config
        self.mix_: float = config.mix
        self.tau_: float | None = config.tau
        self.learned_ = False
        self.validation_: list[dict[str, Any]] = []

    def weigh(self, ranks: np.ndarray) -> np.ndarray:
        return decay(ranks, self.mix_, self.tau_)

    def fit(
        self, data: TrainData, text_vectors: np.ndarray, backbone: BackboneConfig, seed: int
    ) -> None:
        """Choose ``(mix, tau)`` by the validation where the config asks for it and the data
        allows (times, enough users, at most ``max_items`` items); else keep the config's."""
        c = self.config
        self.mix_, self.tau_, self.learned_, self.validation_ = c.mix, c.tau, False, []
        if not c.learn or not c.grid or not has_times(data) or data.n_items > c.max_items:
            return
        split = latest_holdout(data, c.min_items, c.max_users, seed)
        if split is None:
            return
        from avrec.models.hybrid.parts import Backbone

        part = Backbone(backbone)
        weights = part.fit(split.view, text_vectors)
        next_ndcg, random_ndcg = self._validate(split, weights, part.rating_factor_)
        self.validation_ = [
            {"mix": float(mix), "tau": tau, "next_ndcg": float(a), "random_ndcg": float(b)}
            for (mix, tau), a, b in zip(
                c.grid, next_ndcg.mean(axis=1), random_ndcg.mean(axis=1), strict=True
            )
        ]
        best = choose(next_ndcg, random_ndcg, c.keep_random, c.min_gain_se)
        self.mix_, self.tau_, self.learned_ = float(c.grid[best][0]), c.grid[best][1], True

    def _validate(
        self, split: Holdout, weights: np.ndarray | sp.csr_matrix, factor: sp.csr_matrix | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """NDCG@10 of each validation user's next and random item: two ``[grid, users]``."""
        rec = sp.csr_matrix(split.view.recency)
        out = np.zeros((2, len(self.config.grid), len(split.users)))
        for start in range(0, len(split.users), BATCH):
            users = split.users[start : start + BATCH]
            hist = rec[users].tocsr()
            seen = hist.tocoo()
            targets = (
                split.next_items[start : start + BATCH],
                split.random_items[start : start + BATCH],
            )
            for g, (mix, tau) in enumerate(self.config.grid):
                h = hist.copy()
                h.data = decay(h.data, mix, tau)
                scores = dense_product(with_rating_factor(h, factor, users), weights)
                scores[seen.row, seen.col] = -np.inf
                for t, items in enumerate(targets):
                    out[t, g, start : start + len(users)] = _ndcg_of_target(scores, items)
        return out[0], out[1]

    def summary(self) -> dict[str, Any]:
        """What the manifest records: the values used and how they were chosen."""
        return {
            "mix": self.mix_,
            "tau": self.tau_,
            "chosen_by": "validation" if self.learned_ else "config",
            "validation": self.validation_,
        }

    def state(self) -> dict[str, np.ndarray]:
        """Scalars only (0-d arrays: nothing with a row per user, models.forget): the values,
        whether they were learned, and the validation table as JSON text."""
        return {
            "mix": np.array(self.mix_, np.float64),
            "tau": np.array(np.nan if self.tau_ is None else self.tau_, np.float64),
            "learned": np.array(self.learned_),
            "validation": np.array(json.dumps(self.validation_)),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a fitted recency; a folder saved before the part existed keeps the config's
        values (what it was scored with)."""
        if "mix" not in state:
            return
        tau = float(state["tau"])
        self.mix_, self.tau_ = float(state["mix"]), None if np.isnan(tau) else tau
        self.learned_ = bool(state["learned"])
        self.validation_ = json.loads(str(state.get("validation", "[]")))
