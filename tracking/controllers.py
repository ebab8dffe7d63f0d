"""Recipient routes reached from an e-mail. Public: a signed token is the only credential.

With this issue: the web version ("view in browser"). Opens, clicks and unsubscribe arrive
with the tracking issue.
"""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.params import FromPath

from campaigns import services as campaigns
from loyalmail.errors import NotFound

#: The web version is the e-mail itself: it needs no script, so it may run none.
_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "font-src https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class WebVersionController(Controller):
    path = "/r/view"
    include_in_schema = False

    @get("/{token:str}")
    async def view(self, token: FromPath[str]) -> Response[str]:
        try:
            html, language = await campaigns.web_version(token)
        except NotFound:
            return Response(
                "<!doctype html><meta charset=utf-8><title>Not found</title>"
                "<p>This link is not valid.</p>",
                status_code=404,
                media_type="text/html",
                headers={"Content-Security-Policy": _CSP},
            )
        return Response(
            html,
            media_type="text/html",
            headers={
                "Content-Security-Policy": _CSP,
                "Content-Language": language,
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "private, no-store",
            },
        )
