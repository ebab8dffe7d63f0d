"""What the marketer sees: what is left, what a send would use, and the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounts import services as accounts
from customers.services.loyalty import counted_loyal
from quota.schemas import (
    Draw,
    Forecast,
    HistoryEntry,
    HistoryPage,
    QuotaOverview,
    SendEstimate,
    SourceOut,
    TestSends,
)
from quota.services.common import (
    PACK_SIZE,
    UNITS_PER_LOYAL_CUSTOMER,
    Month,
    as_utc,
    source_out,
)
from quota.services.grants import ensure_current
from quota.tables import QuotaEntry, QuotaReservation, QuotaSource

HISTORY_PAGE = 50


async def _live_sources(merchant_id: int, moment: datetime) -> list[dict[str, Any]]:
    """Sources usable now, in draw order (the soonest expiry first, packs oldest first)."""
    rows = await QuotaSource.select().where(
        (QuotaSource.merchant == merchant_id) & (QuotaSource.valid_from <= moment)
    )
    live = [r for r in rows if r["expires_at"] is None or as_utc(r["expires_at"]) > moment]
    live.sort(
        key=lambda r: (
            r["expires_at"] is None,
            as_utc(r["expires_at"]) if r["expires_at"] is not None else moment,
            as_utc(r["created_at"]),
            r["id"],
        )
    )
    return live


async def overview(merchant_id: int, now: datetime | None = None) -> QuotaOverview:
    moment = as_utc(now)
    merchant = await accounts.get_merchant(merchant_id)
    await ensure_current(merchant_id, moment, merchant=merchant)
    month = Month.containing(moment, merchant.time_zone)
    sources = [source_out(r, merchant.time_zone) for r in await _live_sources(merchant_id, moment)]
    allowance = next((s for s in sources if s.kind == "allowance"), None)
    test = next((s for s in sources if s.kind == "test"), None)
    packs = [s for s in sources if s.kind == "pack"]
    sendable = [s for s in sources if s.kind != "test"]
    loyal_now = await counted_loyal(merchant_id)
    return QuotaOverview(
        period=month.period,
        allowance=allowance,
        packs=packs,
        packs_available=sum(p.available for p in packs),
        test_sends=TestSends(
            granted=test.granted if test else 0,
            used=test.spent if test else 0,
            reserved=test.reserved if test else 0,
            left=test.available if test else 0,
            renews_on=month.next().first_day,
        ),
        available=sum(s.available for s in sendable),
        reserved=sum(s.reserved for s in sendable),
        forecast=Forecast(
            period=month.next().period,
            loyal_customers=loyal_now,
            allowance=UNITS_PER_LOYAL_CUSTOMER * loyal_now,
        ),
        pack_size=PACK_SIZE,
    )


def estimate_from(sources: list[SourceOut], units: int) -> SendEstimate:
    """How a send of ``units`` would be drawn from ``sources`` (draw order), without writing."""
    draws: list[Draw] = []
    missing = units
    for source in sources:
        if source.kind == "test":
            continue
        take = min(missing, source.available)
        if take > 0:
            draws.append(
                Draw(
                    source_id=source.id,
                    kind=source.kind,
                    period=source.period,
                    reference=source.reference,
                    units=take,
                    left_after=source.available - take,
                    expires_on=source.expires_on,
                )
            )
            missing -= take
    available = sum(s.available for s in sources if s.kind != "test")
    return SendEstimate(
        needed=units,
        fits=missing == 0,
        available=available,
        draws=draws if missing == 0 else [],
        short_by=missing,
        packs_needed=-(-missing // PACK_SIZE),
        pack_size=PACK_SIZE,
    )


async def estimate(merchant_id: int, units: int, now: datetime | None = None) -> SendEstimate:
    """What a send of ``units`` would use right now. Advice only: the reservation at dispatch
    decides (the quota may change in between)."""
    moment = as_utc(now)
    merchant = await accounts.get_merchant(merchant_id)
    await ensure_current(merchant_id, moment, merchant=merchant)
    sources = [source_out(r, merchant.time_zone) for r in await _live_sources(merchant_id, moment)]
    return estimate_from(sources, units)


async def history(
    merchant_id: int, *, before: int | None = None, limit: int = HISTORY_PAGE
) -> HistoryPage:
    """Grants, purchases, reservations, releases and expiries, newest first. Spends are one
    journal entry per message; the history shows them per reservation instead (each
    reservation's entry carries how much of it was spent), so the page stays readable."""
    limit = max(1, min(limit, 200))
    where = (QuotaEntry.merchant == merchant_id) & (QuotaEntry.kind != "spend")
    # One release per unit (a bounce) would flood the history just like spends.
    where = where & QuotaEntry.key.not_like("unit:%") & QuotaEntry.key.not_like("expired-unit:%")
    if before is not None:
        where = where & (QuotaEntry.id < before)
    rows = (
        await QuotaEntry.select(
            *QuotaEntry.all_columns(),
            QuotaEntry.source.kind.as_alias("source_kind"),
            QuotaEntry.source.period.as_alias("source_period"),
            QuotaEntry.source.reference.as_alias("source_reference"),
        )
        .where(where)
        .order_by(QuotaEntry.id, ascending=False)
        .limit(limit + 1)
    )
    reservation_ids = {int(r["reservation"]) for r in rows if r["reservation"] is not None}
    reservations = {
        int(r["id"]): r
        for r in (
            await QuotaReservation.select().where(QuotaReservation.id.is_in(list(reservation_ids)))
            if reservation_ids
            else []
        )
    }
    entries = []
    for row in rows[:limit]:
        reservation = reservations.get(int(row["reservation"] or 0))
        note = row["note"]
        spent = released = None
        if row["kind"] == "reserve" and reservation is not None:
            spent, released = int(reservation["spent"]), int(reservation["released"])
            note = f"{spent} spent, {released} given back"
        entries.append(
            HistoryEntry(
                id=int(row["id"]),
                kind=row["kind"],
                units=int(row["units"]),
                created_at=as_utc(row["created_at"]),
                source_kind=row["source_kind"],
                source_period=row["source_period"] or "",
                source_reference=row["source_reference"] or "",
                reservation_id=int(row["reservation"]) if row["reservation"] else None,
                purpose=reservation["purpose"] if reservation is not None else "",
                note=note,
                loyal_customers=row["basis_loyal"],
                first_month=bool(row["top_up"]),
                packs=row["packs"],
                spent=spent,
                released=released,
            )
        )
    next_before = entries[-1].id if len(rows) > limit and entries else None
    return HistoryPage(entries=entries, next_before=next_before)
