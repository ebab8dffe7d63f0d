"""The merchant's public sign-up page, ``/r/signup/<slug>`` (``?src=qr`` from the QR code).

Public like every /r/ page: no login, no session, so no CSRF token either — the form can
only ask for a confirmation e-mail, never subscribe anyone by itself (double opt-in). The /r/
rate limits apply (loyalmail.rate_limits has a tighter budget for this form's POSTs).

The page speaks the visitor's language (``?lang=``, else the browser's, else the shop's).
Whatever the address's state, a valid sign-up answers the same "check your inbox" page, and
so does a bot that filled the hidden honeypot field (which creates nothing).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from customers.schemas import NEEDS_SMTPUTF8, SignupCreate
from customers.services import signup
from loyalmail.errors import NotFound, ValidationFailed
from loyalmail.i18n import (
    RECIPIENT_LOCALES,
    browser_recipient_locale,
    email_translator,
    visitor_recipient_locale,
)
from loyalmail.pages_controller import convert_form
from loyalmail.recipient_pages import PUBLIC_PAGE_HEADERS, recipient_page

#: The form's fields as the page names them (the consent box and the source come apart).
TEXT_FIELDS = ("email", "first_name", "last_name", "birth_date", "locale", "postal_code")
#: Hidden from people by CSS; a bot that fills every field fills this one too.
HONEYPOT = "leave_empty"
#: Each field's message in the visitor's language (domain "email").
FIELD_MESSAGES = {
    "email": "Please enter a valid e-mail address.",
    "consent": "Please tick the box: without your consent we may not send you e-mails.",
    "birth_date": "Please enter a valid birth date, or leave the field empty.",
    "first_name": "This is too long.",
    "last_name": "This is too long.",
    "postal_code": "This is too long.",
    "locale": "Please choose one of the languages.",
}
#: A reason the service gives for a field (its problem code), said instead of the field's
#: general message: an address with a non-ASCII local part is valid, just not sendable here.
REASON_MESSAGES = {signup.SMTPUTF8_PROBLEM: NEEDS_SMTPUTF8}
OTHER_PROBLEM = "Please correct the marked fields."
#: The languages offered, each in its own language (Serbian in Latin script, as our texts).
LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "fi": "Suomi",
    "nb": "Norsk bokmål",
    "sr": "Srpski",
}


def _source(request: Request, form: dict[str, str] | None = None) -> str:
    wanted = (form or {}).get("src") or request.query_params.get("src", "")
    return "qr" if wanted == "qr" else "form"


async def _page(request: Request, slug: str) -> signup.SignupPage | None:
    """The shop's page in the visitor's language; None when no shop has this slug."""
    try:
        merchant = await signup.signup_merchant(slug)
    except NotFound:
        return None
    locale = visitor_recipient_locale(
        request.query_params.get("lang", ""),
        request.headers.get("accept-language", ""),
        merchant.default_locale,
    )
    return signup.signup_page(merchant, locale)


def _form_page(
    page: signup.SignupPage,
    *,
    source: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Template:
    """``errors``: field → the service's problem code ("" for a problem of shape)."""
    t = email_translator(page.locale)
    shown_errors = {
        field: t(REASON_MESSAGES.get(code) or FIELD_MESSAGES.get(field, OTHER_PROBLEM))
        for field, code in (errors or {}).items()
    }
    response = recipient_page(
        "signup.html",
        page,
        "",
        source=source,
        values=values,
        errors=shown_errors,
        languages=[(code, LANGUAGE_NAMES[code]) for code in RECIPIENT_LOCALES],
    )
    if errors:
        response.status_code = 422
    return response


def _unknown(request: Request) -> Template:
    """A 404 page for a slug no merchant has: in the browser's language."""
    locale = browser_recipient_locale(request.headers.get("accept-language", ""))
    return Template(
        "signup_unknown.html",
        context={"locale": locale, "t": email_translator(locale)},
        status_code=404,
    )


def _parse(
    form: dict[str, str], page: signup.SignupPage
) -> tuple[SignupCreate | None, dict[str, str]]:
    """The sign-up from the form, or the names of every field that is not acceptable: the
    shape (lengths, the date) checked here, the meaning (address, consent) by the service."""
    values: dict[str, Any] = {name: form.get(name, "").strip() for name in TEXT_FIELDS}
    if not values["birth_date"]:
        values["birth_date"] = None
    if values["locale"] not in RECIPIENT_LOCALES:
        values["locale"] = page.locale
    values["consent"] = form.get("consent") == "yes"
    values["source"] = form.get("src") if form.get("src") == "qr" else "form"
    data, shape_errors = convert_form(values, SignupCreate)
    problems = dict.fromkeys(shape_errors, "")
    if data is None:
        # Check the meaning of what is left, so every bad field is marked at once.
        rest = {k: v for k, v in values.items() if k not in problems}
        rest.setdefault("email", "")
        data, _ = convert_form(rest, SignupCreate)
    if data is not None:
        try:
            signup.validate_signup(data)
        except ValidationFailed as exc:
            problems.update(exc.fields)
    return (None, problems) if problems else (data, problems)


class SignupController(Controller):
    path = "/r/signup"
    opt = {"exclude_from_auth": True}
    include_in_schema = False
    response_headers = PUBLIC_PAGE_HEADERS

    @get("/{slug:str}")
    async def show(self, request: Request, slug: FromPath[str]) -> Template:
        page = await _page(request, slug)
        if page is None:
            return _unknown(request)
        return _form_page(page, source=_source(request), values={"locale": page.locale})

    @post("/{slug:str}", status_code=200)
    async def submit(self, request: Request, slug: FromPath[str]) -> Template:
        page = await _page(request, slug)
        if page is None:
            return _unknown(request)
        raw = await request.form()
        form = {name: str(value) for name, value in raw.items()}
        if form.get(HONEYPOT, "").strip():
            return recipient_page("signup_done.html", page, "")  # pretend; store nothing
        data, problems = _parse(form, page)
        if data is None:
            shown = {name: form.get(name, "").strip() for name in TEXT_FIELDS}
            shown["consent"] = "yes" if form.get("consent") == "yes" else ""
            return _form_page(page, source=_source(request, form), values=shown, errors=problems)
        await signup.sign_up(
            slug,
            data,
            ip=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", ""),
        )
        return recipient_page("signup_done.html", page, "")
