"""What a model can do, as explicit contracts.

Callers that need more than the base contract (:class:`avrec.models.base.Recommender`: ``fit``,
``score``, ``recommend``, ``save``/``load``) ask for a capability with ``isinstance`` instead of
probing attributes. Each protocol is ``runtime_checkable``: ``isinstance`` checks that the
members exist on the (fitted) object, not their signatures; the type checker checks those.

- :class:`ScoresUsers` -- scores a batch of users' histories over the catalog (every model).
- :class:`ScoresRequests` -- encodes free-text requests into the space of ``query_vectors``.
- :class:`HasItemVectors` -- one content vector per catalog item (``vectors``).
- :class:`HasContentPart` -- holds a content model as a part (``content``); see
  :func:`content_part` for "the content vectors of this model, wherever they live".
- :class:`ChoosesTextEncoder` -- picks the encoder of the catalog's text by its size
  (``text_encoder``), for the caller's item features.
- :class:`Explains` -- splits scores into one term per history item (``contributions``).
- :class:`UpdatesOnline` -- makes new items recommendable without retraining (``add_items``).
- :class:`PredictsRatings` -- predicts explicit ratings (``predict``).
- :class:`Saves` -- saves itself as a folder that :meth:`Recommender.load` reads back.
- :class:`Unlearns` -- removes training users' influence from its learned state in place
  (``unlearn``; exactly where the model allows it, e.g. EASE), saying what still holds them.
- :class:`UpdatesRows` -- updates its learned state exactly when some users' training rows
  change (``update_rows``; warm start, :meth:`Recommender.warm_start`).
- :class:`TrainsPrivately` -- fits with user-level differential privacy, its budget set by
  ``with_budget``; ``privacy()`` is what the fit released and spent (saved in the manifest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from avrec.data.npz import Streamed
from avrec.errors import AvrecError


@runtime_checkable
class ScoresUsers(Protocol):
    def score(
        self,
        users: np.ndarray,
        histories: sp.csr_matrix,
        queries: Sequence[str | None] | None = None,
    ) -> np.ndarray: ...


@runtime_checkable
class ScoresRequests(Protocol):
    #: ``[n_items, d]`` item vectors in the request encoder's space (None: no request encoder)
    query_vectors: np.ndarray | None

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class HasItemVectors(Protocol):
    #: ``[n_items, d]`` L2-normalised content vectors in item-vocabulary order
    vectors: np.ndarray


@runtime_checkable
class HasContentPart(Protocol):
    content: Any


@runtime_checkable
class ChoosesTextEncoder(Protocol):
    """Reads the catalog's text through an encoder it picks by the catalog's size, so that
    the caller computes the item features' ``"text"`` with that encoder (and no other)."""

    def text_encoder(self, n_items: int) -> str: ...


@runtime_checkable
class Explains(Protocol):
    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray | None: ...


@runtime_checkable
class UpdatesOnline(Protocol):
    def add_items(self, items: pd.DataFrame) -> list[str]: ...


@runtime_checkable
class PredictsRatings(Protocol):
    def predict(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Saves(Protocol):
    def save(self, path: str | Path) -> Path: ...


@runtime_checkable
class TrainsPrivately(Protocol):
    def with_budget(self, epsilon: float, delta: float | None = None) -> Any: ...

    def privacy(self) -> dict[str, Any] | None: ...


class NotUpdatable(AvrecError, RuntimeError):
    """A fitted model that cannot be updated in place (e.g. saved before it kept what an
    update needs): retrain it instead."""


@dataclass
class Unlearned:
    """What :meth:`Unlearns.unlearn` changed: the saved arrays to replace, by state file
    relative to the model folder (``"state.npz"``, ``"parts/backbone/state.npz"``) and key,
    and the parts that still hold the users until the next training (empty: none do)."""

    arrays: Mapping[str, Mapping[str, np.ndarray | Streamed]]
    pending: list[str] = field(default_factory=list)


@runtime_checkable
class Unlearns(Protocol):
    def unlearn(self, rows: np.ndarray) -> Unlearned:
        """Update the learned state as if training rows ``rows`` (user indices) were absent
        (rows of per-user arrays are models.forget's to drop)."""
        ...


@runtime_checkable
class UpdatesRows(Protocol):
    def update_rows(self, old: sp.csr_matrix, new: sp.csr_matrix) -> None:
        """Update the learned state exactly as if the training rows ``old`` (users x items)
        had been ``new`` (the same users; an empty row: none); raises
        :class:`NotUpdatable` where it cannot."""
        ...

    def update_rank(self, old: sp.csr_matrix, new: sp.csr_matrix) -> int:
        """The rank of that update (its cost is about ``rank / n_items`` of a fit's)."""
        ...


def content_part(model: object) -> HasItemVectors | None:
    """The object holding ``model``'s item content vectors: its content part, or the model
    itself; None for a model without content vectors."""
    part = model.content if isinstance(model, HasContentPart) else model
    if isinstance(part, HasItemVectors) and part.vectors is not None:
        return part
    return None


def request_encoder(model: object) -> ScoresRequests | None:
    """The part of ``model`` that encodes free-text requests, or None when it has none."""
    part = model.content if isinstance(model, HasContentPart) else model
    if isinstance(part, ScoresRequests) and part.query_vectors is not None:
        return part
    return None
