"""The HTTP API end to end on a real model and database: online multi-round feedback,
durability across restarts, auth, bad input (4xx, never 5xx), new items, deleting a user."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build(tmp_path_factory.mktemp("service"))


def client(setup):
    model_dir, url, _ = setup
    return TestClient(
        create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="s3cret"))
    )


def kinds(items):
    return [i["kind"] for i in items]


def test_health_metrics_docs(setup):
    with client(setup) as c:
        assert c.get("/health").json()["items"] == 30
        assert c.get("/openapi.json").status_code == 200
        c.get("/api/items")
        assert 'avrec_requests_total{route="/api/items",status="200"}' in c.get("/metrics").text
        assert "avrec" in c.get("/").text


def test_liking_one_kind_moves_the_next_round(setup):
    with client(setup) as c:
        v = c.post("/api/visitors").json()
        head = {"X-Visitor-Token": v["token"]}
        for item in ("f1", "f3"):
            assert (
                c.post(
                    "/api/events",
                    json={"user_id": v["user_id"], "item_id": item, "event": "like"},
                    headers=head,
                ).status_code
                == 201
            )
        first = c.get(f"/api/users/{v['user_id']}/recommendations?k=6", headers=head)
        first = first.json()["items"]
        assert kinds(first).count("movie") >= 5
        for item in ("m0", "m2", "m4", "m6"):
            c.post(
                "/api/events",
                json={"user_id": v["user_id"], "item_id": item, "event": "like"},
                headers=head,
            )
        for rec in first[:3]:
            c.post(
                "/api/events",
                json={"user_id": v["user_id"], "item_id": rec["item_id"], "event": "skip"},
                headers=head,
            )
        second = c.get(f"/api/users/{v['user_id']}/recommendations?k=6", headers=head)
        second = second.json()["items"]
        assert kinds(second).count("music") >= 4, second
        assert not {r["item_id"] for r in first[:3]} & {r["item_id"] for r in second}
        profile = c.get(f"/api/users/{v['user_id']}/profile", headers=head).json()
        assert profile["kinds"][0]["name"] == "music" and profile["disliked_or_skipped"] == 3
        assert {g["name"] for g in profile["genres"]} >= {"Music", "Action"}


def test_events_are_durable_across_restart(setup):
    _, url, _ = setup
    with client(setup) as c:
        v = c.post("/api/visitors").json()
        for item in ("m8", "m10"):
            c.post(
                "/api/events",
                json={
                    "user_id": v["user_id"],
                    "item_id": item,
                    "event": "like",
                    "request_id": f"{v['user_id']}-{item}",
                },
                headers={"X-Visitor-Token": v["token"]},
            )
        retry = c.post(
            "/api/events",
            json={
                "user_id": v["user_id"],
                "item_id": "m8",
                "event": "like",
                "request_id": f"{v['user_id']}-m8",
            },
            headers={"X-Visitor-Token": v["token"]},
        )
        assert retry.status_code == 200 and retry.json()["replayed"] is True
        head = {"X-Visitor-Token": v["token"]}
        before = c.get(f"/api/users/{v['user_id']}/profile", headers=head).json()
    with get_engine(url).connect() as conn:
        stored = conn.execute(
            select(func.count())
            .select_from(t.feedback_events)
            .where(t.feedback_events.c.user_id == v["user_id"])
        ).scalar_one()
    assert stored == 2  # the retried request was not stored twice
    with client(setup) as c:  # a new process state, rebuilt from the event log
        after = c.get(f"/api/users/{v['user_id']}/profile", headers=head).json()
    assert after == before and after["history_size"] == 2


def test_auth_and_new_items_without_restart(setup):
    _, url, _ = setup
    write = create_key(get_engine(url), "ci", ["write"])
    item = {
        "items": [
            {
                "item_id": "new-harp",
                "title": "Peaceful harp melodies for relaxing",
                "genres": ["Music", "Calm"],
                "kind": "music",
            }
        ]
    }
    with client(setup) as c:
        assert c.post("/api/items", json=item).status_code == 401
        assert c.post("/api/items", json=item, headers={"X-API-Key": "wrong"}).status_code == 403
        assert (
            c.post(
                "/api/events", json={"user_id": "u0", "item_id": "m0", "event": "like"}
            ).status_code
            == 401
        )
        ok = c.post("/api/items", json=item, headers={"X-API-Key": write})
        assert ok.status_code == 200 and ok.json()["added_to_model"] == ["new-harp"]
        assert (
            c.post("/api/items", json=item, headers={"X-API-Key": write}).json()["added_to_model"]
            == []
        )
        recs = c.post("/api/recommendations", json={"query": "peaceful harp", "k": 3}).json()
        assert recs["items"][0]["item_id"] == "new-harp"
        seen = c.post(
            "/api/recommendations", json={"history": ["m0", "m2"], "k": 30, "exclude_seen": False}
        )
        assert {"m0", "m2"} <= {r["item_id"] for r in seen.json()["items"]}
        recs = c.post("/api/recommendations", json={"history": ["m0", "m2", "m4"], "k": 13}).json()
        assert "new-harp" in [r["item_id"] for r in recs["items"]]  # in the collaborative path too
        assert c.get("/api/items/new-harp").json()["title"].startswith("Peaceful harp")


def test_requests_in_english_and_chinese(setup):
    with client(setup) as c:
        en = c.post(
            "/api/recommendations", json={"query": "calm relaxing piano music", "k": 5}
        ).json()
        assert kinds(en["items"]).count("music") >= 4
        zh = c.post("/api/recommendations", json={"query": "安静的钢琴音乐", "k": 5})
        assert zh.status_code == 200 and len(zh.json()["items"]) == 5
        assert c.get("/api/search", params={"q": "car chase"}).json()["items"][0]["kind"] == "movie"


BAD = [
    ("post", "/api/events", {"user_id": "u0", "item_id": "m0", "event": "teleport"}),
    ("post", "/api/events", {"user_id": "u0", "item_id": "nope", "event": "like"}),
    ("post", "/api/events", {"user_id": "x" * 300, "item_id": "m0", "event": "like"}),
    (
        "post",
        "/api/events",
        {"user_id": "u0", "item_id": "m0", "event": "play", "watch_fraction": 7},
    ),
    ("post", "/api/recommendations", {"history": ["nope"]}),
    ("post", "/api/recommendations", {}),
    ("post", "/api/recommendations", {"query": "x", "k": 100000}),
    ("post", "/api/recommendations", {"query": "q" * 5000}),
    ("post", "/api/recommendations", {"query": "x", "unknown": 1}),
    ("get", "/api/users/nobody/recommendations", None),
    ("get", "/api/users/u0/recommendations?k=-3", None),
    ("get", "/api/items/%2e%2e%2fetc%2fpasswd", None),
    ("get", "/media/../../etc/passwd", None),
    ("get", "/api/search?q=", None),
    ("delete", "/api/users/u0", None),
]


@pytest.mark.parametrize("method,path,body", BAD)
def test_bad_input_gets_a_clear_4xx(setup, method, path, body):
    with client(setup) as c:
        res = getattr(c, method)(path, json=body) if body is not None else getattr(c, method)(path)
        assert 400 <= res.status_code < 500, (res.status_code, res.text)
        assert res.json().get("detail")


def test_malformed_and_oversized_bodies(setup):
    with client(setup) as c:
        res = c.post(
            "/api/events",
            content=b'{"user_id": "u0", "item_id": NaN',
            headers={"Content-Type": "application/json"},
        )
        assert res.status_code == 422
        res = c.post(
            "/api/recommendations",
            content=b"x" * 2_000_000,
            headers={"Content-Type": "application/json"},
        )
        assert res.status_code == 413

        def chunked():  # no Content-Length: counted as it arrives
            for _ in range(30):
                yield b"x" * 100_000

        res = c.post("/api/events", content=chunked(), headers={"Content-Type": "application/json"})
        assert res.status_code == 413 and "larger than" in res.json()["detail"]
        assert c.get("/health").status_code == 200  # still serving
        assert 'avrec_requests_total{route="unmatched",status="413"}' in c.get("/metrics").text


def test_delete_user_removes_everything(setup):
    _, url, _ = setup
    admin = create_key(get_engine(url), "admin", ["admin"])
    own = {"X-Visitor-Token": visitor_token(b"s3cret", "u2")}
    with client(setup) as c:
        c.post("/api/events", json={"user_id": "u2", "item_id": "m0", "event": "like"}, headers=own)
        assert c.get("/api/users/u2/profile", headers=own).status_code == 200
        res = c.delete("/api/users/u2", headers={"X-API-Key": admin})
        assert res.status_code == 200 and res.json()["removed"]["feedback_events"] == 1
        assert res.json()["removed"]["interactions"] == 7
        assert c.get("/api/users/u2/profile", headers=own).status_code == 404
        assert c.get("/api/users/u2/recommendations", headers=own).status_code == 404
    with client(setup) as c:  # after a restart too
        assert c.get("/api/users/u2/profile", headers=own).status_code == 404
