"""Storage: engine from a URL (SQLite default, PostgreSQL), schema, migrations, ingest, reads."""

from avrec.storage.db import get_engine, make_engine, upgrade

__all__ = ["get_engine", "make_engine", "upgrade"]
