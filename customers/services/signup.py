"""The merchant's public sign-up page (``/r/signup/<slug>``) and its printable QR code.

A visitor enters their own address and data and ticks the consent box; that is a request for
the double opt-in (customers.services.consent), never a subscription by itself. The page
answers the same "check your inbox" whatever the address's state, so it cannot tell anyone
who is a customer (account enumeration). Decisions, and why:

- A new address becomes a customer with status pending and source ``form`` or ``qr``; the
  consent log gets "requested" with the visitor's IP, user agent and
  :data:`SIGNUP_WORDING_VERSION` (the consent box's text), and the opt-in e-mail goes out
  through the same actor as every other opt-in.
- An address the merchant has already: **nothing the visitor typed is stored**, not even into
  empty fields. An anonymous form is no proof that the visitor owns the address, and a name
  filled in there would greet a stranger in the merchant's newsletters. The customer can
  tell the shop; the marketer's data stay as they are.
- That address, if not yet confirmed and subscribed (unverified, pending, unsubscribed), is
  asked to confirm again — but at most once per :data:`OPTIN_REPEAT_WINDOW` (from the last
  request or the last opt-in e-mail, whoever asked), so the form cannot mail-bomb anyone.
- A confirmed, subscribed address: nothing is sent. A notice ("you are subscribed already")
  would be another mail a stranger can trigger, and there is nothing to do.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import msgspec
import qrcode
from qrcode.image.svg import SvgPathImage

from accounts import services as accounts
from accounts.schemas import MerchantOut
from customers.schemas import NEEDS_SMTPUTF8, CustomerCreate, SignupCreate, normalize_email
from customers.services import consent
from customers.services import customers as service
from customers.tables import ConsentEvent, Customer
from loyalmail.errors import Conflict, ValidationFailed, _
from loyalmail.i18n import recipient_locale
from loyalmail.settings import get_settings

log = logging.getLogger("loyalmail.customers")

#: The consent box's text on the sign-up page; bump it when that wording changes (it is
#: written into the "requested" event of every sign-up).
SIGNUP_WORDING_VERSION = "signup-2026-1"
#: One opt-in e-mail per address within this time, however often the form is sent.
OPTIN_REPEAT_WINDOW = timedelta(hours=1)

#: What a sign-up did; only for logs and tests: the visitor sees the same page for each.
#: The problem code of an address refused by the one address rule (customers.schemas): the
#: page names that reason instead of "not a valid address".
SMTPUTF8_PROBLEM = "needs SMTPUTF8"

SignupOutcome = Literal["created", "requested", "confirmed_already", "repeated_too_soon"]


class SignupPage(msgspec.Struct, kw_only=True):
    """What the public sign-up page shows: the merchant's brand, in the visitor's language."""

    locale: str
    slug: str
    shop_name: str
    logo_url: str
    brand_color: str
    privacy_policy_url: str
    website_url: str


async def signup_merchant(slug: str) -> MerchantOut:
    """The merchant whose page ``slug`` is; NotFound for an unknown one."""
    return await accounts.get_merchant_by_slug(slug)


def signup_page(merchant: MerchantOut, locale: str) -> SignupPage:
    return SignupPage(
        locale=recipient_locale(locale, merchant.default_locale),
        slug=merchant.slug,
        shop_name=merchant.name,
        logo_url=merchant.logo_url,
        brand_color=merchant.brand_color,
        privacy_policy_url=merchant.privacy_policy_url,
        website_url=merchant.website_url,
    )


# --- the sign-up -------------------------------------------------------------------------


def validate_signup(data: SignupCreate) -> tuple[str, str]:
    """The cleaned address and its normalised key, or ValidationFailed naming every field
    that is not acceptable (all at once, so the form can mark each of them)."""
    problems: dict[str, str] = {}
    email = key = ""
    try:
        email, key = normalize_email(data.email)
    except ValidationFailed as exc:
        problems["email"] = SMTPUTF8_PROBLEM if exc.message == NEEDS_SMTPUTF8 else "invalid"
    if data.birth_date is not None and not (date(1900, 1, 1) <= data.birth_date <= date.today()):
        problems["birth_date"] = "out of range"
    if not data.consent:
        problems["consent"] = "missing"
    if problems:
        raise ValidationFailed(_("Please correct the marked fields."), fields=problems)
    return email, key


async def sign_up(
    slug: str, data: SignupCreate, *, ip: str = "", user_agent: str = ""
) -> SignupOutcome:
    """A visitor's sign-up on the merchant's page: see the module's docstring for what each
    state of the address leads to. NotFound (unknown slug), ValidationFailed (bad input:
    nothing is stored)."""
    merchant = await signup_merchant(slug)
    email, key = validate_signup(data)
    locale = recipient_locale(data.locale, merchant.default_locale)
    row = await _existing(merchant.id, key)
    if row is None:
        try:
            created = await service.create_customer(
                merchant.id,
                CustomerCreate(
                    email=email,
                    first_name=data.first_name.strip(),
                    last_name=data.last_name.strip(),
                    birth_date=data.birth_date,
                    locale=locale,
                    postal_code=data.postal_code.strip(),
                    send_optin=True,
                ),
                source=data.source,
                ip=ip,
                user_agent=user_agent,
                wording_version=SIGNUP_WORDING_VERSION,
            )
            log.info("sign-up of merchant %s: customer %s created", merchant.id, created.id)
            return "created"
        except Conflict:
            # The same address was signed up a moment ago by a parallel request: treat it as
            # the existing address it now is.
            row = await _existing(merchant.id, key)
            if row is None:
                raise
    return await _again(merchant, row, data.source, ip=ip, user_agent=user_agent)


async def _existing(merchant_id: int, key: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await Customer.select()
        .where((Customer.merchant == merchant_id) & (Customer.email_normalized == key))
        .first()
    )
    return row


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _asked_recently(merchant_id: int, row: dict[str, Any]) -> bool:
    """Whether the address was asked to confirm within the window: an opt-in e-mail went out,
    or a request (possibly still queued, its e-mail not yet sent) was made."""
    cutoff = datetime.now(UTC) - OPTIN_REPEAT_WINDOW
    sent = _aware(row["optin_sent_at"])
    if sent is not None and sent >= cutoff:
        return True
    latest = (
        await ConsentEvent.select(ConsentEvent.created_at)
        .where(
            (ConsentEvent.merchant == merchant_id)
            & (ConsentEvent.customer == row["id"])
            & (ConsentEvent.action == "requested")
        )
        .order_by(ConsentEvent.created_at, ascending=False)
        .first()
    )
    requested = _aware(latest["created_at"]) if latest else None
    return requested is not None and requested >= cutoff


async def _again(
    merchant: MerchantOut, row: dict[str, Any], source: str, *, ip: str, user_agent: str
) -> SignupOutcome:
    """An address the merchant has: its data stay untouched; at most a fresh opt-in."""
    customer_id = int(row["id"])
    if row["email_status"] == "verified" and row["subscribed"]:
        log.info("sign-up of merchant %s: customer %s confirmed already", merchant.id, customer_id)
        return "confirmed_already"
    if await _asked_recently(merchant.id, row):
        log.info("sign-up of merchant %s: customer %s asked recently", merchant.id, customer_id)
        return "repeated_too_soon"
    try:
        await consent.request_optin(
            merchant.id,
            customer_id,
            source="qr" if source == "qr" else "form",
            ip=ip,
            user_agent=user_agent,
            wording_version=SIGNUP_WORDING_VERSION,
        )
    except Conflict:
        # Confirmed a moment ago (their link, in another tab): the same quiet answer, or the
        # refusal would tell the visitor that this address is a subscriber.
        return "confirmed_already"
    log.info("sign-up of merchant %s: customer %s asked again", merchant.id, customer_id)
    return "requested"


# --- the address and its QR code ---------------------------------------------------------


def signup_url(merchant: MerchantOut, *, qr: bool = False) -> str:
    """The page's public address (from the ``base_url`` setting, like the opt-in links);
    the QR code's carries ``?src=qr`` so its sign-ups are recorded as such."""
    url = f"{get_settings().base_url.rstrip('/')}/r/signup/{merchant.slug}"
    return f"{url}?src=qr" if qr else url


def qr_code(data: str) -> qrcode.QRCode[Any]:
    """The QR code of ``data``: medium error correction (a printed code survives a smudge),
    the standard quiet zone of four modules."""
    code: qrcode.QRCode[Any] = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        image_factory=SvgPathImage,
    )
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_svg(data: str) -> str:
    """The QR code as an SVG document (one path, black on white; no Pillow needed)."""
    image = qr_code(data).make_image()
    svg: str = image.to_string(encoding="unicode")
    return svg


__all__ = [
    "OPTIN_REPEAT_WINDOW",
    "SIGNUP_WORDING_VERSION",
    "SignupOutcome",
    "SignupPage",
    "qr_svg",
    "sign_up",
    "signup_merchant",
    "signup_page",
    "signup_url",
    "validate_signup",
]
