"""Purchases, refunds and exchanges of a customer, and the insights derived from them.

Amounts are in the merchant's currency only (another currency is refused: there is no
exchange rate we could honestly apply) and are stored as integer minor units. After every
insert the customer's derived columns are recomputed from the purchases table by SQL in the
same transaction, so they can never drift from the rows they summarise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from piccolo.querystring import QueryString

from accounts import services as accounts
from customers import queries
from customers.schemas import (
    ActivityPage,
    ActivitySort,
    Insights,
    PurchaseCreate,
    PurchaseKind,
    PurchaseOut,
)
from customers.services.customers import (
    currency_exponent,
    customer_row,
    now,
    to_major,
    to_minor,
    transaction,
)
from customers.tables import Customer, Purchase
from loyalmail.errors import NotFound, ValidationFailed, _

#: A purchase dated further ahead than this is a typo, not a sale.
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_AMOUNT = Decimal(100_000_000)


def purchase_out(row: dict[str, Any], exponent: int = 2) -> PurchaseOut:
    return PurchaseOut(
        id=int(row["id"]),
        customer_id=int(row["customer"]),
        kind=row["kind"],
        amount=to_major(row["amount_minor"], exponent),
        currency=row["currency"],
        occurred_at=row["occurred_at"],
        reference=row["reference"],
    )


def _occurred_at(value: datetime | None, time_zone: str) -> datetime:
    if value is None:
        return now()
    if value.tzinfo is None:
        # A till exports local time: read it in the merchant's time zone.
        value = value.replace(tzinfo=ZoneInfo(time_zone or "UTC"))
    value = value.astimezone(UTC)
    if value > now() + MAX_FUTURE or value < EARLIEST:
        raise ValidationFailed(
            _("The purchase date must not lie in the future."),
            fields={"occurred_at": _("out of range")},
        )
    return value


def _amount_minor(kind: PurchaseKind, amount: Decimal, exponent: int) -> int:
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise ValidationFailed(
            _("The amount must be a number up to 100,000,000."),
            fields={"amount": _("out of range")},
        )
    minor = to_minor(amount, exponent)
    if kind != "exchange" and minor <= 0:
        raise ValidationFailed(
            _("The amount of a purchase or refund must be greater than zero."),
            fields={"amount": _("must be greater than zero")},
        )
    return minor


async def add_purchase(merchant_id: int, customer_id: int, data: PurchaseCreate) -> PurchaseOut:
    merchant = await accounts.get_merchant(merchant_id)
    currency = data.currency or merchant.currency
    if currency != merchant.currency:
        raise ValidationFailed(
            _("Amounts must be in the shop's currency ({currency}); {given} is not accepted.")
            .replace("{currency}", merchant.currency)
            .replace("{given}", currency),
            fields={"currency": _("must be {currency}").replace("{currency}", merchant.currency)},
        )
    exponent = currency_exponent(currency)
    amount_minor = _amount_minor(data.kind, data.amount, exponent)
    occurred_at = _occurred_at(data.occurred_at, merchant.time_zone)
    async with transaction():
        # Touching the customer first takes its row lock: concurrent purchases of the same
        # customer queue here, so each recompute below sees every committed purchase.
        locked = (
            await Customer.update({Customer.updated_at: now()})
            .where((Customer.id == customer_id) & (Customer.merchant == merchant_id))
            .returning(Customer.id)
        )
        if not locked:
            raise NotFound(_("Customer not found."))
        rows = await Purchase.insert(
            Purchase(
                merchant=merchant_id,
                customer=customer_id,
                kind=data.kind,
                amount_minor=amount_minor,
                currency=currency,
                occurred_at=occurred_at,
                reference=data.reference,
                created_at=now(),
            )
        ).returning(*Purchase.all_columns())
        await Customer.raw(queries.recompute_derived_sql(), now(), customer_id, merchant_id)
    return purchase_out(rows[0], exponent)


async def get_insights(merchant_id: int, customer_id: int) -> Insights:
    merchant = await accounts.get_merchant(merchant_id)
    row = await customer_row(merchant_id, customer_id)
    exponent = currency_exponent(merchant.currency)
    sums = (await Purchase.raw(queries.PURCHASE_SUMS, customer_id, merchant_id))[0]
    count = int(row["purchase_count"])
    purchase_total = to_major(int(sums["purchase_total"]), exponent)
    average = None
    if count:
        average = (purchase_total / count).quantize(Decimal(1).scaleb(-exponent))
    return Insights(
        customer_id=customer_id,
        currency=merchant.currency,
        lifetime_value=to_major(row["lifetime_value_minor"], exponent),
        purchase_count=count,
        refund_count=int(row["refund_count"]),
        refund_total=to_major(int(sums["refund_total"]), exponent),
        average_purchase=average,
        first_purchase_at=row["first_purchase_at"],
        last_purchase_at=row["last_purchase_at"],
    )


async def list_activity(
    merchant_id: int,
    customer_id: int,
    *,
    kind: PurchaseKind | None = None,
    sort: ActivitySort = "occurred_at",
    order: Literal["asc", "desc"] = "desc",
    page: int = 1,
    per_page: int = 50,
) -> ActivityPage:
    """The customer's purchases, refunds and exchanges, sorted by kind, date or amount."""
    if sort not in queries.ACTIVITY_SORT_COLUMNS or order not in ("asc", "desc"):
        raise ValidationFailed(_("Unknown sort order."), fields={"sort": sort})
    if not 1 <= page <= 100_000 or not 1 <= per_page <= 500:
        raise ValidationFailed(_("Page out of range."), fields={"page": str(page)})
    merchant = await accounts.get_merchant(merchant_id)
    await customer_row(merchant_id, customer_id)
    condition = (Purchase.customer == customer_id) & (Purchase.merchant == merchant_id)
    if kind is not None:
        condition = condition & (Purchase.kind == kind)
    column = queries.ACTIVITY_SORT_COLUMNS[sort]
    # Ties (same kind, same amount) fall back to the newest first, then the id: stable pages.
    rows = (
        await Purchase.select()
        .where(condition)
        .order_by(QueryString(column), ascending=order == "asc")
        .order_by(Purchase.occurred_at, Purchase.id, ascending=False)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    total = await Purchase.count().where(condition)
    exponent = currency_exponent(merchant.currency)
    return ActivityPage(
        items=[purchase_out(row, exponent) for row in rows],
        total=int(total),
        page=page,
        per_page=per_page,
    )
