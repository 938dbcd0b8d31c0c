"""The training matrices from interaction codes: one function that the in-memory path
(``TrainData.from_dataset``) and the streamed path (:mod:`avrec.data.stream`) both call, so the
two give the same matrices by construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class InteractionMatrices:
    """users x items matrices of one set of interactions (rows and columns: vocabulary codes)."""

    #: one entry per (user, item) pair: the largest weight given (1 where none)
    matrix: sp.csr_matrix
    #: the last explicit rating per pair (by timestamp, ties in file order); None without ratings
    ratings: sp.csr_matrix | None
    #: same pattern as ``matrix``: 1 for each user's most recent item, 2 for the one before, ...
    recency: sp.csr_matrix


def recency_matrix(
    rows: np.ndarray, cols: np.ndarray, times: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """1 for each user's most recent item, 2 for the one before, ... (ties: file order)."""
    key = _pair_keys(rows, cols, shape)
    times = np.asarray(times, dtype=np.float64)
    order = np.lexsort((times, key))  # by pair, then time; stable: equal times in file order
    kept = order[_group_ends(key[order])]  # each pair's latest interaction
    del order, key
    by_user = np.lexsort((kept, times[kept], np.asarray(rows)[kept]))  # user, time, file order
    kept = kept[by_user]
    users = np.asarray(rows)[kept]
    rank = _group_ends_distance(users)
    return sp.csr_matrix((rank.astype(np.float32), (users, np.asarray(cols)[kept])), shape=shape)


def _pair_keys(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """One int64 per (user, item) pair, ordered as (user, item)."""
    return np.asarray(rows, dtype=np.int64) * shape[1] + np.asarray(cols, dtype=np.int64)


def _group_ends(sorted_keys: np.ndarray) -> np.ndarray:
    """Mask of the last element of each run of equal keys."""
    ends = np.ones(len(sorted_keys), dtype=bool)
    ends[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    return ends


def _group_ends_distance(sorted_keys: np.ndarray) -> np.ndarray:
    """For each element, 1 + how many elements follow it in its run of equal keys."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, np.int64)
    ends = np.flatnonzero(_group_ends(sorted_keys))
    run_end = np.repeat(ends, np.diff(np.r_[-1, ends]))
    return run_end - np.arange(n) + 1


def interaction_matrices(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    ratings: np.ndarray,
    times: np.ndarray,
    shape: tuple[int, int],
) -> InteractionMatrices:
    """The matrices of interactions given in file order: user codes ``rows``, item codes
    ``cols``, ``weights`` (NaN: 1), ``ratings`` (NaN: none) and ``times`` (NaN: none).
    Sorting int64 pair keys with numpy keeps the peak near a few arrays of the input's length."""
    key = _pair_keys(rows, cols, shape)
    # one entry per pair: repeated interactions keep the largest weight
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]][: len(key)])
    values = np.where(np.isnan(weights), 1.0, weights).astype(np.float32)[order]
    del order
    largest = np.maximum.reduceat(values, starts) if len(starts) else values[:0]
    pairs = sorted_keys[starts]
    del values, sorted_keys, starts
    matrix = sp.csr_matrix((largest, (pairs // shape[1], pairs % shape[1])), shape=shape)
    del largest, pairs
    rated_matrix = None
    rated = np.flatnonzero(~np.isnan(ratings))
    if len(rated):
        # the last rating per pair: latest timestamp (none: 0), ties in file order
        rated_keys = key[rated]
        order = np.lexsort((np.nan_to_num(times[rated], nan=0.0), rated_keys))
        last = order[_group_ends(rated_keys[order])]
        pairs = rated_keys[last]
        rated_matrix = sp.csr_matrix(
            (ratings[rated][last].astype(np.float32), (pairs // shape[1], pairs % shape[1])),
            shape=shape,
        )
        del rated_keys, order, last, pairs
    del key, rated
    recency = recency_matrix(rows, cols, np.nan_to_num(times, nan=-1.0), shape)
    return InteractionMatrices(matrix, rated_matrix, recency)
