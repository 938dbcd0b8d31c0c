"""The service's model path through the retrieval cascade: the same lists as the full ranking
when the candidate budget covers the catalog, filters and history requests included."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from tests.integration.service_fixtures import build


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build(tmp_path_factory.mktemp("service-cascade"))


def _lists(setup, retrieval):
    model_dir, url, _ = setup
    settings = ServiceSettings(
        model_dir=model_dir, database_url=url, secret="k", retrieval=retrieval
    )
    out = []
    with TestClient(create_app(settings)) as c:
        assert c.get("/health").json()["retrieval"] == retrieval
        for user in ("u0", "u1"):
            head = {"X-Visitor-Token": visitor_token(b"k", user)}
            for q in ("k=6", "k=4&kind=movie"):
                res = c.get(f"/api/users/{user}/recommendations?{q}", headers=head)
                assert res.status_code == 200, res.text
                out.append([i["item_id"] for i in res.json()["items"]])
        res = c.post("/api/recommendations", json={"history": ["m0", "m2"], "k": 5})
        out.append([i["item_id"] for i in res.json()["items"]])
    return out


def test_cascade_path_gives_the_full_rankings_lists_on_a_small_catalog(setup):
    cascade, model = _lists(setup, "cascade"), _lists(setup, "model")
    assert all(cascade) and cascade == model
