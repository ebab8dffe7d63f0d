"""The ledger's operations one by one, on SQLite and PostgreSQL: draw order, all-or-nothing,
idempotency, month ends, refusals with their figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from piccolo.engine.base import Engine

from accounts.schemas import MerchantOut
from accounts.tables import Merchant
from customers.tables import Customer
from loyalmail.errors import Conflict, QuotaExceeded
from quota import services as quota
from quota.services.common import Month
from quota.tables import QuotaEntry, QuotaSource
from tests.conftest import make_merchant

#: A clock inside the merchant's (Europe/Berlin) November 2026.
NOV = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


async def _grant(merchant: MerchantOut, units: int, now: datetime = NOV) -> None:
    month = Month.containing(now, merchant.time_zone)
    await quota.grant_allowance(merchant.id, month, units // 2, counted_at=now)


async def _sources(merchant_id: int) -> dict[str, dict[str, int]]:
    rows = await QuotaSource.select().where(QuotaSource.merchant == merchant_id)
    return {
        f"{r['kind']}:{r['period'] or r['reference']}": {
            k: int(r[k]) for k in ("granted", "reserved", "spent", "expired")
        }
        for r in rows
    }


async def test_reserve_draws_the_allowance_before_packs_and_is_all_or_nothing(
    db: Engine,
) -> None:
    merchant = await make_merchant(time_zone="Europe/Berlin")
    await _grant(merchant, 100)
    await quota.buy_pack(merchant.id, "order-1", now=NOV)
    first = await quota.reserve(merchant.id, 60, key="campaign:1", now=NOV)
    second = await quota.reserve(merchant.id, 80, key="campaign:2", now=NOV)
    sources = await _sources(merchant.id)
    assert sources["allowance:2026-11"]["reserved"] == 100
    assert sources["pack:order-1"]["reserved"] == 40
    assert [units for _, units in first.parts] == [60]
    assert [units for _, units in second.parts] == [40, 40]

    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(merchant.id, 10_000, key="campaign:3", now=NOV)
    figures = refused.value.extra
    assert isinstance(figures, dict)
    assert figures["needed"] == 10_000
    assert figures["available"] == 9_960
    assert figures["short_by"] == 40
    assert figures["packs_needed"] == 1
    assert [s["kind"] for s in figures["sources"]] == ["pack"]
    # Nothing of the refused reservation was written.
    assert await _sources(merchant.id) == sources


async def test_repeats_are_no_ops(db: Engine) -> None:
    merchant = await make_merchant()
    await _grant(merchant, 10)
    reservation = await quota.reserve(merchant.id, 5, key="campaign:7", now=NOV)
    again = await quota.reserve(merchant.id, 5, key="campaign:7", now=NOV)
    assert again.id == reservation.id
    with pytest.raises(Conflict):
        await quota.reserve(merchant.id, 6, key="campaign:7", now=NOV)
    assert await quota.spend(merchant.id, reservation.id, ["r1", "r2"], now=NOV) == 2
    assert await quota.spend(merchant.id, reservation.id, ["r1", "r2", "r3"], now=NOV) == 1
    # A spent recipient cannot be released, and the other way round.
    assert await quota.release(merchant.id, reservation.id, ["r1", "r4"], now=NOV) == 1
    assert await quota.spend(merchant.id, reservation.id, ["r4"], now=NOV) == 0
    assert await quota.release_rest(merchant.id, reservation.id, now=NOV) == 1
    assert await quota.release_rest(merchant.id, reservation.id, now=NOV) == 0
    assert (await _sources(merchant.id))["allowance:2026-11"] == {
        "granted": 10,
        "reserved": 0,
        "spent": 3,
        "expired": 0,
    }
    first = await quota.buy_pack(merchant.id, "psp-42", 2, now=NOV)
    repeat = await quota.buy_pack(merchant.id, "psp-42", 2, now=NOV)
    assert first.created and not repeat.created
    assert (await _sources(merchant.id))["pack:psp-42"]["granted"] == 20_000
    with pytest.raises(Conflict):
        await quota.buy_pack(merchant.id, "psp-42", 3, now=NOV)


async def test_a_reservation_outlives_its_month_but_released_units_expire(db: Engine) -> None:
    merchant = await make_merchant(time_zone="Europe/Berlin")
    await _grant(merchant, 10)
    reservation = await quota.reserve(merchant.id, 8, key="campaign:9", now=NOV)
    # Berlin's December begins at 23:00 UTC on 30 November.
    december = datetime(2026, 11, 30, 23, 0, 1, tzinfo=UTC)
    await quota.expire_sources(december, merchant_id=merchant.id)
    await quota.expire_sources(december, merchant_id=merchant.id)  # the job runs twice
    assert (await _sources(merchant.id))["allowance:2026-11"] == {
        "granted": 10,
        "reserved": 8,
        "spent": 0,
        "expired": 2,
    }
    assert await quota.spend(merchant.id, reservation.id, ["a", "b", "c"], now=december) == 3
    assert await quota.release(merchant.id, reservation.id, ["d"], now=december) == 1
    assert await quota.release_rest(merchant.id, reservation.id, now=december) == 4
    assert (await _sources(merchant.id))["allowance:2026-11"] == {
        "granted": 10,
        "reserved": 0,
        "spent": 3,
        "expired": 7,
    }
    # A December reservation cannot reach November's units.
    with pytest.raises(QuotaExceeded):
        await quota.reserve(merchant.id, 1, key="campaign:10", now=december)


async def test_the_eleventh_test_send_is_refused_with_the_renewal_date(db: Engine) -> None:
    merchant = await make_merchant(time_zone="America/Los_Angeles")
    for n in range(10):
        await quota.reserve(merchant.id, 1, key=f"test:{n}", pool="test", now=NOV)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(merchant.id, 1, key="test:10", pool="test", now=NOV)
    assert isinstance(refused.value.extra, dict)
    assert refused.value.extra["renews_on"] == "2026-12-01"
    assert "2026-12-01" in refused.value.message
    # Test sends never draw on the allowance, nor sends on the test sends.
    await _grant(merchant, 4)
    with pytest.raises(QuotaExceeded):
        await quota.reserve(merchant.id, 5, key="campaign:1", now=NOV)


async def test_monthly_grant_counts_loyal_customers_of_the_previous_month(db: Engine) -> None:
    merchant = await make_merchant(time_zone="Pacific/Kiritimati")
    created = datetime(2026, 9, 1, tzinfo=UTC)
    # The shop signed up before the test's clock: December is not its first month (whose
    # allowance counts the loyal customers of the moment), whatever the real date is.
    await Merchant.update({Merchant.created_at: created}).where(Merchant.id == merchant.id)
    for n, (kind, when) in enumerate(
        [
            ("loyal", created),
            ("loyal", created),
            ("member", created),
            ("loyal", datetime(2026, 11, 20, tzinfo=UTC)),
            # Kiritimati's December had begun: counted for January, not for December.
            ("loyal", datetime(2026, 11, 30, 11, 0, tzinfo=UTC)),
        ]
    ):
        await Customer.insert(
            Customer(
                merchant=merchant.id,
                email=f"c{n}@example.com",
                email_normalized=f"c{n}@example.com",
                customer_type=kind,
                # Addresses their customers confirmed: what the allowance counts.
                email_status="verified",
                confirmed_by_recipient=True,
                created_at=when,
                updated_at=when,
            )
        )
    # Kiritimati is UTC+14: its December begins at 10:00 UTC on 30 November.
    december = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    job = await quota.run_monthly_job(december)
    assert job.merchants >= 1
    await quota.run_monthly_job(december)
    sources = await _sources(merchant.id)
    assert sources["allowance:2026-12"]["granted"] == 2 * 3
    assert sources["test:2026-12"]["granted"] == 10
    grants = await QuotaEntry.count().where(
        (QuotaEntry.merchant == merchant.id) & (QuotaEntry.kind == "grant")
    )
    assert grants == 2
    overview = await quota.overview(merchant.id, december + timedelta(hours=1))
    assert overview.period == "2026-12"
    assert overview.allowance is not None
    assert overview.allowance.expires_on == date(2026, 12, 31)
    assert overview.forecast.allowance == 2 * 4  # all four loyal customers count next month
