"""Dashboard figures and upcoming birthdays (turn of the year, 29 February)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, CustomerType, PurchaseCreate
from customers.services import customers, dashboard, purchases
from customers.tables import Customer


async def add(
    merchant: MerchantOut,
    email: str,
    *,
    birth: date | None = None,
    kind: CustomerType = "non_member",
    spend: tuple[str, ...] = (),
    name: tuple[str, str] = ("", ""),
) -> int:
    c = await customers.create_customer(
        merchant.id,
        CustomerCreate(
            email=email,
            birth_date=birth,
            customer_type=kind,
            first_name=name[0],
            last_name=name[1],
            send_optin=False,
        ),
    )
    for n, amount in enumerate(spend):
        await purchases.add_purchase(
            merchant.id,
            c.id,
            PurchaseCreate(
                amount=Decimal(amount), occurred_at=datetime(2025, 1, 1 + n, 10, tzinfo=UTC)
            ),
        )
    return c.id


async def test_totals_and_lists(merchant: MerchantOut) -> None:
    big = await add(
        merchant, "big@example.com", kind="loyal", spend=("100", "50"), name=("Bo", "Big")
    )
    await add(merchant, "mid@example.com", kind="loyal", spend=("20",))
    await add(merchant, "none@example.com")
    await Customer.update({Customer.email_status: "verified"}).where(Customer.id == big)
    await purchases.add_purchase(
        merchant.id,
        big,
        PurchaseCreate(
            kind="refund", amount=Decimal("30"), occurred_at=datetime(2025, 2, 1, tzinfo=UTC)
        ),
    )

    board = await dashboard.dashboard(merchant.id, today=date(2025, 6, 1))
    totals = board.totals
    assert (totals.customers, totals.loyal, totals.verified) == (3, 2, 1)
    assert totals.sales == Decimal("140.00")  # 100 + 50 − 30 + 20
    assert totals.purchases == 3 and totals.returning_customers == 1
    assert totals.currency == "EUR"
    assert [c.email for c in board.newest] == [
        "none@example.com",
        "mid@example.com",
        "big@example.com",
    ]
    assert [c.email for c in board.top] == ["big@example.com", "mid@example.com"]
    latest = board.latest_purchases
    assert latest[0].purchase.kind == "refund" and latest[0].customer_name == "Bo Big"
    assert latest[-1].customer_email == "big@example.com" and len(latest) == 4
    assert {p.customer_name for p in latest} == {"Bo Big", "mid@example.com"}


async def test_an_empty_shop_has_zero_figures(merchant: MerchantOut) -> None:
    board = await dashboard.dashboard(merchant.id)
    assert board.totals.customers == 0 and board.totals.sales == Decimal(0)
    assert board.newest == board.top == board.latest_purchases == board.upcoming_birthdays == []


async def test_birthdays_across_the_turn_of_the_year(merchant: MerchantOut) -> None:
    await add(merchant, "newyear@example.com", birth=date(1980, 1, 1))
    await add(merchant, "eve@example.com", birth=date(1990, 12, 31))
    await add(merchant, "late@example.com", birth=date(1985, 1, 28))  # 29th day: out
    await add(merchant, "last@example.com", birth=date(1985, 1, 27))  # 28th day: still in
    await add(merchant, "summer@example.com", birth=date(1970, 7, 1))
    upcoming = await dashboard.upcoming_birthdays(merchant.id, today=date(2025, 12, 31))
    assert [(b.customer.email, b.next_birthday, b.turns) for b in upcoming] == [
        ("eve@example.com", date(2025, 12, 31), 35),
        ("newyear@example.com", date(2026, 1, 1), 46),
        ("last@example.com", date(2026, 1, 27), 41),
    ]


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2027, 2, 20), date(2027, 2, 28)),  # common year: celebrated on 28 February
        (date(2028, 2, 20), date(2028, 2, 29)),  # leap year: on the day itself
        (date(2027, 3, 1), None),  # the 28th has passed: not in the next four weeks
    ],
)
async def test_29_february_birthdays(
    merchant: MerchantOut, today: date, expected: date | None
) -> None:
    await add(merchant, "leap@example.com", birth=date(2000, 2, 29))
    await add(merchant, "feb28@example.com", birth=date(2001, 2, 28))
    upcoming = await dashboard.upcoming_birthdays(merchant.id, today=today)
    leap = [b for b in upcoming if b.customer.email == "leap@example.com"]
    if expected is None:
        assert leap == []
    else:
        assert [b.next_birthday for b in leap] == [expected]
        assert [b.customer.email for b in upcoming] == ["feb28@example.com", "leap@example.com"]


async def test_birthday_limit_keeps_the_soonest(merchant: MerchantOut) -> None:
    for day in (20, 3, 11, 7):
        await add(merchant, f"d{day}@example.com", birth=date(1999, 5, day))
    upcoming = await dashboard.upcoming_birthdays(merchant.id, today=date(2025, 5, 1), limit=2)
    assert [b.customer.email for b in upcoming] == ["d3@example.com", "d7@example.com"]


def test_next_birthday_rule() -> None:
    assert dashboard.next_birthday(date(2000, 2, 29), date(2025, 3, 1)) == date(2026, 2, 28)
    assert dashboard.next_birthday(date(2000, 2, 29), date(2027, 3, 1)) == date(2028, 2, 29)
    assert dashboard.next_birthday(date(1990, 6, 1), date(2025, 6, 1)) == date(2025, 6, 1)
    assert "02-29" in dashboard.window_month_days(date(2027, 2, 27), 3)
    assert "02-29" not in dashboard.window_month_days(date(2028, 2, 27), 2)
