"""What a person × context engagement model reads: the signals per (request, ad).

- **person**: the trained recommender's score for what the ad promotes, from the person's whole
  history (each row z-scored over the catalog, so people with long and short histories share a
  scale);
- **context**: the same recommender's score from the video being watched alone (a one-item
  history: "people who watched this watched that");
- **content**: the cosine between the context video's text vector and the ad's (same encoder);
- **visual**: the cosine between the context video's visual vector (its image and video, the
  catalog's image encoder) and the ad creative's (:mod:`avrec.ads.media`), where both have one,
  else 0; **has_visual** is 1 where both have one (so a missing picture is not read as an
  unlike one, and text-only catalogs get 0 for both).

What an ad promotes is its ``item_id`` when the catalog has it; otherwise the ``anchors``
catalog items nearest to the ad's text vector (the recommender's scores of those, averaged),
so ads for things outside the catalog are scored the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from avrec.ads.catalog import Ad
from avrec.ads.media import present
from avrec.models.base import Recommender
from avrec.models.scaling import zscore_rows

#: the signals, in the order of a feature row (``interaction`` = person × context)
FEATURES = ("person", "context", "content", "interaction", "visual", "has_visual")


class AdScorer:
    """Signals of ``ads`` for batches of requests, against a fitted ``model`` whose catalog has
    the content vectors ``item_vectors`` (``[n_items, d]``, L2-normalised, in the model's item
    order) and the ads' vectors ``ad_vectors`` (``[n_ads, d]``, same encoder); optionally the
    visual vectors of both (``item_visuals`` ``[n_items, v]``, ``ad_visuals`` ``[n_ads, v]``,
    unit or zero rows: :mod:`avrec.ads.media`)."""

    def __init__(
        self,
        model: Recommender,
        ads: Sequence[Ad],
        item_vectors: np.ndarray,
        ad_vectors: np.ndarray,
        anchors: int = 5,
        batch_size: int = 512,
        item_visuals: np.ndarray | None = None,
        ad_visuals: np.ndarray | None = None,
    ):
        _, item_vocab, _ = model.fitted_parts()
        if item_vectors.shape[0] != len(item_vocab):
            raise ValueError(
                f"{item_vectors.shape[0]} item vectors for a catalog of {len(item_vocab)} items"
            )
        if ad_vectors.shape != (len(ads), item_vectors.shape[1]):
            raise ValueError(f"ad vectors {ad_vectors.shape} do not match {len(ads)} ads")
        self.model, self.ads, self.batch_size = model, list(ads), batch_size
        self.item_vocab = item_vocab
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self.ad_vectors = np.asarray(ad_vectors, dtype=np.float32)
        self.item_visuals, self.ad_visuals = _visuals(
            item_visuals, ad_visuals, len(item_vocab), len(self.ads)
        )
        #: ``[n_ads, n_items]`` weights: each row averages the scores of what the ad promotes
        self.promotes = self._promotes(anchors)

    def _promotes(self, anchors: int) -> sp.csr_matrix:
        rows, cols = [], []
        sims = self.ad_vectors @ self.item_vectors.T
        for n, ad in enumerate(self.ads):
            if ad.item_id is not None and ad.item_id in self.item_vocab:
                picked = [self.item_vocab.index(ad.item_id)]
            else:
                picked = list(np.argsort(-sims[n], kind="stable")[:anchors])
            rows += [n] * len(picked)
            cols += picked
        vals = np.ones(len(rows), dtype=np.float32)
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(self.ads), len(self.item_vocab)))
        counts = np.asarray(m.sum(axis=1)).ravel()
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(counts, 1)) @ m)

    def _scores(self, users: np.ndarray, histories: list[list[str]]) -> np.ndarray:
        """``[n, n_ads]``: z-scored model scores of what each ad promotes."""
        out = np.zeros((len(users), len(self.ads)), dtype=np.float32)
        for start in range(0, len(users), self.batch_size):
            stop = start + self.batch_size
            hist = self.model.history_matrix(users[start:stop], histories[start:stop])
            scores = np.asarray(self.model.score(users[start:stop], hist), dtype=np.float32)
            scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
            z = zscore_rows(scores, floor=1e-6)
            out[start:stop] = np.asarray(self.promotes @ z.T).T
        return out

    def person(self, user_ids: Sequence[str | None], histories: Sequence[Sequence[str]]):
        """``[n, n_ads]`` person signal: known users with the given history (the service's
        online history, oldest first), unknown users from the history alone."""
        user_vocab, _, _ = self.model.fitted_parts()
        users = user_vocab.lookup([u if u is not None else "" for u in user_ids])
        return self._scores(users, [list(h) for h in histories])

    def context(self, context_ids: Sequence[str]) -> np.ndarray:
        """``[n, n_ads]`` context signal: the model's scores from the context video alone."""
        unique, inverse = np.unique(np.asarray(context_ids, dtype=object), return_inverse=True)
        users = np.full(len(unique), -1, dtype=np.int64)
        return self._scores(users, [[c] for c in unique])[inverse]

    def content(self, context_ids: Sequence[str]) -> np.ndarray:
        """``[n, n_ads]`` cosine of each context video's text vector with each ad's."""
        rows = self.item_vocab.lookup(list(context_ids))
        out = self.item_vectors[np.maximum(rows, 0)] @ self.ad_vectors.T
        return np.where((rows >= 0)[:, None], out, 0.0).astype(np.float32)

    def visual(self, context_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(``[n, n_ads]`` cosine of each context video's visual vector with each ad's, 0 where
        either has none; ``[n, n_ads]`` 1.0 where both have one)."""
        n = len(context_ids)
        if self.item_visuals is None or self.ad_visuals is None:
            zeros = np.zeros((n, len(self.ads)), np.float32)
            return zeros, zeros
        unique, inverse = np.unique(np.asarray(context_ids, dtype=object), return_inverse=True)
        rows = self.item_vocab.lookup(list(unique))
        items = self.item_visuals[np.maximum(rows, 0)] * (rows >= 0)[:, None]
        both = present(items)[:, None] & present(self.ad_visuals)[None, :]
        cos = np.where(both, items @ self.ad_visuals.T, 0.0)[inverse]
        both = both[inverse]
        return cos.astype(np.float32), both.astype(np.float32)

    def features(
        self,
        user_ids: Sequence[str | None],
        histories: Sequence[Sequence[str]],
        context_ids: Sequence[str],
    ) -> np.ndarray:
        """``float32 [n, n_ads, len(FEATURES)]`` for requests ``n`` (the history ends with, or
        should include, the context video)."""
        person = self.person(user_ids, histories)
        context = self.context(context_ids)
        content = self.content(context_ids)
        visual, has_visual = self.visual(context_ids)
        return np.stack([person, context, content, person * context, visual, has_visual], axis=-1)


def _visuals(
    items: np.ndarray | None, ads: np.ndarray | None, n_items: int, n_ads: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Both visual matrices checked, or (None, None) where either side has none at all."""
    if items is None or ads is None:
        return None, None
    items, ads = np.asarray(items, np.float32), np.asarray(ads, np.float32)
    if items.shape[0] != n_items or ads.shape[0] != n_ads or items.shape[1] != ads.shape[1]:
        raise ValueError(f"visual vectors {items.shape} and {ads.shape} do not match the catalog")
    if not (items.any() and ads.any()):
        return None, None
    return items, ads
