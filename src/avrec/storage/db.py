"""Engines from a URL, migrated to the current schema on first use."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from avrec.settings import database_url

MIGRATIONS = Path(__file__).parent / "migrations"
#: seconds to wait for a PostgreSQL connection before the request fails (503) instead of hanging
CONNECT_TIMEOUT = 5


def sqlite_synchronous() -> str:
    """``FULL`` (default): every commit is fsynced to the WAL before it returns, so an
    acknowledged write survives a power failure. ``$AVREC_SQLITE_SYNCHRONOUS=NORMAL`` trades
    that for speed (a crash of the process still loses nothing; a power cut may lose the last
    commits)."""
    mode = os.environ.get("AVREC_SQLITE_SYNCHRONOUS", "FULL").upper()
    if mode not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"AVREC_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA, not {mode!r}")
    return mode


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={sqlite_synchronous()}")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-262144")  # up to 256 MiB of page cache for bulk index inserts
    cur.close()


def make_engine(url: str | None = None) -> Engine:
    """A new engine for ``url`` (default: ``$AVREC_DATABASE_URL`` or SQLite in ``$AVREC_HOME``)."""
    url = url or database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # pre-ping: a connection that died with the server (restart, failover) is replaced on
        # checkout, so the service recovers by itself once the database is back
        args = (
            {"connect_timeout": CONNECT_TIMEOUT}
            if url.startswith("postgresql") and "connect_timeout" not in url
            else {}
        )
        engine = create_engine(url, pool_pre_ping=True, connect_args=args)
    return engine


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on the engine's database."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """A migrated engine for ``url``, shared within the process."""
    return _cached_engine(url or database_url())
