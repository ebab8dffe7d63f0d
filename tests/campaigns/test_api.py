"""The campaigns JSON API: drafts, refusals with where they are, previews as a customer,
the web version, tenant isolation."""

from __future__ import annotations

from typing import Any

from accounts import services as accounts
from accounts.schemas import Brand, MerchantOut
from campaigns.tables import Campaign, CampaignRecipient
from customers.schemas import CustomerCreate
from customers.services import customers
from customers.tables import Customer
from quota import services as quota
from tests.conftest import make_merchant
from tracking import tokens


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def branded(merchant: MerchantOut) -> MerchantOut:
    data = Brand(
        name=merchant.name,
        sender_email="news@shop.example",
        street="Hauptstraße 1",
        postal_code="10115",
        city="Berlin",
        country="DE",
        opening_hours="Mo–Fr 9–18",
        imprint="Shop GmbH, HRB 12345",
        publisher="Anna Editor",
        copyright="2026 Shop GmbH",
        privacy_policy_url="https://shop.example/privacy",
        default_locale="en",
        time_zone="Europe/Berlin",
    )
    return await accounts.update_brand(merchant.id, data)


async def a_customer(merchant: MerchantOut, **fields: Any) -> int:
    created = await customers.create_customer(
        merchant.id, CustomerCreate(send_optin=False, **fields)
    )
    return created.id


async def test_draft_lifecycle(client: Any, merchant: MerchantOut, api_token: str) -> None:
    await branded(merchant)
    h = auth(api_token)
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Autumn",
            "subject": "{{ salutation }}, autumn is here",
            "layout": "offer",
            "audience": {"predefined": "all_customers"},
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["layout"] == "offer" and body["status"] == "draft"
    assert [b["type"] for b in body["blocks"]][:3] == ["heading", "text", "columns"]
    assert body["sender_email"] == "news@shop.example"
    assert body["audience"] == {"predefined": "all_customers", "segment_id": None}
    campaign_id = body["id"]

    blocks = [
        {"type": "heading", "text": "Hello {{ first_name | friend }}"},
        {"type": "text", "markdown": "Our **sale**: [see it](https://shop.example/sale)"},
        {"type": "button", "label": "Shop now", "href": "https://shop.example/"},
    ]
    changed = await client.patch(
        f"/api/campaigns/{campaign_id}", json={"blocks": blocks}, headers=h
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["blocks"][0]["text"] == "Hello {{ first_name | friend }}"
    check = (await client.get(f"/api/campaigns/{campaign_id}/check", headers=h)).json()
    assert check == {"ready": True, "problems": []}

    listed = (await client.get("/api/campaigns", headers=h)).json()["items"]
    assert [c["id"] for c in listed] == [campaign_id]
    assert (await client.delete(f"/api/campaigns/{campaign_id}", headers=h)).status_code == 204
    assert (await client.get(f"/api/campaigns/{campaign_id}", headers=h)).status_code == 404


async def test_refusals_name_the_field_and_save_nothing(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    h = auth(api_token)
    created = await client.post("/api/campaigns", json={"name": "Safe"}, headers=h)
    campaign_id = created.json()["id"]
    before = await Campaign.select().where(Campaign.id == campaign_id).first()

    cases: list[tuple[dict[str, Any], str]] = [
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
        ({"subject": "Hi\x00there"}, "subject"),
        ({"preheader": "line\nbreak"}, "preheader"),
        ({"subject": "Hello {{ frist_name }}"}, "subject"),
        (
            {"blocks": [{"type": "button", "label": "x", "href": "javascript:alert(1)"}]},
            "blocks[0].href",
        ),
        (
            {"blocks": [{"type": "text", "markdown": "[x](data:text/html,<script>1</script>)"}]},
            "blocks[0].markdown",
        ),
        ({"blocks": [{"type": "image", "src": "file:///etc/passwd"}]}, "blocks[0].src"),
        ({"blocks": [{"type": "image", "src": "http://insecure.example/a.png"}]}, "blocks[0].src"),
        (
            {
                "blocks": [
                    {"type": "heading", "text": "ok"},
                    {"type": "text", "markdown": "Dear {{ env }}"},
                ]
            },
            "blocks[1].markdown",
        ),
    ]
    for change, where in cases:
        response = await client.patch(f"/api/campaigns/{campaign_id}", json=change, headers=h)
        assert response.status_code == 422, (change, response.text)
        body = response.json()
        assert where in body.get("fields", {}) or where in str(body), (change, body)

    too_many = {"blocks": [{"type": "divider"}] * 1000}
    response = await client.patch(f"/api/campaigns/{campaign_id}", json=too_many, headers=h)
    assert response.status_code == 422
    huge = {"blocks": [{"type": "text", "markdown": "x" * 900_000}]}
    response = await client.patch(f"/api/campaigns/{campaign_id}", json=huge, headers=h)
    assert response.status_code in {413, 422} and response.json()["detail"]
    bad_utf8 = b'{"subject": "\xff\xfe"}'
    response = await client.patch(
        f"/api/campaigns/{campaign_id}",
        content=bad_utf8,
        headers={**h, "content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500

    after = await Campaign.select().where(Campaign.id == campaign_id).first()
    assert after == before


async def test_preview_as_customers_in_their_language(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    await branded(merchant)
    h = auth(api_token)
    anna = await a_customer(
        merchant,
        email="anna@example.com",
        first_name="Anna",
        last_name="Müller",
        gender="female",
        locale="de",
    )
    jean = await a_customer(
        merchant,
        email="jean@example.com",
        first_name="Jean",
        last_name="Dupont",
        gender="male",
        locale="fr_FR",
    )
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Offer",
            "subject": "{{ salutation }} – we have an offer for you!",
            "preheader": "For {{ first_name | you }}",
            "blocks": [{"type": "text", "markdown": "{{ salutation }}, <b>hello</b>"}],
        },
        headers=h,
    )
    campaign_id = created.json()["id"]

    german = (
        await client.post(
            f"/api/campaigns/{campaign_id}/preview", json={"customer_id": anna}, headers=h
        )
    ).json()
    assert german["subject"] == "Sehr geehrte Frau Müller – we have an offer for you!"
    assert german["language"] == "de"
    assert "Sehr geehrte Frau Müller, &lt;b&gt;hello&lt;/b&gt;" in german["html"]
    assert "Abmelden" in german["html"] and "Datenschutzerklärung" in german["text"]
    assert "Hauptstraße 1, 10115 Berlin" in german["html"]
    assert "Sehr geehrte Frau Müller, <b>hello</b>" in german["text"]

    french = (
        await client.post(
            f"/api/campaigns/{campaign_id}/preview", json={"customer_id": jean}, headers=h
        )
    ).json()
    assert french["subject"].startswith("Cher Monsieur Dupont")
    assert "Se désabonner" in french["html"]

    sample = (await client.post(f"/api/campaigns/{campaign_id}/preview", json={}, headers=h)).json()
    assert sample["customer"] is None and sample["subject"].startswith("Hello Alex Example")

    draft = (
        await client.post(
            f"/api/campaigns/{campaign_id}/preview",
            json={"customer_id": anna, "draft": {"subject": "Unsaved {{ last_name }}"}},
            headers=h,
        )
    ).json()
    assert draft["subject"] == "Unsaved Müller"
    stored = (await client.get(f"/api/campaigns/{campaign_id}", headers=h)).json()
    assert stored["subject"].startswith("{{ salutation }}")


async def test_web_version_from_the_signed_link(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    await branded(merchant)
    h = auth(api_token)
    anna = await a_customer(
        merchant,
        email="anna2@example.com",
        first_name="Anna",
        last_name="Müller",
        gender="female",
        locale="de",
    )
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Web",
            "subject": "Hi",
            "blocks": [{"type": "heading", "text": "{{ salutation }}"}],
        },
        headers=h,
    )
    campaign_id = created.json()["id"]
    # Sent to Anna: the link of her message names her frozen recipient row.
    await Customer.update({Customer.email_status: "verified"}).where(Customer.id == anna)
    await quota.buy_pack(merchant.id, reference=f"web-{merchant.slug}")
    await client.patch(
        f"/api/campaigns/{campaign_id}",
        json={"audience": {"predefined": "all_customers"}},
        headers=h,
    )
    assert (await client.post(f"/api/campaigns/{campaign_id}/send", headers=h)).status_code == 202
    # Cancelled at once: this test needs the recipient row, not the delivery (no SMTP here).
    assert (await client.post(f"/api/campaigns/{campaign_id}/cancel", headers=h)).status_code == 200
    row = (
        await CampaignRecipient.select(CampaignRecipient.id)
        .where(CampaignRecipient.campaign == campaign_id)
        .first()
    )
    assert row is not None

    def view(recipient_id: int, campaign: int = campaign_id) -> str:
        data = tokens.TokenData(merchant.id, campaign, recipient_id)
        return f"/r/view/{tokens.make('view', data)}"

    view_path = view(int(row["id"]))
    page = await client.get(view_path)  # no credentials: the token is enough
    assert page.status_code == 200
    assert "Sehr geehrte Frau Müller" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    tampered = view_path[:-3] + ("AAA" if not view_path.endswith("AAA") else "BBB")
    assert (await client.get(tampered)).status_code == 404
    # A customer id is not a recipient; another campaign's recipient is not this one's.
    assert (await client.get(view(anna + 10_000))).status_code == 404
    assert (await client.get(view(int(row["id"]), campaign_id + 1))).status_code == 404


async def test_another_merchants_campaign_is_404(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    other = await make_merchant()
    other_token = (await accounts.create_api_token(other.id, "other")).token
    created = await client.post("/api/campaigns", json={"name": "Mine"}, headers=auth(api_token))
    campaign_id = created.json()["id"]
    theirs = auth(other_token)
    for method, path, body in [
        ("GET", f"/api/campaigns/{campaign_id}", None),
        ("PATCH", f"/api/campaigns/{campaign_id}", {"name": "Stolen"}),
        ("DELETE", f"/api/campaigns/{campaign_id}", None),
        ("GET", f"/api/campaigns/{campaign_id}/check", None),
        ("POST", f"/api/campaigns/{campaign_id}/preview", {}),
    ]:
        response = await client.request(method, path, json=body, headers=theirs)
        assert response.status_code == 404, (method, path, response.text)
    mine = (await client.get(f"/api/campaigns/{campaign_id}", headers=auth(api_token))).json()
    assert mine["name"] == "Mine"
    foreign = await a_customer(other, email="x@example.com")
    response = await client.post(
        f"/api/campaigns/{campaign_id}/preview",
        json={"customer_id": foreign},
        headers=auth(api_token),
    )
    assert response.status_code == 404
