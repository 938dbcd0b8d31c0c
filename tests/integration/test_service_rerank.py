"""Re-ranking in the HTTP API: MMR, DPP and calibration with one 0-1 knob and a popularity
penalty, on both recommendation routes, with clear 422s for values out of range."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from tests.integration.service_fixtures import build

SECRET = "rr"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model_dir, url, _ = build(tmp_path_factory.mktemp("rerank"))
    settings = ServiceSettings(model_dir=model_dir, database_url=url, secret=SECRET)
    with TestClient(create_app(settings)) as c:
        yield c


def kinds(res):
    assert res.status_code == 200, res.text
    return [i["kind"] for i in res.json()["items"]]


def get(c, user, **params):
    head = {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}
    return c.get(f"/api/users/{user}/recommendations", params={"k": 8, **params}, headers=head)


@pytest.mark.parametrize("method", ["mmr", "dpp"])
def test_diversity_brings_other_kinds_into_a_one_kind_list(client, method):
    plain = kinds(get(client, "u0"))
    assert plain[:6] == ["music"] * 6  # u0 listens to calm music only
    varied = kinds(get(client, "u0", rerank=method, diversity=0.9))
    assert "movie" in varied[:6] and len(varied) == 8
    assert kinds(get(client, "u0", rerank=method, diversity=0.0)) == plain


def test_calibration_keeps_the_history_mix_and_debias_answers(client):
    assert set(kinds(get(client, "u0", rerank="calibrated", diversity=1.0))[:6]) == {"music"}
    assert len(kinds(get(client, "u0", debias=2.0))) == 8


def test_anonymous_requests_take_the_same_settings(client):
    body = {"history": ["f1", "f3"], "k": 6}
    plain = kinds(client.post("/api/recommendations", json=body))
    varied = kinds(
        client.post("/api/recommendations", json={**body, "rerank": "dpp", "diversity": 0.9})
    )
    assert plain.count("movie") > varied.count("movie")


@pytest.mark.parametrize(
    "params, loc",
    [
        ({"rerank": "shuffle"}, ["query", "rerank"]),
        ({"diversity": 1.5}, ["query", "diversity"]),
        ({"diversity": "nan"}, ["query", "diversity"]),
        ({"debias": -1}, ["query", "debias"]),
    ],
)
def test_values_out_of_range_are_a_clear_422(client, params, loc):
    res = get(client, "u0", **params)
    assert res.status_code == 422 and res.json()["errors"][0]["loc"] == loc
    body = {"history": ["f1"], **params}
    res = client.post("/api/recommendations", json=body)
    assert res.status_code == 422 and res.json()["errors"][0]["loc"] == ["body", loc[1]]
