"""Security headers on every response (API, media, the page, errors, 404s), as one plain ASGI
middleware. The page gets a strict Content-Security-Policy: scripts, styles and images only
from this origin, no inline script. FastAPI's /docs and /redoc load Swagger UI / ReDoc from a
CDN with an inline script, so they go without a CSP (they keep the other headers)."""

from __future__ import annotations

COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CSP = (b"content-security-policy", POLICY)
#: the documentation pages, served without a CSP
DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc")


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = COMMON if scope["path"] in DOCS else [*COMMON, CSP]

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in extra if h[0] not in present),
                ]
            await send(message)

        return await self.app(scope, receive, with_headers)
