"""The customer list through its services: create, read, update, search, filter, sort, stream."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, CustomerQuery, CustomerUpdate, PurchaseCreate
from customers.services import consent, customers, purchases
from customers.tables import Customer
from loyalmail.errors import Conflict, NotFound, ValidationFailed
from tests.conftest import make_merchant

# Some paths queue the opt-in e-mail: when a worker runs, it must find an SMTP server.
pytestmark = pytest.mark.usefixtures("smtp")


def person(email: str, **fields: object) -> CustomerCreate:
    return CustomerCreate(email=email, send_optin=False, **fields)  # type: ignore[arg-type]


async def test_create_and_read_back(merchant: MerchantOut) -> None:
    created = await customers.create_customer(
        merchant.id,
        person(
            "  Ada.Lovelace@Example.COM ",
            first_name="Ada",
            last_name="Lovelace",
            gender="female",
            birth_date=date(1990, 12, 10),
            locale="en",
            country="GB",
            city="London",
            postal_code="N1 9GU",
            customer_type="loyal",
            custom_fields={"shoe_size": 38, "vip": True},
        ),
    )
    assert created.email == "Ada.Lovelace@example.com"  # domain lower-cased, spaces gone
    assert created.email_status == "unverified" and created.subscribed
    assert created.custom_fields == {"shoe_size": 38, "vip": True}
    assert created.lifetime_value == 0 and created.purchase_count == 0
    again = await customers.get_customer(merchant.id, created.id)
    assert again == created


async def test_duplicate_address_differing_only_in_case_is_a_conflict(
    merchant: MerchantOut,
) -> None:
    await customers.create_customer(merchant.id, person("dup@example.com"))
    with pytest.raises(Conflict) as exc:
        await customers.create_customer(merchant.id, person("DUP@Example.com"))
    assert "email" in exc.value.fields
    # Another merchant may have the same address: uniqueness is per merchant.
    other = await make_merchant()
    assert (await customers.create_customer(other.id, person("dup@example.com"))).id


async def test_invalid_values_name_the_field(merchant: MerchantOut) -> None:
    with pytest.raises(ValidationFailed) as bad_email:
        await customers.create_customer(merchant.id, person("not-an-address"))
    assert "email" in bad_email.value.fields
    with pytest.raises(ValidationFailed) as future:
        await customers.create_customer(
            merchant.id, person("f@example.com", birth_date=date.today() + timedelta(days=2))
        )
    assert "birth_date" in future.value.fields
    assert await Customer.count().where(Customer.merchant == merchant.id) == 0


async def test_update_changes_only_given_fields_and_checks_duplicates(
    merchant: MerchantOut,
) -> None:
    a = await customers.create_customer(merchant.id, person("a@example.com", city="Oslo"))
    await customers.create_customer(merchant.id, person("b@example.com"))
    updated = await customers.update_customer(
        merchant.id, a.id, CustomerUpdate(first_name="Anna", birth_date=None)
    )
    assert updated.first_name == "Anna" and updated.city == "Oslo"
    with pytest.raises(Conflict):
        await customers.update_customer(merchant.id, a.id, CustomerUpdate(email="B@example.com"))
    assert (await customers.get_customer(merchant.id, a.id)).email == "a@example.com"


async def test_unsubscribe_and_resubscribe_needs_a_fresh_optin(merchant: MerchantOut) -> None:
    c = await customers.create_customer(merchant.id, person("u@example.com"))
    off = await customers.update_customer(
        merchant.id, c.id, CustomerUpdate(subscribed=False), actor="olga@shop.example"
    )
    assert not off.subscribed and off.unsubscribed_at is not None
    back = await customers.update_customer(merchant.id, c.id, CustomerUpdate(subscribed=True))
    # Never re-subscribed silently: the address waits for its confirmation.
    assert not back.subscribed and back.email_status == "pending"
    log = await consent.list_consent(merchant.id, c.id)
    assert [e.action for e in log] == ["withdrawn", "requested"]
    assert log[0].actor == "olga@shop.example"


async def test_a_new_address_must_be_confirmed_again(merchant: MerchantOut) -> None:
    c = await customers.create_customer(merchant.id, person("old@example.com"))
    await Customer.update({Customer.email_status: "verified"}).where(Customer.id == c.id)
    moved = await customers.update_customer(
        merchant.id, c.id, CustomerUpdate(email="new@example.com")
    )
    assert moved.email == "new@example.com" and moved.email_status == "pending"


async def test_other_merchants_customer_is_not_found(merchant: MerchantOut) -> None:
    other = await make_merchant()
    theirs = await customers.create_customer(other.id, person("theirs@example.com"))
    with pytest.raises(NotFound):
        await customers.get_customer(merchant.id, theirs.id)
    with pytest.raises(NotFound):
        await customers.update_customer(merchant.id, theirs.id, CustomerUpdate(first_name="X"))
    with pytest.raises(NotFound):
        await customers.erase_customer(merchant.id, theirs.id)
    assert (await customers.get_customer(other.id, theirs.id)).first_name == ""


@pytest.fixture
async def crowd(merchant: MerchantOut) -> MerchantOut:
    rows = [
        ("anna@example.com", "Anna", "Berg", "Oslo", "0150", "loyal", "NO"),
        ("bob@example.com", "Bob", "Zimmer", "Berlin", "10115", "member", "DE"),
        ("carl@example.com", "Carl", "Adler", "berlin", "10117", "non_member", "DE"),
        ("dora_x@example.com", "Dora", "Müller", "Paris", "75001", "loyal", "FR"),
        ("eve@example.org", "Eve", "100% Real", "Oslo", "0151", "non_member", "NO"),
    ]
    for email, first, last, city, postal, kind, country in rows:
        await customers.create_customer(
            merchant.id,
            person(
                email,
                first_name=first,
                last_name=last,
                city=city,
                postal_code=postal,
                customer_type=kind,
                country=country,
            ),
        )
    return merchant


async def emails(merchant_id: int, **query: object) -> list[str]:
    page = await customers.list_customers(merchant_id, CustomerQuery(**query))  # type: ignore[arg-type]
    return [c.email for c in page.items]


async def test_search_is_case_insensitive_and_takes_wildcards_literally(
    crowd: MerchantOut,
) -> None:
    assert await emails(crowd.id, q="BERLIN", sort="email", order="asc") == [
        "bob@example.com",
        "carl@example.com",
    ]
    assert await emails(crowd.id, q="zimm") == ["bob@example.com"]
    assert await emails(crowd.id, q="7500") == ["dora_x@example.com"]
    # "_" and "%" are characters here, not LIKE wildcards.
    assert await emails(crowd.id, q="a_x") == ["dora_x@example.com"]
    assert await emails(crowd.id, q="100%") == ["eve@example.org"]
    assert await emails(crowd.id, q="%") == ["eve@example.org"]
    assert await emails(crowd.id, q="'; DROP TABLE customer; --") == []


async def test_filters_combine(crowd: MerchantOut) -> None:
    assert await emails(crowd.id, customer_type="loyal", sort="email", order="asc") == [
        "anna@example.com",
        "dora_x@example.com",
    ]
    assert await emails(crowd.id, country="DE", city="BERLIN", sort="email", order="asc") == [
        "bob@example.com",
        "carl@example.com",
    ]
    assert await emails(crowd.id, postal_code="0151") == ["eve@example.org"]
    assert await emails(crowd.id, email_status="verified") == []
    tomorrow = date.today() + timedelta(days=2)
    assert await emails(crowd.id, created_from=tomorrow) == []
    assert len(await emails(crowd.id, created_to=tomorrow)) == 5


async def test_sorting_and_pagination_with_total(crowd: MerchantOut) -> None:
    first = await customers.list_customers(
        crowd.id, CustomerQuery(sort="last_name", order="asc", per_page=2, page=1)
    )
    second = await customers.list_customers(
        crowd.id, CustomerQuery(sort="last_name", order="asc", per_page=2, page=2)
    )
    assert first.total == second.total == 5
    assert [c.last_name for c in first.items + second.items] == [
        "100% Real",
        "Adler",
        "Berg",
        "Müller",
    ]
    newest_first = await emails(crowd.id)
    assert newest_first[0] == "eve@example.org" and newest_first[-1] == "anna@example.com"


async def test_parse_query_rejects_unknown_and_bad_parameters() -> None:
    parsed = customers.parse_customer_query(
        {"q": "x", "subscribed": "false", "page": "2", "customer_type": "", "sort": "email"}
    )
    assert parsed.subscribed is False and parsed.page == 2 and parsed.customer_type is None
    with pytest.raises(ValidationFailed) as unknown:
        customers.parse_customer_query({"evil": "1"})
    assert "evil" in unknown.value.fields
    with pytest.raises(ValidationFailed) as bad_sort:
        customers.parse_customer_query({"sort": "password_hash"})
    assert "sort" in bad_sort.value.fields
    with pytest.raises(ValidationFailed):
        customers.parse_customer_query({"per_page": "100000"})


async def test_iter_customers_streams_every_row_once_in_order(merchant: MerchantOut) -> None:
    ids = []
    for n in range(14):
        c = await customers.create_customer(
            merchant.id, person(f"s{n:02d}@example.com", last_name=f"Name{n % 4}")
        )
        ids.append(c.id)
        if n % 3 == 0:
            when = datetime(2024, 1, 1 + n % 5, tzinfo=UTC)
            await purchases.add_purchase(
                merchant.id, c.id, PurchaseCreate(amount=Decimal("10"), occurred_at=when)
            )
    for sort in ("last_name", "last_purchase_at", "lifetime_value"):
        for order in ("asc", "desc"):
            query = CustomerQuery(sort=sort, order=order)
            streamed = [c.id async for c in customers.iter_customers(merchant.id, query, 3)]
            listed = await customers.list_customers(
                merchant.id,
                CustomerQuery(sort=sort, order=order, per_page=100),
            )
            assert streamed == [c.id for c in listed.items], (sort, order)
            assert sorted(streamed) == sorted(ids)
    # Customers without purchases come last in both directions.
    tail = [
        c
        async for c in customers.iter_customers(
            merchant.id, CustomerQuery(sort="last_purchase_at", order="asc"), 5
        )
    ]
    assert all(c.last_purchase_at is None for c in tail[5:])
    assert all(c.last_purchase_at is not None for c in tail[:5])
