"""Access to personal data (scopes, visitor tokens and cookies), per-client rate limits, the
in-flight bound, media types from the file's bytes and the security headers, on the real app
(FastAPI TestClient, and uvicorn in a thread for the overload test)."""

from __future__ import annotations

import html.parser
import io
import socket
import threading
import time
import wave

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from avrec.service.app import UI, create_app
from avrec.service.security import visitor_token
from avrec.service.settings import ServiceSettings
from avrec.storage import tables as t
from avrec.storage.db import get_engine
from avrec.storage.keys import create_key
from tests.integration.service_fixtures import build

SECRET = "acc3ss"
SAFE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access")
    model_dir, url, _ = build(tmp)
    engine = get_engine(url)
    keys = {scope: create_key(engine, scope, [scope]) for scope in ("read", "write", "admin")}
    return model_dir, url, tmp / "media", keys


def app(setup, **options):
    model_dir, url, media, _ = setup
    return create_app(
        ServiceSettings(
            model_dir=model_dir, database_url=url, secret=SECRET, media_root=media, **options
        )
    )


def safe(res: httpx.Response) -> httpx.Response:
    """Every response carries the security headers."""
    for name, value in SAFE.items():
        assert res.headers.get(name) == value, (res.request.url, name, dict(res.headers))
    return res


def own(user: str) -> dict:
    return {"X-Visitor-Token": visitor_token(SECRET.encode(), user)}


@pytest.fixture(scope="module")
def client(setup):
    with TestClient(app(setup)) as c:
        for user, item in (("visitor-a", "m0"), ("visitor-b", "f1")):
            res = c.post(
                "/api/events",
                json={"user_id": user, "item_id": item, "event": "like"},
                headers=own(user),
            )
            assert safe(res).status_code == 201
        yield c


def credentials(keys: dict) -> dict:
    return {
        "none": ({}, 401),
        "read key": ({"X-API-Key": keys["read"]}, 200),
        "write-only key": ({"X-API-Key": keys["write"]}, 403),
        "admin key": ({"X-API-Key": keys["admin"]}, 200),
        "unknown key": ({"X-API-Key": "avk_not-a-key"}, 403),
        "non-ASCII key": ({"X-API-Key": "ключ".encode()}, 403),
        "own token": (own("visitor-a"), 200),
        "other visitor's token": (own("visitor-b"), 403),
        "non-ASCII token": ({"X-Visitor-Token": "jeton-é-令牌".encode()}, 403),
        "own cookie": (
            {"Cookie": f"avrec_visitor=visitor-a.{own('visitor-a')['X-Visitor-Token']}"},
            200,
        ),
        "other visitor's cookie": (
            {"Cookie": f"avrec_visitor=visitor-b.{own('visitor-b')['X-Visitor-Token']}"},
            403,
        ),
        "forged cookie": ({"Cookie": "avrec_visitor=visitor-a.0123abcd"}, 403),
    }


@pytest.mark.parametrize("route", ["recommendations", "profile"])
@pytest.mark.parametrize("who", list(credentials({"read": "", "write": "", "admin": ""})))
def test_reading_a_users_data_needs_a_credential(setup, client, route, who):
    head, expected = credentials(setup[3])[who]
    res = safe(client.get(f"/api/users/visitor-a/{route}", headers=head))
    assert res.status_code == expected, (who, res.text)
    if expected == 200:
        assert res.json()["user_id"] == "visitor-a"
    else:
        assert res.json()["detail"]


def test_unknown_users_and_public_routes(setup, client):
    keys = setup[3]
    assert safe(client.get("/api/users/nobody/profile")).status_code == 401  # no probing
    assert (
        safe(
            client.get("/api/users/nobody/profile", headers={"X-API-Key": keys["read"]})
        ).status_code
        == 404
    )
    for path in (
        "/api/items",
        "/api/items/m0",
        "/api/items/m0/similar",
        "/api/search?q=piano",
        "/health",
    ):
        assert safe(client.get(path)).status_code == 200, path
    res = client.post("/api/recommendations", json={"history": ["m0", "m2"], "k": 3})
    assert safe(res).status_code == 200 and len(res.json()["items"]) == 3
    # a wrong visitor token on a write is refused too, never a 500
    event = {"user_id": "visitor-a", "item_id": "m2", "event": "like"}
    res = client.post("/api/events", json=event, headers={"X-Visitor-Token": "é".encode()})
    assert safe(res).status_code == 401


def test_visitor_cookie_is_httponly_strict_and_survives_a_reload(setup):
    with TestClient(app(setup)) as c:
        res = safe(c.post("/api/visitors"))
        visitor = res.json()
        cookie = res.headers["set-cookie"].lower()
        assert cookie.startswith("avrec_visitor=visitor-")
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/api" in cookie
        assert visitor["token"] in res.headers["set-cookie"] and "secure" not in cookie  # http
        # the cookie alone authorises this visitor's events and reads
        event = {"user_id": visitor["user_id"], "item_id": "m4", "event": "like"}
        assert safe(c.post("/api/events", json=event)).status_code == 201
        mine = safe(c.get(f"/api/users/{visitor['user_id']}/recommendations?k=3"))
        assert mine.status_code == 200
        assert safe(c.get("/api/users/visitor-a/profile")).status_code == 403
        # a reload: the same visitor comes back from the cookie
        again = safe(c.post("/api/visitors")).json()
        assert again == {"user_id": visitor["user_id"], "token": None}  # the token stays hidden
        c.cookies.clear()
        assert safe(c.post("/api/visitors")).json()["user_id"] != visitor["user_id"]


def test_rate_limit_per_client(setup):
    keys = setup[3]
    with TestClient(app(setup, rate_per_s=0.001, rate_burst=3)) as c:
        for _ in range(3):
            assert safe(c.get("/api/items?limit=1")).status_code == 200
        res = safe(c.get("/api/items?limit=1"))
        assert res.status_code == 429 and "too many requests" in res.json()["detail"]
        assert int(res.headers["retry-after"]) >= 1
        assert safe(c.get("/health")).status_code == 429  # every route
        # an invented key is counted against the address: no fresh bucket for it
        assert safe(c.get("/health", headers={"X-API-Key": "avk_invented"})).status_code == 429
        # a genuine key is its own client, with its own bucket
        head = {"X-API-Key": keys["read"]}
        for _ in range(3):
            assert safe(c.get("/api/users/u0/profile", headers=head)).status_code == 200
        res = safe(c.get("/api/users/u0/profile", headers=head))
        assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1
        # a visitor (token of the user in the path, or the cookie) is its own client too
        assert safe(c.get("/api/users/u1/profile", headers=own("u1"))).status_code == 200
        cookie = {"Cookie": f"avrec_visitor=u1.{own('u1')['X-Visitor-Token']}"}
        assert safe(c.get("/api/users/u1/profile", headers=cookie)).status_code == 200
        assert safe(c.get("/api/users/u1/profile", headers=own("u2"))).status_code == 429


def test_visitor_creation_has_its_own_stricter_limit(setup):
    with TestClient(app(setup, visitor_rate_per_s=0.001, visitor_burst=2)) as c:
        for _ in range(2):
            assert safe(c.post("/api/visitors")).status_code == 200
            c.cookies.clear()
        res = safe(c.post("/api/visitors"))
        assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1
        assert res.json()["detail"]
        assert safe(c.get("/api/items?limit=1")).status_code == 200  # other routes still served
        invented = {"X-API-Key": "avk_invented"}  # only a genuine key escapes this bucket
        assert safe(c.post("/api/visitors", headers=invented)).status_code == 429
        genuine = {"X-API-Key": setup[3]["write"]}
        assert safe(c.post("/api/visitors", headers=genuine)).status_code == 200


@pytest.fixture
def uvicorn_server(setup):
    """The app under uvicorn in a thread, at most one request in flight."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app(setup, max_in_flight=1), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(10)


def test_overload_is_refused_at_once_with_503(uvicorn_server):
    port = uvicorn_server
    base = f"http://127.0.0.1:{port}"
    body = b'{"user_id": "visitor-a", "item_id": "m2", "event": "like"}'
    token = own("visitor-a")["X-Visitor-Token"]
    with socket.create_connection(("127.0.0.1", port)) as held:
        # a request inside the app, waiting for the rest of its body: it holds the one slot
        held.sendall(
            b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Visitor-Token: " + token.encode() + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        res = None
        for _ in range(100):  # until the held request has reached the app
            res = safe(httpx.get(base + "/health", timeout=10))
            if res.status_code == 503:
                break
            time.sleep(0.05)
        assert res.status_code == 503, res.text
        assert res.headers["retry-after"] == "1" and "capacity" in res.json()["detail"]
        held.sendall(body[10:])  # the held request completes normally
        answer = held.recv(65536)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    assert safe(httpx.get(base + "/health", timeout=10)).status_code == 200  # the slot is free


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def wav_bytes() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    return out.getvalue()


MEDIA = {  # item -> (file written into the media folder, its bytes)
    "m0": ("page.html", b"<!doctype html><html><script>alert(document.cookie)</script></html>"),
    "m2": ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    "m4": ("poster.png", png_bytes()),
    "m6": ("not-really.png", b"<html><body onload=alert(1)>a page named .png</body></html>"),
    "m8": ("notes.txt", b"plain text"),
    "m10": ("chord.wav", wav_bytes()),
}


def test_media_served_only_as_the_type_its_bytes_show(setup):
    _, url, media, _ = setup
    media.mkdir(exist_ok=True)
    engine = get_engine(url)
    with engine.begin() as conn:
        for item, (name, data) in MEDIA.items():
            (media / name).write_bytes(data)
            conn.execute(update(t.items).where(t.items.c.item_id == item).values(image=name))
    with TestClient(app(setup)) as c:
        for item in ("m0", "m2", "m6", "m8"):
            res = safe(c.get(f"/media/{item}"))
            assert res.status_code == 200 and res.content == MEDIA[item][1]
            assert res.headers["content-type"] == "application/octet-stream", item
            assert res.headers["content-disposition"].startswith("attachment"), item
        png = safe(c.get("/media/m4"))
        assert png.headers["content-type"] == "image/png" and png.content == MEDIA["m4"][1]
        assert "content-disposition" not in png.headers
        assert safe(c.get("/media/m10")).headers["content-type"] == "audio/wav"
        assert safe(c.get("/media/m12")).status_code == 404  # no image for this item


def test_headers_on_every_kind_of_response(setup):
    with TestClient(app(setup)) as c:
        page = safe(c.get("/"))
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
        assert "content-security-policy" in safe(c.get("/app.js")).headers
        for path in ("/api/nope", "/nope.html", "/api/items/nope", "/media/nope"):
            assert safe(c.get(path)).status_code == 404, path
        assert safe(c.post("/api/events", content=b"{")).status_code == 415  # not JSON
        bad = c.post("/api/events", content=b"{", headers={"Content-Type": "application/json"})
        assert safe(bad).status_code == 422
        docs = safe(c.get("/docs"))  # Swagger UI: a CDN and an inline script, so no CSP
        assert docs.status_code == 200 and "content-security-policy" not in docs.headers
        assert safe(c.get("/openapi.json")).status_code == 200
        assert safe(c.get("/metrics")).status_code == 200


def test_headers_on_an_unexpected_500(setup):
    def crash() -> dict:  # stands for a bug: the 500 Starlette answers has the headers too
        raise RuntimeError("a bug")

    crashing = app(setup)
    crashing.add_api_route("/api/crash", crash)
    crashing.router.routes.insert(0, crashing.router.routes.pop())  # ahead of the page's mount
    with TestClient(crashing, raise_server_exceptions=False) as c:
        assert safe(c.get("/api/crash")).status_code == 500


class _Inline(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        self.problems += [f"{tag} {a}" for a in names if a.startswith("on") or a == "style"]
        if tag == "script":
            self.in_script = True
            if not names.get("src"):
                self.problems.append("script without src")

    def handle_endtag(self, tag):
        self.in_script = self.in_script and tag != "script"

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append("inline script")


def test_page_has_no_inline_script_handlers_or_styles():
    parser = _Inline()
    parser.feed((UI / "index.html").read_text())
    assert parser.problems == []
    assert "localStorage" not in (UI / "app.js").read_text()


def test_read_is_a_key_scope(setup):
    engine = get_engine(setup[1])
    assert create_key(engine, "dashboard", ["read"]).startswith("avk_")
    with pytest.raises(ValueError, match="among read, write, admin"):
        create_key(engine, "typo", ["reads"])
