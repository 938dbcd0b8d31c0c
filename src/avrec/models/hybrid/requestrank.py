"""A learned blend of a free-text request with the person's taste.

A request narrows *what* (genre, mood, topic, language); taste and quality decide *which*.
A small LightGBM LambdaRank model ranks each request's candidates (the union of the top unseen
items by request similarity and by taste) from: the request similarity (raw, and z-scored over
the catalog), how well the request matches the item's genres (the request encoder's similarity
of the request to each genre's name, the best of the item's genres: "comedy" or "轻松的喜剧"
against "Comedy"), the taste score (z-scored, and its log rank), a popularity prior, a
rating-quality prior, the release year, how specific the request is (the peak and spread of
its similarity distribution, how many items stand out) and the history length. An empty
history has no taste features, so the same ranker ranks a request without history by
similarity and the priors.

It learns from simulated requests built from the training data alone: for sampled people one
training item is hidden, a phrase from that item's own catalog text (a genre, a tag, a content
word or word pair of its description, never its title or the names in it) is the request, and
the hidden item is the answer; the taste scores come from a model fitted without the hidden
pairs (``fit_sub``), so the ranker never sees taste that already knew the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.dataset import split_multi
from avrec.errors import AvrecError
from avrec.models.base import TrainData
from avrec.models.hybrid.config import RequestBlendConfig
from avrec.models.hybrid.simrequests import simulate
from avrec.models.lambdarank import fit_lambdarank
from avrec.models.scaling import zscore_rows

#: feature columns, in order, and the part of the score each belongs to
FEATURES: tuple[tuple[str, str], ...] = (
    ("request_similarity", "request"),
    ("request_z", "request"),
    ("request_gap", "request"),
    ("request_genre", "request"),
    ("taste_z", "taste"),
    ("taste_rank", "taste"),
    ("popularity", "quality"),
    ("rating", "quality"),
    ("year", "quality"),
    ("request_peak", "specificity"),
    ("request_head", "specificity"),
    ("request_standouts", "specificity"),
    ("request_entropy", "specificity"),
    ("history_length", "specificity"),
)
#: what each part is called in an explanation (specificity features are constant within a
#: request, so they shift its candidates' scores alike and take no share)
PART_NAMES = {"request": "the request", "taste": "your taste", "quality": "popularity and ratings"}


def item_priors(data: TrainData, counts: np.ndarray) -> np.ndarray:
    """``[n_items, 3]``: z-scored log popularity, a z-scored shrunk mean rating (0 without
    ratings) and the z-scored release year (0 where unknown)."""
    pop = zscore_rows(np.log1p(counts).astype(np.float32))
    rating = np.zeros(len(counts), np.float32)
    if data.ratings is not None and data.ratings.nnz:
        r = sp.csc_matrix(data.ratings)
        total = np.asarray(r.sum(axis=0)).ravel()
        n = np.diff(r.indptr)
        mean = float(r.data.mean())
        rating = zscore_rows(((total + 10.0 * mean) / (n + 10.0)).astype(np.float32))
    year = np.zeros(len(counts), np.float32)
    if "year" in data.items:
        y = pd.to_numeric(data.items["year"], errors="coerce").to_numpy(np.float64)
        if np.isfinite(y).sum() > 1:
            mu, sd = np.nanmean(y), max(float(np.nanstd(y)), 1e-9)
            year = np.nan_to_num((y - mu) / sd).astype(np.float32)
    return np.column_stack([pop, rating, year]).astype(np.float32)


def item_genre_matrix(items: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """(genre names, ``[n_items, G]`` bool): the catalog's genres (``"(no genres listed)"``
    and the like left out)."""
    lists = [
        [g for g in split_multi(v) if not g.startswith("(")]
        for v in (items["genres"] if "genres" in items else [None] * len(items))
    ]
    names = sorted({g for row in lists for g in row})
    col = {g: n for n, g in enumerate(names)}
    out = np.zeros((len(lists), len(names)), bool)
    for i, row in enumerate(lists):
        out[i, [col[g] for g in row]] = True
    return names, out


def genre_match(
    request_vectors: np.ndarray, genre_vectors: np.ndarray, item_genres: np.ndarray
) -> np.ndarray:
    """``[n, n_items]``: for each request, the best similarity of the request to the names of
    the item's genres (NaN for items without genres)."""
    sims = np.asarray(request_vectors, np.float32) @ np.asarray(genre_vectors, np.float32).T
    out = np.full((len(sims), len(item_genres)), np.nan, np.float32)
    has = item_genres.any(axis=1)
    for n, row in enumerate(sims):
        out[n, has] = np.where(item_genres[has], row[None, :], -np.inf).max(axis=1)
    return out


def candidates(
    request: np.ndarray, taste: np.ndarray | None, n: int, history: np.ndarray | None = None
) -> np.ndarray:
    """One row's candidates: the top ``n`` items outside ``history`` by request similarity
    and, with a taste row, by taste; and the history's items (ranked too, for requests that
    keep seen items; the others mask them)."""
    out = np.zeros(len(request), bool)
    for row in (request, taste):
        if row is None:
            continue
        free = row.copy()
        if history is not None and len(history):
            free[history] = -np.inf
        m = min(n, len(row))
        out[np.argpartition(-free, m - 1)[:m]] = True
    if history is not None:
        out[history] = True
    return np.flatnonzero(out)


def row_features(
    request: np.ndarray,
    taste: np.ndarray | None,
    n_history: int,
    priors: np.ndarray,
    cand: np.ndarray,
    genre: np.ndarray | None = None,
) -> np.ndarray:
    """``[len(cand), len(FEATURES)]`` features of one request's candidates (``taste``: the
    row's scores, None for an empty history; ``genre``: the row's :func:`genre_match`, None
    without genres)."""
    rz = zscore_rows(request, 1e-9)
    peak = float(rz.max())
    head = float(np.sort(rz)[-10:].mean()) if len(rz) >= 10 else peak
    p = np.exp((request - request.max()) / 0.02)
    p /= p.sum()
    entropy = float(-(p * np.log(np.maximum(p, 1e-30))).sum() / np.log(max(len(p), 2)))
    out = np.zeros((len(cand), len(FEATURES)), np.float32)
    out[:, 0], out[:, 1], out[:, 2] = request[cand], rz[cand], peak - rz[cand]
    out[:, 3] = genre[cand] if genre is not None else np.nan
    if taste is not None:
        tz = zscore_rows(taste, 1e-9)
        rank = np.empty(len(taste), np.float32)
        rank[np.argsort(-taste, kind="stable")] = np.arange(len(taste), dtype=np.float32)
        out[:, 4], out[:, 5] = tz[cand], np.log1p(rank[cand])
    else:
        out[:, 4:6] = np.nan  # no history: LightGBM's missing-value branch
    out[:, 6:9] = priors[cand]
    out[:, 9], out[:, 10] = peak, head
    out[:, 11], out[:, 12] = np.log1p((rz > 3.0).sum()), entropy
    out[:, 13] = np.log1p(n_history)
    return out


def hide_pairs(data: TrainData, users: np.ndarray, items: np.ndarray) -> TrainData:
    """``data`` without the (user, item) pairs ``users[n], items[n]``."""
    from dataclasses import replace

    drop = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=data.matrix.shape)

    def cut(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
        if m is None:
            return None
        out = sp.csr_matrix(m - m.multiply(drop))
        out.eliminate_zeros()
        return out

    return replace(
        data, matrix=cut(data.matrix), recency=cut(data.recency), ratings=cut(data.ratings)
    )


def fit_request_ranker(
    data: TrainData,
    fit_sub: Callable[[TrainData], Any],
    request_scores: Callable[[list[str]], np.ndarray],
    priors: np.ndarray,
    n_requests: int,
    n_candidates: int,
    no_history_share: float,
    trees: int,
    seed: int,
    genre_scores: Callable[[list[str]], np.ndarray] | None = None,
) -> Any:
    """The LambdaRank booster, learned from :func:`simulate`'d requests: ``fit_sub`` fits a
    model like the caller's (its ``score`` gives taste) on the data without the hidden pairs;
    ``request_scores(texts)`` gives ``[n, n_items]`` request similarities and
    ``genre_scores(texts)`` the :func:`genre_match` (None: no genre feature). A share
    ``no_history_share`` of the requests is also asked with an empty history."""
    users, hidden, texts = simulate(data, n_requests, seed)
    if len(users) < 20:
        return None
    view = hide_pairs(data, users, hidden)
    sub = fit_sub(view)
    hist = sub.train_recency if sub.train_recency is not None else sub.train_matrix
    hist = sp.csr_matrix(hist[users])
    taste = sub.score(users, hist)
    req = request_scores(texts)
    genre = genre_scores(texts) if genre_scores is not None else None
    rng = np.random.default_rng(seed + 1)
    empty = rng.random(len(users)) < no_history_share
    xs, ys, groups = [], [], []
    for n in range(len(users)):
        seen = hist.indices[hist.indptr[n] : hist.indptr[n + 1]]
        asked = [(taste[n], len(seen))] + ([(None, 0)] if empty[n] else [])
        for t, length in asked:
            # the history's items are never the answer: left out of training's candidates
            cand = candidates(req[n], t, n_candidates, seen if length else None)
            cand = np.setdiff1d(cand, seen) if length else cand
            label = (cand == hidden[n]).astype(np.int32)
            if not label.any():
                continue
            g = genre[n] if genre is not None else None
            xs.append(row_features(req[n], t, length, priors, cand, g))
            ys.append(label)
            groups.append(len(cand))
    if len(groups) < 10:
        return None
    return fit_lambdarank(
        xs, ys, groups, trees=trees, num_leaves=15, min_child_samples=50, seed=seed
    )


def rank_requests(
    booster: Any,
    scores: np.ndarray,
    request: np.ndarray,
    has: np.ndarray,
    histories: sp.csr_matrix,
    priors: np.ndarray,
    n_candidates: int,
    memo: dict | None = None,
    genre: np.ndarray | None = None,
) -> np.ndarray:
    """``scores`` (taste) with each request row replaced: its candidates ordered by the ranker,
    above every other item (which keep their taste order, or the request's with no history).
    ``memo``: receives each row's candidates and features, for explanations. ``genre``:
    ``[n, n_items]`` :func:`genre_match` of the rows (None: unknown)."""
    out = scores.copy()
    n_hist = np.diff(histories.indptr)
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for n in np.flatnonzero(has):
        taste = scores[n] if n_hist[n] else None
        seen = histories.indices[histories.indptr[n] : histories.indptr[n + 1]]
        cand = candidates(request[n], taste, n_candidates, seen)
        g = genre[n] if genre is not None else None
        feats = row_features(request[n], taste, int(n_hist[n]), priors, cand, g)
        pred = booster.predict(feats, num_threads=1)
        base = zscore_rows(scores[n] if taste is not None else request[n], 1e-9)
        row = base - base.max() - 1.0
        row[cand] = pred - pred.min()
        out[n] = row
        kept[int(n)] = (cand, feats)
    if memo is not None:
        memo["requests"] = kept
    return out


def part_shares(booster: Any, feats: np.ndarray, rows: np.ndarray) -> list[dict[str, float]]:
    """For ``rows`` of one request's candidate ``feats``, each part's share of what lifts the
    item above the request's average candidate: per feature, its SHAP value (LightGBM's
    ``pred_contrib``) minus the candidates' mean, positive parts summed by part. Taste takes
    no share without a history."""
    contrib = booster.predict(feats, pred_contrib=True, num_threads=1)[:, : len(FEATURES)]
    lift = np.clip(contrib[rows] - contrib.mean(axis=0), 0, None)
    taste = [n for n, (_, part) in enumerate(FEATURES) if part == "taste"]
    if np.isnan(feats[:, taste]).all():  # no history: SHAP's interaction terms are not taste
        lift[:, taste] = 0.0
    out = []
    for row in lift:
        parts = dict.fromkeys(PART_NAMES, 0.0)
        for value, (_, part) in zip(row, FEATURES, strict=True):
            if part in parts:
                parts[part] += float(value)
        total = sum(parts.values())
        out.append({p: v / total if total > 0 else 0.0 for p, v in parts.items()})
    return out


def share_sentence(shares: dict[str, float]) -> str:
    """``ranked by the request 55%, your taste 35%, popularity and ratings 10%`` (parts with
    a share, largest first)."""
    parts = sorted(((v, p) for p, v in shares.items() if v >= 0.005), reverse=True)
    if not parts:
        return ""
    return "ranked by " + ", ".join(f"{PART_NAMES[p]} {v:.0%}" for v, p in parts)


def explain_shares(
    booster: Any, kept: dict[int, tuple[np.ndarray, np.ndarray]], items: Sequence[np.ndarray]
) -> list[list[str]]:
    """For each row of a batch, a :func:`share_sentence` per item of ``items[row]`` ("" for
    rows without a request or items outside the row's candidates)."""
    out = []
    for n, row_items in enumerate(items):
        row_items = np.asarray(row_items, np.int64)
        sentences = [""] * len(row_items)
        if n in kept and len(row_items):
            cand, feats = kept[n]
            pos = np.minimum(np.searchsorted(cand, row_items), len(cand) - 1)
            hit = np.flatnonzero(cand[pos] == row_items)
            if len(hit):
                for j, shares in zip(hit, part_shares(booster, feats, pos[hit]), strict=True):
                    sentences[int(j)] = share_sentence(shares)
        out.append(sentences)
    return out


#: the feature that rankers saved before it was added do not read
GENRE_MATCH = [name for name, _ in FEATURES].index("request_genre")


class WithoutGenreMatch:
    """A request ranker saved before the genre-match feature (``request_genre``) was added:
    it is handed every feature but that one, and its SHAP values get a zero for it, so a
    model trained by an earlier avrec keeps serving (without the genre match) until it is
    retrained."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, feats: np.ndarray, **kwargs: Any) -> np.ndarray:
        out = self.booster.predict(np.delete(feats, GENRE_MATCH, axis=1), **kwargs)
        if kwargs.get("pred_contrib"):
            out = np.insert(out, GENRE_MATCH, 0.0, axis=1)
        return out

    def model_to_string(self) -> str:
        return str(self.booster.model_to_string())

    def num_feature(self) -> int:
        return int(self.booster.num_feature())


class RequestRanker:
    """The hybrid's part for requests: the booster (``booster_``), the item priors it reads
    (``priors_``: popularity, rating, year; :func:`item_priors`) and, where the catalog has
    genres, the items' genres (``item_genres_``) and the request encoder's vectors of their
    names (``genre_vectors_``)."""

    name = "request_ranker"

    def __init__(self, config: RequestBlendConfig):
        self.config = config
        self.booster_: Any = None
        self.priors_: np.ndarray | None = None
        self.item_genres_: np.ndarray | None = None
        self.genre_vectors_: np.ndarray | None = None

    def fit(
        self,
        data: TrainData,
        fit_sub: Callable[[TrainData], Any],
        request_scores: Callable[[list[str]], np.ndarray],
        seed: int,
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> bool:
        """Learn the ranker; False (nothing learned) with fewer than ``min_users`` people of two
        or more items, or where the data gives too few requests. ``encode``: the request
        encoder (texts -> vectors), for the genre feature; None: no genre feature."""
        c = self.config
        if int((np.diff(data.matrix.indptr) >= 2).sum()) < c.min_users:
            return False
        counts = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
        self.priors_ = item_priors(data, counts)
        names, item_genres = item_genre_matrix(data.items)
        genre_scores = None
        if encode is not None and names:
            self.item_genres_ = item_genres
            self.genre_vectors_ = np.asarray(encode(names), np.float32)
            to_vectors = encode

            def genre_scores(texts: list[str]) -> np.ndarray:
                return self.genre_match(to_vectors(texts))

        self.booster_ = fit_request_ranker(
            data,
            fit_sub,
            request_scores,
            self.priors_,
            c.requests,
            c.candidates,
            c.no_history_share,
            c.trees,
            seed,
            genre_scores=genre_scores,
        )
        return self.booster_ is not None

    def genre_match(self, request_vectors: np.ndarray, n_items: int | None = None) -> np.ndarray:
        """:func:`genre_match` of requests against the items (items added since training have
        no genres here: NaN)."""
        if self.item_genres_ is None or self.genre_vectors_ is None:
            raise RuntimeError("the request ranker has no genres")
        genres = self.item_genres_
        if n_items is not None and n_items > len(genres):
            genres = np.vstack([genres, np.zeros((n_items - len(genres), genres.shape[1]), bool)])
        return genre_match(request_vectors, self.genre_vectors_, genres)

    def rank(
        self,
        scores: np.ndarray,
        request: np.ndarray,
        has: np.ndarray,
        histories: sp.csr_matrix,
        memo: dict | None = None,
        request_vectors: np.ndarray | None = None,
    ) -> np.ndarray:
        """``request_vectors``: ``[n, d]`` the rows' request vectors (for the genre feature;
        rows without a request are not read)."""
        priors = self.priors_
        if priors is None or self.booster_ is None:
            raise RuntimeError("the hybrid's request ranker is not fitted")
        if len(priors) < scores.shape[1]:  # items added since training: no evidence yet
            grow = np.zeros((scores.shape[1] - len(priors), priors.shape[1]), np.float32)
            grow[:, 0] = priors[:, 0].min()
            priors = np.vstack([priors, grow])
        genre = None
        if request_vectors is not None and self.genre_vectors_ is not None:
            genre = self.genre_match(request_vectors, scores.shape[1])
        return rank_requests(
            self.booster_,
            scores,
            request,
            has,
            histories,
            priors,
            self.config.candidates,
            memo,
            genre,
        )

    def state(self) -> dict[str, np.ndarray]:
        if self.priors_ is None or self.booster_ is None:
            raise RuntimeError("the hybrid's request ranker is not fitted")
        model = self.booster_.model_to_string().encode()
        out = {"booster": np.frombuffer(model, np.uint8), "priors": self.priors_}
        if self.item_genres_ is not None and self.genre_vectors_ is not None:
            out["item_genres"] = self.item_genres_
            out["genre_vectors"] = self.genre_vectors_
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_str=state["booster"].tobytes().decode())
        if self.booster_.num_feature() == len(FEATURES) - 1:
            self.booster_ = WithoutGenreMatch(self.booster_)
        elif self.booster_.num_feature() != len(FEATURES):
            raise AvrecError(
                f"a request ranker with {self.booster_.num_feature()} features, saved by an "
                f"earlier avrec (this one reads {len(FEATURES)}); retrain it with `avrec train`"
            )
        self.priors_ = state["priors"]
        if "genre_vectors" in state:
            self.item_genres_ = np.asarray(state["item_genres"], bool)
            self.genre_vectors_ = state["genre_vectors"]
