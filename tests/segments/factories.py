"""Puts reference customers into the database through the customers app's own services."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import customers, purchases
from customers.tables import Customer
from segments import services
from segments.schemas import Group
from segments.services import AudienceRef
from tests.segments.reference import RefCustomer


async def store(merchant: MerchantOut, people: list[RefCustomer]) -> None:
    """Create each customer (ids are written back) with its purchases; the fields opt-in
    and suppression would set are written directly."""
    for n, person in enumerate(people):
        created = await customers.create_customer(
            merchant.id,
            CustomerCreate(
                email=f"person{n}@example.com",
                gender=person.gender,  # type: ignore[arg-type]
                birth_date=person.birth_date,
                locale=person.locale,
                country=person.country,
                city=person.city,
                postal_code=person.postal_code,
                customer_type=person.customer_type,  # type: ignore[arg-type]
                custom_fields=person.custom_fields,  # type: ignore[arg-type]
                send_optin=False,
            ),
        )
        person.id = created.id
        await Customer.update(
            {
                Customer.email_status: person.email_status,
                Customer.subscribed: person.subscribed,
                Customer.suppressed: person.suppressed,
                Customer.created_at: person.created_at,
                Customer.custom_fields: json.dumps(person.custom_fields),
            }
        ).where(Customer.id == created.id)
        for purchase in person.purchases:
            await purchases.add_purchase(
                merchant.id,
                created.id,
                PurchaseCreate(
                    kind=purchase.kind,  # type: ignore[arg-type]
                    amount=Decimal(purchase.amount_minor) / 100,
                    occurred_at=purchase.occurred_at,
                ),
            )


async def member_ids(merchant: MerchantOut, ref: AudienceRef, now: datetime) -> set[int]:
    """The group's members as the campaign dispatch will freeze them."""
    sql, params = await services.audience_query(merchant.id, ref, now)
    return {int(row["customer_id"]) for row in await Customer.raw(sql, *params)}


async def definition_ids(merchant: MerchantOut, definition: Group, now: datetime) -> set[int]:
    """Members of an unsaved definition: saved as a segment, frozen, counted, deleted."""
    from segments.schemas import SegmentCreate

    saved = await services.create_segment(
        merchant.id, SegmentCreate(name="probe", definition=definition)
    )
    try:
        ids = await member_ids(merchant, AudienceRef(segment_id=saved.id), now)
        count = await services.count_definition(merchant.id, definition, now)
        assert count == len(ids), (count, ids)
        return ids
    finally:
        await services.delete_segment(merchant.id, saved.id)
