"""Campaign drafts: create, read, update, delete, and what stops one from being sent.

A draft is saved only when everything in it can be rendered: unknown placeholders, refused
links and control characters in the subject are 422s naming the field, and the content is
compiled once on save to prove it. So "rendering errors are reported before anything is
sent" holds by construction: nothing unrenderable is ever stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.schemas import (
    Audience,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    CheckOut,
    Problem,
)
from campaigns.tables import Campaign
from loyalmail.errors import NotFound, ValidationFailed, _
from segments import services as segments
from segments.predefined import PREDEFINED
from templates import compiler
from templates.blocks import Block
from templates.compiler import BrandFrame, Content
from templates.layouts import LAYOUTS
from templates.message import CONTROL_CHARS

_BLOCKS = msgspec.json.Decoder(list[Block])
#: A campaign can be changed (or deleted) until it starts sending: as a draft, while it is
#: scheduled, and while an overdue schedule waits for the marketer.
EDITABLE = ("draft", "scheduled", "overdue")


def now() -> datetime:
    return datetime.now(UTC)


# --- rows ↔ values ---------------------------------------------------------------------------


def blocks_of(row: Mapping[str, Any]) -> list[Block]:
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
        blocks=blocks_of(row),
        sender_name=row["sender_name"] or merchant.sender_name or merchant.name,
        sender_email=merchant.sender_email,
        status=row["status"],
        status_reason=row.get("status_reason") or "",
        scheduled_at=row.get("scheduled_at"),
        started_at=row.get("started_at"),
        finished_at=row.get("finished_at"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def campaign_row(merchant_id: int, campaign_id: int) -> dict[str, Any]:
    row = (
        await Campaign.select()
        .where((Campaign.id == campaign_id) & (Campaign.merchant == merchant_id))
        .first()
    )
    if row is None:
        raise NotFound(_("Campaign not found."))
    return row


# --- checks ----------------------------------------------------------------------------------


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
    content = _content(values)
    found = compiler.problems(content)
    # The sender name becomes the From header's display name: one line, as the subject.
    if CONTROL_CHARS.search(values.get("sender_name", "")):
        found["sender_name"] = _("Must be a single line without control characters.")
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
    return await _out(await campaign_row(merchant_id, campaign_id), merchant)


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
    row = await campaign_row(merchant_id, campaign_id)
    if row["status"] not in EDITABLE:
        raise ValidationFailed(_("Only a draft can be edited."), fields={"status": row["status"]})
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "layout" in changes and changes["layout"] not in LAYOUTS:
        raise ValidationFailed(_("Unknown layout."), fields={"layout": changes["layout"][:32]})
    values: dict[str, Any] = {
        "subject": changes.get("subject", row["subject"]),
        "preheader": changes.get("preheader", row["preheader"]),
        "layout": changes.get("layout", row["layout"]),
        "blocks": changes.get("blocks", blocks_of(row)),
        "sender_name": changes.get("sender_name", row["sender_name"]),
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
    changed = (
        await Campaign.update(update)
        .where(
            (Campaign.id == campaign_id)
            & (Campaign.merchant == merchant_id)
            & Campaign.status.is_in(list(EDITABLE))
        )
        .returning(Campaign.id)
    )
    if not changed:  # it started sending a moment ago
        raise ValidationFailed(_("Only a draft can be edited."), fields={"status": "sending"})
    return await get_campaign(merchant_id, campaign_id)


async def delete_campaign(merchant_id: int, campaign_id: int) -> None:
    row = await campaign_row(merchant_id, campaign_id)
    if row["status"] not in EDITABLE:
        raise ValidationFailed(_("Only a draft can be deleted."), fields={"status": row["status"]})
    await Campaign.delete().where(
        (Campaign.id == campaign_id)
        & (Campaign.merchant == merchant_id)
        & Campaign.status.is_in(list(EDITABLE))
    )


# --- is it ready? ----------------------------------------------------------------------------


async def check_campaign(merchant_id: int, campaign_id: int) -> CheckOut:
    """What still stops the campaign from being sent (the summary step lists it)."""
    merchant = await accounts.get_merchant(merchant_id)
    campaign = await _out(await campaign_row(merchant_id, campaign_id), merchant)
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
    # The brand's fields, named as the brand settings (and PUT /api/brand) name them.
    problems += [
        Problem(field=legal.field, message=legal.message, legal_footer=True)
        for legal in accounts.legal_footer_problems(merchant)
    ]
    return CheckOut(ready=not problems, problems=problems)
