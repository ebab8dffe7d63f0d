"""Erasure reaches the campaigns' rows: a customer's frozen recipient rows keep nothing
about them (no customer id, no address) and the bounces reported for them lose the address.
The counts of a sent campaign stay right: the rows themselves remain, with their status."""

from __future__ import annotations

from customers.services.erasure_steps import ErasedCustomer, on_erasure
from loyalmail import sql

#: (campaign, customer) is the recipient table's unique index: one probe per campaign of
#: the merchant, and no index on the customer alone for the freeze to maintain.
FORGET_RECIPIENTS = """
UPDATE campaign_recipient SET customer = NULL, email = '', email_normalized = '',
       detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
WHERE campaign IN (SELECT id FROM campaign WHERE merchant = ?) AND customer = ?
"""

#: Bounces keep the address they were reported for: those of the customer's rows (before
#: the rows forget whose they are) and any unmatched one for the current address.
FORGET_BOUNCES = """
UPDATE campaign_bounce SET email_normalized = ''
WHERE merchant = ? AND (email_normalized = ? OR recipient IN (
    SELECT id FROM campaign_recipient
    WHERE campaign IN (SELECT id FROM campaign WHERE merchant = ?) AND customer = ?))
"""


async def forget_customer(erased: ErasedCustomer) -> None:
    merchant_id, customer_id = erased.merchant_id, erased.customer_id
    await sql.execute(
        FORGET_BOUNCES, merchant_id, erased.email_normalized, merchant_id, customer_id
    )
    await sql.execute(FORGET_RECIPIENTS, merchant_id, customer_id)


def register() -> None:
    on_erasure("campaigns", forget_customer)
