"""Service settings from the environment (``AVREC_`` prefix) or explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, cast, default):
    """A default from the environment variable ``name`` (read when the settings are made)."""

    def read():
        raw = os.environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return cast(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {raw!r}") from None

    return field(default_factory=read)


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
    #: per-client rate limit (API key, else visitor token, else address): requests per second
    #: sustained and the burst allowed above it; 0 turns it off (env AVREC_RATE_PER_S,
    #: AVREC_RATE_BURST)
    rate_per_s: float = _env("AVREC_RATE_PER_S", float, 1000.0)
    rate_burst: int = _env("AVREC_RATE_BURST", int, 2000)
    #: stricter limit for keyless POST /api/visitors, per address (env AVREC_VISITOR_RATE_PER_S,
    #: AVREC_VISITOR_BURST)
    visitor_rate_per_s: float = _env("AVREC_VISITOR_RATE_PER_S", float, 1.0)
    visitor_burst: int = _env("AVREC_VISITOR_BURST", int, 60)
    #: requests inside the app at once; past it 503 at once; 0 turns it off
    #: (env AVREC_MAX_IN_FLIGHT)
    max_in_flight: int = _env("AVREC_MAX_IN_FLIGHT", int, 256)

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
