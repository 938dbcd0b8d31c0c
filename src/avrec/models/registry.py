"""Model registry: name -> class, imported lazily so heavy libraries load only when used."""

from __future__ import annotations

import importlib

from avrec.models.base import Recommender

_MODELS: dict[str, str] = {
    "popularity": "avrec.models.popularity:Popularity",
    "itemknn": "avrec.models.itemknn:ItemKNN",
    "ease": "avrec.models.ease:EASE",
    "als": "avrec.models.factorization:ALS",
    "bpr": "avrec.models.factorization:BPR",
    "bias": "avrec.models.bias:Bias",
    "rating": "avrec.models.rating:Rating",
    "content": "avrec.models.content:Content",
    "hybrid": "avrec.models.hybrid:Hybrid",
    "hybrid-ltr": "avrec.models.ranker:Ranker",
    "two-tower": "avrec.models.two_tower:TwoTower",
    "sequential": "avrec.models.sequential:Sequential",
    "vae": "avrec.models.vae:MultVAE",
}

DEFAULT_MODEL = "hybrid"
#: the recommended model for catalogs too large for :data:`DEFAULT_MODEL`'s items x items
#: weights in this machine's memory: content-aware (cold items, requests), and its memory grows
#: with the catalog rather than with its square
LARGE_CATALOG_MODEL = "two-tower"


def default_model(n_items: int) -> tuple[str, str | None]:
    """The recommended model for a catalog of ``n_items`` items, and why it is not
    :data:`DEFAULT_MODEL` (None when it is): the hybrid where its weights fit in the available
    memory, :data:`LARGE_CATALOG_MODEL` otherwise."""
    from avrec.models.hybrid import PEAK_BYTES_PER_CELL
    from avrec.models.memory import ResourceError, require_dense

    try:
        require_dense(DEFAULT_MODEL, n_items, PEAK_BYTES_PER_CELL)
    except ResourceError as exc:
        return LARGE_CATALOG_MODEL, str(exc).split("; ")[0]
    return DEFAULT_MODEL, None


def register(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:Class"``."""
    _MODELS[name] = target


def available_models() -> list[str]:
    return sorted(_MODELS)


def get_model_class(name: str) -> type[Recommender]:
    try:
        target = _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def create_model(name: str, config: dict | None = None) -> Recommender:
    return get_model_class(name)(config)
