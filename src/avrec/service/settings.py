"""Service settings from the environment (``AVREC_`` prefix) or explicit arguments."""

from __future__ import annotations

import os
from collections.abc import Callable
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


def _path_env(name: str) -> Path | None:
    raw = os.environ.get(name)
    return Path(raw) if raw and raw.strip() else None


def _retention_days() -> float | None:
    from avrec.settings import retention_days

    return retention_days()


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
    #: filters, negative feedback and explanations apply), "cascade" (the model ranks the
    #: candidates of avrec.index.cascade only), "auto" (the cascade from its ``min_items`` on
    #: for models that score a few items cheaply, sparse-ease and the large-catalog hybrid;
    #: else the index from ``index_min_items`` items on, for models with content vectors)
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
    #: serving policy over each list (rerank.exploration): greedy (the model's order), epsilon
    #: or softmax; its rate (epsilon's probability, softmax's temperature), the pool of best
    #: items it may draw from, and its seed (env AVREC_EXPLORATION, AVREC_EXPLORATION_RATE,
    #: AVREC_EXPLORATION_POOL, AVREC_EXPLORATION_SEED)
    exploration: str = _env("AVREC_EXPLORATION", str, "greedy")
    exploration_rate: float = _env("AVREC_EXPLORATION_RATE", float, 0.1)
    exploration_pool: int = _env("AVREC_EXPLORATION_POOL", int, 50)
    exploration_seed: int | None = _env("AVREC_EXPLORATION_SEED", int, None)
    #: follow the model registry: serve the promoted version and swap to a newly promoted one
    #: (checked every ``registry_poll_s`` seconds) without a restart (env AVREC_FOLLOW_REGISTRY,
    #: AVREC_REGISTRY_POLL_S)
    follow_registry: bool = _env("AVREC_FOLLOW_REGISTRY", lambda v: v not in ("0", "false"), False)
    registry_poll_s: float = _env("AVREC_REGISTRY_POLL_S", float, 5.0)
    #: write every served list to the impressions table (env AVREC_LOG_IMPRESSIONS=0 turns it off)
    log_impressions: bool = _env("AVREC_LOG_IMPRESSIONS", lambda v: v not in ("0", "false"), True)
    #: business rules file (.yaml or .json, docs/rules.md) applied to every list; re-read when
    #: it changes (env AVREC_RULES_FILE)
    rules_file: Path | None = field(default_factory=lambda: _path_env("AVREC_RULES_FILE"))
    #: the ad catalog (ads.csv, docs/ads.md) that POST /api/ads/select chooses from; None: no
    #: ads (env AVREC_ADS). Its engagement model (JSON from ``avrec ads fit``; default: the
    #: one learned on ml-100k, env AVREC_ADS_ENGAGEMENT) and the pacing draws' seed
    ads_file: Path | None = field(default_factory=lambda: _path_env("AVREC_ADS"))
    ads_engagement: Path | None = field(default_factory=lambda: _path_env("AVREC_ADS_ENGAGEMENT"))
    ads_seed: int = _env("AVREC_ADS_SEED", int, 0)
    #: spread each ad's spend over the day (docs/ads.md, pacing); off: an eligible ad takes
    #: part in every request until its budget is spent (env AVREC_ADS_PACING=0)
    ads_pacing: bool = _env("AVREC_ADS_PACING", lambda v: v not in ("0", "false"), True)
    #: where training rounds started through the API save their candidates (env
    #: AVREC_MODELS_ROOT; default: $AVREC_HOME/models)
    models_root: Path | None = field(default_factory=lambda: _path_env("AVREC_MODELS_ROOT"))

    #: retention: feedback events older than this many days are deleted every
    #: ``retention_interval_s`` seconds while the service runs (first run at start); None
    #: (``AVREC_RETENTION_DAYS`` unset): never (env AVREC_RETENTION_DAYS,
    #: AVREC_RETENTION_INTERVAL_S; an interval of 0 turns the schedule off)
    retention_days: float | None = field(default_factory=_retention_days)
    retention_interval_s: float = _env("AVREC_RETENTION_INTERVAL_S", float, 3600.0)

    def __post_init__(self) -> None:
        self.policy  # noqa: B018  # a policy that cannot be used is refused here, clearly
        if self.retention_days is not None and not 0 < self.retention_days < float("inf"):
            raise ValueError(f"retention_days must be positive, not {self.retention_days!r}")
        if not 0 <= self.retention_interval_s < float("inf"):
            raise ValueError(
                f"retention_interval_s must be 0 or more, not {self.retention_interval_s!r}"
            )
        if self.retrieval not in ("auto", "model", "cascade", "index"):
            raise ValueError(
                f"retrieval must be auto, model, cascade or index, not {self.retrieval!r}"
            )
        if self.index_kind not in ("auto", "exact", "flat", "hnsw", "ivf"):
            raise ValueError(
                f"index_kind must be auto, exact, flat, hnsw or ivf, not {self.index_kind!r}"
            )

    @property
    def policy(self):
        from avrec.rerank.exploration import Policy

        return Policy(self.exploration, self.exploration_rate, self.exploration_pool)

    @classmethod
    def from_env(cls, **overrides) -> ServiceSettings:
        model_dir = overrides.pop("model_dir", None) or os.environ.get("AVREC_MODEL_DIR")
        if not model_dir:
            raise ValueError("no model: pass --model-dir or set AVREC_MODEL_DIR")
        return cls(
            model_dir=Path(model_dir),
            database_url=overrides.pop("database_url", None)
            or os.environ.get("AVREC_DATABASE_URL"),
            **overrides,
        )


def service_secret(settings: ServiceSettings) -> bytes:
    """The visitor-token secret: ``settings.secret``, else ``$AVREC_HOME/secret`` (created once,
    mode 0600 from the start)."""
    if settings.secret:
        return settings.secret.encode()
    import secrets

    from avrec.settings import avrec_home

    return private_file(avrec_home() / "secret", lambda: secrets.token_hex(32).encode()).strip()


def private_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The contents of ``path``, created with ``make()`` if absent: written to a temporary file
    opened 0600 (never readable by others, not even for a moment), fsynced, then published with
    a hard link, which fails if the file already exists. Processes racing to create it therefore
    all end up with the first one's contents, and nobody ever reads a half-written file."""
    try:
        return _read_private(path)
    except FileNotFoundError:
        pass
    data = make()
    if not data:
        raise ValueError("a private file must not be empty")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: use its contents
            return _read_private(path)
        _fsync_dir(path.parent)
        return data
    finally:
        tmp.unlink(missing_ok=True)


def _read_private(path: Path) -> bytes:
    st = path.lstat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(0o600)  # written by an older version, or loosened by hand
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"{path} is empty: delete it to have a new one made")
    return data


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
