"""Warm start of the hybrid: the previous version updated with the users whose rows changed,
instead of fitted again (``Recommender.warm_start``; ``avrec retrain --warm-share``).

- The backbone (kind ``ease``): its EASE solution updated by Woodbury's identity on the items
  the changed rows touch (models.baselines.ease_update, the same update that forgets users,
  here adding rows as well), the new rows weighed by rating factors around the centre the
  previous fit used. Equal to a fit of the backbone on the new data with that centre fixed,
  where the items whose counts changed are at most ``backbone.warm_penalty_share`` of the
  catalog; above it (new events spread over many items: each such item costs the update one
  rank) those items keep the previous fit's denoising penalty, so the update's rank is the
  changed rows' alone (``penalty_kept_items`` in ``warm_started_``, summed since the last full
  fit; a later forget lists it as pending).
- Refitted, as they are cheap: the cold items' columns and rows (from the updated weights)
  and the short-history prior (popularity counts and the first-items map, solved over the
  items that start histories).
- The VAE: ``vae.warm_epochs`` epochs on the new data from its weights (0: kept).
- Kept from the previous version: the content vectors (same catalog), the recency weighting
  it learned, the cold-item ranker and the request ranker (each still scores the users'
  current histories); these learned from the earlier data until the next full fit.

Not taken (a full fit instead) where the catalog changed, the backbone is not ``ease`` or keeps
no solution (saved by an earlier avrec), ratings appeared or disappeared, items the cold ranker
ranks as cold got interactions, or the update's rank is over the share of the items.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from avrec.data.vocab import Vocabulary
from avrec.models.base import TrainData, rows_for, share_exceeded
from avrec.models.content import Content
from avrec.models.hybrid.config import HybridConfig
from avrec.models.hybrid.parts import Backbone, ColdItems, ShortHistory, VAEBlend


class WarmModel(Protocol):
    """What a warm start reads and updates of the hybrid (``models.hybrid.model.Hybrid``)."""

    config: HybridConfig
    backbone: Backbone
    content: Content
    cold_items: ColdItems
    short_history: ShortHistory
    vae: VAEBlend | None
    warm_started_: dict[str, Any] | None

    @property
    def cold_signals(self) -> dict[str, np.ndarray] | None: ...

    def fitted_parts(self) -> tuple[Vocabulary, Vocabulary, sp.csr_matrix]: ...

    def parts(self) -> dict[str, object]: ...


#: one INFO line per step of :func:`warm_update`, seconds since its start (where the time goes)
log = logging.getLogger(__name__)

#: the parts a warm start keeps as the previous version learned them
KEPT = ("content", "recency", "vae", "cold_ranker", "request_ranker")


def backbone_rows(
    model: WarmModel, data: TrainData
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix | None, int] | str:
    """The backbone's input rows that changed, before and after (users x items, float64), the
    new data's rating factors (around the previous centre) and the number of users; or why
    the backbone cannot be updated."""
    from avrec.models.baselines.ease import rating_factors

    c, backbone = model.config.backbone, model.backbone
    user_vocab, item_vocab, train = model.fitted_parts()
    if c.kind != "ease":
        return f"the backbone (kind {c.kind}) has no exact update"
    if list(item_vocab.ids) != list(data.item_vocab.ids):
        return "the catalog changed"
    if backbone.inverse_diag_ is None or backbone.raw_cold_ is None:
        return "the backbone keeps no EASE solution to update (saved by an earlier avrec)"
    old_factor = backbone.rating_factor_
    if old_factor is not None and backbone.rating_center_ is None:
        return "the backbone keeps no rating centre (saved by an earlier avrec)"
    centre = backbone.rating_center_ if old_factor is not None else c.rating_center
    new_factor = rating_factors(data, c.rating_weight, centre)
    if (old_factor is None) != (new_factor is None):
        return "ratings appeared in or went from the training data"
    users = list(dict.fromkeys([*user_vocab.ids, *data.user_vocab.ids]))
    old = rows_for(Backbone.inputs(train, old_factor), user_vocab.lookup(users))
    new = rows_for(Backbone.inputs(data.matrix, new_factor), data.user_vocab.lookup(users))
    changed = np.flatnonzero(np.diff((old != new).tocsr().indptr) > 0)
    return old[changed], new[changed], new_factor, len(changed)


def penalty_items(old: sp.csr_matrix, new: sp.csr_matrix) -> int:
    """The items whose count (``diag(G)``, the denoising penalty's) the rows' change moves."""
    before = np.asarray(old.multiply(old).sum(axis=0)).ravel()
    return int(np.count_nonzero(np.asarray(new.multiply(new).sum(axis=0)).ravel() - before))


def warm_update(model: WarmModel, data: TrainData, max_share: float) -> dict[str, Any] | str:
    """The hybrid's learned state updated to ``data`` (see the module): what was done, or
    why not (then nothing changed)."""
    from avrec.models.baselines.ease_update import gram_change, update_weights

    started = time.perf_counter()
    rows = backbone_rows(model, data)
    if isinstance(rows, str):
        return rows
    old, new, factor, n_changed = rows
    c = model.config
    n_items = data.matrix.shape[1]
    moved = penalty_items(old, new) if c.backbone.dropout > 0 else 0
    exact = moved <= c.backbone.warm_penalty_share * n_items
    items, f, core = gram_change(old, new, c.backbone.dropout, penalty=exact)
    rank = core.shape[0]
    if rank > max_share * n_items:
        return share_exceeded(n_changed, rank, max_share, n_items)
    counts_before = np.asarray((model.fitted_parts()[2] > 0).sum(axis=0)).ravel()
    counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
    warm = counts > 0
    signals = model.cold_signals
    if signals is not None and warm[signals["cand"]].any():
        return "items the cold ranker ranks as cold got interactions"
    lagging = int((model.warm_started_ or {}).get("penalty_kept_items", 0))
    backbone, d = model.backbone, model.backbone.inverse_diag_
    assert d is not None  # checked by backbone_rows
    raw = backbone.raw_weights(counts_before > 0)  # a copy: the model is unchanged until done
    try:
        raw, d = update_weights(raw, d, items, f, core, in_place=True)
    except ValueError as exc:  # not positive definite (rounding of a float32 solution)
        return str(exc)
    log.info("warm start: rows and backbone update (rank %d) done at %.1f s", rank, _lap(started))
    backbone.inverse_diag_, backbone.raw_cold_ = d, raw[:, ~warm].copy()
    backbone.rating_factor_ = factor
    text = model.content.vectors
    backbone.weights_ = model.cold_items.fit(raw, data, text, warm, c.backbone.neighbors)
    log.info("warm start: cold items done at %.1f s", _lap(started))
    model.short_history.fit(data, counts)
    log.info("warm start: short-history prior done at %.1f s", _lap(started))
    model.content.user_vocab, model.content.item_vocab = data.user_vocab, data.item_vocab
    updated = ["backbone"]
    if model.vae is not None and c.vae.warm_epochs > 0:
        model.vae.fine_tune(data.matrix, warm, c.seed, c.vae.warm_epochs)
        updated.append("vae")
        log.info("warm start: VAE %d epochs done at %.1f s", c.vae.warm_epochs, _lap(started))
    return {
        "users_changed": int(n_changed),
        "rank": int(rank),
        "updated": updated,
        # summed over the warm starts since the last full fit (at most: an item may recur)
        "penalty_kept_items": (0 if exact else int(moved)) + lagging,
        "refitted": ["cold_items", "short_history"],
        "kept": [name for name in KEPT if name in model.parts() and name not in updated],
    }


def _lap(started: float) -> float:
    """Seconds since ``started`` (the warm start's beginning)."""
    return time.perf_counter() - started
