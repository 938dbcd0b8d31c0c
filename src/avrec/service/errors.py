"""One JSON error format for every error answer, and the exception handlers that use it.

Every error the service sends has the body ``{"detail": "<one line>", "errors": [{"loc": [...],
"msg": "...", "type": "..."}]}`` (see "Input validation" in docs/security.md): pydantic's
validation errors (422), ``HTTPException`` (any status) and, as a last resort, any other
exception (a JSON 500, logged, no traceback to the client).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("avrec.service")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    detail: str
    errors: list[ErrorItem]


class ClientError(HTTPException):
    """An ``HTTPException`` that names the offending field (``loc``: ``["path", "user_id"]``)."""

    def __init__(
        self,
        status: int,
        msg: str,
        loc: list[str | int] | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status, msg, headers=headers)
        self.loc, self.type = list(loc or []), type


def _slug(status: int) -> str:
    try:
        return re.sub(r"\W+", "_", HTTPStatus(status).phrase.lower()).strip("_")
    except ValueError:
        return f"http_{status}"


def error_content(status: int, errors: list[dict]) -> dict:
    """``{"detail", "errors"}``: ``detail`` joins the first few errors into one line."""
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    detail = "; ".join(parts) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
    return {"detail": detail or HTTPStatus(status).phrase, "errors": errors}


def error(loc: list, msg: str, type: str) -> dict:
    return {"loc": list(loc), "msg": msg, "type": type}


def error_response(status: int, errors: list[dict], headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_content(status, errors), status_code=status, headers=headers)


def error_bytes(status: int, errors: list[dict]) -> bytes:
    """The body as ``JSONResponse`` would render it."""
    return json.dumps(
        error_content(status, errors), ensure_ascii=False, separators=(",", ":")
    ).encode()


def replay_body(body: bytes, receive):
    """An ASGI ``receive`` that hands the app ``body`` (already read off the wire) once, then
    passes on whatever the client sends next (a disconnect)."""
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def send_error(send, status: int, errors: list[dict]) -> None:
    """Answers from a plain ASGI middleware (before routing) in the common format."""
    body = error_bytes(status, errors)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------
# exception handlers


def _clean(e: dict) -> dict:
    """A pydantic/FastAPI error without ``input``/``ctx``/``url``: the input may be huge, hold
    ``NaN`` or bytes, and is the client's own anyway."""
    loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
    return error(loc, str(e.get("msg", "invalid value")), str(e.get("type", "value_error")))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, [_clean(e) for e in exc.errors()])


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = getattr(exc, "headers", None)
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail
    if isinstance(detail, list) and all(isinstance(e, dict) for e in detail):
        errors = [_clean(e) for e in detail]
    else:
        msg = detail if isinstance(detail, str) else json.dumps(detail, default=str)
        errors = [
            error(
                getattr(exc, "loc", []), msg, getattr(exc, "type", None) or _slug(exc.status_code)
            )
        ]
    return error_response(exc.status_code, errors, headers)


async def _unicode_error(request: Request, exc: UnicodeError) -> JSONResponse:
    # RequestGuard rejects text that is not valid Unicode before a route runs; this is a safety
    # net for text that still reaches an encoder, logged so that the gap gets closed.
    log.warning(
        "text that is not valid Unicode reached %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return error_response(
        422, [error([], "text that is not valid Unicode (a lone surrogate?)", "string_unicode")]
    )


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, [error([], "internal server error", "internal_error")])


#: exception class -> its handler (Starlette types a handler as taking any Exception; each of
#: these takes the one it handles)
HANDLERS: dict[type[Exception], Callable[..., Any]] = {
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    UnicodeError: _unicode_error,
    Exception: _server_error,
}

#: the error answers every API operation documents in the OpenAPI schema
ERROR_STATUSES = {
    401: "No credentials, or malformed ones (routes that need an API key or visitor token)",
    403: "The API key lacks the scope this route needs",
    404: "Unknown user, item or route",
    409: "The request conflicts with the model or stored data (e.g. no request encoder)",
    413: "Request body too large",
    414: "URL too long",
    415: "Request body that is not JSON",
    422: "Invalid path, query, header or body (see errors[].loc)",
    429: "Too many requests from this client (Retry-After says when to come back)",
    431: "Request headers too large",
    503: "Overloaded or the database is unavailable (Retry-After says when to come back)",
    507: "The database's disk is full",
}
