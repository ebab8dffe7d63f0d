"""The suppression list: keyed hashes of addresses that must not come back by themselves.

Only :func:`loyalmail.security.email_hash` of the normalised address is stored, so an erased
customer's address cannot be read back from it, yet a later import or sign-up recognises it.
A fresh, confirmed opt-in (see :func:`customers.services.consent.confirm_optin`) lifts it.

A customer row whose address is on the list carries ``suppressed = TRUE``, set and cleared
here and nowhere else, so target groups leave it out with an index instead of a hash join.
"""

from __future__ import annotations

from customers.tables import Customer, Suppression
from loyalmail.security import email_hash
from loyalmail.sql import is_unique_violation

SuppressionReason = str  # erased | bounced | complaint


async def is_suppressed(merchant_id: int, email_normalized: str) -> bool:
    return await Suppression.exists().where(
        (Suppression.merchant == merchant_id)
        & (Suppression.email_hash == email_hash(email_normalized))
    )


async def suppress(merchant_id: int, email_normalized: str, reason: SuppressionReason) -> None:
    """Idempotent: an address already on the list keeps its first entry (and reason)."""
    await suppress_hash(merchant_id, email_hash(email_normalized), reason)
    await _mark(merchant_id, email_normalized, True)


async def _mark(merchant_id: int, email_normalized: str, suppressed: bool) -> None:
    await Customer.update({Customer.suppressed: suppressed}).where(
        (Customer.merchant == merchant_id) & (Customer.email_normalized == email_normalized)
    )


async def suppress_hash(merchant_id: int, hashed: str, reason: SuppressionReason) -> None:
    if await Suppression.exists().where(
        (Suppression.merchant == merchant_id) & (Suppression.email_hash == hashed)
    ):
        return
    try:
        await Suppression.insert(
            Suppression(merchant=merchant_id, email_hash=hashed, reason=reason)
        )
    except Exception as exc:
        # Two callers raced past the check: the unique index kept one row, which is all we
        # wanted. Anything else is a real error.
        if not is_unique_violation(exc):
            raise


async def lift(merchant_id: int, email_normalized: str) -> None:
    """Remove the entry: only ever called for a fresh, confirmed opt-in of this address."""
    await Suppression.delete().where(
        (Suppression.merchant == merchant_id)
        & (Suppression.email_hash == email_hash(email_normalized))
    )
    await _mark(merchant_id, email_normalized, False)
