"""The campaign report at the HTTP edge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec


class LinkClicks(msgspec.Struct, kw_only=True):
    number: int
    url: str
    #: Clicks by people (machines left out), and how many people clicked.
    clicks: int
    unique_clicks: int


class ActivityHour(msgspec.Struct, kw_only=True):
    """People's opens and clicks in one hour (UTC)."""

    hour: datetime
    opens: int
    clicks: int


class CampaignReport(msgspec.Struct, kw_only=True):
    """Who got the campaign and what they did with it.

    Rates are fractions of ``delivered`` (click-to-open: of ``unique_opens``), 0 when there
    is nothing to divide by. A person's click counts as an open too (images may be blocked,
    the message was read). ``machine_opens`` are recipients whose only opens were a machine's
    (Apple's privacy proxy, an image proxy, a scanner): delivered, read or not, unknown."""

    campaign_id: int
    status: str
    recipients: int
    delivered: int
    #: Refused when sent (5xx), and reported back later (hard bounces, complaints).
    bounced: int
    bounced_later: int
    complaints: int
    unique_opens: int
    open_rate: float
    machine_opens: int
    opens: int
    unique_clicks: int
    click_rate: float
    click_to_open_rate: float
    clicks: int
    unsubscribes: int
    links: list[LinkClicks]
    activity: list[ActivityHour]


#: The lists of people: see tracking.queries for who is on each.
Activity = Literal["opened", "clicked", "unsubscribed", "machine_only"]


class PersonActivity(msgspec.Struct, kw_only=True):
    """One recipient on a list of people (who opened, clicked, unsubscribed)."""

    recipient_id: int
    #: The address the message went to and the customer's name now; both "" once erased.
    email: str
    name: str
    erased: bool
    #: When the recipient first did what the list is about (first open, first click, first
    #: unsubscribe, first machine open).
    first_at: datetime
    #: A person's opens and clicks (machines' apart).
    opens: int
    clicks: int
    machine_opens: int


class PeoplePage(msgspec.Struct, kw_only=True):
    """A page of a list, in recipient order. ``next_after``: pass it as ``after`` for the next
    page (None: this was the last one)."""

    campaign_id: int
    activity: Activity
    rows: list[PersonActivity]
    next_after: int | None
