"""The consent log and the double opt-in: request, the e-mail, confirmation.

The consent log is append-only: rows are inserted (:func:`record_consent`), never updated;
only erasure deletes them, together with the customer.

Double opt-in, step by step:

1. :func:`request_optin` (or creating a customer with ``send_optin``) sets the address to
   ``pending``, logs "requested" and queues the actor ``send_optin_email(customer_id)``.
2. The actor calls :func:`send_optin_message`: the e-mail in the customer's language (their
   locale, else the merchant's default), from the merchant's sender, with a signed link to
   ``/r/optin/<token>`` (:mod:`.optin_links`: no address inside) and the shop's legal footer
   (:mod:`.customer_mail`). Running it twice for one request sends once.
3. ``GET /r/optin/<token>`` only shows a page with a button (mail scanners follow links);
   the button's POST calls :func:`confirm_optin`: ``verified``, subscribed, "confirmed" logged
   with time, IP, user agent and wording version, and a suppression of the address lifted —
   this confirmation is exactly the fresh opt-in the suppression list waits for.

Only verified, subscribed addresses ever count as newsletter recipients.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

import aiosmtplib
import msgspec

from accounts import services as accounts
from accounts.schemas import MerchantOut
from customers.schemas import (
    ConsentAction,
    ConsentEventOut,
    ConsentSource,
    CustomerOut,
    wire_address,
)
from customers.services.customer_mail import MAIL_POLICY, legal_footer
from customers.services.customers import (
    OPTIN_WORDING_VERSION,
    _insert_consent,
    customer_out,
    customer_row,
    enqueue_optin,
    merchant_exponent,
    now,
    transaction,
)
from customers.services.optin_links import (
    OPTIN_MAX_AGE_SECONDS,
    OPTIN_PURPOSE,
    optin_link_owner,
    optin_url,
    row_for_token,
)
from customers.services.suppression import lift, suppress
from customers.services.transactional import send_to_customer
from customers.tables import ConsentEvent, Customer
from loyalmail.errors import Conflict, ValidationFailed, _
from loyalmail.i18n import email_gettext, recipient_locale
from loyalmail.settings import get_settings

log = logging.getLogger("loyalmail.customers")


# --- the log -----------------------------------------------------------------------------


async def list_consent(merchant_id: int, customer_id: int) -> list[ConsentEventOut]:
    await customer_row(merchant_id, customer_id)
    rows = (
        await ConsentEvent.select()
        .where((ConsentEvent.customer == customer_id) & (ConsentEvent.merchant == merchant_id))
        .order_by(ConsentEvent.created_at)
        .order_by(ConsentEvent.id)
    )
    return [
        msgspec.convert(row, ConsentEventOut, from_attributes=False, strict=False) for row in rows
    ]


async def record_consent(
    merchant_id: int,
    customer_id: int,
    *,
    action: ConsentAction,
    source: ConsentSource,
    email: str,
    ip: str = "",
    user_agent: str = "",
    wording_version: str = "",
    actor: str = "",
) -> None:
    """Append one event (other parts — import, sign-up form — log consent through this)."""
    await customer_row(merchant_id, customer_id)
    await _insert_consent(
        merchant_id,
        customer_id,
        action,
        source,
        email,
        ip,
        user_agent,
        actor,
        wording_version=wording_version,
    )


# --- request -----------------------------------------------------------------------------


async def request_optin(
    merchant_id: int,
    customer_id: int,
    *,
    actor: str = "",
    source: ConsentSource = "marketer",
    ip: str = "",
    user_agent: str = "",
    wording_version: str = OPTIN_WORDING_VERSION,
) -> CustomerOut:
    """Ask the customer (again) to confirm their address: status pending, e-mail queued.
    ``ip``, ``user_agent`` and ``wording_version`` describe who asked and what they agreed to
    (the public sign-up form passes its own)."""
    merchant = await accounts.get_merchant(merchant_id)
    async with transaction():
        row = await customer_row(merchant_id, customer_id)
        if row["email_status"] == "verified" and row["subscribed"]:
            raise Conflict(
                _("This address is confirmed already; no confirmation e-mail is needed."),
                fields={"email_status": "verified"},
            )
        await Customer.update({Customer.email_status: "pending", Customer.updated_at: now()}).where(
            (Customer.id == customer_id) & (Customer.merchant == merchant_id)
        )
        await _insert_consent(
            merchant_id,
            customer_id,
            "requested",
            source,
            row["email"],
            ip,
            user_agent,
            actor,
            wording_version=wording_version,
        )
    enqueue_optin(customer_id)
    return customer_out(
        await customer_row(merchant_id, customer_id), exponent=merchant_exponent(merchant)
    )


# --- the page ----------------------------------------------------------------------------


class OptinPage(msgspec.Struct, kw_only=True):
    """What the public confirmation page shows: the merchant's brand, in the customer's
    language, and whether there is anything left to confirm."""

    locale: str
    email: str
    confirmed: bool
    shop_name: str
    logo_url: str
    brand_color: str
    privacy_policy_url: str
    website_url: str


def _optin_page(row: dict[str, Any], merchant: MerchantOut) -> OptinPage:
    return OptinPage(
        locale=recipient_locale(row["locale"], merchant.default_locale),
        email=row["email"],
        confirmed=row["email_status"] == "verified" and bool(row["subscribed"]),
        shop_name=merchant.name,
        logo_url=merchant.logo_url,
        brand_color=merchant.brand_color,
        privacy_policy_url=merchant.privacy_policy_url,
        website_url=merchant.website_url,
    )


async def describe_optin(token: str) -> OptinPage:
    """For ``GET /r/optin/<token>``: reads only, never confirms. NotFound for a bad token."""
    row = await row_for_token(token)
    return _optin_page(row, await accounts.get_merchant(int(row["merchant"])))


async def confirm_optin(token: str, *, ip: str = "", user_agent: str = "") -> CustomerOut:
    """Confirm the address the token names. Idempotent: a second confirmation changes nothing
    and logs nothing. Re-subscribes an unsubscribed customer (logged as "resubscribed": that
    is what this confirmation did); otherwise the event is "confirmed"."""
    row = await row_for_token(token)
    merchant = await accounts.get_merchant(int(row["merchant"]))
    merchant_id, customer_id = merchant.id, int(row["id"])
    async with transaction():
        # The conditional UPDATE decides who confirms: of two simultaneous clicks only one
        # changes the row, and only that one writes the consent event.
        changed = (
            await Customer.update(
                {
                    Customer.email_status: "verified",
                    # The recipient's own confirmation: what the quota's allowance trusts.
                    Customer.confirmed_by_recipient: True,
                    Customer.subscribed: True,
                    Customer.unsubscribed_at: None,
                    Customer.updated_at: now(),
                }
            )
            .where(
                (Customer.id == customer_id)
                & (Customer.merchant == merchant_id)
                & (Customer.email_normalized == row["email_normalized"])
                & ((Customer.email_status != "verified") | (Customer.subscribed == False))  # noqa: E712
            )
            .returning(Customer.id)
        )
        if changed:
            action = "confirmed" if row["subscribed"] else "resubscribed"
            await _insert_consent(
                merchant_id,
                customer_id,
                action,
                "link",
                row["email"],
                ip,
                user_agent,
                "",
                wording_version=OPTIN_WORDING_VERSION,
            )
            await lift(merchant_id, row["email_normalized"])
    return customer_out(
        await customer_row(merchant_id, customer_id), exponent=merchant_exponent(merchant)
    )


# --- the e-mail --------------------------------------------------------------------------


def _t(locale: str, message: str, **values: str) -> str:
    text = email_gettext(locale, message)
    return text % values if values else text


def build_optin_email(row: dict[str, Any], merchant: MerchantOut) -> EmailMessage:
    """The confirmation e-mail (plain text and HTML) in the customer's language."""
    settings = get_settings()
    locale = recipient_locale(row["locale"], merchant.default_locale)
    link = optin_url(merchant.id, int(row["id"]), row["email_normalized"])
    shop = merchant.name
    name = " ".join(part for part in (row["first_name"], row["last_name"]) if part)
    greeting = _t(locale, "Hello %(name)s,", name=name) if name else _t(locale, "Hello,")
    subject = _t(locale, "Please confirm your e-mail address for %(shop)s", shop=shop)
    intro = _t(
        locale,
        "You (or someone using your address) asked to receive news from %(shop)s at %(email)s.",
        shop=shop,
        email=row["email"],
    )
    ask = _t(
        locale,
        "Please confirm with the button below. Until you do, you will not receive any newsletters.",
    )
    button = _t(locale, "Confirm my address")
    fallback = _t(locale, "If the button does not work, open this link:")
    ignore = _t(
        locale,
        "If you did not ask for this, simply ignore this e-mail: you will not hear from us again.",
    )

    message = EmailMessage()
    sender_address = merchant.sender_email or settings.mail_from
    message["From"] = formataddr((merchant.sender_name or shop, sender_address))
    # ASCII on the wire (the one address rule): the domain IDNA-encoded, or ValidationFailed.
    to = wire_address(row["email"])
    message["To"] = formataddr((name, to)) if name else to
    if merchant.contact_email:
        message["Reply-To"] = merchant.contact_email
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid("optin", domain=sender_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = locale
    # The parts are encoded to the policy's line length: RFC 2045's 76 characters.
    message.policy = MAIL_POLICY
    footer = legal_footer(merchant, locale)
    message.set_content(
        "\n\n".join(
            [greeting, intro, ask, f"{button}:\n{link}", ignore, f"— {shop}", footer.text()]
        )
        + "\n"
    )
    color = html.escape(merchant.brand_color or "#1f6feb")
    e = html.escape
    logo = (
        f'<p><img src="{e(merchant.logo_url)}" alt="{e(shop)}" style="max-height:60px"></p>'
        if merchant.logo_url
        else f'<p style="font-size:20px;font-weight:bold">{e(shop)}</p>'
    )
    message.add_alternative(
        f"""<!doctype html>
<html lang="{e(locale)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(subject)}</title>
</head><body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;color:#222">
<div style="max-width:560px;margin:0 auto">
{logo}
<p>{e(greeting)}</p>
<p>{e(intro)}</p>
<p>{e(ask)}</p>
<p style="margin:28px 0"><a href="{e(link)}" style="background:{color};color:#fff;
padding:12px 22px;border-radius:6px;text-decoration:none;display:inline-block">{e(button)}</a></p>
<p style="font-size:13px;color:#555">{e(fallback)}<br>
<a href="{e(link)}" style="color:#555;word-break:break-all">{e(link)}</a></p>
<p style="font-size:13px;color:#555">{e(ignore)}</p>
<p style="font-size:13px;color:#555">— {e(shop)}</p>
{footer.html()}
</div></body></html>
""",
        subtype="html",
    )
    return message


async def send_optin_message(customer_id: int) -> bool:
    """Send the opt-in e-mail of the latest request; the actor's whole job. Returns whether a
    mail went out. Safe to run twice: a confirmed, erased or already-mailed request is skipped
    (``optin_sent_at`` later than the last "requested" event means this request is done).
    SMTP errors propagate so the actor retries."""
    row = await Customer.select().where(Customer.id == customer_id).first()
    if row is None or row["email_status"] != "pending":
        return False
    requested = (
        await ConsentEvent.select(ConsentEvent.created_at)
        .where((ConsentEvent.customer == customer_id) & (ConsentEvent.action == "requested"))
        .order_by(ConsentEvent.created_at, ascending=False)
        .first()
    )
    sent_at = row["optin_sent_at"]
    if sent_at is not None and (requested is None or sent_at >= requested["created_at"]):
        return False
    merchant = await accounts.get_merchant(int(row["merchant"]))
    try:
        message = build_optin_email(row, merchant)
    except ValidationFailed:
        # Stored before the address rule refused it at the door (a non-ASCII local part):
        # no relay of ours can deliver it, so retrying cannot help.
        log.warning("opt-in e-mail for customer %s not sent: the address needs SMTPUTF8", row["id"])
        return False
    try:
        await send_to_customer(message, merchant, row["email"], "optin")
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if not all(refusal.code >= 500 for refusal in exc.recipients):
            raise  # 4xx: the server asks us to try later, so the actor retries
        # The address does not exist: retrying cannot help, and campaigns must skip it too.
        await suppress(merchant.id, row["email_normalized"], "bounced")
        log.info("opt-in e-mail for customer %s bounced permanently", customer_id)
        return False
    await Customer.update({Customer.optin_sent_at: now()}).where(Customer.id == customer_id)
    log.info("opt-in e-mail sent for customer %s", customer_id)
    return True


__all__ = [
    "OPTIN_MAX_AGE_SECONDS",
    "OPTIN_PURPOSE",
    "OPTIN_WORDING_VERSION",
    "OptinPage",
    "build_optin_email",
    "confirm_optin",
    "describe_optin",
    "list_consent",
    "optin_link_owner",
    "optin_url",
    "record_consent",
    "request_optin",
    "send_optin_message",
]
