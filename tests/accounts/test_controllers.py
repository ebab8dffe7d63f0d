from __future__ import annotations

from typing import Any

from accounts.schemas import MerchantOut, UserOut
from tests.conftest import login, login_form_token, make_merchant


async def test_api_without_credentials_answers_401_json(client: Any) -> None:
    api = await client.get("/api/merchant")
    assert api.status_code == 401 and api.json()["detail"]


async def test_wrong_password_shows_a_readable_message(client: Any, owner: UserOut) -> None:
    form = {"email": owner.email, "password": "nope nope", "_csrf": await login_form_token(client)}
    response = await client.post("/login", data=form)
    assert response.status_code == 400
    assert "Wrong e-mail address or password" in response.text


async def test_login_then_unsafe_request_needs_csrf(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    body = {"name": "New name", "time_zone": "Europe/Paris"}
    refused = await client.put("/api/merchant", json=body)
    assert refused.status_code == 403
    assert (await client.get("/api/merchant")).json()["name"] == merchant.name
    accepted = await client.put("/api/merchant", json=body, headers={"x-csrf-token": csrf})
    assert accepted.status_code == 200 and accepted.json()["name"] == "New name"


async def test_bearer_token_sees_only_its_merchant(client: Any, api_token: str) -> None:
    other = await make_merchant(name="Other Shop")
    headers = {"authorization": f"Bearer {api_token}"}
    me = (await client.get("/api/merchant", headers=headers)).json()
    assert me["name"] != other.name
    bad = await client.get("/api/merchant", headers={"authorization": "Bearer lm_forged"})
    assert bad.status_code == 401


async def test_unknown_fields_and_bad_values_are_422_or_400_with_json(
    client: Any, api_token: str
) -> None:
    headers = {"authorization": f"Bearer {api_token}"}
    unknown = await client.put("/api/merchant", json={"name": "x", "evil": 1}, headers=headers)
    assert 400 <= unknown.status_code < 500 and "detail" in unknown.json()
    zone = await client.put(
        "/api/merchant", json={"name": "x", "time_zone": "Nowhere/Land"}, headers=headers
    )
    assert zone.status_code == 422 and "time_zone" in zone.json()["fields"]


async def test_a_value_of_the_wrong_json_type_is_422_not_converted(
    client: Any, api_token: str
) -> None:
    # Found by the fuzzer: Litestar converted bodies leniently, so ``0`` or ``"no"`` for a
    # boolean and ``"5"`` for a number were accepted although the schema says otherwise.
    headers = {"authorization": f"Bearer {api_token}"}
    brand = (await client.get("/api/merchant", headers=headers)).json()
    for key in ("id", "slug", "created_at"):
        brand.pop(key)
    for wrong in (0, "no", "false", None):
        answer = await client.put(
            "/api/merchant", json={**brand, "utm_enabled": wrong}, headers=headers
        )
        assert answer.status_code == 422, (wrong, answer.text)
        assert list(answer.json()["fields"]) == ["$.utm_enabled"]
    unchanged = (await client.get("/api/merchant", headers=headers)).json()
    assert unchanged["utm_enabled"] is brand["utm_enabled"]
    flipped = not brand["utm_enabled"]
    changed = await client.put(
        "/api/merchant", json={**brand, "utm_enabled": flipped}, headers=headers
    )
    assert changed.status_code == 200 and changed.json()["utm_enabled"] is flipped
    token = await client.post("/api/tokens", json={"name": 5}, headers=headers)
    assert token.status_code == 422 and list(token.json()["fields"]) == ["$.name"]


async def test_open_redirect_after_login_is_refused(client: Any, owner: UserOut) -> None:
    response = await client.post(
        "/login",
        data={
            "email": owner.email,
            "password": "correct horse battery",
            "next": "//evil.example/",
            "_csrf": await login_form_token(client),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


async def test_health_reports_each_part(client: Any) -> None:
    response = await client.get("/health")
    body = response.json()
    assert set(body) >= {"status", "database", "broker", "mail"}
    assert body["database"]["ok"] is True


async def test_a_10_mb_body_is_refused_with_413_json(client: Any, api_token: str) -> None:
    headers = {"authorization": f"Bearer {api_token}", "content-type": "application/json"}
    huge = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = await client.put("/api/merchant", content=huge, headers=headers)
    assert response.status_code == 413 and "detail" in response.json()
    assert (await client.get("/api/merchant", headers=headers)).json()["name"] != "x"


async def test_staff_may_read_but_not_change_the_brand(client: Any, merchant: MerchantOut) -> None:
    from accounts.services import create_user

    staff = await create_user(
        merchant.id, f"staff-{merchant.slug}@example.com", "staff password 1", role="staff"
    )
    csrf = await login(client, staff, "staff password 1")
    assert (await client.get("/api/merchant")).status_code == 200
    refused = await client.put(
        "/api/merchant", json={"name": "Hijacked"}, headers={"x-csrf-token": csrf}
    )
    assert refused.status_code == 403
    assert (await client.get("/api/merchant")).json()["name"] == merchant.name
