"""Erasure: no row about the customer is left; a keyed hash stays on the suppression list."""

from __future__ import annotations

from decimal import Decimal

import pytest
from piccolo.columns import JSON, JSONB, Text, Varchar

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import consent, customers, purchases
from customers.services.suppression import is_suppressed
from customers.tables import ConsentEvent, Customer, ImportIssue, ImportJob, Purchase, Suppression
from loyalmail import database
from loyalmail.errors import NotFound, Suppressed
from loyalmail.security import email_hash
from tests.conftest import make_merchant

# Some paths queue the opt-in e-mail: when a worker runs, it must find an SMTP server.
pytestmark = pytest.mark.usefixtures("smtp")

ADDRESS = "Quentin.Erasable@Example.org"
FIRST, LAST = "Quentinzz", "Erasablewski"


async def tables_mentioning(needle: str) -> list[str]:
    """Every registered table and text-like column that still contains ``needle``."""
    pattern = f"%{needle.lower()}%"
    hits = []
    for table in database.all_tables():
        names = [
            c._meta.db_column_name
            for c in table._meta.columns
            if isinstance(c, Varchar | Text | JSON | JSONB)
        ]
        if not names:
            continue
        tests = [f'lower(CAST("{name}" AS TEXT)) LIKE {{}}' for name in names]
        # One query per table, then column by column only where it found something.
        sql = f'SELECT COUNT(*) AS n FROM "{table._meta.tablename}" WHERE '  # noqa: S608 (test)
        if not int((await table.raw(sql + " OR ".join(tests), *[pattern] * len(tests)))[0]["n"]):
            continue
        for name, test in zip(names, tests, strict=True):
            if int((await table.raw(sql + test, pattern))[0]["n"]):
                hits.append(f"{table._meta.tablename}.{name}")
    return hits


async def a_full_customer(merchant: MerchantOut) -> int:
    c = await customers.create_customer(
        merchant.id,
        CustomerCreate(
            email=ADDRESS,
            first_name=FIRST,
            last_name=LAST,
            city="Trondheim",
            custom_fields={"note": f"{FIRST} likes tea"},
        ),
        ip="203.0.113.9",
        user_agent="Mozilla/5.0",
    )
    await purchases.add_purchase(merchant.id, c.id, PurchaseCreate(amount=Decimal("12.50")))
    await consent.record_consent(
        merchant.id, c.id, action="confirmed", source="form", email=ADDRESS, ip="203.0.113.9"
    )
    job = await ImportJob.insert(
        ImportJob(merchant=merchant.id, filename="list.csv", file_format="csv", stored_path="")
    ).returning(ImportJob.id)
    await ImportIssue.insert(
        ImportIssue(
            merchant=merchant.id,
            job=job[0]["id"],
            row_number=7,
            email=f" {ADDRESS.upper()} ",
            message="duplicate row",
        )
    )
    return c.id


async def test_erasure_leaves_no_trace_but_the_keyed_hash(merchant: MerchantOut) -> None:
    customer_id = await a_full_customer(merchant)
    for needle in (ADDRESS, FIRST, LAST):
        assert await tables_mentioning(needle), f"the set-up should have stored {needle}"

    await customers.erase_customer(merchant.id, customer_id, actor="olga@shop.example")

    for needle in (ADDRESS, FIRST, LAST):
        assert await tables_mentioning(needle) == [], needle
    assert not await Purchase.exists().where(Purchase.customer == customer_id)
    assert not await ConsentEvent.exists().where(ConsentEvent.customer == customer_id)
    entry = await Suppression.select().where(Suppression.merchant == merchant.id).first()
    assert entry is not None and entry["reason"] == "erased"
    assert entry["email_hash"] == email_hash(ADDRESS.lower()) != ADDRESS.lower()
    with pytest.raises(NotFound):
        await customers.get_customer(merchant.id, customer_id)


async def test_an_erased_address_comes_back_only_with_a_fresh_optin(
    merchant: MerchantOut,
) -> None:
    customer_id = await a_full_customer(merchant)
    await customers.erase_customer(merchant.id, customer_id)
    with pytest.raises(Suppressed) as refused:
        await customers.create_customer(
            merchant.id, CustomerCreate(email=ADDRESS.lower(), send_optin=False)
        )
    assert "email" in refused.value.fields
    assert await Customer.count().where(Customer.merchant == merchant.id) == 0
    back = await customers.create_customer(merchant.id, CustomerCreate(email=ADDRESS))
    assert back.email_status == "pending" and back.purchase_count == 0
    assert await is_suppressed(merchant.id, ADDRESS.lower())
    # The suppression belongs to this merchant only.
    other = await make_merchant()
    assert not await is_suppressed(other.id, ADDRESS.lower())


async def test_erasing_twice_or_another_merchants_customer_is_not_found(
    merchant: MerchantOut,
) -> None:
    customer_id = await a_full_customer(merchant)
    other = await make_merchant()
    with pytest.raises(NotFound):
        await customers.erase_customer(other.id, customer_id)
    assert await Customer.exists().where(Customer.id == customer_id)
    await customers.erase_customer(merchant.id, customer_id)
    with pytest.raises(NotFound):
        await customers.erase_customer(merchant.id, customer_id)
    assert await Suppression.count().where(Suppression.merchant == merchant.id) == 1


async def test_the_foreign_keys_cascade_on_this_engine_too(merchant: MerchantOut) -> None:
    """The service deletes explicitly; the schema's ON DELETE CASCADE is a second net. Check
    the engine really enforces it (SQLite only does with PRAGMA foreign_keys=ON)."""
    customer_id = await a_full_customer(merchant)
    await Customer.delete().where(Customer.id == customer_id)
    assert not await Purchase.exists().where(Purchase.customer == customer_id)
    assert not await ConsentEvent.exists().where(ConsentEvent.customer == customer_id)
