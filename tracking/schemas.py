"""The campaign report at the HTTP edge."""

from __future__ import annotations

from datetime import datetime

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
