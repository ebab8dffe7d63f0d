"""A number in a route's path past the 32-bit keys (or below zero) names nobody's row: a 404
like any id that is not the caller's, on both engines, never the 500 that PostgreSQL's
refusal of an out-of-range query parameter would become."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.schemas import MerchantOut
from tests.campaigns.test_api import auth

PATHS = [
    "/api/campaigns/{n}",
    "/api/campaigns/{n}/report",
    "/api/campaigns/{n}/progress",
    "/api/customers/{n}",
    "/api/customers/{n}/purchases",
    "/api/segments/{n}/preview",
    "/campaigns/{n}",
    "/customers/{n}",
]


@pytest.mark.parametrize("number", [2**31, 10**11, 2**64])
async def test_an_id_past_the_keys_is_a_404(
    client: Any, merchant: MerchantOut, api_token: str, number: int
) -> None:
    for path in PATHS:
        answer = await client.get(path.format(n=number), headers=auth(api_token))
        assert answer.status_code == 404, (path, answer.text)
        if path.startswith("/api/"):
            assert answer.json() == {"status_code": 404, "detail": "Not found."}


async def test_the_largest_key_is_looked_up_as_usual(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    # In range: the handler runs and answers its own 404 for an id that is not the caller's.
    answer = await client.get(f"/api/campaigns/{2**31 - 1}", headers=auth(api_token))
    assert answer.status_code == 404
    assert answer.json()["detail"] != "Not found."
