"""EASE (Steck 2019): a closed-form item-item linear autoencoder, a strong ranking baseline.

Two optional extensions (off by default, so ``ease`` stays the published baseline):
- ``dropout``: the denoising form of EASE (EDLAE/DLAE, Steck 2020): item ``i``'s penalty grows
  with its own count, ``l2 + p / (1 - p) * G_ii``, as if each input were dropped with
  probability ``p`` during training;
- ``side_weight``: content as extra co-occurrence evidence (collective EASE): the Gram matrix
  gets ``side_weight * F F^T`` for item features ``F`` (genres, people, text vectors), so items
  that share a director or a story lean on each other where interactions are thin.

:func:`rating_factors` turns explicit ratings into per-interaction weights of EASE's input (the
hybrid uses it there and for the history at scoring time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from avrec.data.npz import Streamed
from avrec.models.arrays import row_blocks, spd_inverse
from avrec.models.base import STATE, ModelConfig, Recommender, TrainData
from avrec.models.capabilities import NotUpdatable, Unlearned
from avrec.models.memory import require_dense

#: fit's peak memory per items x items cell: the float64 Gram matrix (inverted in place) and
#: the float32 weights (measured on ml-latest-small by models.memory.PeakMemory: 14.5)
PEAK_BYTES_PER_CELL = 15.0


class EASEConfig(ModelConfig):
    l2: float = 500.0
    #: treat every interaction as 1 (True) or use the interaction weights
    binary: bool = True
    #: denoising emphasis p in [0, 1): penalty l2 + p / (1 - p) * count on each item
    dropout: float = 0.0
    #: weight of item side information F F^T added to the Gram matrix (0: interactions only)
    side_weight: float = 0.0


def gram_matrix(x: sp.csr_matrix) -> np.ndarray:
    """The dense float64 items x items Gram matrix ``X^T X`` of a users x items matrix."""
    x = sp.csr_matrix(x, dtype=np.float64)
    xt = x.T.tocsr()
    n = x.shape[1]
    gram = np.empty((n, n), np.float64)
    for rows in row_blocks(n):  # the sparse product is never whole
        gram[rows] = (xt[rows] @ x).toarray()
    return gram


def weights_from_gram(gram: np.ndarray, penalty: float | np.ndarray) -> np.ndarray:
    """EASE's closed form ``B = I - P / diag(P)``, ``P = (G + diag(penalty))^-1``, zero
    diagonal, from a C-contiguous float64 Gram matrix (overwritten: inverted in place)."""
    return solution_from_gram(gram, penalty)[0]


def solution_from_gram(
    gram: np.ndarray, penalty: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`weights_from_gram` and ``diag(P)`` (float64), which with the weights gives back
    ``P`` for low-rank updates (models.baselines.ease_update)."""
    gram[np.diag_indices_from(gram)] += penalty
    try:
        p = spd_inverse(gram)  # in place: gram is p from here on
    except np.linalg.LinAlgError as err:
        raise ValueError(
            f"EASE: the regularised Gram matrix is not invertible ({err}); use l2 > 0 (or a "
            f"larger one; got a smallest penalty of {np.min(penalty):g})"
        ) from err
    n = len(p)
    diag = np.diag(p).copy()
    scale = -1.0 / diag
    b = np.empty((n, n), np.float32)
    for rows in row_blocks(n):
        b[rows] = p[rows] * scale
    b[np.diag_indices_from(b)] = 0.0
    return b, diag


def ease_weights(
    x: sp.csr_matrix,
    l2: float,
    dropout: float = 0.0,
    side: np.ndarray | None = None,
    side_weight: float = 0.0,
) -> np.ndarray:
    """The item x item weight matrix ``B`` (zero diagonal) from a users x items matrix."""
    return ease_solution(x, l2, dropout, side, side_weight)[0]


def ease_solution(
    x: sp.csr_matrix,
    l2: float,
    dropout: float = 0.0,
    side: np.ndarray | None = None,
    side_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ease_weights` and ``diag(P)`` (see :func:`solution_from_gram`)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    gram = gram_matrix(x)
    n = gram.shape[0]
    counts = np.diag(gram).copy()
    if side is not None and side_weight > 0:
        f = np.asarray(side, dtype=np.float64)
        for rows in row_blocks(n):
            gram[rows] += side_weight * (f[rows] @ f.T)
    return solution_from_gram(gram, l2 + dropout / (1.0 - dropout) * counts)


def side_features(
    data: TrainData, text: np.ndarray | None = None, text_weight: float = 0.5
) -> np.ndarray:
    """``F`` for ``side_weight``: genre indicators, people named in ``tags`` (director, cast;
    rows L2-normalised) and, if given, ``text_weight`` times the unit text vectors."""
    from avrec.fusion.features import genre_matrix, people_matrix

    genres = data.item_features.get("genres")
    if genres is None and "genres" in data.items:
        genres = genre_matrix(data.items)
    blocks = [people_matrix(data.items)]
    if genres is not None:
        blocks.append(np.asarray(genres, np.float32))
    if text is not None:
        blocks.append(text_weight * np.asarray(text, np.float32))
    return np.hstack(blocks)


def ease_inputs(
    data: TrainData, binary: bool, side_weight: float
) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """What EASE and sparse EASE solve on: the interactions as float64 (0/1 with ``binary``)
    and, with a side-information weight, the side features of the items."""
    x = data.matrix.astype(np.float64)
    if binary:
        x = (x > 0).astype(np.float64)
    side = side_features(data, data.item_features.get("text")) if side_weight > 0 else None
    return x, side


class EASE(Recommender):
    name = "ease"
    Config = EASEConfig
    config: EASEConfig

    #: unlearning reads the weights mapped from the saved folder and no catalog
    #: (models.forget.unlearned): the update streams the new weights to the new file
    unlearns_mapped: ClassVar[bool] = True

    #: ``diag(P)`` of the fit (float64; None for folders saved before it was kept): with the
    #: weights it gives back ``P`` for exact low-rank updates (models.baselines.ease_update)
    inverse_diag_: np.ndarray | None = None

    def _fit(self, data: TrainData) -> None:
        require_dense(self.name, data.matrix.shape[1], PEAK_BYTES_PER_CELL)
        x, side = ease_inputs(data, self.config.binary, self.config.side_weight)
        self.weights, self.inverse_diag_ = ease_solution(
            x, self.config.l2, self.config.dropout, side, self.config.side_weight
        )

    def _input(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """Rows of the training matrix as EASE's input (float64; 0/1 with ``binary``)."""
        x = sp.csr_matrix(rows, dtype=np.float64)
        return (x > 0).astype(np.float64) if self.config.binary else x

    def update_rows(self, old: sp.csr_matrix, new: sp.csr_matrix) -> None:
        """The weights as if the training rows ``old`` had been ``new`` (the same users' rows
        of the training matrix, users x items; an empty row: the user is gone), exactly, by a
        low-rank update (models.baselines.ease_update; the weights array is overwritten). The
        vocabularies and training matrix are the caller's to change."""
        from avrec.models.baselines.ease_update import update_rows

        self.weights, self.inverse_diag_ = update_rows(
            self.weights, self._solution_diag(), self._input(old), self._input(new),
            self.config.dropout, in_place=True,
        )  # fmt: skip

    def _solution_diag(self) -> np.ndarray:
        """``diag(P)`` of the fit, which low-rank updates need."""
        if self.inverse_diag_ is None or len(self.inverse_diag_) != self.weights.shape[0]:
            raise NotUpdatable(
                "this EASE model keeps no diag(P) for its catalog (saved by an earlier avrec, "
                "or items were added since); retrain it"
            )
        return self.inverse_diag_

    def update_rank(self, old: sp.csr_matrix, new: sp.csr_matrix) -> int:
        from avrec.models.baselines.ease_update import gram_change

        return gram_change(self._input(old), self._input(new), self.config.dropout)[2].shape[0]

    def unlearn(self, rows: np.ndarray) -> Unlearned:
        """The weights without training rows ``rows``, updated in place; where they are
        mapped read-only from the saved folder (loaded to be unlearned,
        :attr:`unlearns_mapped`) the model in memory keeps them and the updated weights are
        computed as they are written to the new folder (``data.npz.Streamed``): no copy of
        the items x items array is read whole or held."""
        from avrec.models.baselines.ease_update import rows_update

        old = self.fitted_parts()[2][rows]
        empty = sp.csr_matrix(old.shape, dtype=np.float64)
        if self.weights.flags.writeable:
            self.update_rows(old, empty)
            return Unlearned({STATE: {f"state__{k}": v for k, v in self.state_arrays().items()}})
        weights, diag = self.weights, self._solution_diag()
        change = rows_update(weights, diag, self._input(old), empty, self.config.dropout)
        stream = Streamed(weights.shape, weights.dtype, lambda: change.blocks(weights))
        return Unlearned({STATE: {"state__weights": stream, "state__inverse_diag": change.diag}})

    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        h = histories if not self.config.binary else (histories > 0).astype(np.float32)
        return np.asarray(h @ self.weights, dtype=np.float32)

    def item_similarity(self) -> np.ndarray:
        """Item-to-item weights (used for explanations: which history items drove a score)."""
        return self.weights

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        return self.weights[np.ix_(history.indices, items)].T

    def state_arrays(self) -> dict[str, np.ndarray]:
        extra = {} if self.inverse_diag_ is None else {"inverse_diag": self.inverse_diag_}
        return {"weights": self.weights, **extra}

    def load_state_arrays(self, state, path) -> None:
        self.weights = state["weights"]
        self.inverse_diag_ = state.get("inverse_diag")


def rating_factors(
    data: TrainData, weight: float, center: float | None = None
) -> sp.csr_matrix | None:
    """Users x items weights ``1 + weight * (rating - center) / 2`` on the training pairs (1
    where a pair has no rating; ``center``: the ratings' mean if None); None when ``weight`` is
    0 or the data has no ratings."""
    if weight <= 0 or data.ratings is None or data.ratings.nnz == 0:
        return None
    x = (data.matrix > 0).astype(np.float32).tocsr()
    r = data.ratings.tocsr()
    mean = float(r.data.mean()) if center is None else center
    bonus = r.copy()
    bonus.data = weight * (bonus.data - mean) / 2.0
    factor = (x + bonus.multiply(x)).tocsr()  # 1 + bonus on the training pairs
    factor.data = np.maximum(factor.data, 0.05).astype(np.float32)
    return factor
