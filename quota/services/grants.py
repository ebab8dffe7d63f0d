"""Where units come from and where they go when their time is over.

* The **monthly allowance** of month M is 2 × the loyal customers that count
  (:mod:`customers.services.loyalty`: confirmed addresses, or every loyal customer when the
  operator decides loyalty) at the end of M − 1, in the merchant's time zone: the count at
  the instant M began, read from the loyalty tally, so a job that runs late, or a type
  changed after M began, does not change it.
* **Getting started**: in the merchant's sign-up month (there is no M − 1) and its first
  full month (M − 1 ended days after a late sign-up, before its customers were imported),
  the allowance grows with the loyal customers that count now: every look at the quota
  tops it up to 2 × that count, in the same ledger, keyed, never shrinking.
* **Test sends**: 10 a month, a separate pot only test sends draw on.
* **Packs** of 10,000 never expire; the same purchase reference credits once.
* **Expiry**: when a month ends, what is left of its allowance and test sends expires. Units
  still reserved stay usable until spent or released; released afterwards, they expire too.

Everything here is safe to run twice: rows are keyed (merchant, kind, period, reference) and
every journal entry by its key. :func:`ensure_current` runs before every reservation and
every look at the quota, so a merchant never waits for the scheduled job to see its month.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from accounts import services as accounts
from accounts.schemas import MerchantOut
from customers.services.loyalty import counted_loyal, fold_tally
from loyalmail.errors import Conflict, _
from quota import queries as q
from quota.schemas import GrantRun, PackRecorded
from quota.services.common import (
    PACK_SIZE,
    TEST_SENDS_PER_MONTH,
    UNITS_PER_LOYAL_CUSTOMER,
    Month,
    Retry,
    as_utc,
    source_out,
    with_retries,
    write_transaction,
)
from quota.tables import QuotaSource


async def _month_sources(merchant_id: int, period: str) -> dict[str, dict[str, Any]]:
    rows = await QuotaSource.select().where(
        (QuotaSource.merchant == merchant_id)
        & (QuotaSource.period == period)
        & QuotaSource.kind.is_in(["allowance", "test"])
    )
    return {row["kind"]: row for row in rows}


async def ensure_current(
    merchant_id: int, now: datetime | None = None, *, merchant: MerchantOut | None = None
) -> GrantRun:
    """Grant this month's allowance and test sends if missing, top up while getting started,
    and expire what is over, for one merchant. Cheap when there is nothing to do (one indexed
    read; two index range sums while getting started). ``merchant``: the caller's copy, so it
    is not read again."""
    moment = as_utc(now)
    merchant = merchant or await accounts.get_merchant(merchant_id)
    month = Month.containing(moment, merchant.time_zone)
    first_month = Month.containing(as_utc(merchant.created_at), merchant.time_zone)
    is_first = first_month.period == month.period
    getting_started = is_first or first_month.next().period == month.period
    existing = await _month_sources(merchant_id, month.period)
    allowance = existing.get("allowance")
    granted = tests = False
    if getting_started:
        loyal = await counted_loyal(merchant_id)
        if not is_first and allowance is None:
            # Never below what the previous month's end alone would have given.
            loyal = max(loyal, await counted_loyal(merchant_id, month.starts_at))
        if allowance is None or UNITS_PER_LOYAL_CUSTOMER * loyal > int(allowance["granted"]):
            changed = await grant_allowance(
                merchant_id, month, loyal, counted_at=moment, top_up=True
            )
            granted = changed and allowance is None
    elif allowance is None:
        loyal = await counted_loyal(merchant_id, month.starts_at)
        granted = await grant_allowance(merchant_id, month, loyal, counted_at=moment)
    if granted:
        # The count at an earlier instant is never asked for again: keep the sums short.
        await fold_tally(merchant_id, month.starts_at)
    if "test" not in existing:
        tests = await grant_test_sends(merchant_id, month, now=moment)
    sources = units = 0
    if await _anything_to_expire(moment, merchant_id):
        sources, units = await _expire(moment, merchant_id)
    return GrantRun(
        merchants=1,
        allowances_granted=int(granted),
        test_sends_granted=int(tests),
        sources_expired=sources,
        units_expired=units,
    )


async def _anything_to_expire(moment: datetime, merchant_id: int) -> bool:
    # A read first: the write transaction (on SQLite the database's one write lock) is taken
    # only when a month actually ended with units left.
    rows = await QuotaSource.raw(
        "SELECT 1 FROM quota_source WHERE merchant = {} AND expires_at <= {}"
        " AND granted - spent - reserved - expired > 0 LIMIT 1",
        merchant_id,
        moment,
    )
    return bool(rows)


async def grant_allowance(
    merchant_id: int,
    month: Month,
    loyal_customers: int,
    *,
    counted_at: datetime,
    top_up: bool = False,
) -> bool:
    """Grant ``month``'s allowance from ``loyal_customers``. Once granted it stays as it is,
    unless ``top_up`` (getting started), where a higher count raises it by the difference,
    one conditional UPDATE on the figure read (two racing top-ups: one wins, the other
    retries and finds nothing to add). True if it changed."""
    units = UNITS_PER_LOYAL_CUSTOMER * max(0, loyal_customers)
    moment = as_utc(counted_at)

    async def attempt() -> bool:
        async with write_transaction():
            source_id = await _new_source(
                merchant_id,
                NewSource("allowance", month.period, "", units, month.starts_at, month.ends_at),
                key=f"grant:allowance:{month.period}",
                note=f"2 × {loyal_customers} loyal customers",
                moment=moment,
                basis_loyal=loyal_customers,
            )
            if source_id is not None:
                return True
            if not top_up:
                return False
            rows = await q.fetch(
                "SELECT id, granted FROM quota_source WHERE merchant = ? AND kind = 'allowance'"
                " AND period = ? AND reference = ''",
                merchant_id,
                month.period,
            )
            source_id, granted = int(rows[0]["id"]), int(rows[0]["granted"])
            if units <= granted:
                return False
            grown = await q.changed(
                q.TOP_UP_SOURCE, units - granted, loyal_customers, moment, source_id, granted
            )
            if not grown:
                raise Retry()  # topped up meanwhile: read the new figure and compare again
            if grown:
                await _journal(
                    merchant_id,
                    "grant",
                    units - granted,
                    source_id,
                    f"grant:allowance:{month.period}:to:{units}",
                    f"getting started: 2 × {loyal_customers} loyal customers",
                    moment,
                    basis_loyal=loyal_customers,
                    top_up=True,
                )
            return grown

    return await with_retries(attempt)


async def grant_test_sends(merchant_id: int, month: Month, *, now: datetime) -> bool:
    moment = as_utc(now)

    async def attempt() -> bool:
        async with write_transaction():
            source = NewSource(
                "test", month.period, "", TEST_SENDS_PER_MONTH, month.starts_at, month.ends_at
            )
            key = f"grant:test:{month.period}"
            return await _new_source(merchant_id, source, key, "test sends", moment) is not None

    return await with_retries(attempt)


async def buy_pack(
    merchant_id: int, reference: str, packs: int = 1, *, now: datetime | None = None
) -> PackRecorded:
    """Credit ``packs`` × 10,000 units that never expire. Recording the same ``reference``
    again credits nothing and returns the first record (a payment provider's retry)."""
    moment = as_utc(now)
    merchant = await accounts.get_merchant(merchant_id)
    units = PACK_SIZE * packs

    async def attempt() -> PackRecorded:
        async with write_transaction():
            source = NewSource("pack", "", reference, units, moment, None)
            note = f"{packs} × {PACK_SIZE}"
            created = await _new_source(
                merchant_id, source, f"purchase:{reference}", note, moment, packs=packs
            )
            rows = await q.fetch(
                "SELECT * FROM quota_source WHERE merchant = ? AND kind = 'pack' AND period = ''"
                " AND reference = ?",
                merchant_id,
                reference,
            )
            pack = source_out(rows[0], merchant.time_zone)
            if created is None and pack.granted != units:
                raise Conflict(
                    _("This purchase reference was recorded before with another amount."),
                    fields={"reference": reference},
                )
            return PackRecorded(pack=pack, created=created is not None)

    return await with_retries(attempt)


async def expire_sources(now: datetime | None = None, *, merchant_id: int | None = None) -> int:
    """Expire what is left of every source whose time is over. Returns the units expired."""
    _sources, units = await _expire(as_utc(now), merchant_id)
    return units


async def _expire(moment: datetime, merchant_id: int | None) -> tuple[int, int]:
    """(sources, units) expired."""
    where = "" if merchant_id is None else "AND merchant = ?"
    args: list[Any] = [moment] + ([] if merchant_id is None else [merchant_id])

    async def attempt() -> tuple[int, int]:
        sources = units = 0
        async with write_transaction():
            sql = q.EXPIRABLE_SOURCES.format(merchant_filter=where)
            for row in await q.fetch(sql, *args):
                available, source_id = int(row["available"]), int(row["id"])
                if not await q.changed(q.EXPIRE_SOURCE, available, source_id, moment, available):
                    continue  # changed since it was read: the next run sees the new figure
                await _journal(
                    int(row["merchant"]),
                    "expire",
                    available,
                    source_id,
                    f"expire:{source_id}:to:{int(row['expired']) + available}",
                    "",
                    moment,
                )
                sources += 1
                units += available
        return sources, units

    return await with_retries(attempt)


async def run_monthly_job(now: datetime | None = None) -> GrantRun:
    """The scheduled job: every merchant's month granted, everything over expired. Safe to
    run any number of times, from any number of processes."""
    moment = as_utc(now)
    runs = [
        await ensure_current(merchant_id, moment) for merchant_id in await accounts.merchant_ids()
    ]
    return GrantRun(
        merchants=len(runs),
        allowances_granted=sum(r.allowances_granted for r in runs),
        test_sends_granted=sum(r.test_sends_granted for r in runs),
        sources_expired=sum(r.sources_expired for r in runs),
        units_expired=sum(r.units_expired for r in runs),
    )


class NewSource(NamedTuple):
    kind: str
    period: str
    reference: str
    units: int
    valid_from: datetime
    expires_at: datetime | None


async def _new_source(
    merchant_id: int,
    source: NewSource,
    key: str,
    note: str,
    moment: datetime,
    basis_loyal: int | None = None,
    packs: int | None = None,
) -> int | None:
    """Insert a source with its grant or purchase entry; None if it existed (nothing written)."""
    inserted = await q.fetch(
        q.INSERT_SOURCE,
        merchant_id,
        source.kind,
        source.period,
        source.reference,
        source.units,
        basis_loyal,
        moment if basis_loyal is not None else None,
        source.valid_from,
        source.expires_at,
        moment,
    )
    if not inserted:
        return None
    source_id = int(inserted[0]["id"])
    kind = "purchase" if source.kind == "pack" else "grant"
    await _journal(
        merchant_id,
        kind,
        source.units,
        source_id,
        key,
        note,
        moment,
        basis_loyal=basis_loyal,
        packs=packs,
    )
    return source_id


async def _journal(
    merchant_id: int,
    kind: str,
    units: int,
    source_id: int,
    key: str,
    note: str,
    moment: datetime,
    *,
    basis_loyal: int | None = None,
    top_up: bool = False,
    packs: int | None = None,
) -> None:
    await q.fetch(
        q.INSERT_SOURCE_ENTRY,
        merchant_id,
        kind,
        units,
        source_id,
        key,
        note,
        basis_loyal,
        top_up,
        packs,
        moment,
    )
