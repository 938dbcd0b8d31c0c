"""Request body size limit as a plain ASGI middleware: a declared ``Content-Length`` over the
limit is refused at once (413); a body without one (chunked) is counted as it arrives and the
request is refused with 413 as soon as it passes the limit (at most ``limit`` bytes are held)."""

from __future__ import annotations

from avrec.service.errors import error, error_bytes, replay_body


async def _refuse(send, limit: int) -> None:
    body = error_bytes(
        413, [error(["body"], f"request body larger than {limit} bytes", "body_too_large")]
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                return await _refuse(send, self.limit)
            return await self.app(scope, receive, send)
        # no declared length (chunked): read it here, up to the limit, then hand it on
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                return await _refuse(send, self.limit)
            if not message.get("more_body", False):
                break
        return await self.app(scope, replay_body(b"".join(chunks), receive), send)
