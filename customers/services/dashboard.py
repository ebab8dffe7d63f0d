"""The dashboard's figures, each computed by the database (aggregates, ORDER BY … LIMIT).

Nothing here loads the merchant's customers into Python: totals are one aggregate query,
lists are limited queries, birthdays are filtered by SQL on month and day.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from accounts import services as accounts
from customers import queries
from customers.schemas import BirthdayOut, Dashboard, DashboardTotals, LatestPurchase
from customers.services.customers import (
    currency_exponent,
    customer_out,
    to_major,
)
from customers.services.purchases import purchase_out
from customers.tables import Customer, Purchase

LIST_SIZE = 10


def merchant_today(time_zone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(time_zone or "UTC")).date()


async def dashboard(merchant_id: int, today: date | None = None) -> Dashboard:
    """Totals, newest and top customers, latest purchases, upcoming birthdays. ``today`` is
    the merchant's day (its time zone) unless given."""
    merchant = await accounts.get_merchant(merchant_id)
    today = today or merchant_today(merchant.time_zone)
    exponent = currency_exponent(merchant.currency)
    figures = (await Customer.raw(queries.DASHBOARD_TOTALS, merchant_id))[0]
    totals = DashboardTotals(
        customers=int(figures["customers"]),
        loyal=int(figures["loyal"]),
        verified=int(figures["verified"]),
        sales=to_major(int(figures["sales_minor"]), exponent),
        purchases=int(figures["purchases"]),
        returning_customers=int(figures["returning_customers"]),
        currency=merchant.currency,
    )
    newest = (
        await Customer.select()
        .where(Customer.merchant == merchant_id)
        .order_by(Customer.created_at, Customer.id, ascending=False)
        .limit(LIST_SIZE)
    )
    top = (
        await Customer.select()
        .where((Customer.merchant == merchant_id) & (Customer.lifetime_value_minor > 0))
        .order_by(Customer.lifetime_value_minor, Customer.id, ascending=False)
        .limit(LIST_SIZE)
    )
    latest = (
        await Purchase.select(
            *Purchase.all_columns(),
            Purchase.customer.email.as_alias("customer_email"),
            Purchase.customer.first_name.as_alias("customer_first_name"),
            Purchase.customer.last_name.as_alias("customer_last_name"),
        )
        .where(Purchase.merchant == merchant_id)
        .order_by(Purchase.occurred_at, Purchase.id, ascending=False)
        .limit(LIST_SIZE)
    )
    return Dashboard(
        totals=totals,
        newest=[customer_out(row, exponent=exponent) for row in newest],
        top=[customer_out(row, exponent=exponent) for row in top],
        latest_purchases=[
            LatestPurchase(
                purchase=purchase_out(row, exponent),
                customer_email=row["customer_email"],
                customer_name=" ".join(
                    part for part in (row["customer_first_name"], row["customer_last_name"]) if part
                )
                or row["customer_email"],
            )
            for row in latest
        ],
        upcoming_birthdays=await upcoming_birthdays(merchant_id, today=today),
    )


def next_birthday(birth_date: date, today: date) -> date:
    """The next celebration on or after ``today``. Rule for 29 February: in years without
    one, the birthday is celebrated on 28 February."""
    for year in (today.year, today.year + 1):
        if birth_date.month == 2 and birth_date.day == 29 and not calendar.isleap(year):
            candidate = date(year, 2, 28)
        else:
            candidate = birth_date.replace(year=year)
        if candidate >= today:
            return candidate
    raise AssertionError("unreachable: next year's birthday is always after today")


def window_month_days(today: date, days: int) -> list[str]:
    """'MM-DD' of every day from today to today + days − 1, plus '02-29' when 28 February of
    a common year is in the window (those birthdays are celebrated then)."""
    month_days: list[str] = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        month_days.append(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            month_days.append("02-29")
    return month_days


async def upcoming_birthdays(
    merchant_id: int, days: int = 28, today: date | None = None, limit: int = 20
) -> list[BirthdayOut]:
    """Birthdays from ``today`` (the merchant's day) through the next ``days`` − 1 days, in
    calendar order across the turn of the year (a window from 20 December lists late December
    first, then January). Born on 29 February: celebrated on 28 February in common years."""
    merchant = await accounts.get_merchant(merchant_id)
    today = today or merchant_today(merchant.time_zone)
    days = max(1, min(days, 366))
    month_days = window_month_days(today, days)
    sql, params = queries.birthdays_in_window(month_days, today.strftime("%m-%d"))
    ids = [int(r["id"]) for r in await Customer.raw(sql, merchant_id, *params, max(1, limit))]
    if not ids:
        return []
    rows = {
        int(row["id"]): row
        for row in await Customer.select().where(
            (Customer.merchant == merchant_id) & Customer.id.is_in(ids)
        )
    }
    exponent = currency_exponent(merchant.currency)
    result: list[BirthdayOut] = []
    for customer_id in ids:
        row = rows.get(customer_id)
        if row is None:  # erased between the two queries
            continue
        upcoming = next_birthday(row["birth_date"], today)
        result.append(
            BirthdayOut(
                customer=customer_out(row, exponent=exponent),
                next_birthday=upcoming,
                turns=upcoming.year - row["birth_date"].year,
            )
        )
    # SQL ordered by month-day; a 29 February birthday celebrated on the 28th sorts with it.
    result.sort(key=lambda b: b.next_birthday)
    return result
