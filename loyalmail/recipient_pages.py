"""What the recipients' public pages under /r/ share (the opt-in, the unsubscribe link, the
sign-up form): their response headers, the page in the recipient's language, and the page of
a link that is not valid."""

from __future__ import annotations

from typing import Protocol, cast

from litestar import Request
from litestar.datastructures import ResponseHeader
from litestar.response import Template
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from loyalmail.i18n import browser_recipient_locale, email_translator, visitor_recipient_locale

#: The pages need no script; the only requests they make are their own forms' POSTs to this
#: site (and the shop's logo, from any https address).
_CSP = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: The headers of every recipient page: strict CSP, no referrer (their URLs carry tokens),
#: never cached (by the browser or anything between: they are personal) or indexed. Set on
#: the controllers as ``response_headers``.
NO_STORE = "private, no-store"
NOINDEX = "noindex, nofollow"
PUBLIC_PAGE_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=_CSP),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Cache-Control", value=NO_STORE),
    ResponseHeader(name="X-Robots-Tag", value=NOINDEX),
]


class RecipientPage(Protocol):
    #: The language the page speaks (the recipient's, else the shop's).
    locale: str


class Shop(Protocol):
    """The brand a page about a shop's link shows (accounts' ``MerchantOut``)."""

    @property
    def name(self) -> str: ...
    @property
    def logo_url(self) -> str: ...
    @property
    def brand_color(self) -> str: ...
    @property
    def privacy_policy_url(self) -> str: ...
    @property
    def website_url(self) -> str: ...
    @property
    def default_locale(self) -> str: ...


def recipient_page(name: str, page: RecipientPage, token: str, **extra: object) -> Template:
    """A page about ``page``, whose forms post back to the link of ``token``."""
    context = {"page": page, "token": token, "t": email_translator(page.locale), **extra}
    return Template(name, context=context, status_code=200)


def invalid_link(request: Request, owner: tuple[str, Shop] | None = None) -> Template:
    """The 404 page of a recipient link that is tampered with, made for another purpose or
    about someone who is gone, with the look of the recipient pages. ``owner``: whom a
    correctly signed link still names (the recipient's language, "" if unknown, and the
    shop): the page then speaks that language and shows the shop's brand. Otherwise the
    browser's language among the six (else the shop's, else English)."""
    accept = request.headers.get("accept-language", "")
    context: dict[str, object] = {}
    if owner is None:
        locale = browser_recipient_locale(accept)
    else:
        wanted, shop = owner
        locale = wanted or visitor_recipient_locale("", accept, shop.default_locale)
        context["page"] = {
            "locale": locale,
            "shop_name": shop.name,
            "logo_url": shop.logo_url,
            "brand_color": shop.brand_color,
            "privacy_policy_url": shop.privacy_policy_url,
            "website_url": shop.website_url,
        }
    context.update(locale=locale, t=email_translator(locale))
    return Template(
        "optin_invalid.html",
        context=context,
        status_code=404,
        headers={header.name: str(header.value) for header in PUBLIC_PAGE_HEADERS},
    )


#: Recipient pages whose GET only shows something (link scanners follow GET links): a HEAD
#: there is answered exactly as the GET — same status and headers, no body — and, like the
#: GET, changes nothing. (The pixel and the click answer HEAD themselves: tracking.redirects.)
HEAD_AS_GET = ("/r/unsubscribe/", "/r/preferences/", "/r/optin/", "/r/view/", "/r/c/")


class HeadAsGet:
    """ASGI wrapper: HEAD on :data:`HEAD_AS_GET` runs the GET handler and drops the body.
    Litestar routes a HEAD only to a ``@head`` handler, which may not render a page, so
    without this a HEAD on an unsubscribe link was 405 where the GET is 200."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "HEAD"
            or not scope["path"].startswith(HEAD_AS_GET)
        ):
            await self.app(scope, receive, send)
            return
        as_get = cast(HTTPScope, {**scope, "method": "GET"})

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(as_get, receive, without_body)
