"""The double opt-in's confirmation link: ``/r/optin/<token>``.

The token is signed (itsdangerous, a key per purpose) but only base64: whatever it carries is
readable. So it carries the merchant's and the customer's ids and a keyed hash of the
normalised address, never the address: it still stops working when the address changes,
and expires after :data:`OPTIN_MAX_AGE_SECONDS`. Tokens mailed before this format (the
address inside, :data:`OPTIN_PURPOSE`) are accepted until they expire.
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec

from accounts import services as accounts
from accounts.schemas import MerchantOut
from customers.tables import Customer
from loyalmail.errors import NotFound, _
from loyalmail.i18n import recipient_locale
from loyalmail.security import keyed_digest, load_signed, signer
from loyalmail.settings import get_settings

#: The confirmation tokens sent before 2026-12 ([merchant, customer, address]): still
#: accepted until they expire.
OPTIN_PURPOSE = "optin"
#: Today's tokens: [merchant, customer, keyed hash of the address].
OPTIN_TOKEN_PURPOSE = "optin.v2"
OPTIN_ADDRESS_PURPOSE = "optin-address"
#: A confirmation link works this long; afterwards the marketer resends.
OPTIN_MAX_AGE_SECONDS = 30 * 24 * 3600


def optin_url(merchant_id: int, customer_id: int, email_normalized: str) -> str:
    """The signed confirmation link. It carries the ids and a keyed hash of the address, never
    the address itself (the token is only base64: anything in it is readable), so it stops
    working when the customer's address changes; it expires after
    :data:`OPTIN_MAX_AGE_SECONDS`."""
    digest = keyed_digest(OPTIN_ADDRESS_PURPOSE, email_normalized)
    token = signer(OPTIN_TOKEN_PURPOSE).dumps([merchant_id, customer_id, digest])
    return f"{get_settings().base_url.rstrip('/')}/r/optin/{token}"


def _claims(purpose: str, token: str, max_age: int | None) -> tuple[int, int, str] | None:
    claims = load_signed(purpose, token, max_age)
    if (
        not isinstance(claims, list)
        or len(claims) != 3
        or not isinstance(claims[0], int)
        or not isinstance(claims[1], int)
        or not isinstance(claims[2], str)
    ):
        return None
    return claims[0], claims[1], claims[2]


class _TokenClaims(msgspec.Struct, frozen=True):
    merchant_id: int
    customer_id: int
    #: The address's keyed hash (a token of today), or the address (one sent before).
    address_key: str
    hashed: bool

    def names(self, email_normalized: str) -> bool:
        if self.hashed:
            digest = keyed_digest(OPTIN_ADDRESS_PURPOSE, email_normalized)
            return hmac.compare_digest(digest, self.address_key)
        return hmac.compare_digest(email_normalized.encode(), self.address_key.encode())


def _token_claims(token: str, max_age: int | None = OPTIN_MAX_AGE_SECONDS) -> _TokenClaims:
    """The token's claims; NotFound when it is not one of ours or has expired. Tokens of the
    old format (the address inside, :data:`OPTIN_PURPOSE`) keep working until they expire."""
    for purpose, hashed in ((OPTIN_TOKEN_PURPOSE, True), (OPTIN_PURPOSE, False)):
        found = _claims(purpose, token, max_age)
        if found is not None:
            return _TokenClaims(*found, hashed=hashed)
    raise NotFound(_("This confirmation link is not valid."))


async def row_for_token(token: str) -> dict[str, Any]:
    claims = _token_claims(token)
    row = (
        await Customer.select()
        .where((Customer.id == claims.customer_id) & (Customer.merchant == claims.merchant_id))
        .first()
    )
    if row is None or not claims.names(row["email_normalized"]):
        raise NotFound(_("This confirmation link is not valid."))
    return row


async def optin_link_owner(token: str) -> tuple[str, MerchantOut] | None:
    """Whom a confirmation link that is not valid (expired, or its address changed) still
    names: the customer's language ("" when the customer is gone) and the shop, for the page
    that says so. None for a token that is not ours: it names nobody."""
    for purpose in (OPTIN_TOKEN_PURPOSE, OPTIN_PURPOSE):
        found = _claims(purpose, token, None)  # an expired link still names them
        if found is not None:
            break
    else:
        return None
    merchant_id, customer_id, _key = found
    try:
        merchant = await accounts.get_merchant(merchant_id)
    except NotFound:
        return None
    row = (
        await Customer.select(Customer.locale)
        .where((Customer.id == customer_id) & (Customer.merchant == merchant_id))
        .first()
    )
    if row is None:
        return "", merchant
    return recipient_locale(str(row["locale"] or ""), merchant.default_locale), merchant
