"""Bounces and complaints after the fact: a report (webhook event, DSN, ARF) is matched to the
recipient row it is about, recorded once, and a hard bounce or complaint suppresses the
address.

Who is meant: the VERP return path first (signed, so it names its recipient for certain), else
our Message-ID (readable by anybody who got the message, so it only points). Either way the
services act only when that recipient row exists, its message actually left (sent, bounced,
or being recorded as sent), and the bounced address is the row's: a forged report with a
guessed Message-ID cannot suppress somebody else. A report that names no address at all (a
redacted complaint) is taken only with a valid VERP path.

Recorded once: every event has an id (the provider's, or for a report a digest of the report
and the recipient's entry), unique per merchant, so a replayed webhook or a DSN read twice
is a duplicate that changes nothing. The address is suppressed before the row is written:
if the process dies in between, the event is not yet recorded and its repetition completes
it. Quota is not touched: the message was accepted, and paid for, when it left. A hard
bounce or complaint recorded for a campaign still being sent may pause it
(campaigns.sending.deliverability: the complaint and hard-bounce limits).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from campaigns.bounces import dsn, verp
from campaigns.bounces.dsn import Kind
from campaigns.bounces.schemas import BounceSummary, BounceWebhook, IgnoredEvent
from campaigns.sending.deliverability import pause_if_over_limits
from campaigns.tables import CampaignBounce, CampaignRecipient
from customers.schemas import normalize_email
from customers.services.suppression import suppress
from loyalmail.errors import ValidationFailed
from loyalmail.sql import is_unique_violation
from templates.message import header_safe

log = logging.getLogger("loyalmail.bounces")

Source = Literal["webhook", "dsn"]
#: A recipient whose message left: sent, bounced at once, or accepted and not yet recorded.
SENT_STATES = ("sent", "bounced", "sending")
#: What suppresses, and with which reason (customers.services.suppression).
SUPPRESSING: dict[str, str] = {"hard": "bounced", "complaint": "complaint"}
DETAIL_LENGTH = 300


@dataclass(frozen=True, slots=True)
class BounceEvent:
    """One report about one recipient, from any source."""

    #: How the answer names it: the webhook event's id, or the reported address.
    label: str
    kind: Kind
    #: The addresses the report names for the recipient ("": redacted).
    addresses: tuple[str, ...]
    message_id: str
    return_paths: tuple[str, ...]
    #: Unique per merchant: ``<source>:<the provider's id or a digest>``.
    event_id: str
    source: Source
    status: str = ""
    detail: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    #: recorded | duplicate | ignored
    result: Literal["recorded", "duplicate", "ignored"]
    suppressed: bool = False
    reason: str = ""


class _Tally:
    def __init__(self) -> None:
        self.summary = BounceSummary(processed=0, suppressed=0, duplicates=0, ignored=[])

    def add(self, label: str, outcome: Outcome) -> None:
        if outcome.result == "recorded":
            self.summary.processed += 1
            self.summary.suppressed += outcome.suppressed
        elif outcome.result == "duplicate":
            self.summary.duplicates += 1
        else:
            self.summary.ignored.append(IgnoredEvent(event=label, reason=outcome.reason))


async def process_webhook(webhook: BounceWebhook) -> BounceSummary:
    """Record a webhook's events, one after the other."""
    tally = _Tally()
    for event in webhook.events:
        kind: Kind = "complaint" if event.type == "complaint" else (event.bounce_type or "soft")
        bounce = BounceEvent(
            label=event.id,
            kind=kind,
            addresses=(event.email,) if event.email.strip() else (),
            message_id=event.message_id,
            return_paths=(event.return_path,) if event.return_path else (),
            event_id=f"webhook:{event.id}",
            source="webhook",
            status=event.status,
            detail=event.diagnostic,
            occurred_at=event.timestamp,
        )
        tally.add(event.id, await record(bounce))
    return tally.summary


async def process_report(raw: bytes, envelope_to: str = "") -> BounceSummary:
    """Record what a DSN or ARF message says; ``envelope_to`` is where it was delivered."""
    # Up to 1 MiB of MIME takes tens of milliseconds to parse: not on the event loop.
    report = await asyncio.to_thread(dsn.parse, raw, envelope_to)
    tally = _Tally()
    if not report.recipients:
        tally.add("message", Outcome("ignored", reason=report.reason))
    for entry in report.recipients:
        label = entry.addresses[0] if entry.addresses else "message"
        if entry.kind is None:
            tally.add(label, Outcome("ignored", reason="not_a_failure"))
            continue
        key = "\n".join((report.reference, *entry.addresses, entry.action, entry.status))
        bounce = BounceEvent(
            label=label,
            kind=entry.kind,
            addresses=entry.addresses,
            message_id=report.message_id,
            return_paths=report.return_paths,
            event_id="dsn:" + hashlib.sha256(key.encode()).hexdigest()[:48],
            source="dsn",
            status=entry.status,
            detail=entry.diagnostic,
        )
        tally.add(label, await record(bounce))
    return tally.summary


async def record(event: BounceEvent) -> Outcome:
    """Match, then record once and suppress what a hard bounce or complaint names."""
    found = _identify(event)
    if found is None:
        return Outcome("ignored", reason="unknown_message")
    ref, signed = found
    row = await (
        CampaignRecipient.select(CampaignRecipient.email_normalized, CampaignRecipient.status)
        .where(
            (CampaignRecipient.id == ref.recipient_id)
            & (CampaignRecipient.campaign == ref.campaign_id)
            & (CampaignRecipient.merchant == ref.merchant_id)
        )
        .first()
    )
    if row is None:
        return Outcome("ignored", reason="no_recipient")
    if row["status"] not in SENT_STATES:
        return Outcome("ignored", reason="not_sent")
    address = str(row["email_normalized"])
    if not event.addresses and not signed:
        return Outcome("ignored", reason="no_address")
    if event.addresses and address not in {_normalized(a) for a in event.addresses}:
        log.info("bounce %s ignored: its address is not recipient %s's", event.event_id, ref)
        return Outcome("ignored", reason="address_mismatch")
    stored = await _store(event, ref, address)
    if stored and event.kind in ("hard", "complaint"):
        # A campaign still being sent pauses itself once these pass the limits.
        await pause_if_over_limits(ref.merchant_id, ref.campaign_id)
    return Outcome("recorded" if stored else "duplicate", suppressed=stored and _suppresses(event))


def _identify(event: BounceEvent) -> tuple[verp.RecipientRef, bool] | None:
    """The recipient the event is about, and whether a signature says so."""
    for candidate in event.return_paths:
        ref = verp.parse_return_path(candidate)
        if ref is not None:
            return ref, True
    ref = verp.parse_message_id(event.message_id)
    return (ref, False) if ref is not None else None


def _normalized(address: str) -> str:
    try:
        return normalize_email(address, sendable=False)[1]
    except ValidationFailed:  # a garbled address matches nobody's, and is no error
        return address.strip().lower()


def _suppresses(event: BounceEvent) -> bool:
    return event.kind in SUPPRESSING


async def _store(event: BounceEvent, ref: verp.RecipientRef, address: str) -> bool:
    """Write the event unless it is there already; False for a duplicate."""
    mine = (CampaignBounce.merchant == ref.merchant_id) & (
        CampaignBounce.event_id == event.event_id
    )
    if await CampaignBounce.exists().where(mine):
        return False
    if _suppresses(event):
        await suppress(ref.merchant_id, address, SUPPRESSING[event.kind])
    detail = header_safe(f"{event.status} {event.detail}".strip())[:DETAIL_LENGTH]
    row = CampaignBounce(
        merchant=ref.merchant_id,
        campaign=ref.campaign_id,
        recipient=ref.recipient_id,
        email_normalized=address,
        kind=event.kind,
        source=event.source,
        status=event.status[:16],
        detail=detail,
        event_id=event.event_id,
        occurred_at=_utc(event.occurred_at),
    )
    try:
        await CampaignBounce.insert(row)
    except Exception as exc:
        if is_unique_violation(exc):  # the same event, recorded by a parallel request
            return False
        raise
    log.info("%s bounce %s recorded for recipient %s", event.kind, event.event_id, ref)
    return True


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


#: Recipients of the campaign with a report after the message left, by kind.
LATE_COUNTS = """
SELECT kind, COUNT(DISTINCT recipient) AS n FROM campaign_bounce
WHERE merchant = {} AND campaign = {} AND recipient IS NOT NULL
GROUP BY kind
"""


async def late_counts(merchant_id: int, campaign_id: int) -> dict[str, int]:
    """How many of the campaign's recipients bounced or complained after the message was
    accepted (webhooks, DSN and ARF reports), by kind: hard, soft, policy, complaint."""
    rows = await CampaignBounce.raw(LATE_COUNTS, merchant_id, campaign_id)
    return {str(row["kind"]): int(row["n"]) for row in rows}
