"""What the recipients' public pages under /r/ share (the opt-in, the unsubscribe link, the
sign-up form): their response headers, the page in the recipient's language, and the page of
a link that is not valid."""

from __future__ import annotations

from typing import Protocol

from litestar import Request
from litestar.datastructures import ResponseHeader
from litestar.response import Template

from loyalmail.i18n import browser_recipient_locale, email_translator

#: The pages need no script; the only requests they make are their own forms' POSTs to this
#: site (and the shop's logo, from any https address).
_CSP = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: The headers of every recipient page: strict CSP, no referrer (their URLs carry tokens),
#: never cached or indexed. Set on the controllers as ``response_headers``.
PUBLIC_PAGE_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=_CSP),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Cache-Control", value="no-store"),
    ResponseHeader(name="X-Robots-Tag", value="noindex"),
]


class RecipientPage(Protocol):
    #: The language the page speaks (the recipient's, else the shop's).
    locale: str


def recipient_page(name: str, page: RecipientPage, token: str, **extra: object) -> Template:
    """A page about ``page``, whose forms post back to the link of ``token``."""
    context = {"page": page, "token": token, "t": email_translator(page.locale), **extra}
    return Template(name, context=context, status_code=200)


def invalid_link(request: Request) -> Template:
    """A 404 page for a token that is tampered with, made for another purpose or about
    someone who is gone: it knows no recipient, so it speaks the browser's language."""
    locale = browser_recipient_locale(request.headers.get("accept-language", ""))
    return Template(
        "optin_invalid.html",
        context={"locale": locale, "t": email_translator(locale)},
        status_code=404,
    )
