"""Starting a send: now, on a schedule, or by the scheduler tick when its time comes.

The dispatch is one transaction: the campaign moves to ``sending`` (only from draft,
scheduled or overdue, so two clicks or two schedulers start it once), the audience is frozen
into recipient rows with one INSERT … SELECT from the segment's SQL (suppressed,
unsubscribed and unverified addresses are not in it; one row per address), the quota is
reserved for exactly that many, and the rows are cut into batches. Not enough quota, or
nobody to send to: the transaction rolls back and nothing is frozen. After the commit the
batches go to the workers; a batch whose job is lost is handed out again by the reconciler.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from accounts import services as accounts
from campaigns.schemas import ScheduleRequest, SendProgress
from campaigns.sending import queries as q
from campaigns.sending.control import enqueue_batches, move
from campaigns.sending.progress import as_moment, progress
from campaigns.services import links, utm
from campaigns.services.drafts import campaign_row, check_campaign
from campaigns.services.previews import compile_for, saved_content
from loyalmail import database, sql
from loyalmail.errors import Conflict, ValidationFailed, _
from loyalmail.settings import get_settings
from quota import services as quota
from segments import services as segments
from segments.services import AudienceRef
from templates import compiler
from templates.compiler import RenderFailed

log = logging.getLogger("loyalmail.sending")

#: How far ahead a send can be scheduled.
LONGEST_SCHEDULE = timedelta(days=366)
#: A schedule this close to now (or a little in the past, the time it took to click) is "now".
SCHEDULE_SLACK = timedelta(minutes=1)
#: Campaigns one tick starts at most (the next tick takes the rest).
DUE_PER_TICK = 20

STATUS_REFUSALS = {
    "sending": _("This campaign is being sent already."),
    "paused": _("This campaign is being sent already (it is paused)."),
    "sent": _("This campaign has been sent already."),
    "cancelled": _("This campaign was cancelled."),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _ready_to_send(merchant_id: int, campaign_id: int) -> dict[str, object]:
    """The campaign row, or the reasons it cannot go out (422) or is past that (409)."""
    row = await campaign_row(merchant_id, campaign_id)
    if row["status"] in STATUS_REFUSALS:
        raise Conflict(STATUS_REFUSALS[row["status"]], fields={"status": row["status"]})
    check = await check_campaign(merchant_id, campaign_id)
    if not check.ready:
        # A gap in the legal footer is named as such (the scheduler holds the campaign with
        # this reason); ``fields`` lists every problem, the brand's fields by their names.
        legal = any(problem.legal_footer for problem in check.problems)
        first = accounts.LEGAL_FOOTER_INCOMPLETE if legal else check.problems[0].message
        raise ValidationFailed(first, fields={p.field: p.message for p in check.problems})
    found = compiler.problems(saved_content(row))
    if found:
        raise RenderFailed(_("The newsletter cannot be rendered yet."), fields=found)
    return row


def _audience_ref(row: dict[str, object]) -> AudienceRef:
    segment = row.get("audience_segment")
    if row.get("audience_predefined"):
        return AudienceRef(predefined=str(row["audience_predefined"]))  # type: ignore[arg-type]
    return AudienceRef(segment_id=int(str(segment)))


async def freeze(campaign_id: int, merchant_id: int, select: str, params: list[object]) -> int:
    """Freeze the audience (``segments.audience_query``'s SELECT and values) into the
    campaign's recipient rows with one INSERT … SELECT, on the open transaction; how many
    rows it wrote. (benchmarks/segments.py times this and :func:`cut_into_batches`.)"""
    if database.is_postgres():
        await sql.execute(q.FREEZE_SORT_MEMORY)
    return await sql.execute(
        q.freeze_audience(sql.from_piccolo(select)), campaign_id, merchant_id, *params
    )


async def top_recipient() -> int:
    """The highest recipient id before a freeze (on its transaction): see cut_into_batches."""
    rows = await sql.fetch(q.TOP_RECIPIENT)
    return int(rows[0]["top"])


async def cut_into_batches(
    campaign_id: int, after: int, batch_size: int, started: datetime
) -> list[int]:
    """Cut the rows frozen after recipient id ``after`` into id ranges of ``batch_size``, on
    the open transaction; the batches' ids, in order."""
    first = await sql.fetch(q.FIRST_FROZEN, campaign_id, after)
    last = await sql.fetch(q.LAST_FROZEN, campaign_id, after)
    if not first or not last:
        return []
    low, high = int(first[0]["id"]), int(last[0]["id"])
    size = batch_size
    await sql.execute(
        q.insert_batches(database.is_postgres()),
        low,
        size,
        size,
        high,
        campaign_id,
        size,
        high,
        size,
        high,
        started,
    )
    return [int(b["id"]) for b in await sql.fetch(q.BATCHES, campaign_id)]


async def send_now(
    merchant_id: int, campaign_id: int, *, now: datetime | None = None
) -> SendProgress:
    """Freeze the audience, reserve the quota and hand the batches to the workers.

    Raises :class:`QuotaExceeded` (409, with the figures) when the quota does not cover the
    audience, :class:`ValidationFailed` when the campaign is not ready or nobody is left to
    send to, :class:`Conflict` when it is already being sent."""
    await dispatch(merchant_id, campaign_id, now=now or utc_now())
    return await progress(merchant_id, campaign_id)


async def dispatch(
    merchant_id: int, campaign_id: int, *, now: datetime, from_tick: bool = False
) -> bool:
    """:func:`send_now`'s work; False when a tick found the campaign started by another."""
    moment = now
    row = await _ready_to_send(merchant_id, campaign_id)
    merchant = await accounts.get_merchant(merchant_id)
    await quota.ensure_current(merchant_id, moment, merchant=merchant)
    select, params = await segments.audience_query(merchant_id, _audience_ref(row), now=moment)
    # The links the click redirects may lead to, numbered as every language's message has them.
    tracked_links = compile_for(merchant, saved_content(row), merchant.default_locale).links
    if merchant.utm_enabled:
        tracked_links = utm.tag_links(
            tracked_links,
            source=merchant.utm_source,
            campaign=utm.campaign_slug(str(row["name"]), campaign_id),
            website_url=merchant.website_url,
        )
    settings = get_settings()

    async def attempt() -> tuple[int, list[int]] | None:
        async with sql.write_transaction():
            if database.is_postgres():
                # Two schedulers (or two clicks) reach the row one after the other; a
                # scheduler skips a campaign another one is starting right now.
                lock = "SELECT id FROM campaign WHERE id = ? FOR UPDATE"
                if not await sql.fetch(lock + (" SKIP LOCKED" if from_tick else ""), campaign_id):
                    return None
            if not await sql.changed(
                q.START_CAMPAIGN, moment, moment, moment, campaign_id, merchant_id
            ):
                if from_tick:
                    return None
                current = await sql.fetch(q.CAMPAIGN, campaign_id, merchant_id)
                status = current[0]["status"] if current else "sending"
                raise Conflict(STATUS_REFUSALS.get(status, STATUS_REFUSALS["sending"]))
            after = await top_recipient()
            frozen = await freeze(campaign_id, merchant_id, select, params)
            if frozen == 0:
                raise ValidationFailed(
                    _("Nobody in the target group can receive newsletters right now."),
                    fields={"audience": "0"},
                )
            reservation = await quota.reserve_in_transaction(
                merchant_id,
                frozen,
                key=f"campaign:{campaign_id}",
                purpose=str(row["name"]),
                pool="send",
                now=moment,
                time_zone=merchant.time_zone,
            )
            await sql.changed(q.RECORD_DISPATCH, frozen, reservation.id, campaign_id)
            await links.register_links(campaign_id, tracked_links)
            batches = await cut_into_batches(campaign_id, after, settings.send_batch_size, moment)
            return frozen, batches

    started = await sql.with_retries(attempt)
    if started is None:
        return False
    frozen, batches = started
    log.info("campaign %s: %s recipients in %s batches", campaign_id, frozen, len(batches))
    await enqueue_batches(campaign_id, batches)
    return True


# --- schedules -------------------------------------------------------------------------------


def _as_utc(text: str, time_zone: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValidationFailed(
            _("Give the time as 2026-12-01T09:00 (the shop's time zone) or with an offset."),
            fields={"at": "format"},
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(time_zone))
    try:
        return at.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00 in Berlin is in year 0, which datetime lacks
        raise ValidationFailed(
            _("Give the time as 2026-12-01T09:00 (the shop's time zone) or with an offset."),
            fields={"at": "format"},
        ) from None


async def schedule(
    merchant_id: int, campaign_id: int, data: ScheduleRequest, *, now: datetime | None = None
) -> SendProgress:
    """Send at ``data.at`` (in the merchant's time zone when it has no offset); a scheduled
    campaign can be rescheduled the same way. The quota is reserved when it starts."""
    moment = now or utc_now()
    await _ready_to_send(merchant_id, campaign_id)
    merchant = await accounts.get_merchant(merchant_id)
    at = _as_utc(data.at, merchant.time_zone)
    if at < moment - SCHEDULE_SLACK:
        raise ValidationFailed(_("That time has passed."), fields={"at": "past"})
    if at > moment + LONGEST_SCHEDULE:
        raise ValidationFailed(
            _("A campaign can be scheduled at most a year ahead."), fields={"at": "too far"}
        )

    async def attempt() -> bool:
        async with sql.write_transaction():
            return await sql.changed(q.SCHEDULE_CAMPAIGN, at, moment, campaign_id, merchant_id)

    if not await sql.with_retries(attempt):
        raise Conflict(STATUS_REFUSALS["sending"])
    return await progress(merchant_id, campaign_id)


async def unschedule(
    merchant_id: int, campaign_id: int, *, now: datetime | None = None
) -> SendProgress:
    """Back to a draft: the schedule is dropped (nothing was reserved yet)."""
    moment = now or utc_now()
    await campaign_row(merchant_id, campaign_id)  # another merchant's: 404

    async def attempt() -> bool:
        async with sql.write_transaction():
            return await sql.changed(q.UNSCHEDULE_CAMPAIGN, moment, campaign_id, merchant_id)

    if not await sql.with_retries(attempt):
        raise Conflict(_("This campaign is not scheduled."))
    return await progress(merchant_id, campaign_id)


async def start_due_campaigns(now: datetime | None = None) -> list[int]:
    """The scheduler tick: start every scheduled campaign whose time has come. One whose time
    passed longer ago than the grace period (the service was down) becomes ``overdue`` and
    waits for the marketer. Returns the ids started. Safe with any number of schedulers."""
    moment = now or utc_now()
    grace = timedelta(minutes=get_settings().schedule_grace_minutes)
    async with sql.read_transaction():
        due = await sql.fetch(q.DUE_CAMPAIGNS, moment, DUE_PER_TICK)
    started: list[int] = []
    for row in due:
        campaign_id, merchant_id = int(row["id"]), int(row["merchant"])
        scheduled = as_moment(row["scheduled_at"])
        if scheduled is not None and scheduled < moment - grace:
            reason = _(
                "Its time passed while the service was not running: send it now or reschedule."
            )
            await move(merchant_id, campaign_id, "overdue", reason, ("scheduled",), moment)
            continue
        try:
            if await dispatch(merchant_id, campaign_id, now=moment, from_tick=True):
                started.append(campaign_id)
        except (ValidationFailed, Conflict) as exc:
            # Not enough quota, nobody left, a broken sender: it waits with the reason.
            await move(merchant_id, campaign_id, "overdue", exc.message, ("scheduled",), moment)
    return started
