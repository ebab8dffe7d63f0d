"""The batch worker: claim a batch's recipients, send each its message over a pooled SMTP
connection, and record every outcome with its quota unit.

Claiming is a conditional UPDATE that sets a lease (owner and expiry): a recipient is
claimable when it is queued and due, or when its lease ran out (the worker that held it
died). Outcomes are recorded every :data:`FLUSH_EVERY` messages in one commit that also
spends (accepted) or releases (bounced, skipped, given up) the recipients' units, extends
the lease once half of it is gone and reads the campaign's status, so a pause or cancel
stops a worker after the few messages it has in hand. A worker killed between the SMTP
server's "250 OK" and that commit leaves at most :data:`FLUSH_EVERY` messages that the next
claimer sends again; that is the whole bound on duplicates, and nobody is ever skipped. A
worker that cannot reach the database to record what the relay accepted waits the outage
out (``sql.until_reachable``; up to one lease past its own, since a row is recorded only
while it is still ours), so a short outage sends nothing twice; a worker that wakes up
past its lease (stopped, frozen) sends none of what it still holds.

Just before each group of messages goes out the customers are read again: an address that
was unsubscribed, suppressed, erased or changed since the freeze is skipped and its unit
given back. SMTP answers: 2xx accepted; 4xx or a dropped connection: tried again later
(``send_retry_base_seconds`` doubling, at most ``send_max_attempts`` tries); 5xx: a hard
bounce that suppresses the address, except 5.7.x policy refusals and a refused sender,
which are not the recipient's fault and pause the campaign instead. After every batch the
campaign pauses itself when its complaints or hard bounces pass the installation's limits
(:mod:`campaigns.sending.deliverability`).
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib

from accounts import domains
from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.bounces import verp
from campaigns.personalise import Personaliser
from campaigns.sending import mime, qp, rates
from campaigns.sending import queries as q
from campaigns.sending.control import enqueue_batches, pause_by_itself, settle
from campaigns.sending.deliverability import pause_if_over_limits
from campaigns.sending.envelope import ListHeaderMaker, envelope_of, list_header_maker
from campaigns.sending.smtp_pool import pool_for
from campaigns.sending.smtp_transaction import send_prepared
from campaigns.services.previews import compile_for, recipient_from_row, saved_content
from customers.services.suppression import suppress
from loyalmail import database, sql
from loyalmail.errors import _
from loyalmail.i18n import recipient_locale
from loyalmail.settings import get_settings
from quota import services as quota
from templates.message import subject_of
from templates.personal import Recipient

log = logging.getLogger("loyalmail.sending")

#: Messages between two commits of outcomes (and the bound on duplicates after a kill).
FLUSH_EVERY = 20
#: Sending stops this long before the lease ends (a tenth of a shorter lease): _Send.lease_over.
LEASE_MARGIN = timedelta(seconds=2)
#: The longest wait before a retry.
LONGEST_RETRY = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Outcomes:
    """What happened to one group of claimed recipients, waiting for its commit."""

    sent: list[int] = field(default_factory=list)
    #: (recipient id, SMTP answer, normalised address)
    bounced: list[tuple[int, str, str]] = field(default_factory=list)
    #: (recipient id, why): given up; their units go back
    failed: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    #: (recipient id, SMTP answer, attempts so far): to be tried again later
    retry: list[tuple[int, str, int]] = field(default_factory=list)
    #: Claimed but not tried (the connection broke, or a policy refusal): back to the queue
    #: without counting an attempt.
    untried: list[int] = field(default_factory=list)
    #: A 5.7.x refusal or a refused sender: the campaign pauses with this reason.
    policy: str = ""


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    bounced: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    #: Set when the worker stopped early: the campaign's status (paused, cancelled).
    stopped: str = ""


@dataclass
class _Send:
    """One batch's fixed parts: who sends, and how each message is built."""

    campaign_id: int
    merchant: MerchantOut
    reservation_id: int
    owner: str
    sender: mime.Sender
    #: The sender's address as it goes into MAIL FROM (checked and ASCII once per batch),
    #: unless a bounce address gives each recipient a return path of its own (VERP).
    envelope_from: str
    domain: str
    dkim_key: mime.DkimKey | None
    lists: ListHeaderMaker
    content_row: dict[str, Any]
    #: Until when the claimed recipients are ours (extended as the batch goes on).
    lease_until: datetime

    def lease_over(self) -> bool:
        """Has our claim (nearly) run out by this process's clock? A worker that was stopped
        (SIGSTOP, a frozen VM, a long GC pause) past its lease must not send what it holds:
        the reconciler has handed those recipients to another worker, which sends them. The
        margin covers one SMTP transaction begun just before the end."""
        margin = min(LEASE_MARGIN, timedelta(seconds=get_settings().send_lease_seconds / 10))
        return utc_now() + margin >= self.lease_until


# --- compiled messages, per process --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    """The campaign in one language: its slots' values per recipient, and its two parts with
    the literal text already quoted-printable."""

    personaliser: Personaliser
    text: qp.EncodedPart
    html: qp.EncodedPart

    @classmethod
    def of(cls, personaliser: Personaliser) -> CompiledCampaign:
        message = personaliser.message
        return cls(personaliser, qp.EncodedPart.of(message.text), qp.EncodedPart.of(message.html))

    def body_for(self, recipient_id: int, recipient: Recipient) -> mime.Body:
        values = self.personaliser.values_for(recipient_id, recipient)
        text, text_relaxed = self.text.fill(values.raw)
        html, html_relaxed = self.html.fill(values.escaped)
        return mime.Body(
            subject=subject_of(self.personaliser.message, values),
            text=text,
            html=html,
            relaxed=text_relaxed and html_relaxed,
        )


_compiled: OrderedDict[tuple[int, str, str], CompiledCampaign] = OrderedDict()
_COMPILED_KEPT = 32


def _compiled_for(send: _Send, language: str) -> CompiledCampaign:
    """The campaign compiled once per language and process (it cannot change while it is
    being sent: only drafts are edited)."""
    key = (send.campaign_id, language, str(send.content_row["updated_at"]))
    found = _compiled.get(key)
    if found is not None:
        _compiled.move_to_end(key)
        return found
    merchant = send.merchant
    personaliser = Personaliser(
        compile_for(merchant, saved_content(send.content_row), language, pixel=True),
        merchant_id=merchant.id,
        campaign_id=send.campaign_id,
        merchant_locale=merchant.default_locale,
        base_url=get_settings().base_url,
        track=True,
    )
    compiled = _compiled[key] = CompiledCampaign.of(personaliser)
    while len(_compiled) > _COMPILED_KEPT:
        _compiled.popitem(last=False)
    return compiled


def build_message(send: _Send, row: dict[str, Any], now: datetime) -> bytes:
    recipient_id = int(row["id"])
    row = {**row, "locale": row["locale"] or row["frozen_locale"] or ""}
    recipient = recipient_from_row(row, send.merchant)
    language = recipient_locale(recipient.locale, send.merchant.default_locale)
    return mime.build(
        _compiled_for(send, language).body_for(recipient_id, recipient),
        to=row["email"],
        sender=send.sender,
        lists=send.lists.for_recipient(recipient_id),
        message_id=mime.message_id(send.merchant.id, send.campaign_id, recipient_id, send.domain),
        date=now,
        dkim_key=send.dkim_key,
    )


# --- SMTP answers ----------------------------------------------------------------------------


def classify(exc: BaseException) -> tuple[str, str]:
    """("retry" | "bounce" | "policy", the server's answer) for a failed message."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, message = exc.code, exc.message
        stage = "sender" if isinstance(exc, aiosmtplib.SMTPSenderRefused) else "other"
    else:
        return "retry", (str(exc) or type(exc).__name__)[:300]
    detail = f"{code} {message}".strip()[:300]
    if code < 500:
        return "retry", detail
    if message.strip().startswith("5.7.") or stage == "sender":
        return "policy", detail
    return "bounce", detail


def _may_receive(row: dict[str, Any]) -> str:
    """Why the address may not be mailed now ("" when it may)."""
    if row["customer_id"] is None:
        return "erased"
    if row["current_address"] != row["email_normalized"]:
        return "address changed"
    if row["suppressed"]:
        return "suppressed"
    if not row["subscribed"]:
        return "unsubscribed"
    if row["email_status"] != "verified":
        return "not verified"
    return ""


# --- one batch -------------------------------------------------------------------------------


async def send_batch(campaign_id: int, batch_id: int) -> BatchReport:
    """Send what is claimable in the batch. Safe to run twice, at once or after a crash."""
    settings = get_settings()
    report = BatchReport()
    async with sql.read_transaction():
        heads = await sql.fetch(q.CAMPAIGN_BY_ID, campaign_id)
        batches = await sql.fetch(q.BATCH, batch_id, campaign_id)
    if not heads or not batches:
        return report
    head, batch = heads[0], batches[0]
    if head["status"] != "sending" or head["reservation_id"] is None:
        report.stopped = str(head["status"])
        return report
    merchant = await accounts.get_merchant(int(head["merchant"]))
    async with sql.read_transaction():
        content_row = (await sql.fetch(q.CAMPAIGN, campaign_id, merchant.id))[0]
    try:
        envelope = await envelope_of(merchant, content_row["sender_name"])
    except domains.SigningUnavailable as exc:
        # Before anything is claimed: nothing leaves unsigned, and a resume after the
        # operator fixed the key sends everyone.
        await pause_by_itself(merchant.id, campaign_id, exc.message)
        report.stopped = "paused"
        return report
    owner = secrets.token_hex(10)
    now = utc_now()
    lease_until = now + timedelta(seconds=settings.send_lease_seconds)

    async def claim() -> list[int]:
        async with sql.write_transaction():
            rows = await sql.fetch(
                q.CLAIM,
                owner,
                lease_until,
                campaign_id,
                batch["first_recipient"],
                batch["last_recipient"],
                now,
                now,
            )
            return sorted(int(r["id"]) for r in rows)

    claimed = await sql.with_retries(claim)
    report.claimed = len(claimed)
    if not claimed:
        await settle(campaign_id)
        return report
    send = _Send(
        campaign_id=campaign_id,
        merchant=merchant,
        reservation_id=int(head["reservation_id"]),
        owner=owner,
        sender=envelope.sender,
        envelope_from=mime.ascii_address(envelope.sender.address),
        domain=envelope.domain,
        dkim_key=envelope.dkim_key,
        lists=list_header_maker(merchant, campaign_id),
        content_row=content_row,
        lease_until=lease_until,
    )
    await _send_claimed(send, claimed, report)
    if report.retried and not report.stopped:
        delay = settings.send_retry_base_seconds
        await enqueue_batches(campaign_id, [batch_id], delay_ms=int(delay * 1000) + 50)
    # After every batch, not only one with a bounce: a campaign whose first messages bounced
    # reaches the sample that lets its rate count (deliverability.minimum_sample) later.
    await pause_if_over_limits(merchant.id, campaign_id)
    await settle(campaign_id)
    return report


async def _send_claimed(send: _Send, claimed: list[int], report: BatchReport) -> None:
    """Send to ``claimed`` group by group; stop when the campaign stops or the relay fails."""
    pending = list(claimed)
    while pending:
        group, pending = pending[:FLUSH_EVERY], pending[FLUSH_EVERY:]
        outcomes = await _send_group(send, group)
        status = await _record(send, outcomes, report)
        if status != "sending" or outcomes.policy:
            report.stopped = status if status != "sending" else "paused"
            await _give_back(send, pending, status)
            return
        if outcomes.untried:
            # The relay cannot be reached: the rest waits for the retry with them.
            await _record(send, Outcomes(untried=pending), report)
            return


async def _send_group(send: _Send, ids: list[int]) -> Outcomes:
    outcomes = Outcomes()

    async def read() -> list[dict[str, Any]]:
        async with sql.read_transaction():
            return await sql.fetch(q.claimed(len(ids)), send.campaign_id, send.owner, *ids)

    rows = await sql.until_reachable(read, deadline=send.lease_until, what="reading recipients")
    mailable: list[dict[str, Any]] = []
    for row in rows:
        reason = _may_receive(row)
        if reason:
            outcomes.skipped.append((int(row["id"]), reason))
        else:
            mailable.append(row)
    if not mailable:
        return outcomes
    try:
        async with pool_for().connection() as client:
            for index, row in enumerate(mailable):
                if not client.is_connected or outcomes.policy or send.lease_over():
                    outcomes.untried += [int(r["id"]) for r in mailable[index:]]
                    break
                await _send_one(send, client, row, outcomes)
    except (aiosmtplib.SMTPException, OSError) as exc:
        # No connection at all (refused, 421 at the greeting, TLS or login failed): every
        # message of the group not yet decided is tried again later.
        decided = set(_decided_ids(outcomes))
        kind, detail = classify(exc)
        for row in mailable:
            if int(row["id"]) not in decided:
                if kind == "policy":
                    outcomes.policy = detail
                    outcomes.untried.append(int(row["id"]))
                else:
                    outcomes.retry.append((int(row["id"]), detail, int(row["attempts"])))
    return outcomes


def _decided_ids(outcomes: Outcomes) -> list[int]:
    return [
        *outcomes.sent,
        *(i for i, _detail, _address in outcomes.bounced),
        *(i for i, _detail in outcomes.failed),
        *(i for i, _detail in outcomes.skipped),
        *(i for i, _detail, _attempts in outcomes.retry),
        *outcomes.untried,
    ]


async def _send_one(
    send: _Send, client: aiosmtplib.SMTP, row: dict[str, Any], outcomes: Outcomes
) -> None:
    recipient_id = int(row["id"])
    try:
        data = build_message(send, row, utc_now())
        to = mime.ascii_address(row["email"])
    except (mime.AddressNotSendable, ValueError) as exc:
        outcomes.skipped.append((recipient_id, f"address: {exc}"[:300]))
        return
    envelope_from = (
        verp.return_path(send.merchant.id, send.campaign_id, recipient_id) or send.envelope_from
    )
    await rates.wait_for_slot(send.merchant.id)
    if send.lease_over():  # the wait for a slot (or a stop) outlived the claim
        outcomes.untried.append(recipient_id)
        return
    try:
        await send_prepared(client, envelope_from, to, data)
    except (aiosmtplib.SMTPException, OSError) as exc:
        kind, detail = classify(exc)
        if kind == "bounce":
            outcomes.bounced.append((recipient_id, detail, str(row["email_normalized"])))
        elif kind == "policy":
            outcomes.policy = detail
            outcomes.untried.append(recipient_id)
        else:
            outcomes.retry.append((recipient_id, detail, int(row["attempts"])))
        return
    outcomes.sent.append(recipient_id)


# --- recording outcomes ----------------------------------------------------------------------


async def _record(send: _Send, outcomes: Outcomes, report: BatchReport) -> str:
    """Commit one group's outcomes with their quota units; extend the lease on the rest when
    less than half of it is left. Returns the campaign's status as of that commit."""
    settings = get_settings()
    moment = utc_now()
    lease = timedelta(seconds=settings.send_lease_seconds)
    # Rewriting the lease of every recipient still claimed, at every commit, cost the database
    # more than recording the outcomes: a batch of 100 takes a second or two, a lease minutes.
    extend = send.lease_until - moment < lease / 2
    max_attempts = settings.send_max_attempts
    base = settings.send_retry_base_seconds
    given_up = [(i, d) for i, d, attempts in outcomes.retry if attempts >= max_attempts]
    retry = [(i, d, a) for i, d, a in outcomes.retry if a < max_attempts]

    async def attempt() -> tuple[str, dict[str, int]]:
        async with sql.write_transaction():
            counts = {"sent": 0, "bounced": 0, "skipped": 0, "failed": 0, "retried": 0}
            lock = " FOR SHARE" if database.is_postgres() else ""
            status = str((await sql.fetch(q.CAMPAIGN_BY_ID + lock, send.campaign_id))[0]["status"])
            released: list[str] = []
            if outcomes.sent:
                ids = await _resolve(send, outcomes.sent, "sent", moment, "")
                await quota.resolve_in_transaction(
                    send.merchant.id, send.reservation_id, [str(i) for i in ids], "spend", moment
                )
                counts["sent"] = len(ids)
            for recipient_id, detail, address in outcomes.bounced:
                if await _resolve(send, [recipient_id], "bounced", None, detail):
                    released.append(str(recipient_id))
                    counts["bounced"] += 1
                    await suppress(send.merchant.id, address, "bounced")
            for kind, entries in (
                ("skipped", outcomes.skipped),
                ("failed", [*outcomes.failed, *given_up]),
            ):
                for recipient_id, detail in entries:
                    if await _resolve(send, [recipient_id], kind, None, detail):
                        released.append(str(recipient_id))
                        counts[kind] += 1
            if released:
                await quota.resolve_in_transaction(
                    send.merchant.id, send.reservation_id, released, "release", moment
                )
            for recipient_id, detail, attempts in retry:
                wait = min(timedelta(seconds=base * 2 ** max(attempts - 1, 0)), LONGEST_RETRY)
                await sql.fetch(
                    q.requeue(1),
                    moment + wait,
                    detail,
                    0,
                    send.campaign_id,
                    send.owner,
                    recipient_id,
                )
                counts["retried"] += 1
            if outcomes.untried:
                due = moment + timedelta(seconds=base) if retry or not outcomes.policy else None
                await sql.fetch(
                    q.requeue(len(outcomes.untried)),
                    due,
                    "",
                    1,
                    send.campaign_id,
                    send.owner,
                    *outcomes.untried,
                )
            if outcomes.policy and status == "sending":
                await sql.changed(
                    q.move_campaign(("sending",)),
                    "paused",
                    _("The mail server refused the messages: {answer}").format(
                        answer=outcomes.policy
                    )[:300],
                    moment,
                    send.campaign_id,
                    send.merchant.id,
                    "sending",
                )
                status = "paused"
            if extend:
                await sql.execute(q.EXTEND_LEASE, moment + lease, send.campaign_id, send.owner)
            return status, counts

    # Messages already accepted by the relay: waiting out a short database outage to record
    # them is what keeps them from being sent a second time. Recording late is always safe
    # (each row is recorded only while it is still ours), so the wait goes on for one lease
    # past ours: a worker frozen in the middle of its own recording holds the campaign's
    # quota rows, and every other worker waits for it; giving up when the lease ran out
    # dropped their outcomes and their recipients went out twice (fault suite, sigstop).
    status, counts = await sql.until_reachable(
        lambda: sql.with_retries(attempt),
        deadline=send.lease_until + lease,
        what="recording outcomes",
    )
    if extend:
        send.lease_until = moment + lease
    report.sent += counts["sent"]
    report.bounced += counts["bounced"]
    report.skipped += counts["skipped"]
    report.failed += counts["failed"]
    report.retried += counts["retried"] + (len(outcomes.untried) if not outcomes.policy else 0)
    return status


async def _resolve(
    send: _Send, ids: list[int], status: str, moment: datetime | None, detail: str
) -> list[int]:
    rows = await sql.fetch(
        q.resolve(len(ids), status), moment, detail, send.campaign_id, send.owner, *ids
    )
    return [int(r["id"]) for r in rows]


async def _give_back(send: _Send, ids: list[int], status: str) -> None:
    """The campaign stopped: claimed recipients not yet tried go back to the queue (paused)
    or are cancelled (their units go back with the rest of the reservation)."""
    if not ids:
        return

    async def attempt() -> None:
        async with sql.write_transaction():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                if status == "cancelled":
                    await _resolve(send, chunk, "cancelled", None, "")
                else:
                    await sql.fetch(
                        q.requeue(len(chunk)), None, "", 1, send.campaign_id, send.owner, *chunk
                    )

    await sql.with_retries(attempt)
