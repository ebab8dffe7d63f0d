"""Typed values at the edge of the campaigns app."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from accounts.schemas import Locale
from segments.schemas import Member, PredefinedKey
from templates.blocks import Block, Blocks

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
#: Subject and preheader: one line. Control characters are refused by the service with a
#: message (a pattern here would only say "does not match").
Line = Annotated[str, msgspec.Meta(max_length=200)]
LayoutKey = Annotated[str, msgspec.Meta(max_length=32)]
CampaignStatus = Literal["draft", "scheduled", "overdue", "sending", "paused", "sent", "cancelled"]


class Audience(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A predefined group's key or a saved segment's id; both empty: not chosen yet."""

    predefined: PredefinedKey | None = None
    segment_id: int | None = None


class CampaignCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    subject: Line = ""
    preheader: Line = ""
    audience: Audience | None = None
    layout: LayoutKey = "classic"
    #: None: the layout's starter blocks.
    blocks: Blocks | None = None
    sender_name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class CampaignUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields present change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    subject: Line | msgspec.UnsetType = msgspec.UNSET
    preheader: Line | msgspec.UnsetType = msgspec.UNSET
    audience: Audience | None | msgspec.UnsetType = msgspec.UNSET
    layout: LayoutKey | msgspec.UnsetType = msgspec.UNSET
    blocks: Blocks | msgspec.UnsetType = msgspec.UNSET
    sender_name: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType = msgspec.UNSET


class CampaignFigures(msgspec.Struct, kw_only=True):
    """The key figures of a started campaign, as its report (tracking.reports) defines them:
    rates are fractions of ``delivered``, a person's click counts as an open, machines' opens
    are left out, an undone unsubscribe is not counted."""

    recipients: int
    delivered: int
    unique_opens: int
    open_rate: float
    unique_clicks: int
    click_rate: float
    unsubscribes: int


class CampaignOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    subject: str
    preheader: str
    audience: Audience | None
    #: The target group's name as the marketer knows it ("" when none is chosen).
    audience_name: str
    layout: str
    blocks: list[Block]
    sender_name: str
    #: The From address: always the merchant's sender address.
    sender_email: str
    status: CampaignStatus
    #: Why it paused itself or waits (empty otherwise).
    status_reason: str = ""
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    #: Only in the list, and only for a campaign that started sending.
    figures: CampaignFigures | None = None


class CampaignList(msgspec.Struct, kw_only=True):
    items: list[CampaignOut]


class ContentDraft(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Unsaved content to preview while editing; what is absent comes from the campaign."""

    subject: Line | None = None
    preheader: Line | None = None
    layout: LayoutKey | None = None
    blocks: Blocks | None = None


class TestSendRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: Login addresses of the merchant's marketers (1 to 5).
    addresses: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=254)]], msgspec.Meta(min_length=1, max_length=5)
    ]
    #: Render as this customer of the target group; None: a sample person.
    customer_id: int | None = None


class TestSendOut(msgspec.Struct, kw_only=True):
    addresses: list[str]
    #: The test sends reserved for this one (one per address).
    reservation_id: int
    test_sends_left: int


class PreviewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: Render as this customer (of this merchant); None: a sample person.
    customer_id: int | None = None
    #: The language of the fixed texts when no customer is chosen; default the merchant's.
    language: Locale | None = None
    draft: ContentDraft | None = None


class PreviewOut(msgspec.Struct, kw_only=True):
    subject: str
    preheader: str
    html: str
    text: str
    language: str
    #: Who the preview is rendered as (None: the sample person).
    customer: Member | None
    sender: str


class Problem(msgspec.Struct, kw_only=True):
    #: The campaign's field, or (``legal_footer``) the brand profile's.
    field: str
    message: str
    #: A gap in the legal footer: fixed in the brand settings (``field`` names the brand's
    #: field); a campaign cannot be sent until it is filled.
    legal_footer: bool = False


class CheckOut(msgspec.Struct, kw_only=True):
    """What stops the campaign from being sent; empty when it is ready."""

    ready: bool
    problems: list[Problem]


class LayoutOut(msgspec.Struct, kw_only=True):
    key: str
    name: str
    description: str
    starter_blocks: list[Block]


class PlaceholderOut(msgspec.Struct, kw_only=True):
    name: str
    label: str
    example: str


class ScheduleRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When to send: an ISO 8601 time; without an offset it is taken in the merchant's time
    zone ("2026-12-01T09:00" is 9 o'clock at the shop)."""

    at: Annotated[
        str,
        msgspec.Meta(
            min_length=10,
            max_length=40,
            examples=["2026-12-01T09:00", "2026-12-01T08:00:00Z"],
            description="ISO 8601; without an offset, in the shop's time zone",
        ),
    ]


class PauseRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=300)] = ""


class SendProgress(msgspec.Struct, kw_only=True):
    """Where a send stands. ``remaining`` is queued plus in flight; the rate is messages
    accepted per second over the last minute; ``seconds_left`` is None while it is 0."""

    campaign_id: int
    status: CampaignStatus
    status_reason: str
    recipients: int
    sent: int
    bounced: int
    failed: int
    skipped: int
    cancelled: int
    queued: int
    in_flight: int
    remaining: int
    rate_per_second: float
    seconds_left: int | None
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class DeliverabilityFigures(msgspec.Struct, kw_only=True):
    """What became of a set of messages (campaigns.sending.deliverability). Rates are shares
    (0.004 is 0.4 %): bounces of the messages tried, complaints of the messages accepted."""

    #: Accepted by the mail server.
    sent: int
    #: Accepted, refused at once, or given up after temporary failures.
    tried: int
    #: Refused at once (5xx), or reported back as a hard bounce later.
    hard_bounces: int
    hard_bounce_rate: float
    #: Given up after temporary failures, or reported back as soft or policy bounces later.
    soft_bounces: int
    soft_bounce_rate: float
    #: Marked as spam by the recipient (feedback loops: webhooks, ARF reports).
    complaints: int
    complaint_rate: float


class CampaignDeliverability(msgspec.Struct, kw_only=True):
    campaign_id: int
    name: str
    status: CampaignStatus
    #: Why it paused itself, in English (the page shows it in the page's language).
    status_reason: str
    started_at: datetime | None
    figures: DeliverabilityFigures


class Deliverability(msgspec.Struct, kw_only=True):
    """The merchant's campaigns whose send started in the last ``days`` days (since
    ``since``): their figures together and each one's, newest first. The totals are the sums
    of the campaigns' figures."""

    days: int
    since: datetime
    totals: DeliverabilityFigures
    campaigns: list[CampaignDeliverability]
    #: The installation's limits: a running campaign past one pauses itself.
    complaint_limit: float
    hard_bounce_limit: float
