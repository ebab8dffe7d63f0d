"""Sending domains through the JSON API and the settings pages: add, records with copy
buttons, check against the test DNS server, rotate, remove; staff may read but not change;
another merchant's domain is 404; bad input is a 4xx with a message and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts import services as accounts
from accounts.schemas import MerchantOut, UserOut
from tests.campaigns.test_api import auth
from tests.conftest import login, make_merchant
from tests.dns_server import Zone, dns_server


@pytest.fixture
def zone() -> Iterator[Zone]:
    with dns_server() as served:
        yield served


async def test_the_api_adds_checks_rotates_and_removes(
    client: Any, merchant: MerchantOut, api_token: str, zone: Zone
) -> None:
    domain = f"{merchant.slug}.example"
    added = await client.post(
        "/api/sending-domains", json={"domain": domain}, headers=auth(api_token)
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["domain"], body["status"]) == (domain, "pending")
    dkim = next(r for r in body["records"] if r["kind"] == "dkim")
    path = f"/api/sending-domains/{body['id']}"
    zone.publish(dkim["name"], dkim["value"])
    checked = await client.post(f"{path}/check", headers=auth(api_token))
    assert checked.status_code == 200 and checked.json()["status"] == "verified"
    assert {c["kind"]: c["status"] for c in checked.json()["checks"]}["dkim"] == "found"
    rotated = await client.post(f"{path}/rotate", headers=auth(api_token))
    assert rotated.status_code == 200 and rotated.json()["next_selector"]
    again = await client.post(f"{path}/rotate", headers=auth(api_token))
    assert again.status_code == 409 and again.json()["detail"]
    listed = await client.get("/api/sending-domains", headers=auth(api_token))
    assert [d["domain"] for d in listed.json()] == [domain]
    assert (await client.delete(path, headers=auth(api_token))).status_code == 204
    assert (await client.get(path, headers=auth(api_token))).status_code == 404


async def test_bad_input_is_a_4xx_and_changes_nothing(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    for body in ({"domain": "not a domain"}, {"domain": ""}, {"domain": "x" * 300}, {"dom": "a.b"}):
        refused = await client.post("/api/sending-domains", json=body, headers=auth(api_token))
        assert 400 <= refused.status_code < 500 and refused.json()["detail"], body
    taken = await make_merchant()
    await accounts.create_api_token(taken.id, "t")
    from accounts import domains

    await domains.add_domain(taken.id, f"{taken.slug}.example")
    clash = await client.post(
        "/api/sending-domains", json={"domain": f"{taken.slug}.example"}, headers=auth(api_token)
    )
    assert clash.status_code == 409 and "Another shop" in clash.json()["detail"]
    foreign = (await domains.list_domains(taken.id))[0]
    for method, suffix in (("get", ""), ("post", "/check"), ("post", "/rotate"), ("delete", "")):
        answer = await getattr(client, method)(
            f"/api/sending-domains/{foreign.id}{suffix}", headers=auth(api_token)
        )
        assert answer.status_code == 404, (method, suffix)
    assert (await client.get("/api/sending-domains", headers=auth(api_token))).json() == []
    assert len(await domains.list_domains(taken.id)) == 1


async def test_the_settings_pages_show_records_to_copy_and_check_them(
    client: Any, merchant: MerchantOut, owner: UserOut, zone: Zone
) -> None:
    csrf = await login(client, owner)
    client.headers["accept"] = "text/html"
    empty = await client.get("/settings/domains")
    assert empty.status_code == 200 and "No sending domain yet." in empty.text
    assert 'data-testid="sender-now"' in empty.text and "noreply@loyalmail.localhost" in empty.text
    bad = await client.post("/settings/domains", data={"_csrf": csrf, "domain": "https://x"})
    assert bad.status_code == 422 and "Enter a domain name" in bad.text
    domain = f"{merchant.slug}.example"
    added = await client.post(
        "/settings/domains", data={"_csrf": csrf, "domain": domain}, follow_redirects=False
    )
    assert added.status_code == 303
    detail = await client.get(added.headers["location"])
    assert "Publish the records below" in detail.text
    assert detail.text.count('class="secondary small copy"') == 2 * 2  # DKIM and DMARC
    assert '<script type="module" src="/static/copy.js">' in detail.text
    from accounts import domains

    [shown] = await domains.list_domains(merchant.id)
    dkim = next(r for r in shown.records if r.kind == "dkim")
    assert dkim.value in detail.text and dkim.name in detail.text
    zone.publish(dkim.name, dkim.value)
    checked = await client.post(
        f"/settings/domains/{shown.id}/check", data={"_csrf": csrf}, follow_redirects=False
    )
    after = await client.get(checked.headers["location"])
    assert "the domain is verified." in after.text and ">Verified<" in after.text
    removed = await client.post(
        f"/settings/domains/{shown.id}/remove", data={"_csrf": csrf}, follow_redirects=False
    )
    assert removed.headers["location"] == "/settings/domains?notice=removed"
    assert await domains.list_domains(merchant.id) == []


async def test_staff_reads_but_does_not_change(client: Any, merchant: MerchantOut) -> None:
    staff = await accounts.create_user(
        merchant.id, f"staff-{merchant.slug}@example.com", "correct horse battery", role="staff"
    )
    csrf = await login(client, staff)
    client.headers["accept"] = "text/html"
    shown = await client.get("/settings/domains")
    assert shown.status_code == 200 and 'name="domain"' not in shown.text
    refused = await client.post("/settings/domains", data={"_csrf": csrf, "domain": "a.example"})
    assert refused.status_code == 403
    api = await client.post(
        "/api/sending-domains",
        json={"domain": "a.example"},
        headers={"x-csrf-token": csrf, "accept": "application/json"},
    )
    assert api.status_code == 403
    from accounts import domains

    assert await domains.list_domains(merchant.id) == []
