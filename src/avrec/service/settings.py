"""Service settings from the environment (``AVREC_`` prefix) or explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServiceSettings:
    model_dir: Path
    database_url: str | None = None
    #: largest request body accepted, bytes
    max_body: int = 1_000_000
    max_k: int = 500
    #: dataset folder that item media paths are relative to (posters); None: from the database
    media_root: Path | None = None
    #: secret for visitor tokens; default: generated once into $AVREC_HOME/secret
    secret: str | None = None
    #: how recommendations for known users and histories are retrieved: "model" (the model
    #: scores the whole catalog), "index" (the user vector searches the vector index, then
    #: filters, negative feedback and explanations apply), "auto" (index from
    #: ``index_min_items`` items on, for models with content vectors)
    retrieval: str = "auto"
    #: vector index over the items' content vectors: exact, flat, hnsw, ivf, or auto (exact
    #: below ``index_min_items`` items, ivf from there)
    index_kind: str = "auto"
    index_min_items: int = 100_000
    index_options: dict = field(default_factory=dict)
    #: where the built index is kept between restarts (default: <model_dir>/index-<kind>)
    index_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.retrieval not in ("auto", "model", "index"):
            raise ValueError(f"retrieval must be auto, model or index, not {self.retrieval!r}")
        if self.index_kind not in ("auto", "exact", "flat", "hnsw", "ivf"):
            raise ValueError(f"index_kind must be auto, exact, flat, hnsw or ivf, not {self.index_kind!r}")

    @classmethod
    def from_env(cls, **overrides) -> ServiceSettings:
        model_dir = overrides.pop("model_dir", None) or os.environ.get("AVREC_MODEL_DIR")
        if not model_dir:
            raise ValueError("no model: pass --model-dir or set AVREC_MODEL_DIR")
        return cls(model_dir=Path(model_dir),
                   database_url=overrides.pop("database_url", None) or os.environ.get("AVREC_DATABASE_URL"),
                   **overrides)


def service_secret(settings: ServiceSettings) -> bytes:
    if settings.secret:
        return settings.secret.encode()
    import secrets

    from avrec.settings import avrec_home

    path = avrec_home() / "secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
