"""Settings from the environment: where avrec keeps its data and which database it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def avrec_home() -> Path:
    """The data directory: ``$AVREC_HOME`` or ``~/.avrec``. Created on first use."""
    home = Path(os.environ.get("AVREC_HOME") or Path.home() / ".avrec").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url() -> str:
    """``$AVREC_DATABASE_URL`` or a SQLite file inside the data directory."""
    url = os.environ.get("AVREC_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{avrec_home() / 'avrec.db'}"


@dataclass(frozen=True)
class Limits:
    """Bounds applied to every input field (bytes of UTF-8)."""

    max_text_field: int = 100_000
    max_id_length: int = 256
    max_tag_count: int = 1_000


LIMITS = Limits()


def retention_days() -> float | None:
    """``$AVREC_RETENTION_DAYS``: feedback events older than this many days are deleted by
    ``avrec retention apply`` and, when configured, by the service on a schedule. Unset or
    empty: nothing expires."""
    raw = os.environ.get("AVREC_RETENTION_DAYS", "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        raise ValueError(f"AVREC_RETENTION_DAYS must be a number of days, not {raw!r}") from None
    if not 0 < days < float("inf"):
        raise ValueError(f"AVREC_RETENTION_DAYS must be a positive number of days, not {raw!r}")
    return days


#: rows per chunk when interactions are streamed (``$AVREC_CHUNK_ROWS`` overrides)
DEFAULT_CHUNK_ROWS = 500_000


def chunk_rows() -> int:
    """``$AVREC_CHUNK_ROWS``: how many interaction rows are read, validated and turned into
    matrix codes at a time (memory grows with it; the result does not)."""
    raw = os.environ.get("AVREC_CHUNK_ROWS", "").strip()
    if not raw:
        return DEFAULT_CHUNK_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"AVREC_CHUNK_ROWS must be a whole number of rows above 0, not {raw!r}")
    return int(raw)
