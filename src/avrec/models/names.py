"""Model names -> classes, imported lazily so heavy libraries load only when a model is used.

The table sits below :mod:`avrec.models.base` (which loads a saved model by the name in its
manifest) and :mod:`avrec.models.registry` (which creates models by name), so neither imports
the other's module for it.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODELS: dict[str, str] = {
    "popularity": "avrec.models.baselines.popularity:Popularity",
    "itemknn": "avrec.models.baselines.itemknn:ItemKNN",
    "ease": "avrec.models.baselines.ease:EASE",
    "sparse-ease": "avrec.models.baselines.sparse_ease:SparseEASE",
    "als": "avrec.models.baselines.factorization:ALS",
    "bpr": "avrec.models.baselines.factorization:BPR",
    "bias": "avrec.models.baselines.bias:Bias",
    "rating": "avrec.models.baselines.rating:Rating",
    "content": "avrec.models.content:Content",
    "hybrid": "avrec.models.hybrid:Hybrid",
    "hybrid-ltr": "avrec.models.ranking.ranker:Ranker",
    "two-tower": "avrec.models.neural.two_tower:TwoTower",
    "sequential": "avrec.models.neural.sequential:Sequential",
    "vae": "avrec.models.neural.vae:MultVAE",
    "dp-ease": "avrec.models.private.ease:DPEASE",
    "dp-popularity": "avrec.models.private.popularity:DPPopularity",
    "dp-two-tower": "avrec.models.private.two_tower:DPTwoTower",
}


def register(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:Class"``."""
    _MODELS[name] = target


def available_models() -> list[str]:
    return sorted(_MODELS)


def model_targets() -> dict[str, str]:
    """Every registered name with its ``"module:Class"`` (a copy)."""
    return dict(_MODELS)


def get_model_class(name: str) -> type[Any]:
    """The model class registered as ``name`` (a :class:`avrec.models.base.Recommender`)."""
    try:
        target = _MODELS[name]
    except KeyError:
        raise KeyError(
            f"unknown model {name!r}; available: {', '.join(available_models())}"
        ) from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
