"""A synthetic catalog for the speed benchmarks: ``n`` items with low-rank 384-d unit vectors
(clustered like text embeddings, unlike pure Gaussian noise, which is the worst case for any
ANN index), kinds/languages/genres tied to the clusters, and users whose histories come from
one cluster each. Saved as a real avrec ``content`` model directory (no text encoding: the
vectors are given)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

DIM = 384
GENRES = [
    "Drama",
    "Comedy",
    "Action",
    "Jazz",
    "Rock",
    "Classical",
    "News",
    "Science",
    "Horror",
    "Romance",
    "Ambient",
    "Hip hop",
    "Documentary",
    "Animation",
    "Folk",
    "Thriller",
]
KINDS = ["movie", "music", "podcast", "series"]
LANGUAGES = ["en", "zh", "fr", "es"]


def item_vectors(
    n: int, rank: int = 48, clusters: int = 256, seed: int = 0, chunk: int = 200_000
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 [n, DIM] L2-normalised, cluster of each item)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, DIM)).astype(np.float32)
    centres = rng.normal(size=(clusters, rank)).astype(np.float32)
    cluster = rng.integers(0, clusters, n)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        z = centres[cluster[start:stop]] + 0.8 * rng.normal(size=(stop - start, rank)).astype(
            np.float32
        )
        v = z @ basis + 0.5 * rng.normal(size=(stop - start, DIM)).astype(np.float32)
        out[start:stop] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out, cluster


def item_clusters(n: int, rank: int = 48, clusters: int = 256, seed: int = 0) -> np.ndarray:
    """The cluster of each item, as :func:`item_vectors` draws it (same seed, same clusters),
    without the vectors (1.5 GiB at 1,000,000 items)."""
    rng = np.random.default_rng(seed)
    rng.normal(size=(rank, DIM))  # the basis and centres come first in item_vectors' draws
    rng.normal(size=(clusters, rank))
    return rng.integers(0, clusters, n)


def item_ids(n: int) -> list[str]:
    return [f"i{n:07d}" for n in range(n)]


def catalog(cluster: np.ndarray) -> pd.DataFrame:
    n = len(cluster)
    ids = item_ids(n)
    g1 = np.array(GENRES)[cluster % len(GENRES)]
    g2 = np.array(GENRES)[(cluster // len(GENRES)) % len(GENRES)]
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Synthetic item {i}" for i in range(n)],
            "genres": np.char.add(np.char.add(g1.astype(str), "|"), g2.astype(str)),
            "kind": np.array(KINDS)[cluster % len(KINDS)],
            "language": np.array(LANGUAGES)[(cluster // 7) % len(LANGUAGES)],
            "year": 1950 + cluster % 75,
        }
    )


def histories(cluster: np.ndarray, users: int, per_user: int, seed: int = 1) -> sp.csr_matrix:
    """Each user interacts with ``per_user`` items of one cluster."""
    rng = np.random.default_rng(seed)
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.arange(cluster.max() + 2))
    rows, cols = [], []
    for u in range(users):
        c = rng.integers(0, cluster.max() + 1)
        members = order[bounds[c] : bounds[c + 1]]
        pick = rng.choice(members, min(per_user, len(members)), replace=False)
        rows += [u] * len(pick)
        cols += pick.tolist()
    ranks = np.concatenate(
        [
            np.arange(len(r), 0, -1)
            for r in np.split(np.array(cols), np.cumsum(np.bincount(rows, minlength=users))[:-1])
        ]
    ).astype(np.float32)
    return sp.csr_matrix((ranks, (rows, cols)), shape=(users, len(cluster)))


def _fill_training(model, cluster: np.ndarray, users: int, per_user: int) -> None:
    """The fitted state a saved model needs: vocabularies, :func:`histories` of ``users``
    people as its training rows (recency-ranked and binary) and the catalog."""
    from avrec.data.vocab import Vocabulary

    recency = histories(cluster, users, per_user)
    model.user_vocab = Vocabulary([f"u{u}" for u in range(users)])
    model.item_vocab = Vocabulary(item_ids(len(cluster)))
    model.train_recency = recency
    model.train_matrix = sp.csr_matrix(
        (np.ones_like(recency.data), recency.indices, recency.indptr), shape=recency.shape
    )
    model.catalog = catalog(cluster)


def save_content_model(
    folder: Path, vectors: np.ndarray, cluster: np.ndarray, users: int = 20_000, per_user: int = 10
) -> Path:
    """A ``content`` model over the given vectors (no request encoder), saved with avrec's own
    format, so ``avrec serve`` loads it like any trained model."""
    from avrec.models.content import Content

    model = Content(query_encoder=None)
    _fill_training(model, cluster, users, per_user)
    model.vectors = vectors
    model.query_vectors = None
    return model.save(folder)


def save_sparse_ease_model(
    folder: Path, cluster: np.ndarray, users: int = 30_000, per_user: int = 15
) -> dict:
    """A ``sparse-ease`` model (its default settings) fitted on :func:`histories` of ``users``
    people with ``per_user`` items of one cluster each (latent tastes), with the catalog of
    :func:`catalog`, saved with avrec's own format. Returns the fit's wall seconds and the
    process's peak RSS (MiB) before and after the fit (``ru_maxrss`` only grows: a larger
    figure after is the fit's peak)."""
    import resource
    import time

    from avrec.models.baselines.sparse_ease import SparseEASE, sparse_ease_weights

    def peak_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    model = SparseEASE()
    _fill_training(model, cluster, users, per_user)
    before = peak_mib()
    cfg = model.config
    t0 = time.perf_counter()
    model.weights = sparse_ease_weights(
        model.train_matrix,
        cfg.l2,
        cfg.neighbors,
        cfg.dropout,
        by=cfg.neighbours_by,
    )
    fit_s = time.perf_counter() - t0
    after = peak_mib()
    model.save(folder)
    return {
        "fit_s": fit_s,
        "peak_mib_before_fit": before,
        "peak_mib_after_fit": after,
        "neighbors": cfg.neighbors,
        "interactions": int(model.train_matrix.nnz),
        "weights_nnz": int(model.weights.nnz),
    }


def taste_interactions(
    n_users: int = 100_000,
    n_items: int = 5_000,
    mean_items: float = 22.0,
    factors: int = 16,
    seed: int = 0,
    chunk: int = 2_000,
    taste_scale: float = 3.0,
) -> sp.csr_matrix:
    """A binary users x items matrix from latent tastes with a popularity long tail: item
    ``i`` has popularity ``exp(N(0, 1.2^2))`` and a taste vector near one of 64 centres; user
    ``u`` has a taste near one or two centres and ``n_u ~ 3 + lognormal`` items, drawn
    without replacement with probability proportional to ``popularity * exp(taste_scale
    taste . item)`` (Gumbel top-k). ``taste_scale`` sets how much of a user's choice is taste
    rather than popularity (docs/benchmarks.md, "Privacy: the DP backbone on a synthetic
    catalog with MovieLens's taste signal")."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, factors)) / np.sqrt(factors)
    item_c = rng.integers(0, 64, n_items)
    items = centres[item_c] + 0.5 * rng.normal(size=(n_items, factors)) / np.sqrt(factors)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    log_pop = rng.normal(0.0, 1.2, n_items)
    sizes = 3 + np.floor(rng.lognormal(np.log(mean_items - 5), 0.9, n_users)).astype(int)
    sizes = np.minimum(sizes, n_items // 4)
    rows, cols = [], []
    for start in range(0, n_users, chunk):
        stop = min(n_users, start + chunk)
        n = stop - start
        pick = rng.integers(0, 64, (n, 2))
        mix = rng.random((n, 1))
        taste = mix * centres[pick[:, 0]] + (1 - mix) * centres[pick[:, 1]]
        taste += 0.3 * rng.normal(size=(n, factors)) / np.sqrt(factors)
        taste /= np.linalg.norm(taste, axis=1, keepdims=True)
        logits = taste_scale * taste @ items.T + log_pop + rng.gumbel(size=(n, n_items))
        width = int(sizes[start:stop].max())
        top = np.argpartition(-logits, width - 1, axis=1)[:, :width]
        order = np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        for r in range(n):
            k = sizes[start + r]
            rows.append(np.full(k, start + r))
            cols.append(top[r, :k])
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_users, n_items))


def taste_dataset(matrix: sp.csr_matrix, seed: int = 0):
    """``matrix`` as an avrec :class:`~avrec.data.Dataset` (users ``u<row>``, items
    ``i<column>``, seeded random timestamps), for the evaluation protocols."""
    from avrec.data import Dataset

    coo = matrix.tocoo()
    rng = np.random.default_rng(seed)
    inter = pd.DataFrame(
        {
            "user_id": np.char.add("u", coo.row.astype(str)).astype(object),
            "item_id": np.char.add("i", coo.col.astype(str)).astype(object),
            "timestamp": rng.integers(10**9, 16 * 10**8, len(coo.row)),
        }
    )
    n = matrix.shape[1]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "title": [f"Synthetic item {i}" for i in range(n)],
            "genres": np.array(GENRES)[np.arange(n) % len(GENRES)],
        }
    )
    return Dataset(items, inter, name="synthetic-100k")
