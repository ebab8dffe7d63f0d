"""What the recipients' public pages under /r/ share (the opt-in, the unsubscribe link): the
page in the recipient's language, and the page of a link that is not valid."""

from __future__ import annotations

from typing import Protocol

from litestar import Request
from litestar.response import Template

from loyalmail.i18n import browser_recipient_locale, email_translator


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
