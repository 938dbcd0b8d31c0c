"""The service on both database backends (PostgreSQL where $AVREC_TEST_POSTGRES_URL is set):
events committed before the 201, idempotent retries, state rebuilt after a restart, a deleted
user stays deleted."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build


def test_events_state_and_delete_on_each_backend(tmp_path, db_url):
    model_dir, url, _ = build(tmp_path, url=db_url)

    def client():
        return TestClient(
            create_app(
                ServiceSettings(
                    model_dir=model_dir,
                    database_url=url,
                    secret="pg",
                    retrieval="index",
                    index_kind="flat",
                )
            )
        )

    head = {"X-Visitor-Token": visitor_token(b"pg", "u4")}
    with client() as c:
        for n, item in enumerate(("f1", "f3", "m0")):
            body = {"user_id": "u4", "item_id": item, "event": "like", "request_id": f"pg-{n}"}
            assert c.post("/api/events", json=body, headers=head).status_code == 201
        again = c.post(
            "/api/events",
            json={"user_id": "u4", "item_id": "f1", "event": "like", "request_id": "pg-0"},
            headers=head,
        )
        assert again.status_code == 200 and again.json()["request_id"] == "pg-0"
        assert again.json()["replayed"] is True
        before = c.get("/api/users/u4/recommendations?k=5", headers=head).json()["items"]
        profile = c.get("/api/users/u4/profile", headers=head).json()
    engine = get_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.feedback_events)).scalar_one() == 3
    with client() as c:  # restarted: same state, from the event log
        again = c.get("/api/users/u4/recommendations?k=5", headers=head).json()
        assert again["items"] == before  # a new list (its own list_id), the same items
        assert c.get("/api/users/u4/profile", headers=head).json() == profile
        admin = create_key(engine, "pg-admin", ["admin"])
        removed = c.delete("/api/users/u4", headers={"X-API-Key": admin}).json()["removed"]
        assert removed["feedback_events"] == 3 and removed["interactions"] == 7
    with client() as c:
        assert c.get("/api/users/u4/profile", headers=head).status_code == 404
