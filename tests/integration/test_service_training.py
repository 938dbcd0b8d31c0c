"""The learning loop over HTTP (admin scope): a training round from the database in its own
process, the registry's versions, promotion and rollback; a service that follows the registry
swaps to what the round promoted."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from avrec.service.app import create_app
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build
from tests.integration.test_retrain import _unseen_music


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    model_dir, url, _ = build(root)
    settings = ServiceSettings(
        model_dir=model_dir,
        database_url=url,
        secret="training",
        models_root=root / "versions",
        follow_registry=True,
        registry_poll_s=0.2,
    )
    engine = get_engine(url)
    keys = {s: {"X-API-Key": create_key(engine, s, [s])} for s in ("admin", "write")}
    with TestClient(create_app(settings)) as c:
        yield c, keys, url


def _finished(c, admin, job_id, timeout=300.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = c.get(f"/api/admin/models/jobs/{job_id}", headers=admin).json()
        if job["status"] != "running" or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def _serving(c, version, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.get("/health").json().get("version") == version:
            return True
        time.sleep(0.2)
    return False


def test_admin_only_and_bad_requests(served):
    c, keys, _ = served
    assert c.get("/api/admin/models").status_code == 401
    assert c.get("/api/admin/models", headers=keys["write"]).status_code == 403
    assert c.post("/api/admin/models/retrain", headers=keys["write"]).status_code == 403
    admin = keys["admin"]
    for body, field in (
        ({"model": "nope"}, "model"),
        ({"margin": -1}, "margin"),
        ({"min_new_events": 0}, "min_new_events"),
        ({"surprise": 1}, "surprise"),
    ):
        r = c.post("/api/admin/models/retrain", json=body, headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][-1] == field
    r = c.post("/api/admin/models/promote", json={"version": "ease-000000000000"}, headers=admin)
    assert r.status_code == 404 and "no registered model version" in r.json()["detail"]
    assert (
        c.post("/api/admin/models/promote", json={"version": "a/b"}, headers=admin).status_code
        == 422
    )
    assert c.get("/api/admin/models/jobs/abc123", headers=admin).status_code == 404
    assert c.get("/api/admin/models/jobs/not-hex", headers=admin).status_code == 422


def test_a_round_trains_registers_promotes_and_the_service_swaps(served):
    c, keys, url = served
    admin = keys["admin"]
    r = c.post("/api/admin/models/retrain", json={"model": "ease"}, headers=admin)
    assert r.status_code == 202, r.text
    first = r.json()
    if first["status"] == "running":  # one round at a time
        busy = c.post("/api/admin/models/retrain", json={"model": "ease"}, headers=admin)
        again = c.get(f"/api/admin/models/jobs/{first['id']}", headers=admin).json()
        assert busy.status_code == 409 or again["status"] != "running"
    done = _finished(c, admin, first["id"])
    assert done["status"] == "succeeded", done
    assert any("promoted" in line for line in done["output"]), done["output"]
    listed = c.get("/api/admin/models", headers=admin).json()
    assert len(listed["versions"]) == 1 and listed["versions"][0]["model"] == "ease"
    v1 = listed["promoted"]
    assert v1 == listed["versions"][0]["version"] and _serving(c, v1)
    # nothing served before v1: no rollback
    assert c.post("/api/admin/models/rollback", headers=admin).status_code == 409

    # new likes, a second round: a new version, promoted through the gate, then rolled back
    likes = _unseen_music(url, [f"u{n}" for n in range(0, 40, 2)])
    with get_engine(url).begin() as conn:
        conn.execute(
            insert(t.feedback_events),
            [{"user_id": u, "item_id": i, "event": "like"} for u, i in likes],
        )
    r = c.post("/api/admin/models/retrain", json={"model": "ease", "margin": 0.05}, headers=admin)
    assert r.status_code == 202
    done = _finished(c, admin, r.json()["id"])
    assert done["status"] == "succeeded", done
    listed = c.get("/api/admin/models", headers=admin).json()
    assert len(listed["versions"]) == 2
    v2 = listed["versions"][1]["version"]
    assert v2 != v1 and listed["promoted"] == v2, done["output"]
    assert _serving(c, v2)
    back = c.post("/api/admin/models/rollback", headers=admin)
    assert back.status_code == 200 and back.json()["promoted"] == v1
    assert _serving(c, v1)
    again = c.post("/api/admin/models/promote", json={"version": v2}, headers=admin)
    assert again.status_code == 200 and _serving(c, v2)
