from __future__ import annotations

import pytest

from accounts import services
from accounts.schemas import Brand, MerchantOut
from loyalmail.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from tests.conftest import make_merchant, make_owner


async def test_login_with_right_password_and_not_with_wrong(merchant: MerchantOut) -> None:
    user = await make_owner(merchant, password="a long enough password")
    assert (await services.authenticate(user.email.upper(), "a long enough password")).id == user.id
    with pytest.raises(AuthenticationFailed):
        await services.authenticate(user.email, "wrong password!")
    with pytest.raises(AuthenticationFailed):
        await services.authenticate("nobody@example.com", "a long enough password")


async def test_session_round_trip_and_logout(merchant: MerchantOut) -> None:
    user = await make_owner(merchant)
    token, principal = await services.start_session(user)
    resolved = await services.resolve_session(token)
    assert resolved is not None and resolved.merchant_id == merchant.id
    assert resolved.csrf_token == principal.csrf_token
    await services.end_session(token)
    assert await services.resolve_session(token) is None


async def test_api_token_is_stored_hashed_and_can_be_revoked(merchant: MerchantOut) -> None:
    from accounts.tables import ApiToken

    created = await services.create_api_token(merchant.id, "shop integration")
    stored = await ApiToken.select(ApiToken.token_hash).where(ApiToken.id == created.id).first()
    assert stored is not None and created.token not in stored["token_hash"]
    principal = await services.resolve_api_token(created.token)
    assert principal is not None and principal.merchant_id == merchant.id
    await services.revoke_api_token(merchant.id, created.id)
    assert await services.resolve_api_token(created.token) is None


async def test_another_merchants_token_cannot_be_revoked(merchant: MerchantOut) -> None:
    other = await make_merchant()
    created = await services.create_api_token(other.id, "theirs")
    with pytest.raises(NotFound):
        await services.revoke_api_token(merchant.id, created.id)
    assert await services.resolve_api_token(created.token) is not None


async def test_duplicate_user_and_short_password_are_refused(merchant: MerchantOut) -> None:
    user = await make_owner(merchant)
    with pytest.raises(Conflict):
        await services.create_user(merchant.id, user.email.upper(), "another long password")
    with pytest.raises(ValidationFailed):
        await services.create_user(merchant.id, "short@example.com", "short")


async def test_brand_update_checks_time_zone(merchant: MerchantOut) -> None:
    brand = Brand(name="Renamed", time_zone="Europe/Oslo", city="Oslo")
    updated = await services.update_brand(merchant.id, brand)
    assert updated.name == "Renamed" and updated.city == "Oslo"
    with pytest.raises(ValidationFailed):
        await services.update_brand(merchant.id, Brand(name="x", time_zone="Mars/Olympus"))
