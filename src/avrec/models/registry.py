"""Model registry: name -> class, imported lazily so heavy libraries load only when used."""

from __future__ import annotations

from avrec.models.base import Recommender
from avrec.models.names import available_models, get_model_class, register

__all__ = [
    "DEFAULT_MODEL",
    "LARGE_CATALOG_CONFIG",
    "LARGE_CATALOG_MODEL",
    "available_models",
    "create_model",
    "default_model",
    "get_model_class",
    "register",
]

DEFAULT_MODEL = "hybrid"
#: the recommended model for catalogs too large for :data:`DEFAULT_MODEL`'s dense items x items
#: weights in this machine's memory: the same hybrid (content side information, cold items,
#: requests, ...) on the sparse backbone (models.sparse_ease), whose memory grows with the
#: catalog times the neighbour count rather than with the catalog's square. Its
#: requests are matched by the text encoder whose catalog vectors the hybrid reads anyway
#: (MiniLM, or the static ``text-fast`` above ``content.fast_above`` items), not by a second,
#: far slower encoding of the whole catalog with the multilingual one (docs/benchmarks.md,
#: "Default training at scale")
LARGE_CATALOG_MODEL = "hybrid"
LARGE_CATALOG_CONFIG: dict = {
    "backbone": {"kind": "sparse"},
    "content": {"query_encoder": "text-en"},
}


def default_model(n_items: int) -> tuple[str, str | None]:
    """The recommended model for a catalog of ``n_items`` items, and why it is not
    :data:`DEFAULT_MODEL` as configured by default (None when it is): the hybrid where its
    dense weights fit in the available memory, :data:`LARGE_CATALOG_MODEL` with
    :data:`LARGE_CATALOG_CONFIG` (:func:`large_catalog_settings`) otherwise."""
    from avrec.models.hybrid import PEAK_BYTES_PER_CELL
    from avrec.models.memory import ResourceError, require_dense

    try:
        require_dense(DEFAULT_MODEL, n_items, PEAK_BYTES_PER_CELL)
    except ResourceError as exc:
        return LARGE_CATALOG_MODEL, str(exc).split("; ")[0]
    return DEFAULT_MODEL, None


def large_catalog_settings(settings: dict) -> dict:
    """``settings`` (a user's config) on top of :data:`LARGE_CATALOG_CONFIG`, part by part."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in LARGE_CATALOG_CONFIG.items()}
    for key, value in settings.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and key in out else value
    return out


def create_model(name: str, config: dict | None = None) -> Recommender:
    return get_model_class(name)(config)
