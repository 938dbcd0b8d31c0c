"""Per-client rate limits (token buckets) and a bound on requests in flight, as plain ASGI
middleware: a refused request is answered at once (429 or 503 with ``Retry-After``), before its
body is read or a thread is taken.

A client is its API key, else its visitor (token or cookie), else its address. Only a genuine
credential gets its own bucket: the visitor cookie is checked here (it carries its user ID and
HMAC), API keys are known from the database at start and from each accepted use, visitor tokens
in ``X-Visitor-Token`` from each accepted use (``RateLimiter.trust``, called by the auth code).
An invented key or token is counted against its address, so minting fake credentials buys no
fresh bucket. Keyless ``POST /api/visitors`` has its own, stricter bucket per address."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections import OrderedDict

from starlette.requests import cookie_parser

from avrec.service.errors import error, error_bytes
from avrec.service.security import VISITOR_COOKIE, visitor_token

#: most buckets (and trusted credentials) kept; the least recently used are dropped past it
MAX_CLIENTS = 100_000


def _reply(status: int, detail: str, retry_after: int):
    kind = "too_many_requests" if status == 429 else "service_unavailable"
    body = error_bytes(status, [error([], detail, kind)])
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]

    async def send_it(send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return send_it


class TokenBuckets:
    """``rate`` tokens per second refill each bucket up to ``burst``; a request takes one."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """0 if the request may go on, else the seconds until a token is back."""
        now = self.clock()
        tokens, last = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait


def _digest(kind: str, value: str) -> str:
    return kind + ":" + hashlib.sha256(value.encode("utf-8")).hexdigest()


#: the routes of one user's data, ``/api/users/{user_id}/...``
USER_PATH = re.compile(r"/api/users/([^/]+)/")


def address(scope) -> str:
    return "addr:" + (scope.get("client") or ("unknown",))[0]


class RateLimiter:
    """The buckets and the credentials known to be genuine (shared by the middleware and the
    auth code through ``app.state.limiter``). A rate of 0 or less turns a limit off."""

    def __init__(self, rate: float, burst: int, visitor_rate: float, visitor_burst: int):
        self.general = TokenBuckets(rate, burst) if rate > 0 else None
        self.visitors = TokenBuckets(visitor_rate, visitor_burst) if visitor_rate > 0 else None
        #: sha256 of a genuine credential -> the bucket it is counted in
        self.trusted: OrderedDict[str, str] = OrderedDict()
        self.secret: bytes | None = None

    def trust(self, kind: str, value: str, client: str | None = None) -> None:
        """``kind`` is "key" or "token"; ``client`` names the bucket (default: the credential)."""
        name = _digest(kind, value)
        self.trusted[name] = client or name
        self.trusted.move_to_end(name)
        if len(self.trusted) > MAX_CLIENTS:
            self.trusted.popitem(last=False)

    def trust_keys(self, engine) -> None:
        """Every API key stored when the service starts (their SHA-256 is what the table holds)."""
        from sqlalchemy import select

        from avrec.storage import tables as t

        with engine.connect() as conn:
            for key_hash in conn.execute(select(t.api_keys.c.key_hash)).scalars():
                self.trusted["key:" + key_hash] = "key:" + key_hash

    def _visitor(self, user_id: str, token: str) -> str | None:
        """The bucket of a genuine visitor token (an HMAC of the user ID), else None."""
        if self.secret is None:
            return None
        genuine = hmac.compare_digest(
            token.encode("utf-8"), visitor_token(self.secret, user_id).encode("utf-8")
        )
        return "visitor:" + user_id if genuine else None

    def client(self, scope) -> str:
        headers = {
            k.decode(): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in (b"x-api-key", b"x-visitor-token", b"cookie")
        }
        for kind, header in (("key", "x-api-key"), ("token", "x-visitor-token")):
            value = headers.get(header)
            if value and (name := self.trusted.get(_digest(kind, value))):
                return name
        token = headers.get("x-visitor-token")
        user = USER_PATH.match(scope["path"])
        if token and user and (visitor := self._visitor(user.group(1), token)):
            return visitor  # a visitor reading their own data: the user ID is in the path
        cookie = (
            cookie_parser(headers["cookie"]).get(VISITOR_COOKIE) if "cookie" in headers else None
        )
        if cookie and "." in cookie and (visitor := self._visitor(*cookie.rsplit(".", 1))):
            return visitor
        return address(scope)


class RateLimit:
    def __init__(self, app, limiter: RateLimiter):
        self.app, self.limiter = app, limiter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        buckets, client = self.limiter.general, self.limiter.client(scope)
        if (
            scope["method"] == "POST"
            and scope["path"] == "/api/visitors"
            and not client.startswith("key:")
        ):  # no genuine key: the stricter bucket
            buckets, client = self.limiter.visitors, "new-visitor:" + address(scope)
        wait = buckets.take(client) if buckets is not None else 0.0
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            return await _reply(
                429, f"too many requests from this client: retry in {seconds} s", seconds
            )(send)
        return await self.app(scope, receive, send)


class InFlightLimit:
    """At most ``limit`` requests inside the app at once; past it a 503 at once, so an
    overloaded service sheds load instead of queueing requests until they time out."""

    def __init__(self, app, limit: int, retry_after: int = 1):
        self.app, self.limit, self.retry_after = app, limit, retry_after
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.limit <= 0:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            return await _reply(503, "the service is at capacity: retry shortly", self.retry_after)(
                send
            )
        self.in_flight += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
