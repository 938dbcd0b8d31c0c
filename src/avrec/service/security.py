"""API keys (hashed in the database) with scopes, and visitor tokens that let an anonymous web
visitor post events for, and read the recommendations and profile of, their own visitor ID only.

A visitor token travels in ``X-Visitor-Token`` or in the ``avrec_visitor`` cookie that
``POST /api/visitors`` sets (``<user_id>.<token>``, HttpOnly, SameSite=Strict, Path=/api)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from fastapi import Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import DBAPIError

VISITOR_COOKIE = "avrec_visitor"
#: how long the browser keeps the visitor cookie, seconds
COOKIE_AGE = 365 * 24 * 3600


def visitor_token(secret: bytes, user_id: str) -> str:
    return hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def new_visitor(secret: bytes) -> tuple[str, str]:
    user_id = "visitor-" + secrets.token_hex(8)
    return user_id, visitor_token(secret, user_id)


def _same(a: str, b: str) -> bool:
    # bytes, not str: compare_digest raises TypeError on non-ASCII str (a header decoded as
    # latin-1 may hold any character); a wrong token must be a 401/403, never a 500
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _trust(request: Request, kind: str, value: str, client: str | None = None) -> None:
    """Tells the rate limiter this credential is genuine: it gets its own bucket from now on."""
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        limiter.trust(kind, value, client)


def key_scopes(request: Request, key: str | None) -> set[str]:
    from avrec.storage.keys import key_scopes as stored_scopes

    scopes = stored_scopes(request.app.state.avrec.engine, key)
    if scopes and key is not None:
        _trust(request, "key", key)
    return scopes


def cookie_visitor(request: Request) -> tuple[str, str] | None:
    """``(user_id, token)`` from a genuine visitor cookie, else None."""
    raw = request.cookies.get(VISITOR_COOKIE)
    if not raw or "." not in raw:
        return None
    user_id, token = raw.rsplit(".", 1)
    if not _same(token, visitor_token(request.app.state.secret, user_id)):
        return None
    return user_id, token


def is_visitor(request: Request, user_id: str, token: str | None) -> bool:
    """The header token or the cookie is this very user's visitor token."""
    if token and _same(token, visitor_token(request.app.state.secret, user_id)):
        _trust(request, "token", token, "visitor:" + user_id)
        return True
    cookie = cookie_visitor(request)
    return cookie is not None and cookie[0] == user_id


def set_visitor_cookie(request: Request, response: Response, user_id: str, token: str) -> None:
    # SameSite=Strict: the browser never sends the cookie with a request started by another
    # site, so writes authorised by the cookie alone (POST /api/events) are safe from CSRF;
    # HttpOnly keeps the token away from the page's scripts
    response.set_cookie(
        VISITOR_COOKIE,
        f"{user_id}.{token}",
        max_age=COOKIE_AGE,
        path="/api",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def require_scope(scope: str):
    """Dependency: the request carries an API key (``X-API-Key``) with ``scope``."""

    def check(request: Request, x_api_key: str | None = Header(default=None)) -> None:
        if not x_api_key:
            raise HTTPException(
                401, f"this endpoint needs an API key with the {scope!r} scope (X-API-Key)"
            )
        if scope not in key_scopes(request, x_api_key):
            raise HTTPException(403, f"the API key lacks the {scope!r} scope")

    return check


#: seconds the read routes reuse a key's scopes without a database query (their hot path); a
#: revoked key may go on reading for at most this long
KEY_CACHE_S = 1.0


async def _read_scopes(request: Request, key: str) -> set[str]:
    """The key's scopes, from a short-lived cache of accepted keys, else the database (in the
    thread pool, so the event loop never waits on it)."""
    cache = getattr(request.app.state, "read_keys", None)
    if cache is None:
        cache = request.app.state.read_keys = {}
    name, now = hashlib.sha256(key.encode("utf-8")).hexdigest(), time.monotonic()
    hit = cache.get(name)
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        scopes = await run_in_threadpool(key_scopes, request, key)
    except DBAPIError:
        if hit is not None:  # the database is away: a key accepted before keeps reading
            return hit[0]
        raise
    if scopes:
        if len(cache) > 10_000:
            cache.clear()
        cache[name] = (scopes, now + KEY_CACHE_S)
    return scopes


async def may_read(
    request: Request,
    user_id: str,
    x_api_key: str | None = Header(default=None),
    x_visitor_token: str | None = Header(default=None),
) -> None:
    """Dependency for a user's personal data: an API key with 'read' (or 'admin'), or this very
    user's visitor token (header or cookie). 401 without any credential, 403 with a wrong one.
    Async so the recommendations hot path stays on the event loop: a token is an HMAC checked
    inline, a key's scopes come from ``_read_scopes``."""
    if is_visitor(request, user_id, x_visitor_token):
        return
    if x_api_key and (await _read_scopes(request, x_api_key)) & {"read", "admin"}:
        return
    if not (x_api_key or x_visitor_token or request.cookies.get(VISITOR_COOKIE)):
        raise HTTPException(
            401,
            "reading a user's data needs an API key with the 'read' scope "
            "(X-API-Key) or this visitor's token (X-Visitor-Token)",
        )
    raise HTTPException(403, "the credential does not allow reading this user's data")


async def may_control(
    request: Request,
    user_id: str,
    x_api_key: str | None = Header(default=None),
    x_visitor_token: str | None = Header(default=None),
) -> None:
    """Dependency for a person's control over their data (export, consent): this very user's
    visitor token (header or cookie), or an API key with 'admin'. 401 without any credential,
    403 with one that does not cover the user (a 'read' or 'write' key included); checked
    before the user is looked up, as for :func:`may_read`."""
    if is_visitor(request, user_id, x_visitor_token):
        return
    if x_api_key and "admin" in await _read_scopes(request, x_api_key):
        return
    if not (x_api_key or x_visitor_token or request.cookies.get(VISITOR_COOKIE)):
        raise HTTPException(
            401,
            "a person's data export and consent need their visitor token (X-Visitor-Token) "
            "or an API key with the 'admin' scope (X-API-Key)",
        )
    raise HTTPException(403, "the credential does not allow controlling this user's data")


def may_write_for(request: Request, user_id: str, api_key: str | None, token: str | None) -> None:
    """Events: an API key with 'write', or this very user's visitor token (header or cookie)."""
    if api_key and "write" in key_scopes(request, api_key):
        return
    if is_visitor(request, user_id, token):
        return
    raise HTTPException(
        401, "events need an API key with the 'write' scope or this visitor's token"
    )
