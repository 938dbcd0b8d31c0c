"""API keys (hashed in the database) for write and admin endpoints, and visitor tokens that let
an anonymous web visitor post events for their own visitor ID only."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Header, HTTPException, Request


def visitor_token(secret: bytes, user_id: str) -> str:
    return hmac.new(secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def new_visitor(secret: bytes) -> tuple[str, str]:
    user_id = "visitor-" + secrets.token_hex(8)
    return user_id, visitor_token(secret, user_id)


def require_scope(scope: str):
    """Dependency: the request carries an API key (``X-API-Key``) with ``scope``."""

    def check(request: Request, x_api_key: str | None = Header(default=None)) -> None:
        from avrec.storage.keys import key_scopes

        if not x_api_key:
            raise HTTPException(401, f"this endpoint needs an API key with the {scope!r} scope (X-API-Key)")
        if scope not in key_scopes(request.app.state.avrec.engine, x_api_key):
            raise HTTPException(403, f"the API key lacks the {scope!r} scope")

    return check


def may_write_for(request: Request, user_id: str, api_key: str | None, token: str | None) -> None:
    """Events: an API key with 'write', or the visitor token of this very user."""
    from avrec.storage.keys import key_scopes

    if api_key and "write" in key_scopes(request.app.state.avrec.engine, api_key):
        return
    if token and hmac.compare_digest(token, visitor_token(request.app.state.secret, user_id)):
        return
    raise HTTPException(401, "events need an API key with the 'write' scope or this visitor's token")
