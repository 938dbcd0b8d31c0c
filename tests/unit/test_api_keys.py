"""API keys: list without secrets, revoke by name, last use written at most once a minute."""

from __future__ import annotations

from sqlalchemy import select

from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import (
    create_key,
    hash_key,
    key_scopes,
    list_keys,
    record_use,
    revoke_key,
)


def test_list_revoke_and_last_use(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    key = create_key(engine, "bot", ["write"])
    create_key(engine, "ops", ["admin", "write"])
    listed = list_keys(engine)
    assert [(k["name"], k["scopes"], k["last_used"]) for k in listed] == [
        ("bot", ["write"], None),
        ("ops", ["admin", "write"], None),
    ]
    assert key not in repr(listed) and hash_key(key) not in repr(listed)

    assert key_scopes(engine, key) == {"write"}  # a use is recorded
    first = list_keys(engine)[0]["last_used"]
    assert first is not None
    h = hash_key("avk_other")  # the throttle, on a clock given explicitly
    assert record_use(engine, h, now=1000.0) is True
    assert record_use(engine, h, now=1059.0) is False
    assert record_use(engine, h, now=1060.5) is True

    assert revoke_key(engine, "bot") == 1 and revoke_key(engine, "bot") == 0
    assert key_scopes(engine, key) == set()
    with engine.connect() as conn:
        assert conn.execute(select(t.api_keys.c.name)).scalars().all() == ["ops"]
