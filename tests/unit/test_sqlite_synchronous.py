"""SQLite connections fsync every commit (``synchronous=FULL``) unless told otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from avrec.storage.db import make_engine

LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def synchronous(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return LEVELS[conn.execute(text("PRAGMA synchronous")).scalar_one()]
    finally:
        engine.dispose()


def test_full_by_default_normal_on_request(tmp_path, monkeypatch):
    monkeypatch.delenv("AVREC_SQLITE_SYNCHRONOUS", raising=False)
    assert synchronous(f"sqlite:///{tmp_path / 'a.db'}") == "FULL"
    monkeypatch.setenv("AVREC_SQLITE_SYNCHRONOUS", "normal")
    assert synchronous(f"sqlite:///{tmp_path / 'b.db'}") == "NORMAL"


def test_an_unknown_level_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AVREC_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ValueError, match="AVREC_SQLITE_SYNCHRONOUS"):
        synchronous(f"sqlite:///{tmp_path / 'c.db'}")
