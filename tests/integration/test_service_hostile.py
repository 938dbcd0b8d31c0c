"""Hostile requests against the real app (real model and database): each gets its specific 4xx
with the JSON error format of docs/security.md ({"detail": str, "errors": [{"loc", "msg",
"type"}]}), naming the offending field where there is one; none gets a 5xx or a traceback."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from avrec.service import security
from avrec.service.app import create_app
from avrec.service.errors import ClientError
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

EVENT = {"user_id": "u0", "item_id": "m0", "event": "like"}
JSON = {"Content-Type": "application/json"}


@dataclass
class Hostile:
    """One request. ``status``: the exact status expected, the statuses allowed, or "4xx" where
    it depends on access rules and rate limits set elsewhere; ``loc``: the first error's
    ``loc``, if any; ``auth``: which key goes along ("all", "write", "admin", "bogus" or None)."""

    name: str
    method: str
    path: str
    status: int | tuple | str
    loc: list | None = None
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    auth: str | None = "all"


def event(**fields) -> bytes:
    import json

    return json.dumps({**EVENT, **fields}).encode()


def raw_event(value: str) -> bytes:
    """An event whose ``value`` is written as given (NaN etc. are not JSON to ``json.dumps``)."""
    head = b'{"user_id": "u0", "item_id": "m0", "event": "rating", "value": '
    return head + value.encode() + b"}"


def post(name, path, body: bytes, status, loc=None, headers=None, auth="all") -> Hostile:
    return Hostile(name, "POST", path, status, loc, body, {**JSON, **(headers or {})}, auth)


def get(name, path, status, loc=None, headers=None, auth="all") -> Hostile:
    return Hostile(name, "GET", path, status, loc, None, headers or {}, auth)


LONG = "x" * 300
#: security.may_write_for before the access work: ``hmac.compare_digest`` on ``str`` raises
#: TypeError for a non-ASCII token
OLD_TOKEN_COMPARE = "compare_digest(token," in inspect.getsource(security.may_write_for)
CASES = [
    # non-finite and huge numbers
    post("nan", "/api/events", raw_event("NaN"), 422, ["body", "value"]),
    post("infinity", "/api/events", raw_event("Infinity"), 422, ["body", "value"]),
    post("minus-infinity", "/api/events", raw_event("-Infinity"), 422, ["body", "value"]),
    post("overflow-1e400", "/api/events", raw_event("1e400"), 422, ["body", "value"]),
    post("5000-digit-int", "/api/events", raw_event("9" * 5000), 422, ["body"]),
    post("400-digit-int", "/api/events", raw_event("9" * 400), 422, ["body", "value"]),
    post("k-nan", "/api/recommendations", b'{"history": ["m0"], "k": NaN}', 422, ["body", "k"]),
    post(
        "k-huge",
        "/api/recommendations",
        b'{"history": ["m0"], "k": 1000000000000}',
        422,
        ["body", "k"],
    ),
    post("k-negative", "/api/recommendations", b'{"history": ["m0"], "k": -3}', 422, ["body", "k"]),
    post(
        "year-huge",
        "/api/items",
        b'{"items": [{"item_id": "h1", "year": 99999}]}',
        422,
        ["body", "items", 0, "year"],
    ),
    # bad Unicode
    post("lone-high-surrogate", "/api/events", event(user_id="\ud800"), 422, ["body", "user_id"]),
    post(
        "lone-low-surrogate-request-id",
        "/api/events",
        event(request_id="\udfff"),
        422,
        ["body", "request_id"],
    ),
    post(
        "surrogate-in-history",
        "/api/recommendations",
        b'{"history": ["\\ud83d"]}',
        422,
        ["body", "history", 0],
    ),
    post("surrogate-in-key", "/api/recommendations", b'{"\\udc00": 1}', 422, ["body"]),
    post(
        "invalid-utf8-body",
        "/api/events",
        b'{"user_id": "\xff\xfe", "item_id": "m0"}',
        422,
        ["body"],
    ),
    post(
        "nul-in-item-id",
        "/api/items",
        b'{"items": [{"item_id": "a\\u0000b"}]}',
        422,
        ["body", "items", 0, "item_id"],
    ),
    post("control-char-in-user-id", "/api/events", event(user_id="u\n0"), 422, ["body", "user_id"]),
    get("invalid-utf8-query", "/api/search?q=%ED%A0%80", 422, ["query", "q"]),
    get("nul-in-query", "/api/items?q=a%00b", 422, ["query", "q"]),
    get("invalid-utf8-path", "/api/items/%ff%fe", 422, ["path", "item_id"]),
    get("nul-in-path", "/api/items/m0%00", 422, ["path", "item_id"]),
    get("nul-in-media-id", "/media/m0%00.png", 422, ["path", "item_id"]),
    # wrong types, unknown fields, wrong shapes
    post("user-id-number", "/api/events", event(user_id=123), 422, ["body", "user_id"]),
    post("event-not-in-enum", "/api/events", event(event="explode"), 422, ["body", "event"]),
    post(
        "watch-fraction-2", "/api/events", event(watch_fraction=2), 422, ["body", "watch_fraction"]
    ),
    post(
        "watch-fraction-bool",
        "/api/events",
        event(watch_fraction=True),
        422,
        ["body", "watch_fraction"],
    ),
    post(
        "watch-fraction-string",
        "/api/events",
        event(watch_fraction="0.5"),
        422,
        ["body", "watch_fraction"],
    ),
    post("k-float", "/api/recommendations", b'{"history": ["m0"], "k": 2.5}', 422, ["body", "k"]),
    post("unknown-field", "/api/events", event(admin=True), 422, ["body", "admin"]),
    post(
        "explain-not-bool",
        "/api/recommendations",
        b'{"history": ["m0"], "explain": "maybe"}',
        422,
        ["body", "explain"],
    ),
    post(
        "history-not-list", "/api/recommendations", b'{"history": "m0"}', 422, ["body", "history"]
    ),
    post("json-array", "/api/events", b"[]", 422, ["body"]),
    post("json-string", "/api/events", b'"hello"', 422, ["body"]),
    post("empty-body", "/api/events", b"", 422, ["body"]),
    post("not-json", "/api/events", b"user_id=u0&item_id=m0", 422, ["body"]),
    post("truncated-json", "/api/events", b'{"user_id": "u0"', 422, ["body"]),
    post("deep-nesting", "/api/events", b"[" * 5000 + b"]" * 5000, 422, ["body"]),
    post("deep-nesting-object", "/api/recommendations", b'{"a":' * 40 + b"1" + b"}" * 40, 422),
    post("neither-history-nor-query", "/api/recommendations", b"{}", 422),
    post("empty-item-batch", "/api/items", b'{"items": []}', 422, ["body", "items"]),
    # oversize strings, lists and bodies
    post("long-user-id", "/api/events", event(user_id=LONG), 422, ["body", "user_id"]),
    post("long-request-id", "/api/events", event(request_id="r" * 65), 422, ["body", "request_id"]),
    post(
        "long-query",
        "/api/recommendations",
        b'{"query": "' + b"q" * 2001 + b'"}',
        422,
        ["body", "query"],
    ),
    post(
        "long-history-id",
        "/api/recommendations",
        b'{"history": ["' + LONG.encode() + b'"]}',
        422,
        ["body", "history", 0],
    ),
    post(
        "history-10001",
        "/api/recommendations",
        b'{"history": [' + b",".join([b'"m0"'] * 10_001) + b"]}",
        422,
        ["body", "history"],
    ),
    post(
        "genres-101",
        "/api/items",
        b'{"items": [{"item_id": "h2", "genres": [' + b",".join([b'"g"'] * 101) + b"]}]}",
        422,
        ["body", "items", 0, "genres"],
    ),
    post(
        "body-over-1mb",
        "/api/items",
        b'{"items": [{"item_id": "h3", "description": "' + b"d" * 1_100_000 + b'"}]}',
        413,
        ["body"],
    ),
    get("long-path-id", f"/api/items/{LONG}", 422, ["path", "item_id"]),
    get("long-path-user", f"/api/users/{LONG}/recommendations", 422, ["path", "user_id"]),
    get("url-over-8k", "/api/items/" + "x" * 9000, 414),
    get("query-value-over-2k", "/api/items?q=" + "q" * 2500, 422, ["query", "q"]),
    # wrong content types
    post(
        "text-plain",
        "/api/events",
        event(),
        415,
        ["header", "content-type"],
        {"Content-Type": "text/plain"},
    ),
    post(
        "form-urlencoded",
        "/api/events",
        b"user_id=u0",
        415,
        ["header", "content-type"],
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    post(
        "xml",
        "/api/recommendations",
        b"<history>m0</history>",
        415,
        ["header", "content-type"],
        {"Content-Type": "application/xml"},
    ),
    # path traversal, SQL-ish and odd ids
    get("media-dotdot-encoded", "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 422, ["path", "item_id"]),
    get("media-dotdot-upper", "/media/%2E%2E", 404),
    get("media-encoded-slash", "/media/..%2Fservice.db", 422, ["path", "item_id"]),
    get("media-dotdot-path", "/media/../service.db", 404),
    get("item-dotdot-encoded", "/api/items/%2e%2e", 404),
    get("item-encoded-slash", "/api/items/m0%2Fsimilar", 422, ["path", "item_id"]),
    get("item-encoded-backslash", "/api/items/..%5C..%5Cetc", 422, ["path", "item_id"]),
    get("item-sql", "/api/items/' OR '1'='1", 404),
    get("item-sql-drop", "/api/items/m0;DROP TABLE items;--", 404),
    get("similar-unknown", "/api/items/nope/similar", 404),
    post("event-unknown-item", "/api/events", event(item_id="no-such-item"), 404),
    post("history-unknown-item", "/api/recommendations", b'{"history": ["nope"]}', 404),
    # negative and huge k / offset / limit
    get("offset-negative", "/api/items?offset=-1", 422, ["query", "offset"]),
    get("limit-zero", "/api/items?limit=0", 422, ["query", "limit"]),
    get("limit-huge", "/api/items?limit=99999999999999999999999", 422, ["query", "limit"]),
    get("offset-not-int", "/api/items?offset=ten", 422, ["query", "offset"]),
    get("similar-k-negative", "/api/items/m0/similar?k=-5", 422, ["query", "k"]),
    get("search-empty-q", "/api/search?q=", 422, ["query", "q"]),
    get("search-missing-q", "/api/search", 422, ["query", "q"]),
    # routes whose access rules and rate limits are set elsewhere: only "a 4xx"
    get("user-recs-k-negative", "/api/users/u0/recommendations?k=-1", "4xx"),
    get("user-recs-k-huge", "/api/users/u0/recommendations?k=10000000", "4xx"),
    get("user-recs-unknown", "/api/users/nobody-here/recommendations", "4xx"),
    get("profile-unknown", "/api/users/nobody-here/profile", "4xx"),
    get("user-recs-no-key", "/api/users/nobody-here/recommendations", "4xx", auth=None),
    # methods not allowed
    Hostile("put-events", "PUT", "/api/events", 405, body=event(), headers=JSON),
    Hostile("patch-items", "PATCH", "/api/items", 405, body=b"{}", headers=JSON),
    Hostile("delete-item", "DELETE", "/api/items/m0", 405),
    Hostile("post-search", "POST", "/api/search", 405, body=b"{}", headers=JSON),
    # header abuse
    post(
        "non-ascii-api-key",
        "/api/items",
        b'{"items": [{"item_id": "h4"}]}',
        (401, 403),
        headers={"X-API-Key": "ключ".encode()},
        auth=None,
    ),
    pytest.param(
        post(
            "non-ascii-visitor-token",
            "/api/events",
            event(),
            401,
            headers={"X-Visitor-Token": "tökén".encode()},
            auth=None,
        ),
        marks=pytest.mark.xfail(
            condition=OLD_TOKEN_COMPARE,
            strict=True,
            reason=(
                "a non-ASCII visitor token is a 500 until the access work (h1) compares "
                "tokens as bytes in security.py"
            ),
        ),
    ),
    post(
        "huge-api-key", "/api/events", event(), 401, headers={"X-API-Key": "k" * 10_000}, auth=None
    ),
    get("huge-headers", "/api/items", 431, ["header"], {"X-Junk": "j" * 40_000}),
    post(
        "bogus-api-key", "/api/items", b'{"items": [{"item_id": "h5"}]}', (401, 403), auth="bogus"
    ),
    post(
        "other-visitors-token",
        "/api/events",
        event(user_id="visitor-1"),
        401,
        headers={"X-Visitor-Token": visitor_token(b"hostile", "visitor-2")},
        auth=None,
    ),
    # missing or insufficient credentials on write and admin routes
    post("event-no-credentials", "/api/events", event(), 401, auth=None),
    post("ingest-no-key", "/api/items", b'{"items": [{"item_id": "h6"}]}', 401, auth=None),
    post(
        "ingest-admin-only-key", "/api/items", b'{"items": [{"item_id": "h7"}]}', 403, auth="admin"
    ),
    Hostile("delete-user-no-key", "DELETE", "/api/users/u5", 401, auth=None),
    Hostile("delete-user-write-key", "DELETE", "/api/users/u5", 403, auth="write"),
    get("admin-latency-no-key", "/api/admin/latency", 401, auth=None),
    get("admin-latency-write-key", "/api/admin/latency", 403, auth="write"),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    model_dir, url, _ = build(tmp_path_factory.mktemp("hostile"))
    engine = get_engine(url)
    keys = {
        "all": create_key(engine, "all", ["write", "admin"]),
        "write": create_key(engine, "write", ["write"]),
        "admin": create_key(engine, "admin", ["admin"]),
        "bogus": "avk_not-a-real-key",
        None: None,
    }
    app = create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="hostile"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client, keys


def assert_error_format(res) -> dict:
    assert res.headers["content-type"].startswith("application/json"), res.headers
    assert "Traceback" not in res.text and 'File "' not in res.text
    body = res.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["errors"], list) and body["errors"], body
    for e in body["errors"]:
        assert set(e) == {"loc", "msg", "type"}, e
        assert isinstance(e["loc"], list) and isinstance(e["msg"], str) and e["msg"], e
        assert isinstance(e["type"], str) and e["type"], e
    return body


def test_cases_are_distinct_and_many():
    cases = [c.values[0] if hasattr(c, "values") else c for c in CASES]
    assert len({c.name for c in cases}) == len(cases)
    assert (
        len({(c.method, c.path, c.body, tuple(c.headers.items()), c.auth) for c in cases})
        == len(cases)
        >= 40
    )


def _name(case) -> str:
    return case.values[0].name if hasattr(case, "values") else case.name


@pytest.mark.parametrize("case", CASES, ids=[_name(c) for c in CASES])
def test_hostile_request(service, case):
    _, client, keys = service
    headers = dict(case.headers)
    if keys[case.auth]:
        headers["X-API-Key"] = keys[case.auth]
    res = client.request(case.method, case.path, content=case.body, headers=headers)
    assert res.status_code < 500, (res.status_code, res.text[:500])
    if case.status == "4xx":
        assert 400 <= res.status_code < 500, (res.status_code, res.text[:500])
    elif isinstance(case.status, tuple):
        assert res.status_code in case.status, (res.status_code, res.text[:500])
    else:
        assert res.status_code == case.status, (res.status_code, res.text[:500])
    body = assert_error_format(res)
    if case.loc is not None:
        assert body["errors"][0]["loc"] == case.loc, body


def test_a_valid_request_still_passes(service):
    """The guard hands good requests on untouched: bodies with floats, escapes and non-ASCII."""
    _, client, keys = service
    res = client.post(
        "/api/events",
        headers={"X-API-Key": keys["all"]},
        json={**EVENT, "event": "rating", "value": 4.5e0, "request_id": "r-\u00e9"},
    )
    assert res.status_code == 201, res.text
    res = client.post(
        "/api/recommendations",  # a surrogate *pair* escape is a valid character
        content=b'{"history": ["m0", "m2"], "k": 3, "query": "calm \\ud83c\\udfb9"}',
        headers=JSON,
    )
    assert res.status_code == 200 and len(res.json()["items"]) == 3, res.text
    assert client.get("/api/search", params={"q": "안녕 piano"}).status_code == 200


def test_errors_raised_in_routes_keep_the_format(service, caplog):
    """A route that fails unexpectedly gives a JSON 500 (logged, no traceback or message to the
    client); text that is not Unicode reaching a route, a 422; a ClientError names its field."""
    app, client, _ = service

    def boom():
        raise RuntimeError("secret internals")

    def not_unicode():
        return "\ud800".encode()

    def conflict():
        raise ClientError(409, "request_id reused with another body", ["body", "request_id"])

    for path, endpoint in (
        ("/api/test-boom", boom),
        ("/api/test-unicode", not_unicode),
        ("/api/test-conflict", conflict),
    ):
        app.add_api_route(path, endpoint)
        app.router.routes.insert(0, app.router.routes.pop())  # ahead of the page mounted at /
    with caplog.at_level(logging.WARNING, logger="avrec.service"):
        res = client.get("/api/test-boom")
        assert res.status_code == 500
        body = assert_error_format(res)
        assert body["errors"][0]["type"] == "internal_error" and "secret" not in res.text
        assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
        res = client.get("/api/test-unicode")
        assert res.status_code == 422
        assert assert_error_format(res)["errors"][0]["type"] == "string_unicode"
    res = client.get("/api/test-conflict")
    assert res.status_code == 409
    assert assert_error_format(res)["errors"][0]["loc"] == ["body", "request_id"]


def test_openapi_documents_the_error_answers(service):
    _, client, _ = service
    doc = client.get("/openapi.json").json()
    assert "ErrorResponse" in doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        if path.startswith("/api/"):
            for operation in operations.values():
                assert {"401", "404", "413", "422", "429"} <= set(operation["responses"]), path
