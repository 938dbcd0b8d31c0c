"""Idempotent events on both database backends (PostgreSQL where $AVREC_TEST_POSTGRES_URL is
set): a request_id is scoped to its user; a retry with the same body is replayed (200), a reuse
with another body is refused (409), and no event is lost or doubled, also when two service
processes (two apps, each with its own locks) receive the same request at once."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import select

from avrec.service.app import create_app
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build


def _app(model_dir, url):
    return create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="idem"))


def _rows(url, user_id):
    c = t.feedback_events.c
    with get_engine(url).connect() as conn:
        return conn.execute(
            select(c.item_id, c.event, c.request_id, c.body_hash)
            .where(c.user_id == user_id)
            .order_by(c.id)
        ).all()


def test_replay_conflict_and_other_user(tmp_path, db_url):
    model_dir, url, _ = build(tmp_path, url=db_url)
    head = {"X-API-Key": create_key(get_engine(url), "w", ["write"])}
    body = {"user_id": "new-1", "item_id": "m0", "event": "like", "request_id": "r-1"}
    with TestClient(_app(model_dir, url)) as c:
        first = c.post("/api/events", json=body, headers=head)
        assert first.status_code == 201 and first.json()["replayed"] is False
        again = c.post("/api/events", json=dict(reversed(body.items())), headers=head)  # key order
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "replayed": True}
        other = c.post("/api/events", json={**body, "item_id": "m2"}, headers=head)
        assert other.status_code == 409 and "r-1" in other.json()["detail"]
        assert "new request_id" in other.json()["detail"]
        elsewhere = c.post("/api/events", json={**body, "user_id": "new-2"}, headers=head)
        assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]
        state = c.app.state.avrec
        assert state.user_state("new-1").events == 1 and state.user_state("new-1").history == ["m0"]
    rows = _rows(url, "new-1")
    assert [(r.item_id, r.request_id) for r in rows] == [("m0", "r-1")]
    assert len(rows[0].body_hash) == 64
    assert [(r.item_id, r.request_id) for r in _rows(url, "new-2")] == [("m0", "r-1")]
    with TestClient(_app(model_dir, url)) as c:  # after a restart: still a replay
        assert c.post("/api/events", json=body, headers=head).json()["replayed"] is True
        assert c.app.state.avrec.user_state("new-1").events == 1


def test_concurrent_posts_of_one_request_id(tmp_path, db_url):
    """Two apps on one database (as two service processes would be) get the same request_id
    at the same moment, 15 rounds with the same body and 15 with different bodies: one is
    stored (201); the other is a replay (200) or a conflict (409), never a 500."""
    model_dir, url, _ = build(tmp_path, url=db_url)
    head = {"X-API-Key": create_key(get_engine(url), "w", ["write"])}
    with TestClient(_app(model_dir, url)) as a, TestClient(_app(model_dir, url)) as b:
        for n in range(30):
            same = n < 15
            bodies = [
                {"user_id": f"c{n}", "item_id": item, "event": "like", "request_id": "x"}
                for item in (("m0", "m0") if same else ("m0", "m2"))
            ]
            barrier = threading.Barrier(2)
            codes = [0, 0]

            def post(i, client, body, barrier=barrier, codes=codes):
                barrier.wait()
                codes[i] = client.post("/api/events", json=body, headers=head).status_code

            threads = [
                threading.Thread(target=post, args=(i, cl, bd))
                for i, (cl, bd) in enumerate(zip((a, b), bodies, strict=True))
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert sorted(codes) == ([200, 201] if same else [201, 409]), (n, codes)
            rows = _rows(url, f"c{n}")
            assert len(rows) == 1
            winner = codes.index(201)
            assert rows[0].item_id == bodies[winner]["item_id"]
            # the app that stored it holds it in memory; a replay never applies it twice
            stored = (a, b)[winner].app.state.avrec.user_state(f"c{n}")
            assert stored.events == 1
