"""Model registry: name -> class, imported lazily so heavy libraries load only when used."""

from __future__ import annotations

from avrec.models.base import Recommender
from avrec.models.names import available_models, get_model_class, register

__all__ = [
    "DEFAULT_MODEL",
    "LARGE_CATALOG_MODEL",
    "available_models",
    "create_model",
    "default_model",
    "get_model_class",
    "register",
]

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


def create_model(name: str, config: dict | None = None) -> Recommender:
    return get_model_class(name)(config)
