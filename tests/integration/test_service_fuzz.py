"""Random bad input never gets a 5xx: Hypothesis throws arbitrary JSON bodies, path segments
and query parameters at every endpoint of a running app (real model and database)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avrec.service.app import create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

FIELDS = [
    "user_id",
    "item_id",
    "event",
    "value",
    "watch_fraction",
    "request_id",
    "history",
    "query",
    "k",
    "kind",
    "language",
    "explain",
    "exclude_seen",
    "items",
    "title",
    "genres",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["like", "skip", "play", "rating", "m0", "f1", "u0", "music", "安静"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=6),
    st.lists(values, max_size=3),
    scalars,
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model_dir, url, _ = build(tmp_path_factory.mktemp("fuzz"))
    write = create_key(get_engine(url), "fuzz", ["write", "admin"])
    app = create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="z"))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers.update({"X-API-Key": write, "X-Visitor-Token": visitor_token(b"z", "u0")})
        yield c


@SETTINGS
@given(
    path=st.sampled_from(["/api/events", "/api/recommendations", "/api/items", "/api/visitors"]),
    body=bodies,
)
def test_random_json_bodies(client, path, body):
    res = client.post(path, json=body)
    assert res.status_code < 500, (path, body, res.text)


@SETTINGS
@given(
    segment=st.text(min_size=1, max_size=30),
    params=st.dictionaries(
        st.sampled_from(
            ["k", "kind", "language", "q", "explain", "exclude_seen", "offset", "limit", "reset"]
        ),
        st.text(max_size=12) | st.integers(-5, 10**9).map(str),
        max_size=4,
    ),
)
def test_random_paths_and_parameters(client, segment, params):
    seg = quote(segment, safe="")
    for path in (
        f"/api/users/{seg}/recommendations",
        f"/api/users/{seg}/profile",
        f"/api/items/{seg}",
        f"/api/items/{seg}/similar",
        "/api/items",
        "/api/search",
        "/api/users/u0/recommendations",
        f"/media/{seg}",
        "/api/admin/latency",
    ):
        res = client.get(path, params=params)
        assert res.status_code < 500, (path, params, res.text)
    assert client.delete(f"/api/users/{seg}x").status_code < 500
