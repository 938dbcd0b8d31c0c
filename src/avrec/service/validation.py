"""One validation path for every request, answered in the one error format of
:mod:`avrec.service.errors`. ``install`` registers the pieces on an app:

* ``RequestGuard``, a plain ASGI middleware that runs before routing and checks what pydantic
  cannot see: the raw path and query string (UTF-8, no control characters, ids at most 256
  characters, no encoded '/'), the size of the URL and headers, and the JSON body (content
  type, UTF-8, syntax, no ``NaN``/``Infinity``/overflowing numbers, no lone surrogates or NUL
  characters, nesting depth). Requests that pass are handed on unchanged.
* the exception handlers of :mod:`avrec.service.errors`;
* the error responses in the OpenAPI document of every API operation.
"""

from __future__ import annotations

import email.message
import json
import math
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI

from avrec.service.errors import (
    ERROR_STATUSES,
    HANDLERS,
    ErrorItem,
    ErrorResponse,
    error,
    replay_body,
    send_error,
)

#: longest path segment (every id in the API is at most this long)
MAX_ID = 256
#: longest query parameter value, and the longest path + query string in bytes
MAX_QUERY_VALUE = 2_000
MAX_URL = 8_192
#: all request headers together, bytes
MAX_HEADERS = 32_768
#: deepest JSON nesting accepted in a body (the API's own bodies are at most 3 deep)
MAX_DEPTH = 32
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: a path parameter as RequestGuard accepts it: no control characters, no '/' or '\'
PATH_ID_PATTERN = r"^[^\x00-\x1f\x7f/\\]+$"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: bytes after which a raw path or query string needs the full check (escapes, '\', controls,
#: non-ASCII); plain ones short enough pass at once
_NEEDS_CHECK = re.compile(rb"[%\\\x00-\x1f\x7f-\xff]")


# ---------------------------------------------------------------------------------------------
# the request guard


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class _NonFinite:
    """Stands in for ``NaN``, ``Infinity``, ``-Infinity`` or a float that overflows (``1e400``)
    while parsing, so that the walk can name where it was."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _string_problem(s: str) -> tuple[str, str] | None:
    if "\x00" in s:
        return "NUL characters are not allowed", "string_control_character"
    m = _SURROGATE.search(s)
    if m:
        return (
            f"lone UTF-16 surrogate \\u{ord(m.group()):04x} is not valid Unicode",
            "string_unicode",
        )
    return None


def body_errors(body: bytes) -> list[dict]:
    """Problems of a JSON body that pydantic would not report (or would crash on)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [error(["body"], f"not valid UTF-8 (byte {exc.start})", "string_unicode")]
    nonfinite = []

    def constant(name: str) -> _NonFinite:
        nonfinite.append(name)
        return _NonFinite(name)

    def parse_float(literal: str) -> float | _NonFinite:
        value = float(literal)
        return value if math.isfinite(value) else constant(literal)

    try:
        data = json.loads(text, parse_constant=constant, parse_float=parse_float)
    except json.JSONDecodeError as exc:
        return [error(["body"], f"not valid JSON: {exc.msg} at position {exc.pos}", "json_invalid")]
    except RecursionError:
        return [error(["body"], f"JSON nested deeper than {MAX_DEPTH} levels", "json_too_deep")]
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        return [error(["body"], f"not valid JSON: {exc}", "json_invalid")]
    # strict UTF-8 and JSON's ban on raw control characters leave escapes (lone surrogates, NUL),
    # non-finite numbers and deep nesting: skip the walk when none of them can be there
    if not nonfinite and "\\u" not in text and text.count("[") + text.count("{") <= MAX_DEPTH:
        return []
    errors: list[dict] = []
    _walk(data, ["body"], errors)
    return errors


def _walk(value: Any, loc: list, errors: list[dict]) -> None:
    if len(errors) >= 10:
        return
    if len(loc) > MAX_DEPTH:
        errors.append(
            error(loc[:MAX_DEPTH], f"JSON nested deeper than {MAX_DEPTH} levels", "json_too_deep")
        )
        return
    if isinstance(value, _NonFinite):
        errors.append(error(loc, f"{value.text} is not a finite number", "finite_number"))
    elif isinstance(value, str):
        problem = _string_problem(value)
        if problem:
            errors.append(error(loc, *problem))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, [*loc, i], errors)
    elif isinstance(value, dict):
        for k, v in value.items():
            problem = _string_problem(k)
            if problem:
                errors.append(error(loc, f"a key: {problem[0]}", problem[1]))
                continue
            _walk(v, [*loc, k], errors)


def _text_problem(raw: bytes, controls: bool) -> tuple[str, str] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8 after percent-decoding", "string_unicode"
    if _CONTROL.search(text) if controls else "\x00" in text:
        return (
            "control characters are not allowed" if controls else "NUL characters are not allowed"
        ), "string_control_character"
    return None


def _query_pairs(query: bytes) -> list[tuple[bytes, bytes]]:
    """``name=value`` pairs percent-decoded to bytes (``urllib.parse.parse_qsl`` would replace
    invalid UTF-8 with U+FFFD and hide it)."""
    pairs = []
    for part in query.split(b"&"):
        if part:
            name, _, value = part.replace(b"+", b" ").partition(b"=")
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


class RequestGuard:
    """Checks each request's path, query string, header size and JSON body before routing;
    answers a failing one itself (414, 415, 422 or 431, in the common error format). Credential
    headers are left to the access checks (avrec.service.security)."""

    def __init__(self, app, api: FastAPI | None = None):
        self.app, self.api = app, api  # api: the FastAPI app, for its route templates

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status, errors = self._check_head(scope)
        if errors:
            return await send_error(send, status, errors)
        if scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        chunks = []
        while True:  # BodyLimit (outside) has bounded the body already
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
            if not _is_json(content_type):
                return await send_error(
                    send,
                    415,
                    [
                        error(
                            ["header", "content-type"],
                            f"request bodies must be JSON (Content-Type: application/json), "
                            f"not {content_type[:100] or 'untyped'}",
                            "content_type",
                        )
                    ],
                )
            problems = body_errors(body)
            if problems:
                return await send_error(send, 422, problems)

        return await self.app(scope, replay_body(body, receive), send)

    def _check_head(self, scope) -> tuple[int, list[dict]]:
        headers = scope["headers"]
        if sum(len(k) + len(v) for k, v in headers) > MAX_HEADERS:
            return 431, [
                error(
                    ["header"],
                    f"request headers larger than {MAX_HEADERS} bytes",
                    "headers_too_large",
                )
            ]
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        query = scope.get("query_string", b"")
        if len(raw_path) + len(query) > MAX_URL:
            return 414, [error(["path"], f"URL longer than {MAX_URL} bytes", "uri_too_long")]
        plain_path = len(raw_path) <= MAX_ID and not _NEEDS_CHECK.search(raw_path)
        segments = [] if plain_path else raw_path.split(b"/")
        for n, segment in enumerate(segments):
            raw = unquote_to_bytes(segment) if b"%" in segment else segment
            problem = _text_problem(raw, controls=True)
            if problem is None and (b"/" in raw or b"\\" in raw):
                problem = (
                    "an encoded '/' or '\\' is not allowed in a path segment",
                    "path_separator",
                )
            if problem is None and len(raw) > MAX_ID and len(raw.decode("utf-8")) > MAX_ID:
                problem = f"longer than {MAX_ID} characters", "string_too_long"
            if problem:
                return 422, [error(self._path_loc(segments, n), *problem)]
        if query and (len(query) > MAX_QUERY_VALUE or _NEEDS_CHECK.search(query)):
            for name, value in _query_pairs(query):
                field = name.decode("utf-8", "replace")
                for raw, loc in ((name, ["query"]), (value, ["query", field])):
                    problem = _text_problem(raw, controls=False)
                    if problem:
                        return 422, [error(loc, *problem)]
                if len(value) > MAX_QUERY_VALUE and len(value.decode()) > MAX_QUERY_VALUE:
                    return 422, [
                        error(
                            ["query", field],
                            f"longer than {MAX_QUERY_VALUE} characters",
                            "string_too_long",
                        )
                    ]
        return 0, []

    def _path_loc(self, segments: list[bytes], bad: int) -> list:
        """``["path", <parameter name>]`` when the path fits a documented route template with a
        parameter at the bad segment, else ``["path"]``."""
        literal = [unquote_to_bytes(s) for s in segments]
        for template in self.api.openapi().get("paths", {}) if self.api else ():
            parts = template.split("/")
            if len(parts) != len(segments) or not parts[bad].startswith("{"):
                continue
            if all(
                p.startswith("{") or p.encode() == raw
                for p, raw in zip(parts, literal, strict=True)
            ):
                return ["path", parts[bad].strip("{}")]
        return ["path"]


# ---------------------------------------------------------------------------------------------
# OpenAPI: the error answers of every API operation


def _document_errors(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorItem"] = ErrorItem.model_json_schema()
        components["ErrorResponse"] = ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components["ErrorResponse"].pop("$defs", None)
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        for path, operations in schema.get("paths", {}).items():
            api = path.startswith(("/api/", "/media/"))
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:  # FastAPI's own 422 schema is not what is sent
                    responses["422"] = {"description": ERROR_STATUSES[422], "content": content}
                if not api:
                    continue
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path":  # what RequestGuard enforces on each one
                        parameter["schema"].update(
                            minLength=1, maxLength=MAX_ID, pattern=PATH_ID_PATTERN
                        )
                for status, description in ERROR_STATUSES.items():
                    responses[str(status)] = {"description": description, "content": content}
        if "#/components/schemas/HTTPValidationError" not in json.dumps(schema):
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to customise it


def install(app: FastAPI) -> None:
    """Registers the request guard, the error handlers and the documented error answers."""
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(RequestGuard, api=app)
    _document_errors(app)
