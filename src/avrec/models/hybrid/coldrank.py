"""A learned ranker for cold items (items without training interactions).

Cold start is simulated inside the training data: a random share of the warm items is hidden
(their interactions become labels), the collaborative weights are rebuilt without them, and a
LightGBM LambdaRank model learns to rank the hidden items per user from features that exist
for any item with content: the propagated collaborative score, content similarity to the
history, shared people (director/cast), genre affinity, a content-predicted popularity and the
release year against the history's years. Applied to the real cold items with the full model.
Fitting never sees the cold items' interactions (they have none in training).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.dataset import split_multi
from avrec.models.arrays import dense_product
from avrec.models.base import TrainData
from avrec.models.lambdarank import fit_lambdarank
from avrec.models.scaling import zscore_rows


def item_table(items: pd.DataFrame) -> np.ndarray:
    """Static item columns: year, plot length, no plot, has poster, bracketed title parts
    (alternative/foreign titles), cast size."""
    n = len(items)

    def col(name: str) -> pd.Series:
        return items[name].fillna("").astype(str) if name in items else pd.Series([""] * n)

    year = (
        pd.to_numeric(items["year"], errors="coerce").to_numpy(float)
        if "year" in items
        else np.full(n, np.nan)
    )
    desc, title, tags = col("description"), col("title"), col("tags")
    no_plot = (desc.str.contains("any Plot Summaries") | (desc.str.len() == 0)).to_numpy()
    cast = tags.apply(
        lambda t: sum(
            len([x for x in p.split(":", 1)[1].split(",") if x.strip()])
            for p in split_multi(t)
            if p.startswith("cast:")
        )
    )
    return np.column_stack(
        [
            year,
            np.where(no_plot, 0, desc.str.len()),
            no_plot,
            col("image").str.len() > 0,
            title.str.count(r"\("),
            cast,
        ]
    ).astype(np.float32)


def people_popularity(items: pd.DataFrame, counts: np.ndarray, warm: np.ndarray) -> np.ndarray:
    """``[n_items, 3]``: over an item's people (director, cast, tags on two or more items), the
    mean and the largest of each person's mean log(1 + interactions) on the *other* warm items
    they appear on, and how many of its people have such items (NaN where none)."""
    from avrec.fusion.features import people_matrix

    p = (people_matrix(items) > 0).astype(np.float32)
    logc = (np.log1p(counts) * warm).astype(np.float32)
    w = warm.astype(np.float32)
    total, n = p * (p.T @ logc)[None, :], p * (p.T @ w)[None, :]
    total, n = total - p * logc[:, None], n - p * w[:, None]  # leave the item itself out
    known = n > 0
    per = np.where(known, total / np.where(known, n, 1.0), np.nan)
    n_known = known.sum(axis=1)
    has = n_known > 0
    mean = np.full(len(items), np.nan, np.float32)
    top = np.full(len(items), np.nan, np.float32)
    mean[has] = np.nanmean(per[has], axis=1)
    top[has] = np.nanmax(per[has], axis=1)
    return np.column_stack([mean, top, n_known]).astype(np.float32)


def predict_popularity(
    items: pd.DataFrame,
    text: np.ndarray,
    genres: np.ndarray | None,
    counts: np.ndarray,
    warm: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """log(1 + interactions) predicted from content for every item (static columns, genres,
    16 principal components of the text vectors, the popularity of its people on other items)
    by gradient boosting fitted on ``warm``."""
    import lightgbm as lgb

    text = np.asarray(text, np.float32)
    centred = text - text[warm].mean(axis=0)
    _, _, vt = np.linalg.svd(centred[warm], full_matrices=False)
    blocks = [item_table(items), centred @ vt[:16].T, people_popularity(items, counts, warm)]
    if genres is not None:
        blocks.append(np.asarray(genres, np.float32))
    x = np.hstack(blocks)
    reg = lgb.LGBMRegressor(
        n_estimators=300,
        learning_rate=0.03,
        num_leaves=15,
        min_child_samples=10,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.5,
        n_jobs=1,
        verbose=-1,
        random_state=seed,
    )
    reg.fit(x[warm], np.log1p(counts[warm]))
    return np.asarray(reg.predict(x)).astype(np.float32)


def item_signals(
    data: TrainData, vectors: np.ndarray, cand: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """What :func:`pair_features` needs about the items, for candidates ``cand``:
    ``[n_items, n_cand]`` similarities (text cosine, genres, shared people) and per-item year,
    training popularity and content-predicted popularity."""
    from avrec.fusion.features import people_matrix

    counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
    warm = counts > 0
    genres = data.item_features.get("genres")
    g = (
        np.asarray(genres, np.float32)
        if genres is not None
        else np.zeros((len(counts), 1), np.float32)
    )
    people = people_matrix(data.items)
    vectors = np.asarray(vectors, np.float32)
    out = {
        "cand": np.asarray(cand, np.int64),
        "text_sim": vectors @ vectors[cand].T,
        "genre_sim": g @ g[cand].T,
        "people_sim": (people @ people[cand].T).astype(np.float32),
        "year": item_table(data.items)[:, 0],
        "logc": np.log1p(counts).astype(np.float32),
        "pop": predict_popularity(data.items, vectors, genres, counts, warm, seed),
    }
    media = media_vectors(data.item_features, len(counts))
    if media is not None:
        out["media_sim"] = media @ media[cand].T
    return out


def media_vectors(features: dict[str, np.ndarray], n_items: int) -> np.ndarray | None:
    """``[n_items, d]`` one unit vector per item from its image, video and audio blocks
    (:func:`avrec.models.neural.towers.media_inputs`, each block unit length, so the dot product of
    two items is the sum of their blocks' cosines over the norm); zero for items without
    media; None when no item has any."""
    from avrec.models.neural.towers import media_inputs

    blocks = media_inputs(features, n_items, flags=False)
    if not blocks.shape[1]:
        return None
    norms = np.linalg.norm(blocks, axis=1, keepdims=True)
    return (blocks / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def last_active_year(data: TrainData) -> np.ndarray:
    """``[n_users]`` each training user's latest interaction as a fractional calendar year
    (NaN without timestamps)."""
    out = np.full(data.n_users, np.nan, np.float32)
    inter = data.interactions
    if "timestamp" not in inter or inter["timestamp"].isna().all():
        return out
    rows = data.user_vocab.lookup(inter["user_id"].tolist())
    last = pd.Series(inter["timestamp"].to_numpy(float)).groupby(rows).max()
    out[last.index.to_numpy()] = 1970.0 + last.to_numpy() / 31_557_600.0
    return out


def _top_mean(h: sp.csr_matrix, sim: np.ndarray, k: int = 5) -> np.ndarray:
    """``[n_users, n_cand]`` each user's mean of the ``k`` largest similarities of each
    candidate (columns of ``sim``, rows = items) to their history items."""
    top = np.zeros((h.shape[0], sim.shape[1]), np.float32)
    for u in range(h.shape[0]):
        idx = h.indices[h.indptr[u] : h.indptr[u + 1]]
        if len(idx):
            n = min(k, len(idx))
            top[u] = np.partition(sim[idx], len(idx) - n, axis=0)[-n:].mean(axis=0)
    return top


def pair_features(
    hist: sp.csr_matrix,
    collab: np.ndarray,
    sig: dict[str, np.ndarray],
    user_year: np.ndarray | None = None,
) -> np.ndarray:
    """``[n_users * n_cand, d]`` features of each (user, candidate) pair, user-major.

    ``hist``: users x items history (rows may be narrower than the signals: items added
    later); ``collab``: ``[n_users, n_cand]`` collaborative scores of the candidates;
    ``sig``: :func:`item_signals`; ``user_year``: each user's :func:`last_active_year`
    (NaN where unknown)."""
    n_sig = len(sig["year"])
    h = sp.csr_matrix((hist > 0).astype(np.float32))
    h = (
        h[:, :n_sig]
        if h.shape[1] >= n_sig
        else sp.hstack(
            [h, sp.csr_matrix((h.shape[0], n_sig - h.shape[1]), dtype=np.float32)]
        ).tocsr()
    )
    cand = sig["cand"]
    n_users, n_cand = collab.shape
    n_hist = np.asarray(h.sum(axis=1)).ravel()
    inv = 1.0 / np.maximum(n_hist, 1)
    sim_mean = np.asarray(h @ sig["text_sim"], np.float32) * inv[:, None]
    top = _top_mean(h, sig["text_sim"])
    gaff = np.asarray(h @ sig["genre_sim"], np.float32) * inv[:, None]
    shared = np.asarray(h @ sig["people_sim"], np.float32)
    known = np.isfinite(sig["year"])
    y = np.where(known, sig["year"], sig["year"][known].mean() if known.any() else 0.0)
    uy = (h @ y) * inv
    uy_max = np.array(
        [
            y[h.indices[h.indptr[u] : h.indptr[u + 1]]].max() if n_hist[u] else 0.0
            for u in range(n_users)
        ],
        np.float32,
    )
    upop = (h @ sig["logc"]) * inv
    z = zscore_rows(collab)
    rank = collab.argsort(axis=1).argsort(axis=1) / max(n_cand - 1, 1)
    full = (n_users, n_cand)
    cols = [
        collab,
        z,
        rank,
        sim_mean,
        top,
        gaff,
        shared,
        y[cand][None, :] - uy[:, None],
        y[cand][None, :] - uy_max[:, None],
        np.broadcast_to(sig["pop"][cand], full),
        sig["pop"][cand][None, :] - upop[:, None],
        np.broadcast_to(np.log1p(n_hist)[:, None], full),
        np.broadcast_to(upop[:, None], full),
        sig["year"][cand][None, :]
        - (np.full(n_users, np.nan) if user_year is None else np.asarray(user_year, np.float32))[
            :, None
        ],
    ]
    if "media_sim" in sig:  # how the item looks and sounds against the history's items
        cols += [
            np.asarray(h @ sig["media_sim"], np.float32) * inv[:, None],
            _top_mean(h, sig["media_sim"]),
        ]
    return np.stack(
        [np.broadcast_to(np.asarray(c, np.float32), full).ravel() for c in cols], axis=1
    )


#: what each column of :func:`pair_features` is evidence of (None: the user's own columns,
#: equal for all of a user's candidates, so they explain no ranking)
FEATURE_GROUPS = (
    "collab",
    "collab",
    "collab",
    "text",
    "text",
    "genre",
    "people",
    "year",
    "year",
    "popularity",
    "popularity",
    None,
    None,
    "year",
)
#: the two columns :func:`pair_features` adds where the items have media vectors
MEDIA_GROUPS = ("media", "media")


def reason_groups(booster, features: np.ndarray, k: int = 2) -> list[list[str]]:
    """Per row of ``features``, the (up to ``k``) :data:`FEATURE_GROUPS` (+ :data:`MEDIA_GROUPS`
    where the features have the media columns) that raised the booster's score most (summed
    SHAP contributions, positive only), strongest first."""
    contrib = np.asarray(booster.predict(features, pred_contrib=True, num_threads=1))[:, :-1]
    groups = FEATURE_GROUPS + (MEDIA_GROUPS if contrib.shape[1] > len(FEATURE_GROUPS) else ())
    names = sorted({g for g in groups if g})
    cols = np.array([[g == name for g in groups] for name in names], np.float64)
    by_group = contrib @ cols.T
    out = []
    for row in by_group:
        order = np.argsort(-row)[:k]
        out.append([names[j] for j in order if row[j] > 0])
    return out


def hide_items(data: TrainData, items: np.ndarray) -> TrainData:
    """``data`` with every interaction with ``items`` removed (they become cold)."""
    keep = np.ones(data.matrix.shape[1], np.float32)
    keep[items] = 0.0
    mask = sp.diags(keep)

    def cut(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
        if m is None:
            return None
        out = sp.csr_matrix(m @ mask)
        out.eliminate_zeros()
        return out

    return replace(
        data, matrix=cut(data.matrix), recency=cut(data.recency), ratings=cut(data.ratings)
    )


def fit_cold_ranker(
    data: TrainData,
    collab_view: Callable[[TrainData, np.ndarray], tuple],
    vectors: np.ndarray,
    folds: int = 5,
    trees: int = 100,
    seed: int = 0,
):
    """LambdaRank booster trained on simulated cold start: the warm items are split into
    ``folds`` parts; for each, its items are hidden (:func:`hide_items`) and
    ``collab_view(view, hidden)`` returns ``(history matrix of all users, [n_users, n_hidden]
    collaborative scores)`` from a model fitted on the view. Labels: the hidden interactions."""
    warm = np.asarray((data.matrix > 0).sum(axis=0)).ravel() > 0
    parts = np.array_split(np.random.default_rng(seed).permutation(np.flatnonzero(warm)), folds)
    xs, ys, groups = [], [], []
    active = last_active_year(data)
    for part in parts:
        part = np.sort(part)
        view = hide_items(data, part)
        labels = (data.matrix[:, part] > 0).toarray()
        users = np.flatnonzero(labels.any(axis=1))
        hist, collab = collab_view(view, part)
        sig = item_signals(view, vectors, part, seed)
        xs.append(pair_features(hist[users], collab[users], sig, active[users]))
        ys.append(labels[users].ravel().astype(np.int32))
        groups += [len(part)] * len(users)
    return fit_lambdarank(
        xs,
        ys,
        groups,
        trees=trees,
        num_leaves=4,
        min_child_samples=max(20, sum(len(y) for y in ys) // 60),
        seed=seed,
    )


def fit_for(
    fit_sub: Callable[[TrainData], Any],
    data: TrainData,
    vectors: np.ndarray,
    cold: np.ndarray,
    folds: int,
    trees: int,
    seed: int,
) -> tuple[Any, dict[str, np.ndarray]]:
    """The ranker and the real cold items' signals for a model whose sub-models (fitted on
    views by ``fit_sub``) have ``history_weights``, ``weights`` (item x item) and training
    matrices, as the hybrid does."""

    def collab_view(view: TrainData, hidden: np.ndarray):
        sub = fit_sub(view)
        hist = sub.train_recency if sub.train_recency is not None else sub.train_matrix
        users = np.arange(hist.shape[0])
        return hist, dense_product(sub.history_weights(hist, users), sub.weights[:, hidden])

    booster = fit_cold_ranker(data, collab_view, vectors, folds, trees, seed)
    signals = item_signals(data, vectors, cold, seed)
    signals["user_year"] = last_active_year(data)
    return booster, signals


def user_pair_features(
    signals: dict[str, np.ndarray], users: np.ndarray, histories: sp.csr_matrix, part: np.ndarray
) -> np.ndarray:
    """:func:`pair_features` for training users ``users`` (-1: unknown, no active year)."""
    known = signals["user_year"]
    users = np.asarray(users)
    ok = (users >= 0) & (users < len(known))
    year = np.where(ok, known[np.where(ok, users, 0)], np.nan)
    return pair_features(histories, part, signals, year)


def explain_cold(
    model, history: sp.csr_matrix, items: np.ndarray, user: int, out: list[str]
) -> list[str]:
    """``out`` (one explanation per item of ``items``, for one request) with the items the
    ranker of ``model`` (fitted by :func:`fit_for`) placed explained by its strongest
    evidence (:func:`reason_groups`)."""
    from avrec.models.explain import cold_reason, per_item

    cand = model.cold_signals["cand"]
    n_items = len(model.item_vocab)

    def positions() -> np.ndarray:  # item -> its column among the candidates, -1 if none
        where = np.full(n_items, -1, np.int64)
        where[cand] = np.arange(len(cand))
        return where

    where = per_item(cand, n_items, "cold_positions", positions)
    picked = [
        (n, int(where[i])) for n, i in enumerate(np.asarray(items, np.int64)) if where[i] >= 0
    ]
    if not picked or history.nnz == 0:
        return out
    part = dense_product(model.history_weights(history, np.array([user])), model.weights[:, cand])
    feats = user_pair_features(model.cold_signals, np.array([user]), history, part)
    groups = reason_groups(model.cold_ranker, feats[[p for _, p in picked]])
    for (n, _), g in zip(picked, groups, strict=True):
        out[n] = cold_reason(model, history, int(items[n]), g, user)
    return out


def rerank(
    booster,
    signals: dict[str, np.ndarray],
    users: np.ndarray,
    histories: sp.csr_matrix,
    collab: np.ndarray,
) -> np.ndarray:
    """``collab`` with the cold candidates' scores replaced by the ranker's, moved to each
    user's mean and spread of the collaborative scores of those items."""
    cand = signals["cand"]
    part = collab[:, cand]
    r = booster.predict(user_pair_features(signals, users, histories, part), num_threads=1)
    r = r.reshape(part.shape)
    rz = zscore_rows(r, floor=1e-9)
    out = collab.copy()
    out[:, cand] = part.mean(axis=1, keepdims=True) + part.std(axis=1, keepdims=True) * rz
    return out
