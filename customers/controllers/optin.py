"""The recipient's double opt-in pages under /r/ (public: the signed token is the credential).

GET only shows the page with its one button, because mail scanners and link previews follow
GET links; the POST of that button confirms.
"""

from __future__ import annotations

from functools import partial

from babel import negotiate_locale
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from customers.services import consent
from loyalmail.errors import NotFound
from loyalmail.i18n import DEFAULT_LOCALE, RECIPIENT_LOCALES, email_gettext


def _translator(locale: str) -> partial[str]:
    return partial(_translate, locale)


def _translate(locale: str, message: str, **values: str) -> str:
    text = email_gettext(locale, message)
    return text % values if values else text


def _browser_locale(request: Request) -> str:
    header = request.headers.get("accept-language", "")
    wanted = [part.split(";")[0].strip().replace("-", "_") for part in header.split(",")]
    return negotiate_locale([w for w in wanted if w], list(RECIPIENT_LOCALES)) or DEFAULT_LOCALE


def _page(name: str, page: consent.OptinPage, token: str, status_code: int = 200) -> Template:
    context = {"page": page, "token": token, "t": _translator(page.locale)}
    return Template(name, context=context, status_code=status_code)


def _invalid(request: Request) -> Template:
    locale = _browser_locale(request)
    return Template(
        "optin_invalid.html",
        context={"locale": locale, "t": _translator(locale)},
        status_code=404,
    )


class OptinController(Controller):
    path = "/r/optin"
    opt = {"exclude_from_auth": True}
    include_in_schema = False

    @get("/{token:str}")
    async def show(self, request: Request, token: FromPath[str]) -> Template:
        try:
            return _page("optin.html", await consent.describe_optin(token), token)
        except NotFound:
            return _invalid(request)

    @post("/{token:str}", status_code=200)
    async def confirm(self, request: Request, token: FromPath[str]) -> Template:
        ip = request.client.host if request.client else ""
        try:
            await consent.confirm_optin(
                token, ip=ip, user_agent=request.headers.get("user-agent", "")
            )
            return _page("optin_done.html", await consent.describe_optin(token), token)
        except NotFound:
            return _invalid(request)
