"""Deliverability: what became of a merchant's messages, and the campaign that pauses itself
when its complaints or hard bounces pass the installation's limits.

The figures (:func:`deliverability`) cover the campaigns whose send started in the last
:data:`WINDOW_DAYS` days, with everything that is known about their messages, whenever it
arrived (a complaint comes days later): per campaign, and their sums.

* **sent**: accepted by the mail server (recipient status ``sent``).
* **tried**: sent, refused at once (``bounced``) or given up after temporary failures
  (``failed``); skipped and cancelled recipients were never tried.
* **hard bounces**: refused at once, or an accepted message reported back as a hard bounce
  (campaign_bounce, kind ``hard``); rate of *tried*.
* **soft bounces**: given up after temporary failures, or reported back as soft or policy
  (5.7.x) bounces; rate of *tried*.
* **complaints**: reported as spam (feedback loops, ARF); rate of *sent*, as Gmail counts it.

A recipient counts once per kind, however many reports name it.

**The auto-pause** (:func:`pause_if_over_limits`) runs after every batch a worker sends and
after every hard bounce or complaint recorded later (campaigns.bounces), and pauses a campaign
that is being sent when its complaint rate passes ``pause_complaint_rate`` (0.3 %) or its
hard-bounce rate passes ``pause_hard_bounce_rate`` (5 %), with a reason that names both
figures. A rate is judged only once the campaign has :func:`minimum_sample` messages: enough
for the limit to stand for three events (⌈3 / limit⌉), and never fewer than 100 — 1,000
accepted messages at 0.3 %, 100 tried at 5 %. Below that a single event swings the rate far
past the limit (one complaint among the first 50 messages is 2 %) and says nothing yet about
the list; at the sample, four complaints among 1,000 (0.4 %) or six hard bounces among 100
(6 %) are a pattern. The check reads the few bounce and complaint rows first and counts the
messages only as far as it needs to (at most ⌊events / limit⌋ + 1 rows), so it stays cheap
for a campaign of a million.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from campaigns.schemas import CampaignDeliverability, Deliverability, DeliverabilityFigures
from campaigns.sending import queries as q
from campaigns.sending.control import pause_by_itself
from campaigns.sending.progress import as_moment
from loyalmail import sql
from loyalmail.errors import _
from loyalmail.settings import get_settings

log = logging.getLogger("loyalmail.sending")

#: The figures' window: campaigns whose send started this many days ago or later.
WINDOW_DAYS = 30
#: A rate is never judged on fewer messages than this (see :func:`minimum_sample`).
SMALLEST_SAMPLE = 100
#: ... nor on fewer than it takes for the limit to stand for this many events.
EVENTS_AT_THE_LIMIT = 3

COMPLAINED = _("Paused: {rate} % of recipients complained (limit {limit} %).")
BOUNCED_HARD = _("Paused: {rate} % of recipients bounced hard (limit {limit} %).")

#: Recipient statuses each rate is a share of.
SENT = ("sent",)
TRIED = ("sent", "bounced", "failed")


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def figures_of(sent: int, refused: int, failed: int, late: dict[str, int]) -> DeliverabilityFigures:
    """The figures from the recipient counts and the late reports (hard, soft, complaints)."""
    tried = sent + refused + failed
    hard = refused + late.get("hard", 0)
    soft = failed + late.get("soft", 0)
    complaints = late.get("complaints", 0)
    return DeliverabilityFigures(
        sent=sent,
        tried=tried,
        hard_bounces=hard,
        hard_bounce_rate=_rate(hard, tried),
        soft_bounces=soft,
        soft_bounce_rate=_rate(soft, tried),
        complaints=complaints,
        complaint_rate=_rate(complaints, sent),
    )


async def deliverability(merchant_id: int, now: datetime | None = None) -> Deliverability:
    """The merchant's figures of the last :data:`WINDOW_DAYS` days: three queries, whatever
    the number of campaigns and messages."""
    since = (now or datetime.now(UTC)) - timedelta(days=WINDOW_DAYS)
    async with sql.read_transaction():
        heads = await sql.fetch(q.CAMPAIGNS_STARTED_SINCE, merchant_id, since)
        outcomes = await sql.fetch(q.OUTCOMES_SINCE, merchant_id, merchant_id, since)
        late = await sql.fetch(q.LATE_REPORTS_SINCE, merchant_id, merchant_id, merchant_id, since)
    counts = {int(r["campaign"]): r for r in outcomes}
    reports = {int(r["campaign"]): r for r in late}
    campaigns = []
    sums = {"sent": 0, "refused": 0, "failed": 0, "hard": 0, "soft": 0, "complaints": 0}
    for head in heads:
        campaign_id = int(head["id"])
        row: dict[str, Any] = {**counts.get(campaign_id, {}), **reports.get(campaign_id, {})}
        values = {key: int(row.get(key) or 0) for key in sums}
        for key, value in values.items():
            sums[key] += value
        campaigns.append(
            CampaignDeliverability(
                campaign_id=campaign_id,
                name=str(head["name"]),
                status=head["status"],
                status_reason=str(head["status_reason"] or ""),
                started_at=as_moment(head["started_at"]),
                figures=_figures(values),
            )
        )
    settings = get_settings()
    return Deliverability(
        days=WINDOW_DAYS,
        since=since,
        totals=_figures(sums),
        campaigns=campaigns,
        complaint_limit=settings.pause_complaint_rate,
        hard_bounce_limit=settings.pause_hard_bounce_rate,
    )


def _figures(values: dict[str, int]) -> DeliverabilityFigures:
    late = {key: values[key] for key in ("hard", "soft", "complaints")}
    return figures_of(values["sent"], values["refused"], values["failed"], late)


# --- the auto-pause --------------------------------------------------------------------------


def minimum_sample(limit: float) -> int:
    """Messages a campaign needs before a rate can be judged against ``limit``."""
    return max(SMALLEST_SAMPLE, math.ceil(EVENTS_AT_THE_LIMIT / limit))


def percent(share: Fraction | float, above: Fraction | None = None) -> str:
    """A share as a percentage for the reason: "0.4", "0.35", "5", "12.5"; with ``above``
    (the limit), as many places as it takes to read as more than the limit ("0.30003")."""
    text = ""
    for places in range(2, 8):
        text = f"{float(share) * 100:.{places}f}".rstrip("0").rstrip(".")
        if above is None or Fraction(text) > above * 100:
            break
    return text


async def over_limits(campaign_id: int) -> str:
    """The reason the campaign should pause ("" when it should not)."""
    settings = get_settings()
    async with sql.read_transaction():
        events = (await sql.fetch(q.PAUSE_EVENTS, campaign_id, campaign_id, campaign_id))[0]
        checks = (
            (int(events["complaints"]), settings.pause_complaint_rate, SENT, COMPLAINED),
            (int(events["hard"]), settings.pause_hard_bounce_rate, TRIED, BOUNCED_HARD),
        )
        for count, limit_setting, statuses, reason in checks:
            if limit_setting <= 0 or count == 0:
                continue
            limit = Fraction(str(limit_setting))  # exact: 3 of 1,000 is not past 0.3 %
            sample = minimum_sample(limit_setting)
            if count <= limit * sample:
                continue  # past the sample the rate is at most count / sample: not over
            # Over the limit while fewer than count / limit messages: count only that far.
            bound = math.floor(count / limit) + 1
            rows = await sql.fetch(q.messages_up_to(statuses), campaign_id, *statuses, bound)
            messages = int(rows[0]["n"])
            if messages >= sample and count > limit * messages:
                rate = percent(Fraction(count, messages), above=limit)
                return reason.format(rate=rate, limit=percent(limit))
    return ""


async def pause_if_over_limits(merchant_id: int, campaign_id: int) -> bool:
    """Pause a campaign that is being sent when it is past a limit; True when it paused now."""
    async with sql.read_transaction():
        heads = await sql.fetch(q.CAMPAIGN_BY_ID, campaign_id)
    if not heads or heads[0]["status"] != "sending" or int(heads[0]["merchant"]) != merchant_id:
        return False
    reason = await over_limits(campaign_id)
    if not reason:
        return False
    return await pause_by_itself(merchant_id, campaign_id, reason)
