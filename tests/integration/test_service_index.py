"""The index retrieval path (user vector kept in place by events, searched in a faiss index),
API-ingested items surviving a restart, and the admin latency endpoint."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build(tmp_path_factory.mktemp("service-index"))


def client(setup, **options):
    model_dir, url, _ = setup
    return TestClient(
        create_app(
            ServiceSettings(
                model_dir=model_dir,
                database_url=url,
                secret="k",
                retrieval="index",
                index_kind="flat",
                **options,
            )
        )
    )


def token_of(user):
    return {"X-Visitor-Token": visitor_token(b"k", user)}


def like(c, user, item, event="like"):
    res = c.post(
        "/api/events",
        json={"user_id": user, "item_id": item, "event": event},
        headers=token_of(user),
    )
    assert res.status_code == 201, res.text
    return res.json()


def kinds(res):
    return [i["kind"] for i in res.json()["items"]]


def test_index_path_follows_each_round(setup):
    with client(setup) as c:
        assert c.get("/health").json()["retrieval"] == "index"
        assert c.get("/health").json()["index"] == "flat"
        user = "visitor-index-1"
        like(c, user, "f1")
        state = c.app.state.avrec.online.snapshot(user)
        assert state.history == ["f1"] and state.query_vector() is not None
        first = c.get(f"/api/users/{user}/recommendations?k=6", headers=token_of(user))
        assert kinds(first).count("movie") == 6
        assert "because you liked" in first.json()["items"][0]["explanation"]
        for item in ("m0", "m2", "m4", "m6", "m8"):
            like(c, user, item)
        like(c, user, "f1", "dislike")
        after = c.app.state.avrec.online.snapshot(user)
        # the user vector is the sum of the liked items' vectors, updated in place
        catalog = c.app.state.avrec.items
        liked = np.stack([catalog.vector(i) for i in after.history])
        np.testing.assert_allclose(after.vector, liked.sum(axis=0), atol=1e-5)
        second = c.get(f"/api/users/{user}/recommendations?k=6", headers=token_of(user))
        assert kinds(second).count("music") == 6
        seen = {"f1", "m0", "m2", "m4", "m6", "m8"}
        assert not seen & {i["item_id"] for i in second.json()["items"]}
        films = c.get(
            f"/api/users/{user}/recommendations?k=4&kind=movie", headers=token_of(user)
        ).json()["items"]
        assert (
            len(films) == 4
            and all(i["kind"] == "movie" for i in films)
            and "f1" not in [i["item_id"] for i in films]
        )
        anon = c.post("/api/recommendations", json={"history": ["m0", "m2"], "k": 5})
        assert kinds(anon).count("music") == 5
        assert not {"m0", "m2"} & {i["item_id"] for i in anon.json()["items"]}
        again = c.post(
            "/api/recommendations", json={"history": ["m0", "m2"], "k": 5, "exclude_seen": False}
        )
        assert {"m0", "m2"} & {i["item_id"] for i in again.json()["items"]}
        own = c.get(
            f"/api/users/{user}/recommendations?k=15&exclude_seen=false", headers=token_of(user)
        ).json()["items"]
        assert "m0" in [i["item_id"] for i in own] and "f1" not in [i["item_id"] for i in own]


def test_api_items_survive_a_restart_and_latency_needs_admin(setup):
    _, url, _ = setup
    engine = get_engine(url)
    write, admin = create_key(engine, "w", ["write"]), create_key(engine, "a", ["admin"])
    item = {
        "items": [
            {
                "item_id": "new-cello",
                "title": "Slow cello lament for a quiet night",
                "genres": ["Music", "Calm"],
                "kind": "music",
                "language": "en",
            }
        ]
    }
    with client(setup) as c:
        assert c.post("/api/items", json=item, headers={"X-API-Key": write}).status_code == 200
        like(c, "visitor-index-2", "new-cello")
        assert c.get("/api/admin/latency").status_code == 401
        assert c.get("/api/admin/latency", headers={"X-API-Key": write}).status_code == 403
        lat = c.get("/api/admin/latency", headers={"X-API-Key": admin}).json()
        assert lat["event_to_state"]["count"] >= 1 and lat["event_to_state"]["p99_ms"] > 0
    with client(setup) as c:  # restarted: the item is back in the model and the index
        assert c.get("/api/items/new-cello").status_code == 200
        similar = c.get("/api/items/m0/similar?k=29").json()["items"]
        assert "new-cello" in [i["item_id"] for i in similar]
        assert c.app.state.avrec.online.snapshot("visitor-index-2").history == ["new-cello"]


def test_large_catalog_defaults_and_a_model_without_request_encoder(tmp_path):
    """At index_min_items the auto settings switch to IVF + index retrieval; a model saved
    without a request encoder answers requests with text with a clear 409 (not a 500)."""
    from benchmarks.synthetic_catalog import item_vectors, save_content_model

    vectors, cluster = item_vectors(3_000, clusters=16)
    save_content_model(tmp_path / "model", vectors, cluster, users=50)
    settings = ServiceSettings(
        model_dir=tmp_path / "model",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        secret="k",
        index_min_items=2_000,
    )
    with TestClient(create_app(settings)) as c:
        health = c.get("/health").json()
        assert (health["index"], health["retrieval"], health["items"]) == ("ivf", "index", 3_000)
        assert (
            tmp_path / "model" / "index-ivf" / "index.json"
        ).is_file()  # kept for the next start
        recs = c.get(
            "/api/users/u1/recommendations?k=10&kind=music", headers=token_of("u1")
        ).json()["items"]
        assert len(recs) == 10 and {r["kind"] for r in recs} == {"music"}
        res = c.post("/api/recommendations", json={"query": "calm piano", "k": 5})
        assert res.status_code == 409 and "request encoder" in res.json()["detail"]
        assert (
            c.get(
                "/api/users/u1/recommendations", params={"q": "calm"}, headers=token_of("u1")
            ).status_code
            == 409
        )
