"""The customers JSON API: status codes, bodies, bad input, and tenant isolation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts import services as accounts
from accounts.schemas import MerchantOut, UserOut
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import customers, purchases
from tests.conftest import login, make_merchant

# Creating customers queues the opt-in e-mail: when a worker runs, it must find an SMTP server.
pytestmark = pytest.mark.usefixtures("smtp")


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_customer_lifecycle_over_the_api(client: Any, api_token: str) -> None:
    h = auth(api_token)
    created = await client.post(
        "/api/customers",
        json={"email": "Nora@Example.no", "first_name": "Nora", "city": "Bergen", "locale": "nb"},
        headers=h,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["email_status"] == "pending"

    patched = await client.patch(f"/api/customers/{cid}", json={"last_name": "Nordmann"}, headers=h)
    assert patched.status_code == 200 and patched.json()["last_name"] == "Nordmann"
    assert patched.json()["city"] == "Bergen"

    bought = await client.post(
        f"/api/customers/{cid}/purchases",
        json={"amount": "49.90", "occurred_at": "2025-04-01T10:00:00Z", "reference": "R-1"},
        headers=h,
    )
    assert bought.status_code == 201 and bought.json()["amount"] == "49.90"
    await client.post(
        f"/api/customers/{cid}/purchases",
        json={"kind": "refund", "amount": "9.90", "occurred_at": "2025-04-02T10:00:00Z"},
        headers=h,
    )
    activity = await client.get(
        f"/api/customers/{cid}/purchases", params={"sort": "amount", "order": "asc"}, headers=h
    )
    assert [p["amount"] for p in activity.json()["items"]] == ["9.90", "49.90"]
    refunds = await client.get(f"/api/customers/{cid}/purchases?kind=refund", headers=h)
    assert refunds.json()["total"] == 1
    insights = (await client.get(f"/api/customers/{cid}/insights", headers=h)).json()
    assert insights["lifetime_value"] == "40.00" and insights["refund_count"] == 1

    found = await client.get("/api/customers", params={"q": "nordm", "per_page": "5"}, headers=h)
    assert found.status_code == 200
    assert [c["id"] for c in found.json()["items"]] == [cid] and found.json()["total"] == 1
    by_city = await client.get("/api/customers?city=bergen&subscribed=true", headers=h)
    assert by_city.json()["total"] == 1

    log = (await client.get(f"/api/customers/{cid}/consent", headers=h)).json()
    assert [e["action"] for e in log] == ["requested"] and log[0]["source"] == "api"

    board = (await client.get("/api/dashboard", headers=h)).json()
    assert board["totals"]["customers"] == 1 and board["totals"]["sales"] == "40.00"
    assert board["latest_purchases"][0]["customer_name"] == "Nora Nordmann"

    erased = await client.delete(f"/api/customers/{cid}", headers=h)
    assert erased.status_code == 204
    gone = await client.get(f"/api/customers/{cid}", headers=h)
    assert gone.status_code == 404 and gone.json()["detail"]


BAD_LIST_QUERIES = [
    "sort=password_hash",
    "evil=1",
    "per_page=0",
    "per_page=501",
    "page=abc",
    "customer_type=vip",
    "created_from=yesterday",
    "country=germany",
]


async def test_bad_list_parameters_are_a_4xx_with_json(client: Any, api_token: str) -> None:
    for query in BAD_LIST_QUERIES:
        response = await client.get(f"/api/customers?{query}", headers=auth(api_token))
        assert 400 <= response.status_code < 500, query
        body = response.json()
        assert body["detail"] and body["fields"], query


async def test_bad_bodies_are_a_4xx_naming_the_problem(client: Any, api_token: str) -> None:
    h = auth(api_token)
    unknown = await client.post(
        "/api/customers", json={"email": "x@example.com", "vip": 1}, headers=h
    )
    assert 400 <= unknown.status_code < 500 and "detail" in unknown.json()
    invalid = await client.post("/api/customers", json={"email": "not an address"}, headers=h)
    assert invalid.status_code == 422 and "email" in invalid.json()["fields"]
    ok = await client.post("/api/customers", json={"email": "once@example.com"}, headers=h)
    dup = await client.post("/api/customers", json={"email": "ONCE@example.com"}, headers=h)
    assert dup.status_code == 409 and "email" in dup.json()["fields"]
    cid = ok.json()["id"]
    usd = await client.post(
        f"/api/customers/{cid}/purchases", json={"amount": "5", "currency": "USD"}, headers=h
    )
    assert usd.status_code == 422 and "EUR" in usd.json()["detail"]
    bad_sort = await client.get(f"/api/customers/{cid}/purchases?sort=secret", headers=h)
    assert 400 <= bad_sort.status_code < 500
    too_big = await client.post(
        "/api/customers",
        content=b'{"email": "' + b"a" * 2_000_000 + b'@example.com"}',
        headers={**h, "content-type": "application/json"},
    )
    assert too_big.status_code == 413
    listed = await client.get("/api/customers", headers=h)
    assert listed.json()["total"] == 1  # nothing half-written by the refused requests


async def test_without_credentials_the_api_answers_401(client: Any) -> None:
    response = await client.get("/api/customers")
    assert response.status_code == 401 and response.json()["detail"]


async def test_another_merchants_ids_answer_404_and_change_nothing(
    client: Any, api_token: str
) -> None:
    shop_b = await make_merchant()
    theirs = await customers.create_customer(
        shop_b.id, CustomerCreate(email="b-only@example.com", first_name="Bea", send_optin=False)
    )
    await purchases.add_purchase(shop_b.id, theirs.id, PurchaseCreate(amount=Decimal(7)))
    h = auth(api_token)
    base = f"/api/customers/{theirs.id}"
    attempts = [
        client.get(base, headers=h),
        client.patch(base, json={"first_name": "Hacked"}, headers=h),
        client.delete(base, headers=h),
        client.post(f"{base}/purchases", json={"amount": "1"}, headers=h),
        client.get(f"{base}/purchases", headers=h),
        client.get(f"{base}/insights", headers=h),
        client.get(f"{base}/consent", headers=h),
        client.post(f"{base}/optin", headers=h),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, response.text
    listed = await client.get("/api/customers?q=b-only", headers=h)
    assert listed.json()["total"] == 0
    unchanged = await customers.get_customer(shop_b.id, theirs.id)
    assert unchanged.first_name == "Bea" and unchanged.purchase_count == 1
    assert unchanged.email_status == "unverified"


async def test_a_marketer_session_needs_csrf_and_is_the_consent_actor(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    refused = await client.post("/api/customers", json={"email": "s@example.com"})
    assert refused.status_code == 403
    created = await client.post(
        "/api/customers", json={"email": "s@example.com"}, headers={"x-csrf-token": csrf}
    )
    assert created.status_code == 201
    log = (await client.get(f"/api/customers/{created.json()['id']}/consent")).json()
    assert log[0]["source"] == "marketer" and log[0]["actor"] == owner.email
    assert (await accounts.get_merchant(merchant.id)).id == merchant.id


async def test_the_schema_documents_the_errors_the_api_answers(client: Any, api_token: str) -> None:
    # Found by the fuzzer: 401, 404, 409, 413 and 422 were answered but not in the schema, so
    # a client generated from it knew only 200 and 400.
    schema = (await client.get("/schema/openapi.json")).json()
    h = auth(api_token)
    answers = {
        ("get", "/api/customers"): await client.get("/api/customers"),
        ("get", "/api/customers/{customer_id}"): await client.get(
            "/api/customers/999999", headers=h
        ),
        ("post", "/api/customers"): await client.post(
            "/api/customers", json={"email": "not an address"}, headers=h
        ),
        ("patch", "/api/customers/{customer_id}"): await client.patch(
            "/api/customers/999999", json={"first_name": "X"}, headers=h
        ),
    }
    for (method, path), answer in answers.items():
        assert answer.status_code in (401, 404, 422), answer.text
        documented = schema["paths"][path][method]["responses"]
        assert str(answer.status_code) in documented, (method, path, answer.status_code)
        body = documented[str(answer.status_code)]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ApiError"}
    twice = {"email": "twice@example.com", "send_optin": False}
    assert (await client.post("/api/customers", json=twice, headers=h)).status_code == 201
    conflict = await client.post("/api/customers", json=twice, headers=h)
    assert conflict.status_code == 409
    assert "409" in schema["paths"]["/api/customers"]["post"]["responses"]
    error = schema["components"]["schemas"]["ApiError"]
    assert set(error["required"]) == {"status_code", "detail"}
    assert set(error["properties"]) == {"status_code", "detail", "fields", "extra"}
