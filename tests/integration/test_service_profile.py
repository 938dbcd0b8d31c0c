"""The user portrait from real understanding: posters (EfficientNet-Lite0), sound (YAMNet) and
moods (multilingual e5) stored by the encoders show up, weighted, in the profile and on the
catalog cards, and move online with each event."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from tests.integration.service_fixtures import build


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model_dir, url, _ = build(tmp_path_factory.mktemp("portrait"), media=True)
    with TestClient(
        create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="p"))
    ) as c:
        yield c


def post(c, user, item, event, **extra):
    res = c.post(
        "/api/events",
        json={"user_id": user, "item_id": item, "event": event, **extra},
        headers=own(user),
    )
    assert res.status_code == 201, res.text


def own(user):
    return {"X-Visitor-Token": visitor_token(b"p", user)}


def names(profile, facet):
    return [f["name"] for f in profile.get(facet, [])]


def test_catalog_cards_carry_the_understanding_and_posters(client):
    page = client.get("/api/items?limit=30").json()["items"]
    music = next(i for i in page if i["kind"] == "music")
    film = next(i for i in page if i["kind"] == "movie")
    assert music["understanding"]["sound"] and music["understanding"]["visual"]
    assert music["understanding"]["moods"] and music["understanding"]["language"] == ["en"]
    assert "sound" not in film["understanding"] and film["understanding"]["visual"]
    poster = client.get(music["poster"])
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/png"
    detail = client.get(f"/api/items/{music['item_id']}").json()
    assert set(detail["understanding"]) == {"image", "audio", "text"}
    assert detail["understanding"]["audio"]["status"] == "ok"


def test_portrait_is_weighted_and_moves_with_each_event(client):
    user = "visitor-portrait"
    post(client, user, "m0", "like")
    post(client, user, "m2", "play", watch_fraction=0.9)
    first = client.get(f"/api/users/{user}/profile", headers=own(user)).json()
    assert names(first, "kinds") == ["music"] and names(first, "languages") == ["en"]
    assert "Music" in names(first, "sound")  # YAMNet heard the chord
    assert first["visual"] and first["moods"]
    assert abs(sum(f["weight"] for f in first["genres"]) - 1.0) < 0.01
    for item in ("f1", "f3", "f5"):
        post(client, user, item, "like")
    second = client.get(f"/api/users/{user}/profile", headers=own(user)).json()
    kinds = {f["name"]: f["weight"] for f in second["kinds"]}
    assert kinds["movie"] > kinds["music"]  # three liked films (2 each) vs like + play
    assert names(second, "moods") != names(first, "moods")
    post(client, user, "f1", "dislike")
    post(client, user, "f3", "skip")
    third = client.get(f"/api/users/{user}/profile", headers=own(user)).json()
    assert names(third, "kinds")[0] == "music" and third["disliked_or_skipped"] == 2
