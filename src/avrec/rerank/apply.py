"""One entry point for re-ranking a scored candidate list: a method and one 0-1 knob.

``rerank(candidates, scores, k, kind=..., diversity=..., debias=...)``:

- ``"none"``: the score order;
- ``"mmr"``: maximal marginal relevance, the knob is MMR's ``lambda`` (weight of the maximum
  similarity to the items already picked);
- ``"dpp"``: greedy DPP MAP inference, the knob is ``1 - theta`` of Chen et al. (quality
  ``exp(alpha * rel)``, ``alpha = theta / (2 (1 - theta))``);
- ``"calibrated"``: Steck's calibration (each place's relevance weighted by its NDCG discount,
  rerank.calibration), the knob is his ``lambda`` (weight of the KL term).

The knob 0 is the score order for every method. ``debias`` (``beta >= 0``) first replaces the
scores by ``z(score) - beta * z(log(1 + popularity))`` over the candidates (z: z-score), a
popularity penalty applied before any method. :func:`check_options` is the one validation of
these settings (library, CLI requests and options alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avrec.errors import AvrecError
from avrec.models.scaling import zscore_rows
from avrec.rerank.calibration import calibrated
from avrec.rerank.diversity import mmr
from avrec.rerank.dpp import dpp, score_order

KINDS = ("none", "mmr", "dpp", "calibrated")
#: the largest popularity penalty accepted (in standard deviations of the scores)
MAX_DEBIAS = 10.0


class RerankOptionError(AvrecError):
    """A re-ranking setting out of its range, or a method without what it needs."""


@dataclass(frozen=True)
class RerankOptions:
    kind: str = "none"
    diversity: float = 0.0
    debias: float = 0.0

    @property
    def active(self) -> bool:
        """Whether the list can differ from the score order."""
        return (self.kind != "none" and self.diversity > 0) or self.debias > 0


def check_options(
    kind: object = "none", diversity: object = 0.0, debias: object = 0.0
) -> RerankOptions:
    """The validated settings, or a :class:`RerankOptionError` that names the bad value."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise RerankOptionError(f"rerank must be one of {', '.join(KINDS)}; got {kind!r}")
    values = []
    for name, value, top in (("diversity", diversity, 1.0), ("debias", debias, MAX_DEBIAS)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RerankOptionError(f"{name} must be a number in [0, {top:g}]; got {value!r}")
        if not math.isfinite(value) or not 0.0 <= value <= top:
            raise RerankOptionError(f"{name} must be in [0, {top:g}]; got {value!r}")
        values.append(float(value))
    return RerankOptions(kind, values[0], values[1])


def zscore(values: np.ndarray) -> np.ndarray:
    """``(v - mean) / std`` over the finite values (0 where they are all equal); non-finite
    values stay as they are."""
    v = np.asarray(values, dtype=np.float64).copy()
    finite = np.isfinite(v)
    if finite.any():
        v[finite] = zscore_rows(v[finite])
    return v


def debiased(scores: np.ndarray, popularity: np.ndarray, beta: float) -> np.ndarray:
    """``z(score) - beta * z(log(1 + popularity))`` (popularity: interaction counts, aligned
    with ``scores``); non-finite scores stay non-finite."""
    pop = np.log1p(np.maximum(np.asarray(popularity, dtype=np.float64), 0.0))
    finite = np.isfinite(np.asarray(scores, dtype=np.float64))
    penalty = np.zeros_like(pop)
    penalty[finite] = zscore(pop[finite])
    return zscore(scores) - beta * penalty


def rerank(
    candidates: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    kind: str = "none",
    diversity: float = 0.0,
    debias: float = 0.0,
    item_vectors: np.ndarray | None = None,
    item_genres: np.ndarray | None = None,
    target: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    similarity: np.ndarray | None = None,
) -> np.ndarray:
    """The ``k`` items of ``candidates`` (item indices, any order; ``scores`` aligned) to show,
    best first. ``item_vectors`` ``[n_items, d]``: content vectors (MMR, DPP);
    ``item_genres`` ``[n_items, G]`` rows ``p(g|i)`` and ``target`` the person's genre
    distribution (calibrated); ``popularity`` ``[n_items]`` interaction counts (debias);
    ``similarity``: the candidates' cosine matrix where already computed (aligned with them;
    diagonal 1 as :func:`avrec.rerank.dpp.similarity_kernel` makes it), shared by MMR and DPP."""
    opts = check_options(kind, diversity, debias)
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if opts.debias > 0:
        if popularity is None:
            raise RerankOptionError("debias needs the items' popularity")
        scores = debiased(scores, np.asarray(popularity)[candidates], opts.debias)
    if opts.kind == "none" or opts.diversity == 0:
        return score_order(candidates, scores)[0][:k]
    if opts.kind in ("mmr", "dpp"):
        if item_vectors is None and similarity is None:
            raise RerankOptionError(f"rerank {opts.kind} needs item vectors")
        vectors = item_vectors if item_vectors is not None else np.zeros((0, 0))
        if opts.kind == "dpp":
            return dpp(candidates, scores, vectors, k, opts.diversity, similarity=similarity)
        # MMR breaks ties by position: give it the score order, ties in the input order
        finite = np.isfinite(scores)
        order = np.argsort(-scores[finite], kind="stable")
        sim = None if similarity is None else np.asarray(similarity)[np.ix_(finite, finite)]
        return mmr(
            candidates[finite][order],
            scores[finite][order],
            vectors,
            k,
            opts.diversity,
            similarity=None if sim is None else sim[np.ix_(order, order)],
        )
    if item_genres is None or target is None:
        raise RerankOptionError("rerank calibrated needs item genres and the history's genres")
    return calibrated(candidates, scores, item_genres, target, k, opts.diversity)
