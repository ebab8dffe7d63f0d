"""Purchases, refunds and exchanges: the insights and activity history derived from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, CustomerOut, PurchaseCreate, PurchaseKind
from customers.services import customers, purchases
from customers.tables import Customer, Purchase
from loyalmail.errors import NotFound, ValidationFailed
from tests.conftest import make_merchant


@pytest.fixture
async def buyer(merchant: MerchantOut) -> CustomerOut:
    return await customers.create_customer(
        merchant.id, CustomerCreate(email="buyer@example.com", send_optin=False)
    )


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


async def test_insights_follow_purchases_refunds_and_exchanges(
    merchant: MerchantOut, buyer: CustomerOut
) -> None:
    add = purchases.add_purchase
    await add(merchant.id, buyer.id, PurchaseCreate(amount=Decimal("19.90"), occurred_at=at(3)))
    await add(merchant.id, buyer.id, PurchaseCreate(amount=Decimal("100"), occurred_at=at(1)))
    await add(
        merchant.id,
        buyer.id,
        PurchaseCreate(kind="refund", amount=Decimal("9.90"), occurred_at=at(4)),
    )
    await add(
        merchant.id,
        buyer.id,
        PurchaseCreate(kind="exchange", amount=Decimal("-5.00"), occurred_at=at(5)),
    )
    insights = await purchases.get_insights(merchant.id, buyer.id)
    assert insights.lifetime_value == Decimal("105.00")  # 19.90 + 100 − 9.90 − 5
    assert insights.purchase_count == 2 and insights.refund_count == 1
    assert insights.refund_total == Decimal("9.90")
    assert insights.average_purchase == Decimal("59.95")
    assert insights.first_purchase_at == at(1) and insights.last_purchase_at == at(3)
    assert insights.currency == "EUR"
    # The list's derived columns say the same (they are what lists sort on).
    row = await customers.get_customer(merchant.id, buyer.id)
    assert (row.lifetime_value, row.purchase_count, row.refund_count) == (Decimal("105.00"), 2, 1)


async def test_derived_columns_equal_a_recount_from_the_purchases_table(
    merchant: MerchantOut, buyer: CustomerOut
) -> None:
    for n in range(6):
        kind: PurchaseKind = "refund" if n == 4 else "purchase"
        await purchases.add_purchase(
            merchant.id,
            buyer.id,
            PurchaseCreate(kind=kind, amount=Decimal(n + 1), occurred_at=at(n + 1)),
        )
    stored = await Customer.select().where(Customer.id == buyer.id).first()
    rows = await Purchase.select().where(Purchase.customer == buyer.id)
    assert stored is not None
    expected = sum(-r["amount_minor"] if r["kind"] == "refund" else r["amount_minor"] for r in rows)
    assert stored["lifetime_value_minor"] == expected == (1 + 2 + 3 + 4 - 5 + 6) * 100
    assert stored["purchase_count"] == 5 and stored["refund_count"] == 1


async def test_activity_sorts_by_kind_date_and_amount_with_pages(
    merchant: MerchantOut, buyer: CustomerOut
) -> None:
    plan: list[tuple[PurchaseKind, str, int]] = [
        ("purchase", "30", 2),
        ("refund", "5", 3),
        ("purchase", "12.5", 1),
        ("exchange", "7", 4),
    ]
    for kind, amount, day in plan:
        await purchases.add_purchase(
            merchant.id,
            buyer.id,
            PurchaseCreate(kind=kind, amount=Decimal(amount), occurred_at=at(day)),
        )
    by_date = await purchases.list_activity(merchant.id, buyer.id)
    assert [p.occurred_at.day for p in by_date.items] == [4, 3, 2, 1] and by_date.total == 4
    by_amount = await purchases.list_activity(merchant.id, buyer.id, sort="amount", order="asc")
    assert [p.amount for p in by_amount.items] == [Decimal(a) for a in ("5", "7", "12.5", "30")]
    by_kind = await purchases.list_activity(merchant.id, buyer.id, sort="kind", order="asc")
    assert [p.kind for p in by_kind.items] == ["exchange", "purchase", "purchase", "refund"]
    only_purchases = await purchases.list_activity(merchant.id, buyer.id, kind="purchase")
    assert only_purchases.total == 2
    page2 = await purchases.list_activity(merchant.id, buyer.id, per_page=3, page=2)
    assert len(page2.items) == 1 and page2.items[0].occurred_at.day == 1


async def test_another_currency_is_refused_with_a_clear_message(
    merchant: MerchantOut, buyer: CustomerOut
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await purchases.add_purchase(
            merchant.id, buyer.id, PurchaseCreate(amount=Decimal("10"), currency="USD")
        )
    assert "EUR" in exc.value.message and "USD" in exc.value.message
    assert "currency" in exc.value.fields
    assert await Purchase.count().where(Purchase.customer == buyer.id) == 0


BAD_PURCHASES = [
    (PurchaseCreate(amount=Decimal("1.234")), "amount"),
    (PurchaseCreate(amount=Decimal("0")), "amount"),
    (PurchaseCreate(kind="refund", amount=Decimal("-3")), "amount"),
    (PurchaseCreate(amount=Decimal("NaN")), "amount"),
    (PurchaseCreate(amount=Decimal("1e12")), "amount"),
    (
        PurchaseCreate(amount=Decimal("1"), occurred_at=datetime.now(UTC) + timedelta(days=9)),
        "occurred_at",
    ),
]


async def test_bad_purchases_are_refused_and_nothing_is_written(
    merchant: MerchantOut, buyer: CustomerOut
) -> None:
    for data, field in BAD_PURCHASES:
        with pytest.raises(ValidationFailed) as exc:
            await purchases.add_purchase(merchant.id, buyer.id, data)
        assert field in exc.value.fields, data
    assert await Purchase.count().where(Purchase.customer == buyer.id) == 0


async def test_currency_without_minor_units_and_local_times(db: object) -> None:
    shop = await make_merchant(currency="JPY", time_zone="Asia/Tokyo")
    c = await customers.create_customer(
        shop.id, CustomerCreate(email="yen@example.com", send_optin=False)
    )
    bought = await purchases.add_purchase(
        shop.id,
        c.id,
        # A naive time is the shop's local time: 09:00 in Tokyo is 00:00 UTC.
        PurchaseCreate(amount=Decimal("1500"), occurred_at=datetime(2025, 5, 1, 9, 0)),
    )
    assert bought.amount == Decimal("1500") and bought.currency == "JPY"
    assert bought.occurred_at == datetime(2025, 5, 1, 0, 0, tzinfo=UTC)
    stored = await Purchase.select(Purchase.amount_minor).where(Purchase.id == bought.id).first()
    assert stored == {"amount_minor": 1500}
    with pytest.raises(ValidationFailed):
        await purchases.add_purchase(shop.id, c.id, PurchaseCreate(amount=Decimal("1.5")))


async def test_purchases_of_another_merchants_customer_are_not_found(
    merchant: MerchantOut, buyer: CustomerOut
) -> None:
    other = await make_merchant()
    with pytest.raises(NotFound):
        await purchases.add_purchase(other.id, buyer.id, PurchaseCreate(amount=Decimal("1")))
    with pytest.raises(NotFound):
        await purchases.get_insights(other.id, buyer.id)
    with pytest.raises(NotFound):
        await purchases.list_activity(other.id, buyer.id)
    assert await Purchase.count().where(Purchase.customer == buyer.id) == 0
