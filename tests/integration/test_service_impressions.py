"""Every served list is logged, item by item, with the serving policy's propensities and the
model version; exploration is a setting; a deleted user's impressions go with them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

SECRET = "imp"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("impressions"))


def _client(built, **settings):
    model_dir, url, _ = built
    return TestClient(
        create_app(
            ServiceSettings(model_dir=model_dir, database_url=url, secret=SECRET, **settings)
        )
    )


def _rows(url, list_id):
    with get_engine(url).connect() as conn:
        return conn.execute(
            select(t.impressions)
            .where(t.impressions.c.list_id == list_id)
            .order_by(t.impressions.c.position)
        ).all()


def own(user):
    return {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}


def test_greedy_lists_are_logged_with_propensity_one(built):
    url = built[1]
    with _client(built) as c:
        res = c.get("/api/users/u0/recommendations?k=5", headers=own("u0")).json()
        anon = c.post("/api/recommendations", json={"history": ["m0"], "k": 3}).json()
        c.get("/api/users/u1/recommendations?k=2", headers=own("u1"))  # someone else's list
        exported = c.get("/api/users/u0/export", headers=own("u0")).json()["impressions"]
        version = c.app.state.avrec.model_version
    rows = _rows(url, res["list_id"])
    assert [r.item_id for r in rows] == [i["item_id"] for i in res["items"]]
    assert [r.position for r in rows] == list(range(5))
    assert all(r.user_id == "u0" and r.propensity == 1.0 and r.policy == "greedy" for r in rows)
    assert [r.score for r in rows] == pytest.approx([i["score"] for i in res["items"]])
    assert version.startswith("hybrid-") and all(r.model_version == version for r in rows)
    # the person's export holds the lists shown to them (flushed first), no one else's
    assert [r["item_id"] for r in exported] == [r.item_id for r in rows]
    assert {r["list_id"] for r in exported} == {res["list_id"]}
    anon_rows = _rows(url, anon["list_id"])
    assert len(anon_rows) == 3 and all(r.user_id is None for r in anon_rows)


def test_exploration_draws_from_the_pool_and_logs_what_it_drew(built):
    url = built[1]
    with _client(built, exploration="epsilon", exploration_rate=1.0, exploration_seed=0) as c:
        lists = [
            c.get("/api/users/u2/recommendations?k=4", headers=own("u2")).json() for _ in range(6)
        ]
        c.app.state.avrec.server.impressions.flush()
    shown = {tuple(i["item_id"] for i in lst["items"]) for lst in lists}
    assert len(shown) > 1  # uniform draws: the lists differ
    for lst in lists:
        rows = _rows(url, lst["list_id"])
        assert len(rows) == 4 and all(r.policy == "epsilon" for r in rows)
        # rate 1: every place is uniform over what remains of the pool
        pool = round(1 / rows[0].propensity)  # the pool (at most the unseen items)
        assert pool >= 4 and [round(1 / r.propensity) for r in rows] == [pool - p for p in range(4)]


def test_a_policy_that_cannot_be_used_is_refused_at_start(built):
    with pytest.raises(ValueError, match="unknown policy"):
        ServiceSettings(model_dir=built[0], exploration="sometimes")


def test_deleting_a_user_deletes_their_impressions(built):
    url = built[1]
    admin = {"X-API-Key": create_key(get_engine(url), "imp-admin", ["admin"])}
    with _client(built) as c:
        log = c.app.state.avrec.server.impressions
        c.get("/api/users/u4/recommendations?k=3", headers=own("u4"))
        log.flush()
        c.get("/api/users/u4/recommendations?k=3", headers=own("u4"))  # still queued
        assert c.delete("/api/users/u4", headers=admin).status_code == 200
        log.flush()
    with get_engine(url).connect() as conn:
        left = conn.execute(select(t.impressions).where(t.impressions.c.user_id == "u4")).all()
    assert left == []
