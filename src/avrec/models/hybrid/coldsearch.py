"""Approximate top-k searches of the cold-items part on large catalogs (faiss IVF).

The exact searches of models.hybrid.coldmap score every cold item against every warm item
(content neighbours) and against every item (ridge-map columns): work that grows with cold
items x all items. Above ``ann_above`` indexed rows they search an inverted-file index
instead: the rows are clustered once (spherical k-means on a fixed-size sample), and each
query scores only the rows of the ``NPROBE`` clusters nearest to it, so a query costs about
``NPROBE / nlist`` of a full scan. Scores of the rows found are exact inner products; what is
approximate is which rows are found. Deterministic: a fixed k-means seed and sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avrec.models.arrays import row_blocks

#: clusters each query visits
NPROBE = 8
#: k-means trains on at most this many rows per cluster (a fixed sample)
TRAIN_ROWS_PER_LIST = 32


def n_lists(n: int) -> int:
    """Clusters of an index over ``n`` rows: about ``2 sqrt(n)``, at least 39 rows each."""
    return max(1, min(int(2 * np.sqrt(n)), n // 39))


def ivf_index(base: np.ndarray, seed: int = 1234) -> Any:
    """A faiss ``IndexIVFFlat`` over the rows of ``base`` scored by inner product."""
    import faiss

    base = np.ascontiguousarray(base, dtype=np.float32)
    n, d = base.shape
    nlist = n_lists(n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.niter = 8
    index.cp.spherical = True  # centroids on the unit sphere: clusters of directions
    index.cp.max_points_per_centroid = TRAIN_ROWS_PER_LIST
    index.cp.min_points_per_centroid = 1  # a small sample is enough to place the lists
    index.train(base)
    index.add(base)
    index.nprobe = min(NPROBE, nlist)
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(scores [n, k], rows [n, k])`` of the ``k`` largest inner products of each query,
    best first; a query with fewer than ``k`` rows in its clusters pads with row ``-1`` and
    score ``-inf``."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    scores = np.empty((len(queries), k), np.float32)
    rows = np.empty((len(queries), k), np.int64)
    for block in row_blocks(len(queries), 16_384):
        scores[block], rows[block] = index.search(queries[block], k)
    scores[rows < 0] = -np.inf
    return scores, rows
