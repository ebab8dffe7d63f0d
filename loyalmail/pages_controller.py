"""The shell's pages: the page helper every app's pages use, the dashboard, the language
switch, the quota page and the demo Outbox."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Redirect, Template

from accounts import services as accounts
from accounts.controllers import _safe_next as safe_next
from customers.services.dashboard import dashboard
from loyalmail import database, mail_checks
from loyalmail.auth import principal_of
from loyalmail.catcher import merchant_of_id, read_outbox
from loyalmail.cookies import set_cookie
from loyalmail.errors import NotFound, _
from loyalmail.i18n import LANG_COOKIE, PAGE_LOCALES, gettext
from loyalmail.settings import get_settings
from quota.pages_context import dashboard_card, quota_page

#: Messages shown after a redirect, chosen by key: the query string never carries text that
#: ends up on the page, so a crafted link cannot put words into the marketer's screen.
NOTICES = {
    "saved": _("Saved."),
    "created": _("The customer was added."),
    "erased": _("The customer was erased. Their address is on the suppression list."),
    "optin": _("A new confirmation e-mail is on its way."),
    "purchase": _("The purchase was recorded."),
    "revoked": _("The API token was revoked."),
}


#: Display names of stored codes, translated in the page with the ``t`` filter.
LABELS: dict[str, dict[str, str]] = {
    "customer_type": {"loyal": _("Loyal"), "member": _("Member"), "non_member": _("Non-member")},
    "email_status": {
        "unverified": _("Unverified"),
        "pending": _("Pending"),
        "verified": _("Verified"),
    },
    "gender": {"female": _("Female"), "male": _("Male"), "diverse": _("Diverse"), "": "–"},
    "kind": {"purchase": _("Purchase"), "refund": _("Refund"), "exchange": _("Exchange")},
    "consent_action": {
        "requested": _("Opt-in requested"),
        "confirmed": _("Confirmed"),
        "withdrawn": _("Withdrawn"),
        "resubscribed": _("Re-subscribed"),
        "paused": _("Paused by the recipient"),
        "resumed": _("Pause ended"),
    },
    "source": {
        "form": _("Sign-up form"),
        "qr": _("QR code"),
        "import": _("Import"),
        "marketer": _("Added by a marketer"),
        "api": _("API"),
        "link": _("Confirmation link"),
        "unsubscribe": _("Unsubscribe link"),
        "preferences": _("Preference page"),
        "mail": _("Unsubscribe e-mail"),
    },
    #: How a customer's type changed (customers.services.loyalty).
    "type_via": {
        "page": _("Customer page"),
        "api": _("API"),
        "import": _("Import"),
        "signup": _("Sign-up form"),
        "operator": _("Loyalty programme"),
    },
    "import_status": {
        "uploaded": _("Uploaded"),
        "previewing": _("Checking the file"),
        "previewed": _("Ready to import"),
        "importing": _("Importing"),
        "done": _("Done"),
        "failed": _("Failed"),
    },
    "issue_kind": {
        "invalid": _("Invalid"),
        "duplicate": _("Duplicate"),
        "suppressed": _("Suppressed"),
    },
}


#: What to tell the marketer about a field whose value has the wrong shape.
FORMAT_HINTS = {
    "country": _("Use a two-letter country code, for example DE."),
    "currency": _("Use a three-letter currency code, for example EUR."),
    "brand_color": _("Use a colour such as #1f6feb."),
    "locale": _("Choose a language from the list."),
    "logo_url": _("Enter a full address starting with https://"),
    "website_url": _("Enter a full address starting with https://"),
    "privacy_policy_url": _("Enter a full address starting with https://"),
    "birth_date": _("Enter a date such as 1990-05-31."),
    "occurred_at": _("Enter a date and time."),
    "amount": _("Enter an amount such as 19.90."),
}
_FIELD_IN_ERROR = re.compile(r"at `\$\.([A-Za-z_]+)`")
_MISSING_FIELD = re.compile(r"missing required field `([A-Za-z_]+)`")
_MAX_LENGTH = re.compile(r"length <= ([0-9]+)")

T = TypeVar("T")


def _field_message(field: str, error: str) -> str:
    if "missing required field" in error or "length >= 1" in error:
        return gettext(_("This field is required."))
    if (longest := _MAX_LENGTH.search(error)) is not None:
        return gettext(_("This is too long (at most %(count)s characters).")) % {
            "count": longest.group(1)
        }
    if field in FORMAT_HINTS:
        return gettext(FORMAT_HINTS[field])
    if "Invalid enum value" in error:
        return gettext(_("Choose one of the offered values."))
    return gettext(_("This value is not valid."))


def convert_form(values: dict[str, Any], into: type[T]) -> tuple[T | None, dict[str, str]]:
    """Convert form values into a Struct, or collect a readable message for every bad field.

    msgspec stops at the first error; dropping the offending field and trying again finds the
    next one, so the form can mark all of them at once.
    """
    remaining = dict(values)
    errors: dict[str, str] = {}
    for _attempt in range(len(values) + 2):
        try:
            result = msgspec.convert(remaining, into, strict=False)
        except msgspec.ValidationError as exc:
            text = str(exc)
            found = _FIELD_IN_ERROR.search(text) or _MISSING_FIELD.search(text)
            field = found.group(1) if found else "__all__"
            errors.setdefault(field, _field_message(field, text))
            if field not in remaining:
                break
            del remaining[field]
            continue
        return (None, errors) if errors else (result, {})
    return None, errors or {"__all__": gettext(_("This value is not valid."))}


def id_in_field(text: str, digits: int = 11) -> int | None:
    """A number typed into a query or form field, or None. ASCII digits only: str.isdigit()
    is also true of "²" (which int() refuses: a 5xx) and of "١" (which int() reads as 1)."""
    if text.isascii() and text.isdigit() and len(text) <= digits:
        return int(text)
    return None


def is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request")) and not request.headers.get("hx-boosted")


async def page(
    request: Request,
    name: str,
    *,
    active: str = "",
    status_code: int = 200,
    notices: Mapping[str, str] = NOTICES,
    **context: Any,
) -> Template:
    """A full page in the layout: the merchant's name and colour, the navigation, a notice.
    ``notices``: the messages this app's redirects may name in ``?notice=``."""
    principal = principal_of(request)
    merchant = context.pop("merchant", None) or await accounts.get_merchant(principal.merchant_id)
    notice_key = request.query_params.get("notice", "")
    return Template(
        name,
        context={
            "merchant": merchant,
            "principal": principal,
            "active": active,
            "demo": get_settings().demo,
            "labels": LABELS,
            "notice": gettext(notices[notice_key]) if notice_key in notices else "",
            **context,
        },
        status_code=status_code,
    )


def partial(name: str, *, status_code: int = 200, **context: Any) -> Template:
    """A fragment for an HTMX swap: no layout, so no merchant lookup."""
    return Template(name, context={"labels": LABELS, **context}, status_code=status_code)


class LanguageController(Controller):
    path = "/language"
    opt = {"exclude_from_auth": True}
    include_in_schema = False

    @get("/", status_code=303)
    async def switch(
        self, request: Request, lang: FromQuery[str] = "", next: FromQuery[str] = "/"
    ) -> Redirect:
        """Remember the chosen page language in a cookie, then go back where the user was."""
        response = Redirect(safe_next(next), status_code=303)
        if lang in PAGE_LOCALES:
            set_cookie(response, request, LANG_COOKIE, lang, max_age=365 * 86400)
        return response


def _summary(mail_id: str, message: EmailMessage) -> dict[str, Any]:
    try:
        sent = parsedate_to_datetime(str(message["date"])) if message["date"] else None
    except (TypeError, ValueError):
        sent = None
    return {
        "id": mail_id,
        "date": sent,
        "from": str(message.get("from", "")),
        "to": str(message.get("to", "")),
        "subject": str(message.get("subject", "")),
    }


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    if body is None:
        return ""
    try:
        return str(body.get_content())
    except (LookupError, UnicodeDecodeError, AttributeError):
        return body.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]


def one_click_url(message: EmailMessage, base_url: str) -> str:
    """The message's RFC 8058 unsubscribe URL if it is this installation's own (a caught
    message is foreign content: the outbox never posts to a URL it did not make); else ""."""
    if "List-Unsubscribe=One-Click" not in str(message.get("List-Unsubscribe-Post", "")):
        return ""
    own = base_url.rstrip("/") + "/r/unsubscribe/"
    for url in re.findall(r"<([^>]+)>", str(message.get("List-Unsubscribe", ""))):
        if url.startswith(own) and "/" not in url[len(own) :]:
            return str(url)
    return ""


class ShellPagesController(Controller):
    include_in_schema = False

    @get("/")
    async def dashboard_page(self, request: Request) -> Template:
        principal = principal_of(request)
        merchant = await accounts.get_merchant(principal.merchant_id)
        figures = await dashboard(principal.merchant_id)
        return await page(
            request,
            "dashboard.html",
            active="dashboard",
            merchant=merchant,
            figures=figures,
            quota=await dashboard_card(principal.merchant_id),
        )

    @get("/quota")
    async def quota(
        self,
        request: Request,
        # Journal ids are PostgreSQL integers: a larger number would fail in the database.
        before: FromQuery[Annotated[int | None, Parameter(ge=1, le=database.LARGEST_KEY)]] = None,
    ) -> Template:
        """This month's allowance, packs, test sends, next month's forecast and the history;
        ``before`` pages to older history entries."""
        context = await quota_page(principal_of(request).merchant_id, before)
        return await page(request, "quota.html", active="quota", **context)

    @get("/outbox")
    async def outbox(self, request: Request) -> Template:
        settings = get_settings()
        if not settings.demo:
            raise NotFound(_("Not found."))
        # Only the signed-in merchant's own mail: the catcher files each message under the
        # merchant of its Feedback-ID.
        caught = read_outbox(settings.outbox_dir, merchant_id=principal_of(request).merchant_id)
        mails = [_summary(mail_id, msg) for mail_id, msg in caught]
        return await page(request, "outbox.html", active="outbox", mails=mails)

    @get("/outbox/{mail_id:str}")
    async def outbox_mail(self, request: Request, mail_id: FromPath[str]) -> Template:
        settings = get_settings()
        path = settings.outbox_dir / f"{mail_id}.eml"
        # Another merchant's message is as unknown as a made-up id (the id is checked first:
        # it alone makes the path safe).
        own = merchant_of_id(mail_id) == principal_of(request).merchant_id
        if not settings.demo or not own or not path.is_file():
            raise NotFound(_("Not found."))
        raw = path.read_bytes()
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        return await page(
            request,
            "outbox_mail.html",
            active="outbox",
            mail=_summary(mail_id, message),
            checks=await asyncio.to_thread(mail_checks.check, raw, message),
            html=_part(message, "html"),
            text=_part(message, "plain"),
            one_click=one_click_url(message, settings.base_url),
            headers=[(k, str(v)) for k, v in message.items()],
        )
