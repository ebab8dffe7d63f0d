"""Campaign drafts: create, edit, check, preview as a customer, and the web version.

A draft is saved only when everything in it can be rendered: unknown placeholders, refused
links and control characters in the subject are 422s naming the field, and the content is
compiled once on save to prove it. So "rendering errors are reported before anything is
sent" holds by construction: nothing unrenderable is ever stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.personalise import Personaliser
from campaigns.schemas import (
    Audience,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    CheckOut,
    ContentDraft,
    PreviewOut,
    PreviewRequest,
    Problem,
)
from campaigns.tables import Campaign
from customers.services.customers import currency_exponent, customer_row
from loyalmail.errors import NotFound, ValidationFailed, _
from loyalmail.i18n import recipient_locale
from loyalmail.settings import get_settings
from segments import services as segments
from segments.predefined import PREDEFINED
from segments.schemas import Member
from templates import compiler, personal
from templates.blocks import Block
from templates.compiler import BrandFrame, Content, RenderFailed
from templates.layouts import LAYOUTS
from templates.message import CompiledMessage, RenderedMessage
from tracking import tokens

_BLOCKS = msgspec.json.Decoder(list[Block])
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def now() -> datetime:
    return datetime.now(UTC)


# --- rows ↔ values ---------------------------------------------------------------------------


def _blocks_of(row: Mapping[str, Any]) -> list[Block]:
    raw = row.get("blocks") or "[]"
    return _BLOCKS.decode(raw.encode() if isinstance(raw, str) else json.dumps(raw).encode())


def _audience_of(row: Mapping[str, Any]) -> Audience | None:
    if row.get("audience_predefined"):
        return Audience(predefined=row["audience_predefined"])
    if row.get("audience_segment"):
        return Audience(segment_id=int(row["audience_segment"]))
    return None


async def _audience_name(merchant_id: int, audience: Audience | None) -> str:
    if audience is None:
        return ""
    if audience.predefined is not None:
        return PREDEFINED[audience.predefined].name
    assert audience.segment_id is not None
    return (await segments.get_segment(merchant_id, audience.segment_id)).name


async def _out(row: Mapping[str, Any], merchant: MerchantOut) -> CampaignOut:
    audience = _audience_of(row)
    return CampaignOut(
        id=int(row["id"]),
        name=row["name"],
        subject=row["subject"],
        preheader=row["preheader"],
        audience=audience,
        audience_name=await _audience_name(merchant.id, audience),
        layout=row["layout"],
        blocks=_blocks_of(row),
        sender_name=row["sender_name"] or merchant.sender_name or merchant.name,
        sender_email=merchant.sender_email,
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _row(merchant_id: int, campaign_id: int) -> dict[str, Any]:
    row = (
        await Campaign.select()
        .where((Campaign.id == campaign_id) & (Campaign.merchant == merchant_id))
        .first()
    )
    if row is None:
        raise NotFound(_("Campaign not found."))
    return row


# --- checks ----------------------------------------------------------------------------------


def _line_problems(values: Mapping[str, str]) -> dict[str, str]:
    return {
        name: _("Must be a single line without control characters.")
        for name, value in values.items()
        if _CONTROL.search(value)
    }


async def _audience_columns(merchant_id: int, audience: Audience | None) -> dict[str, Any]:
    if audience is None:
        return {"audience_predefined": "", "audience_segment": None}
    if audience.predefined is not None and audience.segment_id is not None:
        raise ValidationFailed(
            _("Choose a predefined group or a saved segment, not both."), fields={"audience": ""}
        )
    if audience.segment_id is not None:
        try:
            await segments.get_segment(merchant_id, audience.segment_id)
        except NotFound:
            raise ValidationFailed(
                _("There is no such target group."), fields={"audience.segment_id": ""}
            ) from None
        return {"audience_predefined": "", "audience_segment": audience.segment_id}
    return {"audience_predefined": audience.predefined or "", "audience_segment": None}


def brand_frame(merchant: MerchantOut) -> BrandFrame:
    address = ", ".join(
        part
        for part in (merchant.street, f"{merchant.postal_code} {merchant.city}".strip())
        if part
    )
    contact = " · ".join(part for part in (merchant.contact_email, merchant.contact_phone) if part)
    return BrandFrame(
        name=merchant.name,
        logo_url=merchant.logo_url,
        address=address,
        opening_hours=merchant.opening_hours,
        contact=contact,
        website_url=merchant.website_url,
        imprint=merchant.imprint,
        publisher=merchant.publisher,
        copyright=merchant.copyright,
        privacy_policy_url=merchant.privacy_policy_url,
        color=merchant.brand_color,
    )


def _content(values: Mapping[str, Any]) -> Content:
    return Content(
        subject=values["subject"],
        preheader=values["preheader"],
        layout=values["layout"],
        blocks=tuple(values["blocks"]),
    )


def _prove_renderable(merchant: MerchantOut, values: Mapping[str, Any]) -> None:
    """Refuse what cannot be rendered, with every problem and where it is."""
    found = _line_problems({"subject": values["subject"], "preheader": values["preheader"]})
    content = _content(values)
    found.update(compiler.problems(content))
    if found:
        raise ValidationFailed(_("The campaign has problems; nothing was saved."), fields=found)
    compiler.compile_message(content, brand_frame(merchant), merchant.default_locale)


# --- create, read, update, delete ------------------------------------------------------------


async def create_campaign(
    merchant_id: int, data: CampaignCreate, created_by: int | None = None
) -> CampaignOut:
    merchant = await accounts.get_merchant(merchant_id)
    if data.layout not in LAYOUTS:
        raise ValidationFailed(_("Unknown layout."), fields={"layout": data.layout[:32]})
    blocks = list(LAYOUTS[data.layout].starter_blocks) if data.blocks is None else data.blocks
    values: dict[str, Any] = {
        "name": data.name,
        "subject": data.subject,
        "preheader": data.preheader,
        "layout": data.layout,
        "blocks": blocks,
        "sender_name": data.sender_name,
    }
    _prove_renderable(merchant, values)
    columns = await _audience_columns(merchant_id, data.audience)
    moment = now()
    rows = await Campaign.insert(
        Campaign(
            merchant=merchant_id,
            name=data.name,
            subject=data.subject,
            preheader=data.preheader,
            layout=data.layout,
            blocks=msgspec.json.encode(blocks).decode(),
            sender_name=data.sender_name,
            created_by=created_by,
            created_at=moment,
            updated_at=moment,
            **columns,
        )
    ).returning(Campaign.id)
    return await get_campaign(merchant_id, int(rows[0]["id"]))


async def get_campaign(merchant_id: int, campaign_id: int) -> CampaignOut:
    merchant = await accounts.get_merchant(merchant_id)
    return await _out(await _row(merchant_id, campaign_id), merchant)


async def list_campaigns(merchant_id: int) -> list[CampaignOut]:
    merchant = await accounts.get_merchant(merchant_id)
    rows = (
        await Campaign.select()
        .where(Campaign.merchant == merchant_id)
        .order_by(Campaign.updated_at, ascending=False)
    )
    return [await _out(row, merchant) for row in rows]


async def update_campaign(merchant_id: int, campaign_id: int, data: CampaignUpdate) -> CampaignOut:
    merchant = await accounts.get_merchant(merchant_id)
    row = await _row(merchant_id, campaign_id)
    if row["status"] != "draft":
        raise ValidationFailed(_("Only a draft can be edited."), fields={"status": row["status"]})
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "layout" in changes and changes["layout"] not in LAYOUTS:
        raise ValidationFailed(_("Unknown layout."), fields={"layout": changes["layout"][:32]})
    values: dict[str, Any] = {
        "subject": changes.get("subject", row["subject"]),
        "preheader": changes.get("preheader", row["preheader"]),
        "layout": changes.get("layout", row["layout"]),
        "blocks": changes.get("blocks", _blocks_of(row)),
    }
    _prove_renderable(merchant, values)
    update: dict[Any, Any] = {Campaign.updated_at: now()}
    if "audience" in changes:
        columns = await _audience_columns(merchant_id, changes.pop("audience"))
        update[Campaign.audience_predefined] = columns["audience_predefined"]
        update[Campaign.audience_segment] = columns["audience_segment"]
    for name in ("name", "subject", "preheader", "layout", "sender_name"):
        if name in changes:
            update[getattr(Campaign, name)] = changes[name]
    if "blocks" in changes:
        update[Campaign.blocks] = msgspec.json.encode(changes["blocks"]).decode()
    await Campaign.update(update).where(
        (Campaign.id == campaign_id) & (Campaign.merchant == merchant_id)
    )
    return await get_campaign(merchant_id, campaign_id)


async def delete_campaign(merchant_id: int, campaign_id: int) -> None:
    row = await _row(merchant_id, campaign_id)
    if row["status"] != "draft":
        raise ValidationFailed(_("Only a draft can be deleted."), fields={"status": row["status"]})
    await Campaign.delete().where((Campaign.id == campaign_id) & (Campaign.merchant == merchant_id))


# --- is it ready? ----------------------------------------------------------------------------


async def check_campaign(merchant_id: int, campaign_id: int) -> CheckOut:
    """What still stops the campaign from being sent (the summary step lists it)."""
    campaign = await get_campaign(merchant_id, campaign_id)
    problems: list[Problem] = []
    if not campaign.subject.strip():
        problems.append(Problem(field="subject", message=_("The campaign has no subject.")))
    if campaign.audience is None:
        problems.append(Problem(field="audience", message=_("Choose a target group.")))
    if not campaign.sender_email:
        problems.append(
            Problem(
                field="sender_email",
                message=_("Set a sender address in the brand settings first."),
            )
        )
    if not campaign.blocks:
        problems.append(Problem(field="blocks", message=_("The newsletter has no content.")))
    return CheckOut(ready=not problems, problems=problems)


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
    row = await _row(merchant_id, campaign_id)
    content = _draft_content(row, request.draft)
    found = _line_problems({"subject": content.subject, "preheader": content.preheader})
    found.update(compiler.problems(content))
    if found:
        raise RenderFailed(_("The newsletter cannot be rendered yet."), fields=found)
    member: Member | None = None
    if request.customer_id is not None:
        customer = await customer_row(merchant_id, request.customer_id)
        recipient = recipient_from_row(customer, merchant)
        member = Member(
            id=int(customer["id"]),
            email=customer["email"],
            first_name=customer["first_name"],
            last_name=customer["last_name"],
            customer_type=customer["customer_type"],
            city=customer["city"],
            country=customer["country"],
        )
        recipient_id = int(customer["id"])
    else:
        recipient = sample_recipient(merchant, request.language or merchant.default_locale)
        recipient_id = 0
    rendered, language = render_for(merchant, campaign_id, content, recipient_id, recipient)
    sender_name = row["sender_name"] or merchant.sender_name or merchant.name
    return PreviewOut(
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=rendered.html,
        text=rendered.text,
        language=language,
        customer=member,
        sender=f"{sender_name} <{merchant.sender_email}>" if merchant.sender_email else sender_name,
    )


def _draft_content(row: Mapping[str, Any], draft: ContentDraft | None) -> Content:
    draft = draft or ContentDraft()
    return Content(
        subject=row["subject"] if draft.subject is None else draft.subject,
        preheader=row["preheader"] if draft.preheader is None else draft.preheader,
        layout=row["layout"] if draft.layout is None else draft.layout,
        blocks=tuple(_blocks_of(row) if draft.blocks is None else draft.blocks),
    )


async def web_version(token: str) -> tuple[str, str]:
    """The "view in browser" page of a message: (HTML, language). A bad token, or a
    campaign or recipient that is gone, is NotFound: the page then says so."""
    data = tokens.read("view", token)
    if data is None:
        raise NotFound(_("This link is not valid."))
    merchant = await accounts.get_merchant(data.merchant_id)
    row = await _row(data.merchant_id, data.campaign_id)
    content = _draft_content(row, None)
    if data.recipient_id == 0:
        recipient = sample_recipient(merchant, merchant.default_locale)
    else:
        # Until the sending issue keeps per-recipient rows, the recipient is the customer.
        recipient = recipient_from_row(
            await customer_row(data.merchant_id, data.recipient_id), merchant
        )
    rendered, language = render_for(
        merchant, data.campaign_id, content, data.recipient_id, recipient
    )
    return rendered.html, language
