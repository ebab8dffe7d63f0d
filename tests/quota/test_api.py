"""The quota JSON API for merchants, the operator API, and the ``loyalmail quota`` commands."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from accounts import services as accounts
from accounts.schemas import MerchantOut
from loyalmail.cli import app
from loyalmail.settings import reset_settings_cache
from quota import services as quota
from quota.services.common import Month
from tests.conftest import make_merchant

OPERATOR = "operator-secret-for-tests"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def operator_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LOYALMAIL_OPERATOR_TOKEN", OPERATOR)
    reset_settings_cache()
    yield OPERATOR
    monkeypatch.delenv("LOYALMAIL_OPERATOR_TOKEN")
    reset_settings_cache()


async def _this_month(merchant: MerchantOut, loyal: int) -> None:
    now = datetime.now(UTC)
    month = Month.containing(now, merchant.time_zone)
    await quota.grant_allowance(merchant.id, month, loyal, counted_at=now)


async def test_overview_estimate_and_history(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    await _this_month(merchant, 620)
    await quota.buy_pack(merchant.id, "order-7")
    shown = (await client.get("/api/quota", headers=auth(api_token))).json()
    assert shown["allowance"]["granted"] == 1240
    assert shown["allowance"]["basis_loyal"] == 620
    assert shown["packs_available"] == 10_000
    assert shown["available"] == 11_240
    assert shown["test_sends"]["left"] == 10

    fits = await client.post("/api/quota/estimate", json={"units": 2000}, headers=auth(api_token))
    assert fits.status_code == 200
    body = fits.json()
    assert body["fits"] is True
    assert [(d["kind"], d["units"], d["left_after"]) for d in body["draws"]] == [
        ("allowance", 1240, 0),
        ("pack", 760, 9240),
    ]
    too_big = await client.post(
        "/api/quota/estimate", json={"units": 30_000}, headers=auth(api_token)
    )
    assert too_big.json()["short_by"] == 18_760
    assert too_big.json()["packs_needed"] == 2
    bad = await client.post("/api/quota/estimate", json={"units": -1}, headers=auth(api_token))
    assert bad.status_code == 422

    await quota.reserve(merchant.id, 100, key="campaign:1", purpose="Autumn newsletter")
    history = (await client.get("/api/quota/history", headers=auth(api_token))).json()
    kinds = [e["kind"] for e in history["entries"]]
    # Newest first: the reservation, the test sends granted when the quota was first shown,
    # the pack, the allowance.
    assert kinds == ["reserve", "grant", "purchase", "grant"]
    assert history["entries"][0]["purpose"] == "Autumn newsletter"
    page = (await client.get("/api/quota/history?limit=1", headers=auth(api_token))).json()
    assert len(page["entries"]) == 1
    older = await client.get(
        f"/api/quota/history?limit=50&before={page['next_before']}", headers=auth(api_token)
    )
    assert [e["kind"] for e in older.json()["entries"]] == kinds[1:]


async def test_a_send_that_does_not_fit_is_refused_with_its_figures(merchant: MerchantOut) -> None:
    await _this_month(merchant, 5)
    with pytest.raises(Exception) as refused:
        await quota.reserve(merchant.id, 11, key="campaign:big")
    extra = refused.value.extra  # type: ignore[attr-defined]
    assert (extra["needed"], extra["available"], extra["short_by"]) == (11, 10, 1)
    assert extra["sources"][0]["kind"] == "allowance"
    assert extra["sources"][0]["expires_on"]
    assert "10,000" in extra["how_to_buy"]


async def test_the_operator_api_needs_its_own_token(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    path = f"/api/operator/merchants/{merchant.slug}/quota/packs"
    # Not configured: the operator API does not exist.
    response = await client.post(path, json={"reference": "x"}, headers=auth(api_token))
    assert response.status_code == 404
    assert (await quota.overview(merchant.id)).packs == []


async def test_operator_records_packs_once(
    client: Any, merchant: MerchantOut, api_token: str, operator_token: str
) -> None:
    path = f"/api/operator/merchants/{merchant.slug}/quota/packs"
    # A merchant's own token cannot credit packs.
    mine = await client.post(path, json={"reference": "x"}, headers=auth(api_token))
    assert mine.status_code == 401
    first = await client.post(
        path, json={"reference": "psp-1", "packs": 2}, headers=auth(operator_token)
    )
    assert first.status_code == 201, first.text
    assert first.json()["pack"]["granted"] == 20_000
    again = await client.post(
        path, json={"reference": "psp-1", "packs": 2}, headers=auth(operator_token)
    )
    assert again.status_code == 200
    assert again.json()["created"] is False
    # Found by the fuzzer: the schema documented only the 201 of a new reference.
    schema = (await client.get("/schema/openapi.json")).json()
    answers = schema["paths"]["/api/operator/merchants/{slug}/quota/packs"]["post"]["responses"]
    assert {"200", "201"} <= set(answers)
    assert answers["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PackRecorded"
    }
    other = await client.post(
        path, json={"reference": "psp-1", "packs": 3}, headers=auth(operator_token)
    )
    assert other.status_code == 409
    assert other.json()["fields"] == {"reference": "psp-1"}
    bad = await client.post(path, json={"reference": "", "packs": 0}, headers=auth(operator_token))
    assert bad.status_code == 422
    unknown = await client.post(
        "/api/operator/merchants/no-such-shop/quota/packs",
        json={"reference": "y"},
        headers=auth(operator_token),
    )
    assert unknown.status_code == 404
    shown = await client.get(
        f"/api/operator/merchants/{merchant.slug}/quota", headers=auth(operator_token)
    )
    assert shown.json()["packs_available"] == 20_000
    grant = await client.post("/api/operator/quota/grant", headers=auth(operator_token))
    assert grant.status_code == 200
    assert grant.json()["merchants"] >= 1


async def invoke(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_quota_commands(merchant: MerchantOut) -> None:
    added = await invoke("quota", "add-pack", "--merchant", merchant.slug, "--reference", "inv-9")
    assert added.exit_code == 0, added.output
    assert "Credited 10,000 units" in added.output
    again = await invoke("quota", "add-pack", "--merchant", merchant.slug, "--reference", "inv-9")
    assert "recorded before" in again.output
    shown = await invoke("quota", "show", "--merchant", merchant.slug)
    assert shown.exit_code == 0, shown.output
    assert "10,000 left of 10,000 (reference inv-9" in shown.output
    assert "test sends         10 left of 10" in shown.output
    granted = await invoke("quota", "grant")
    assert granted.exit_code == 0 and "merchants" in granted.output
    unknown = await invoke("quota", "show", "--merchant", "no-such-shop")
    assert unknown.exit_code == 1
    bad = await invoke("quota", "add-pack", "--merchant", merchant.slug, "--reference", "a\nb")
    assert bad.exit_code == 1


async def test_another_merchants_reservation_is_not_found(merchant: MerchantOut) -> None:
    await _this_month(merchant, 10)
    reservation = await quota.reserve(merchant.id, 3, key="campaign:x")
    other = await make_merchant()
    with pytest.raises(Exception) as missing:
        await quota.spend(other.id, reservation.id, ["r1"])
    assert type(missing.value).__name__ == "NotFound"
    assert (await quota.get_reservation(merchant.id, reservation.id)).spent == 0
    assert await accounts.merchant_ids()
