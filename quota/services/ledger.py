"""Reserve, spend and release: the operations a send makes on the ledger.

* ``reserve`` takes all the units a campaign needs or none, split across the sources in draw
  order (the soonest expiry first: this month's allowance, then packs, oldest first).
* ``spend`` turns reserved units into spent ones, one per accepted message, keyed by
  recipient: the same recipient twice spends once.
* ``release`` gives back the units of messages that were never accepted (by recipient), and
  ``release_rest`` closes the reservation and gives back whatever it still holds.

A unit is resolved once: spend and release share one key per (reservation, recipient).
Released units whose source's time is over expire instead of becoming available.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from accounts import services as accounts
from loyalmail import database
from loyalmail.errors import Conflict, NotFound, QuotaExceeded, ValidationFailed, _
from quota import queries as q
from quota.schemas import Pool, Refusal, Reservation
from quota.services.common import (
    PACK_SIZE,
    Month,
    Retry,
    as_utc,
    read_transaction,
    source_out,
    with_retries,
    write_transaction,
)
from quota.services.grants import ensure_current

#: Which source kinds each pool draws on.
POOL_KINDS: dict[str, tuple[str, ...]] = {"send": ("allowance", "pack"), "test": ("test",)}
#: Keys per statement when a batch is written or checked.
CHUNK = 500


def _unit_key(reservation_id: int, recipient: str) -> str:
    return f"unit:{reservation_id}:{recipient}"


def _reservation(row: dict[str, Any], parts: list[tuple[int, int]]) -> Reservation:
    return Reservation(
        id=int(row["id"]),
        key=row["key"],
        pool=row["pool"],
        purpose=row["purpose"],
        units=int(row["units"]),
        spent=int(row["spent"]),
        released=int(row["released"]),
        expired=int(row["expired"]),
        created_at=as_utc(row["created_at"]),
        closed_at=as_utc(row["closed_at"]) if row["closed_at"] is not None else None,
        parts=parts,
    )


async def _parts_of(reservation_id: int) -> list[tuple[int, int]]:
    rows = await q.fetch(
        "SELECT source, units FROM quota_reservation_part WHERE reservation = ? ORDER BY position",
        reservation_id,
    )
    return [(int(r["source"]), int(r["units"])) for r in rows]


async def _locked_reservation(merchant_id: int, reservation_id: int) -> dict[str, Any]:
    # Spends and releases of one reservation run one after the other: PostgreSQL locks the
    # row here; SQLite's BEGIN IMMEDIATE already holds the only write lock.
    sql = q.RESERVATION_BY_ID + (" FOR UPDATE" if database.is_postgres() else "")
    rows = await q.fetch(sql, reservation_id, merchant_id)
    if not rows:
        raise NotFound(_("Reservation not found."))
    return rows[0]


# --- reserve -------------------------------------------------------------------------------


async def reserve(
    merchant_id: int,
    units: int,
    *,
    key: str,
    purpose: str = "",
    pool: Pool = "send",
    now: datetime | None = None,
) -> Reservation:
    """All ``units`` or nothing. Reserving again with the same ``key`` returns the first
    reservation and changes nothing. Raises :class:`QuotaExceeded` with the figures."""
    moment = as_utc(now)
    if units < 0:
        raise ValidationFailed(_("A reservation cannot be negative."), fields={"units": "≥ 0"})
    if pool not in POOL_KINDS:
        raise ValidationFailed(_("Unknown quota pool."), fields={"pool": "send or test"})
    if not key or len(key) > 200:
        raise ValidationFailed(_("A reservation needs a key of at most 200 characters."))
    merchant = await accounts.get_merchant(merchant_id)
    await ensure_current(merchant_id, moment, merchant=merchant)

    async def attempt() -> Reservation:
        async with write_transaction():
            return await reserve_in_transaction(
                merchant_id,
                units,
                key=key,
                purpose=purpose,
                pool=pool,
                now=moment,
                time_zone=merchant.time_zone,
            )

    return await with_retries(attempt)


async def reserve_in_transaction(
    merchant_id: int,
    units: int,
    *,
    key: str,
    purpose: str,
    pool: Pool,
    now: datetime,
    time_zone: str,
) -> Reservation:
    """:func:`reserve` inside the caller's open write transaction (the campaign dispatch
    freezes its audience and reserves for it in one). The caller has run ``ensure_current``
    and retries on :class:`Retry`; a refusal raises :class:`QuotaExceeded`."""
    moment = now
    kinds = POOL_KINDS[pool]
    existing = await q.fetch(q.RESERVATION_BY_KEY, merchant_id, key)
    if existing:
        return await _same_reservation(existing[0], units, pool)
    sql = q.DRAWABLE_SOURCES.format(kinds=q.placeholders(len(kinds)))
    if database.is_postgres():
        sql += " FOR UPDATE"
    drawable = await q.fetch(sql, merchant_id, *kinds, moment, moment)
    plan = _plan(drawable, units)
    if plan is None:
        raise await _refusal(merchant_id, time_zone, pool, units, drawable, moment)
    inserted = await q.fetch(
        q.INSERT_RESERVATION, merchant_id, key, pool, purpose[:200], units, moment
    )
    if not inserted:
        raise Retry  # the same key was reserved a moment ago: the next try returns it
    reservation_id = int(inserted[0]["id"])
    for position, (source_id, take) in enumerate(plan):
        if not await q.changed(q.RESERVE_FROM_SOURCE, take, source_id, merchant_id, moment, take):
            raise Retry
        await q.fetch(q.INSERT_PART, reservation_id, source_id, position, take)
        await q.fetch(
            q.INSERT_ENTRY,
            merchant_id,
            "reserve",
            take,
            source_id,
            reservation_id,
            f"reserve:{reservation_id}:{source_id}",
            purpose[:300],
            moment,
        )
    rows = await q.fetch(q.RESERVATION_BY_ID, reservation_id, merchant_id)
    return _reservation(rows[0], plan)


def _plan(drawable: list[dict[str, Any]], units: int) -> list[tuple[int, int]] | None:
    """(source id, units) in draw order, or None when everything together is too little."""
    plan: list[tuple[int, int]] = []
    missing = units
    for row in drawable:
        if missing == 0:
            break
        available = int(row["granted"]) - int(row["spent"]) - int(row["reserved"])
        available -= int(row["expired"])
        take = min(missing, available)
        if take > 0:
            plan.append((int(row["id"]), take))
            missing -= take
    return plan if missing == 0 else None


async def _same_reservation(row: dict[str, Any], units: int, pool: str) -> Reservation:
    if int(row["units"]) != units or row["pool"] != pool:
        raise Conflict(
            _("This reservation key was used before for a different amount."),
            fields={"key": row["key"]},
        )
    return _reservation(row, await _parts_of(int(row["id"])))


async def _refusal(
    merchant_id: int,
    time_zone: str,
    pool: Pool,
    units: int,
    drawable: list[dict[str, Any]],
    moment: datetime,
) -> QuotaExceeded:
    sources = [source_out(row, time_zone) for row in drawable]
    available = sum(s.available for s in sources)
    short = units - available
    if pool == "test":
        renews_on = Month.containing(moment, time_zone).next().first_day
        refusal = Refusal(
            pool=pool,
            needed=units,
            available=available,
            sources=sources,
            short_by=short,
            packs_needed=0,
            pack_size=PACK_SIZE,
            renews_on=renews_on,
            how_to_buy="",
        )
        return QuotaExceeded(
            _("This month's test sends are used up; new ones arrive on {date}.").format(
                date=renews_on.isoformat()
            ),
            extra=msgspec.to_builtins(refusal),
        )
    packs = -(-short // PACK_SIZE)
    refusal = Refusal(
        pool=pool,
        needed=units,
        available=available,
        sources=sources,
        short_by=short,
        packs_needed=packs,
        pack_size=PACK_SIZE,
        how_to_buy=_(
            "Buy packs of 10,000 sends from the quota page; they never expire. Or choose a "
            "smaller target group."
        ),
    )
    return QuotaExceeded(
        _("This send needs {needed} units but only {available} are available.").format(
            needed=units, available=available
        ),
        extra=msgspec.to_builtins(refusal),
    )


# --- spend and release ---------------------------------------------------------------------


async def spend(
    merchant_id: int,
    reservation_id: int,
    recipients: Sequence[str],
    *,
    now: datetime | None = None,
) -> int:
    """One unit per recipient whose message the SMTP server accepted. A recipient already
    spent or released is skipped; returns how many units were newly spent."""
    return await _resolve(merchant_id, reservation_id, recipients, "spend", as_utc(now))


async def release(
    merchant_id: int,
    reservation_id: int,
    recipients: Sequence[str],
    *,
    now: datetime | None = None,
) -> int:
    """Give back the units of recipients whose message was never accepted (hard bounce,
    suppressed at send time). Units whose source's time is over expire instead."""
    return await _resolve(merchant_id, reservation_id, recipients, "release", as_utc(now))


def _recipient_keys(recipients: Sequence[str]) -> list[str]:
    """The recipients once each, in order; a key the journal cannot hold is a 422."""
    wanted = list(dict.fromkeys(str(r) for r in recipients))
    if any(not r or len(r) > 200 for r in wanted):
        raise ValidationFailed(_("A recipient key must have 1 to 200 characters."))
    return wanted


async def _resolve(
    merchant_id: int,
    reservation_id: int,
    recipients: Sequence[str],
    kind: str,
    moment: datetime,
) -> int:
    wanted = _recipient_keys(recipients)
    if not wanted:
        return 0

    async def attempt() -> int:
        async with write_transaction():
            return await resolve_in_transaction(merchant_id, reservation_id, wanted, kind, moment)

    return await with_retries(attempt)


async def resolve_in_transaction(
    merchant_id: int,
    reservation_id: int,
    recipients: Sequence[str],
    kind: str,
    moment: datetime,
) -> int:
    """:func:`spend` (``kind="spend"``) or :func:`release` inside the caller's open write
    transaction, so a send records its outcome and pays for it in one commit. The caller
    retries on :class:`Retry`."""
    wanted = _recipient_keys(recipients)
    if not wanted:
        return 0
    reservation = await _locked_reservation(merchant_id, reservation_id)
    key_list = [_unit_key(reservation_id, r) for r in wanted]
    known = await _known_keys(merchant_id, key_list)
    fresh = [k for k in key_list if k not in known]
    if not fresh:
        return 0
    if reservation["closed_at"] is not None:
        raise Conflict(_("This reservation is closed; its units were given back."))
    parts = await q.fetch(q.OPEN_PARTS, reservation_id)
    if kind == "release":
        # Give back what expires last first: what stays reserved is then what would be
        # lost soonest, and it is the next to be spent.
        parts.reverse()
    if sum(int(p["open_units"]) for p in parts) < len(fresh):
        raise Conflict(_("More units than this reservation holds."))
    await _apply(merchant_id, reservation_id, parts, fresh, kind, moment)
    return len(fresh)


async def _known_keys(merchant_id: int, keys: list[str]) -> set[str]:
    """Which of ``keys`` the journal holds already (in the open transaction)."""
    known: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        sql = q.KNOWN_KEYS.format(keys=q.placeholders(len(chunk)))
        known.update(row["key"] for row in await q.fetch(sql, merchant_id, *chunk))
    return known


async def _apply(
    merchant_id: int,
    reservation_id: int,
    parts: list[dict[str, Any]],
    keys: list[str],
    kind: str,
    moment: datetime,
) -> None:
    """Resolve ``keys`` (one unit each) from ``parts`` in the given order, in one transaction."""
    totals = {"spent": 0, "released": 0, "expired": 0}
    remaining = list(keys)
    for part in parts:
        if not remaining:
            break
        take = min(int(part["open_units"]), len(remaining))
        batch, remaining = remaining[:take], remaining[take:]
        source_id = int(part["source"])
        gone = kind == "release" and _is_over(part["expires_at"], moment)
        if kind == "spend":
            ok = await q.changed(q.SPEND_FROM_PART, take, part["id"], take)
            ok = ok and await q.changed(q.SPEND_FROM_SOURCE, take, take, source_id, take)
            totals["spent"] += take
        else:
            back, lost = (0, take) if gone else (take, 0)
            ok = await q.changed(q.RELEASE_FROM_PART, back, lost, part["id"], back, lost)
            ok = ok and await q.changed(q.RELEASE_TO_SOURCE, take, lost, source_id, take)
            totals["released"] += back
            totals["expired"] += lost
        if not ok:
            raise Retry
        await _journal_units(merchant_id, reservation_id, source_id, batch, kind, moment)
        if gone:
            await _journal_units(
                merchant_id,
                reservation_id,
                source_id,
                [f"expired-{k}" for k in batch],
                "expire",
                moment,
            )
    if not await q.changed(
        q.RESOLVE_RESERVATION,
        totals["spent"],
        totals["released"],
        totals["expired"],
        reservation_id,
        totals["spent"],
        totals["released"],
        totals["expired"],
    ):
        raise Retry


async def _journal_units(
    merchant_id: int,
    reservation_id: int,
    source_id: int,
    keys: list[str],
    kind: str,
    moment: datetime,
) -> None:
    """One journal entry per unit, with its key: the record that makes a repeat a no-op."""
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        sql = q.insert_unit_entries(len(chunk))
        args: list[Any] = []
        for key in chunk:
            args += [merchant_id, kind, source_id, reservation_id, key, moment]
        if len(await q.fetch(sql, *args)) != len(chunk):
            raise Retry  # a concurrent writer recorded one of them first: decide again


def _is_over(expires_at: datetime | None, moment: datetime) -> bool:
    return expires_at is not None and as_utc(expires_at) <= moment


async def release_rest(
    merchant_id: int, reservation_id: int, *, now: datetime | None = None
) -> int:
    """Close the reservation and give back every unit it still holds (the send finished or was
    cancelled). Safe to call again: a closed reservation gives back nothing. Returns the units
    released (including those that expired because their month was over)."""
    moment = as_utc(now)

    async def attempt() -> int:
        async with write_transaction():
            return await release_rest_in_transaction(merchant_id, reservation_id, moment)

    return await with_retries(attempt)


async def release_rest_in_transaction(
    merchant_id: int, reservation_id: int, moment: datetime
) -> int:
    """:func:`release_rest` inside the caller's open write transaction (a campaign is marked
    sent or cancelled in the same commit). The caller retries on :class:`Retry`."""
    reservation = await _locked_reservation(merchant_id, reservation_id)
    if reservation["closed_at"] is not None:
        return 0
    parts = await q.fetch(q.OPEN_PARTS, reservation_id)
    back_total = lost_total = 0
    for part in parts:
        open_units, source_id = int(part["open_units"]), int(part["source"])
        gone = _is_over(part["expires_at"], moment)
        back, lost = (0, open_units) if gone else (open_units, 0)
        ok = await q.changed(q.RELEASE_FROM_PART, back, lost, part["id"], back, lost)
        ok = ok and await q.changed(q.RELEASE_TO_SOURCE, open_units, lost, source_id, open_units)
        if not ok:
            raise Retry
        await _entry("release", open_units, source_id, reservation_id, part, merchant_id, moment)
        if lost:
            await _entry("expire", lost, source_id, reservation_id, part, merchant_id, moment)
        back_total += back
        lost_total += lost
    if not await q.changed(
        q.RESOLVE_RESERVATION,
        0,
        back_total,
        lost_total,
        reservation_id,
        0,
        back_total,
        lost_total,
    ):
        raise Retry
    if not await q.changed(q.CLOSE_RESERVATION, moment, reservation_id):
        raise Retry
    return back_total + lost_total


async def _entry(
    kind: str,
    units: int,
    source_id: int,
    reservation_id: int,
    part: dict[str, Any],
    merchant_id: int,
    moment: datetime,
) -> None:
    await q.fetch(
        q.INSERT_ENTRY,
        merchant_id,
        kind,
        units,
        source_id,
        reservation_id,
        f"{kind}-rest:{reservation_id}:{part['id']}",
        "",
        moment,
    )


async def unresolved(merchant_id: int, reservation_id: int, recipients: Sequence[str]) -> list[str]:
    """Which of ``recipients`` are neither spent nor released yet (a retried job sends only
    to these)."""
    wanted = list(dict.fromkeys(str(r) for r in recipients))
    keys = {_unit_key(reservation_id, r): r for r in wanted}
    async with read_transaction():
        if not await q.fetch(q.RESERVATION_BY_ID, reservation_id, merchant_id):
            raise NotFound(_("Reservation not found."))
        known = await _known_keys(merchant_id, list(keys))
    return [recipient for key, recipient in keys.items() if key not in known]


async def get_reservation(merchant_id: int, reservation_id: int) -> Reservation:
    async with read_transaction():
        rows = await q.fetch(q.RESERVATION_BY_ID, reservation_id, merchant_id)
        if not rows:
            raise NotFound(_("Reservation not found."))
        return _reservation(rows[0], await _parts_of(reservation_id))


async def reservation_by_key(merchant_id: int, key: str) -> Reservation | None:
    async with read_transaction():
        rows = await q.fetch(q.RESERVATION_BY_KEY, merchant_id, key)
        if not rows:
            return None
        return _reservation(rows[0], await _parts_of(int(rows[0]["id"])))
