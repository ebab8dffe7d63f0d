"""Page languages: babel catalogs (``loyalmail/locale/<lang>/LC_MESSAGES/messages.po``).

The .po files are compiled in memory when first used, so there is no generated file to
forget to rebuild. The current request's language lives in a context variable that
Jinja's ``_()`` and :func:`gettext` read.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, dates, negotiate_locale, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment
from litestar.types import ASGIApp, Receive, Scope, Send

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Languages the marketer pages are translated into (e-mail texts have their own, wider set).
PAGE_LOCALES = ("en", "de")
DEFAULT_LOCALE = "en"
LANG_COOKIE = "lm_lang"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


#: Languages of everything a recipient reads (e-mails and recipient pages), domain "email".
RECIPIENT_LOCALES = ("en", "de", "fr", "nb", "fi", "sr")


@cache
def translations(locale: str, domain: str = "messages") -> NullTranslations:
    """Domain "messages" is the marketer's pages; "email" what recipients read."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"
    if not po_path.is_file():
        return NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


def recipient_locale(wanted: str, fallback: str = DEFAULT_LOCALE) -> str:
    """The recipient language to use for ``wanted`` (e.g. "de_AT" → "de")."""
    for candidate in (wanted, fallback):
        base = (candidate or "").replace("-", "_").split("_")[0].lower()
        if base == "no" or base == "nn":
            base = "nb"
        if base in RECIPIENT_LOCALES:
            return base
    return DEFAULT_LOCALE


def email_gettext(locale: str, message: str) -> str:
    return translations(recipient_locale(locale), "email").gettext(message)


def email_translator(locale: str) -> Callable[..., str]:
    """The ``t`` of the recipients' pages: ``t("… %(shop)s …", shop=name)`` in ``locale``."""

    def translate(message: str, **values: str) -> str:
        text = email_gettext(locale, message)
        return text % values if values else text

    return translate


def browser_recipient_locale(accept_language: str) -> str:
    """The recipient language a browser asks for: for a page that knows no recipient (its link
    is not valid), so only the ``Accept-Language`` header can tell."""
    return _negotiate(accept_language, RECIPIENT_LOCALES)


def visitor_recipient_locale(asked: str, accept_language: str, fallback: str) -> str:
    """The language of a page for a visitor nobody knows yet (the sign-up form): the one
    picked with ``?lang=``, else the first of the browser's languages we speak (any region:
    "fr-CA" → "fr", "no" → "nb", "sr-Latn-RS" → "sr"), else the shop's (``fallback``)."""
    if asked in RECIPIENT_LOCALES:
        return asked
    for part in accept_language.split(","):
        base = part.split(";")[0].strip().replace("-", "_").split("_")[0].lower()
        base = "nb" if base in ("no", "nn") else base
        if base in RECIPIENT_LOCALES:
            return base
    return recipient_locale(fallback)


def _negotiate(accept_language: str, available: tuple[str, ...]) -> str:
    wanted = [part.split(";")[0].strip().replace("-", "_") for part in accept_language.split(",")]
    return negotiate_locale([w for w in wanted if w], list(available)) or DEFAULT_LOCALE


def babel_locale() -> Locale:
    return Locale.parse(current_locale.get())


def translate_text(message: object) -> str:
    """Translate a message that is data, not a literal (e.g. an error from a service).

    Jinja's newstyle ``_()`` marks its result as safe HTML under autoescape, so a message that
    might carry user input must go through this plain-string filter instead: it stays escaped.
    """
    return gettext(str(message)) if message else ""


def format_money(amount: Decimal | int | float | None, currency: str = "EUR") -> str:
    if amount is None:
        return ""
    return numbers.format_currency(amount, currency, locale=babel_locale())


def format_number(value: Decimal | int | float | None) -> str:
    if value is None:
        return ""
    return numbers.format_decimal(value, locale=babel_locale())


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_day(value: date | datetime | None, style: str = "medium", time_zone: str = "") -> str:
    """A calendar day; a point in time is first moved into ``time_zone`` (the merchant's)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        value = aware.astimezone(_zone(time_zone)).date() if time_zone else aware.date()
    return dates.format_date(value, format=style, locale=babel_locale())


def format_birthday(value: date | None) -> str:
    """Day and month only, in the page language's order ("Nov 23", "23. Nov.")."""
    if value is None:
        return ""
    return dates.format_skeleton("MMMd", value, locale=babel_locale())


def format_moment(value: datetime | None, time_zone: str = "UTC", style: str = "medium") -> str:
    """A point in time shown in the merchant's time zone (stored values are UTC)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return dates.format_datetime(
        value, format=style, tzinfo=_zone(time_zone), locale=babel_locale()
    )


def country_name(code: str | None) -> str:
    if not code:
        return ""
    return babel_locale().territories.get(code.upper(), code)


def language_name(code: str | None) -> str:
    if not code:
        return ""
    base = code.replace("-", "_").split("_")[0]
    return babel_locale().languages.get(base, code)


def install(env: Environment) -> None:
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["current_locale"] = current_locale.get
    env.globals["page_locales"] = PAGE_LOCALES
    env.filters["t"] = translate_text
    env.filters["money"] = format_money
    env.filters["number"] = format_number
    env.filters["day"] = format_day
    env.filters["moment"] = format_moment
    env.filters["birthday"] = format_birthday
    env.filters["country"] = country_name
    env.filters["language"] = language_name


def choose_locale(
    query: str | None, cookie: str | None, user_locale: str | None, accept_language: str
) -> str:
    for candidate in (query, cookie, user_locale):
        if candidate and candidate in PAGE_LOCALES:
            return candidate
    return _negotiate(accept_language, PAGE_LOCALES)


class LocaleMiddleware:
    """Sets the request's language: ?lang=, then the cookie, the user's setting, the browser's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qs

        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode()).get("lang", [None])[0]
        cookies = dict(
            part.strip().split("=", 1)
            for part in headers.get("cookie", "").split(";")
            if "=" in part
        )
        user = scope.get("user")
        locale = choose_locale(
            query,
            cookies.get(LANG_COOKIE),
            getattr(user, "locale", None),
            headers.get("accept-language", ""),
        )
        token = current_locale.set(locale)
        try:
            await self.app(scope, receive, send)
        finally:
            current_locale.reset(token)
