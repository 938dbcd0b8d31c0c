"""The training matrices from interaction codes: one function that the in-memory path
(``TrainData.from_dataset``) and the streamed path (:mod:`avrec.data.stream`) both call, so the
two give the same matrices by construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
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
    frame = pd.DataFrame({"r": rows, "c": cols, "t": times, "o": np.arange(len(rows))})
    frame = frame.sort_values(["r", "t", "o"]).drop_duplicates(["r", "c"], keep="last")
    rank = frame.groupby("r").cumcount(ascending=False).to_numpy() + 1
    return sp.csr_matrix((rank.astype(np.float32), (frame["r"], frame["c"])), shape=shape)


def interaction_matrices(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    ratings: np.ndarray,
    times: np.ndarray,
    shape: tuple[int, int],
) -> InteractionMatrices:
    """The matrices of interactions given in file order: user codes ``rows``, item codes
    ``cols``, ``weights`` (NaN: 1), ``ratings`` (NaN: none) and ``times`` (NaN: none)."""
    values = np.where(np.isnan(weights), 1.0, weights).astype(np.float32)
    # one entry per pair: repeated interactions keep the largest weight
    dedup = pd.DataFrame({"r": rows, "c": cols, "v": values}).groupby(["r", "c"])["v"].max()
    matrix = sp.csr_matrix(
        (
            dedup.to_numpy(np.float32),
            (dedup.index.get_level_values(0), dedup.index.get_level_values(1)),
        ),
        shape=shape,
    )
    del dedup
    rated_matrix = None
    rated = ~np.isnan(ratings)
    if rated.any():
        order = np.nan_to_num(times[rated], nan=0.0).argsort(kind="stable")
        r = pd.DataFrame(
            {"r": rows[rated][order], "c": cols[rated][order], "v": ratings[rated][order]}
        ).drop_duplicates(["r", "c"], keep="last")
        rated_matrix = sp.csr_matrix((r["v"].to_numpy(np.float32), (r["r"], r["c"])), shape=shape)
    recency = recency_matrix(rows, cols, np.nan_to_num(times, nan=-1.0), shape)
    return InteractionMatrices(matrix, rated_matrix, recency)
