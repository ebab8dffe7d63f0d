"""Recipient routes reached from an e-mail. Public: a signed token is the only credential.

The web version ("view in browser"): personal, so never cached or indexed; and the page of
a click link that leads nowhere (the working ones are answered before routing:
tracking.redirects).
"""

from __future__ import annotations

import re

from litestar import Controller, Request, Response, get
from litestar.params import FromPath
from litestar.response import Template

from campaigns import services as campaigns
from loyalmail.errors import NotFound
from loyalmail.recipient_pages import NO_STORE, NOINDEX, invalid_link

#: The web version is the e-mail itself: it needs no script, so it may run none.
_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "font-src https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


#: Search engines must not index a recipient's own copy, wherever its link ends up.
_ROBOTS_META = '<meta name="robots" content="noindex, nofollow">'
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def with_robots_meta(html: str) -> str:
    found = _HEAD.search(html)
    if found is None:
        return _ROBOTS_META + html
    return html[: found.end()] + _ROBOTS_META + html[found.end() :]


class WebVersionController(Controller):
    path = "/r/view"
    include_in_schema = False

    @get("/{token:str}")
    async def view(self, request: Request, token: FromPath[str]) -> Response[str] | Template:
        try:
            html, language = await campaigns.web_version(token)
        except NotFound:
            return invalid_link(request, await campaigns.link_owner("view", token))
        return Response(
            with_robots_meta(html),
            media_type="text/html",
            headers={
                "Content-Security-Policy": _CSP,
                "Content-Language": language,
                "Referrer-Policy": "no-referrer",
                "Cache-Control": NO_STORE,
                "X-Robots-Tag": NOINDEX,
            },
        )


class LinkNotFoundController(Controller):
    """``/r/c/<token>/<number>`` reaches the app only when the click leads nowhere."""

    path = "/r/c"
    include_in_schema = False

    @get("/{rest:path}")
    async def not_found(self, request: Request, rest: FromPath[str]) -> Template:
        token = rest.strip("/").split("/")[0]
        return invalid_link(request, await campaigns.link_owner("click", token))
