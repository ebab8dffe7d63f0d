"""The security headers of every answer: pages, the API, error pages, 404s and static files.

One ASGI wrapper in front of the whole app (registered in :mod:`loyalmail.app`), so nothing
answers without them — not even a path no route knows. A header an answer sets itself wins:
the recipient pages under /r/ keep their own stricter policy (``loyalmail.recipient_pages``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(base_url: str) -> str:
    """The marketer pages' policy. Scripts only from our own files (no inline code, no
    ``eval``: the pages' JavaScript lives in loyalmail/static). Styles may be inline: a
    ``srcdoc`` frame (the campaign preview, the demo Outbox) runs under its parent's policy,
    and a newsletter's HTML is inline CSS by design; those frames are sandboxed, so the
    mail's own markup can run no script either way. Images: ours, ``data:`` and any https
    address (a newsletter's pictures and a shop's logo live elsewhere), and the public base
    URL's origin, which a rendered mail's pixel and media links name even when the marketer
    opened the page under another host name. Forms post only to this site and that origin
    (the Outbox's one-click unsubscribe). Nobody may frame a page of ours."""
    parts = urlsplit(base_url)
    own = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: https: {own}".rstrip(),
            f"form-action 'self' {own}".rstrip(),
            "frame-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ]
    )


#: Litestar's Swagger page (/schema/swagger) is its own HTML: an inline start-up script and
#: the viewer from a CDN. It shows the public schema only, no merchant's data.
SCHEMA_PREFIX = "/schema"
_SCHEMA_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


def _common_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]


class SecurityHeaders:
    """ASGI wrapper: adds the headers to every HTTP answer that does not set them itself."""

    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        self.app = app
        csp = content_security_policy(base_url).encode()
        self._headers = [(b"content-security-policy", csp), *_common_headers()]
        self._schema_headers = [
            (b"content-security-policy", _SCHEMA_CSP.encode()),
            *_common_headers(),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._schema_headers if scope["path"].startswith(SCHEMA_PREFIX) else self._headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _value in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
