"""Rendering a campaign for a person: the preview as a customer (or a sample person) and the
"view in browser" web version. Both use untracked links; sending adds tracking."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from accounts import domains
from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.personalise import Personaliser
from campaigns.schemas import ContentDraft, PreviewOut, PreviewRequest
from campaigns.services.drafts import blocks_of, brand_frame, campaign_row
from campaigns.services.recipients import frozen_customer, token_recipient
from customers.services.customers import currency_exponent, customer_row
from loyalmail.errors import NotFound, _
from loyalmail.i18n import recipient_locale
from loyalmail.settings import get_settings
from segments import services as segments
from segments.schemas import Member
from templates import compiler, personal
from templates.compiler import Content, RenderFailed
from templates.message import CompiledMessage, RenderedMessage
from tracking import tokens

# --- rendering -------------------------------------------------------------------------------


def recipient_from_row(row: Mapping[str, Any], merchant: MerchantOut) -> personal.Recipient:
    exponent = currency_exponent(merchant.currency)
    return personal.Recipient(
        email=row["email"],
        first_name=row["first_name"] or "",
        last_name=row["last_name"] or "",
        gender=row["gender"] or "",
        city=row["city"] or "",
        birth_date=_as_date(row.get("birth_date")),
        lifetime_value=Decimal(int(row.get("lifetime_value_minor") or 0)).scaleb(-exponent),
        currency=merchant.currency,
        locale=row["locale"] or "",
    )


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def sample_recipient(merchant: MerchantOut, language: str) -> personal.Recipient:
    """Who a preview shows when no customer is chosen: a made-up person, not a real one."""
    return personal.Recipient(
        email="alex.example@example.com",
        first_name="Alex",
        last_name="Example",
        city=merchant.city,
        birth_date=date(1990, 6, 15),
        lifetime_value=Decimal("123.45"),
        currency=merchant.currency,
        locale=language,
    )


def compile_for(
    merchant: MerchantOut, content: Content, language: str, *, pixel: bool = False
) -> CompiledMessage:
    return compiler.compile_message(
        content, brand_frame(merchant), language, base_url=get_settings().base_url, pixel=pixel
    )


def render_for(
    merchant: MerchantOut,
    campaign_id: int,
    content: Content,
    recipient_id: int,
    recipient: personal.Recipient,
) -> tuple[RenderedMessage, str]:
    """The message as ``recipient`` gets it, with untracked links (previews and the web
    version), and its language."""
    language = recipient_locale(recipient.locale, merchant.default_locale)
    personaliser = Personaliser(
        compile_for(merchant, content, language),
        merchant_id=merchant.id,
        campaign_id=campaign_id,
        merchant_locale=merchant.default_locale,
        base_url=get_settings().base_url,
        track=False,
    )
    return personaliser.message_for(recipient_id, recipient), language


async def preview_campaign(
    merchant_id: int, campaign_id: int, request: PreviewRequest
) -> PreviewOut:
    """The campaign (or unsaved ``request.draft`` of it) as a customer, or a sample person,
    would receive it."""
    merchant = await accounts.get_merchant(merchant_id)
    row = await campaign_row(merchant_id, campaign_id)
    content = _draft_content(row, request.draft)
    found = compiler.problems(content)
    if found:
        raise RenderFailed(_("The newsletter cannot be rendered yet."), fields=found)
    member: Member | None = None
    if request.customer_id is not None:
        customer = await customer_row(merchant_id, request.customer_id)
        recipient = recipient_from_row(customer, merchant)
        member = segments.member_of(customer)
    else:
        recipient = sample_recipient(merchant, request.language or merchant.default_locale)
    # Recipient 0 in the links: a preview is nobody's message (its "view in browser" link
    # shows the sample person; only a sent message's links name a recipient row).
    rendered, language = render_for(merchant, campaign_id, content, 0, recipient)
    # Who it will really be from: the shop's own address only once its domain is verified.
    sender_name, sender_address = await domains.from_of(merchant, row["sender_name"])
    return PreviewOut(
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=rendered.html,
        text=rendered.text,
        language=language,
        customer=member,
        sender=f"{sender_name} <{sender_address}>",
    )


def saved_content(row: Mapping[str, Any]) -> Content:
    """The content as the campaign row holds it (what a send sends)."""
    return _draft_content(row, None)


def _draft_content(row: Mapping[str, Any], draft: ContentDraft | None) -> Content:
    draft = draft or ContentDraft()
    return Content(
        subject=row["subject"] if draft.subject is None else draft.subject,
        preheader=row["preheader"] if draft.preheader is None else draft.preheader,
        layout=row["layout"] if draft.layout is None else draft.layout,
        blocks=tuple(blocks_of(row) if draft.blocks is None else draft.blocks),
    )


async def web_version(token: str) -> tuple[str, str]:
    """The "view in browser" page of a message: (HTML, language). A bad token, or a
    campaign or recipient that is gone, is NotFound: the page then says so."""
    found = await token_recipient("view", token)
    merchant = await accounts.get_merchant(found.merchant_id)
    content = _draft_content(await campaign_row(found.merchant_id, found.campaign_id), None)
    if found.customer_id is None:  # a test send: the sample person
        recipient = sample_recipient(merchant, merchant.default_locale)
    else:
        recipient = recipient_from_row(
            await customer_row(found.merchant_id, found.customer_id), merchant
        )
    rendered, language = render_for(
        merchant, found.campaign_id, content, found.recipient_id, recipient
    )
    return rendered.html, language


async def link_owner(purpose: tokens.Purpose, token: str) -> tuple[str, MerchantOut] | None:
    """Whom a recipient link that leads nowhere (its campaign, recipient or link is gone, or
    its link number is unknown) still names: the recipient's language ("" when the recipient
    is unknown) and the shop, for the page that says the link is not valid. None for a token
    that is tampered with or made for another purpose: it names nobody."""
    data = tokens.read(purpose, token)
    if data is None:
        return None
    try:
        merchant = await accounts.get_merchant(data.merchant_id)
    except NotFound:
        return None
    if data.recipient_id == 0:  # a test send: the shop's own language
        return merchant.default_locale, merchant
    try:
        customer_id = await frozen_customer(data.merchant_id, data.campaign_id, data.recipient_id)
        row = await customer_row(data.merchant_id, customer_id)
    except NotFound:
        return "", merchant
    return recipient_locale(str(row["locale"] or ""), merchant.default_locale), merchant
