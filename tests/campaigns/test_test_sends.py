"""Test sends end to end: the API reserves from the month's ten test sends, a real job builds
the message as a real send would and delivers it over SMTP (aiosmtpd); refusals leave the
quota as it was."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import dkim
from aiosmtpd.controller import Controller

from accounts.schemas import MerchantOut, UserOut
from campaigns.sending import test_sends
from loyalmail.settings import get_settings, reset_settings_cache
from quota import services as quota
from tests.campaigns.dkim_keys import new_key
from tests.campaigns.test_api import a_customer, auth, branded
from tests.conftest import Jobs, login, make_merchant
from tests.smtp import (
    RefusingHandler,
    free_port,
    mail_to,
    mails_to,
    raw_mails,
    smtp_settings_port,
)


async def _campaign(client: Any, token: str) -> int:
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Autumn",
            "subject": "{{ salutation }}, autumn is here",
            "layout": "offer",
            "audience": {"predefined": "all_customers"},
        },
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def test_a_test_send_arrives_as_the_chosen_customer(
    client: Any, merchant: MerchantOut, owner: UserOut, api_token: str, jobs: Jobs, smtp: Path
) -> None:
    await branded(merchant)
    campaign_id = await _campaign(client, api_token)
    greta_address = f"greta.{merchant.slug}.{jobs.kind}@example.de"
    greta = await a_customer(
        merchant,
        email=greta_address,
        first_name="Greta",
        last_name="Müller",
        gender="female",
        locale="de",
    )
    sent = await client.post(
        f"/api/campaigns/{campaign_id}/test-sends",
        json={"addresses": [owner.email.upper()], "customer_id": greta},
        headers=auth(api_token),
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["addresses"] == [owner.email]
    assert sent.json()["test_sends_left"] == 9
    jobs.drain()
    message = await mail_to(smtp, owner.email)
    assert message["Subject"] == "[Test] Sehr geehrte Frau Müller, autumn is here"
    # No verified domain of its own: From the installation's address, answers to the shop.
    assert message["From"].addresses[0].addr_spec == get_settings().effective_fallback_from
    assert message["From"].addresses[0].display_name == merchant.sender_name
    assert message["Reply-To"].addresses[0].addr_spec == "news@shop.example"
    assert message["Feedback-ID"] == f"test{campaign_id}:{merchant.id}:127.0.0.1"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/r/unsubscribe/" in message["List-Unsubscribe"]
    assert message["Message-ID"].startswith(f"<lm.{merchant.id}.{campaign_id}.test")
    # Rendered as Greta, sent to the marketer only: Greta gets nothing.
    assert await asyncio.to_thread(mails_to, smtp, greta_address) == []
    reservation = await quota.get_reservation(merchant.id, sent.json()["reservation_id"])
    assert (reservation.spent, reservation.closed_at is not None) == (1, True)
    assert (await quota.overview(merchant.id)).test_sends.used == 1


async def test_refusals_change_nothing(
    client: Any, merchant: MerchantOut, owner: UserOut, api_token: str
) -> None:
    await branded(merchant)
    campaign_id = await _campaign(client, api_token)
    path = f"/api/campaigns/{campaign_id}/test-sends"
    stranger = await client.post(
        path, json={"addresses": [owner.email, "someone@else.example"]}, headers=auth(api_token)
    )
    assert stranger.status_code == 422
    assert list(stranger.json()["fields"]) == ["addresses[1]"]
    six = await client.post(path, json={"addresses": [owner.email] * 6}, headers=auth(api_token))
    assert six.status_code == 422
    other = await make_merchant()
    theirs = await a_customer(other, email="theirs@example.com")
    foreign = await client.post(
        path, json={"addresses": [owner.email], "customer_id": theirs}, headers=auth(api_token)
    )
    assert foreign.status_code == 404
    assert (await quota.overview(merchant.id)).test_sends.left == 10

    await quota.reserve(merchant.id, 10, key="used-up", pool="test")
    eleventh = await client.post(path, json={"addresses": [owner.email]}, headers=auth(api_token))
    assert eleventh.status_code == 409
    assert eleventh.json()["extra"]["renews_on"]
    assert "test sends are used up" in eleventh.json()["detail"]


async def test_a_refused_address_gives_its_test_send_back(
    client: Any, merchant: MerchantOut, owner: UserOut, api_token: str
) -> None:
    await branded(merchant)
    campaign_id = await _campaign(client, api_token)
    reservation = await quota.reserve(merchant.id, 1, key="t1", pool="test")
    port = free_port()
    server = Controller(RefusingHandler(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        with smtp_settings_port(port):
            accepted = await test_sends.deliver_test_send(
                merchant.id, campaign_id, reservation.id, [owner.email], None
            )
    finally:
        server.stop()
    assert accepted == 0
    assert (await quota.overview(merchant.id)).test_sends.left == 10
    # Run again (a retried job): nothing is sent or counted twice.
    assert (
        await test_sends.deliver_test_send(
            merchant.id, campaign_id, reservation.id, [owner.email], None
        )
        == 0
    )


async def test_with_a_dkim_key_the_message_is_signed(
    client: Any,
    merchant: MerchantOut,
    owner: UserOut,
    api_token: str,
    smtp: Path,
    tmp_path: Path,
) -> None:
    await branded(merchant)
    campaign_id = await _campaign(client, api_token)
    pem, record = new_key(tmp_path)
    (tmp_path / "dkim.pem").write_bytes(pem)
    settings = {
        # The shop has no verified domain: the installation's key signs its fallback address.
        "LOYALMAIL_FALLBACK_FROM": "shops@shop.example",
        "LOYALMAIL_DKIM_DOMAIN": "shop.example",
        "LOYALMAIL_DKIM_SELECTOR": "lm1",
        "LOYALMAIL_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "dkim.pem"),
    }
    os.environ.update(settings)
    reset_settings_cache()
    try:
        reservation = await quota.reserve(merchant.id, 1, key="t-dkim", pool="test")
        await test_sends.deliver_test_send(
            merchant.id, campaign_id, reservation.id, [owner.email], None
        )
    finally:
        for name in settings:
            os.environ.pop(name)
        reset_settings_cache()
    to = f"To: {owner.email}\r\n".encode()
    signed = [m for m in await asyncio.to_thread(raw_mails, smtp) if to in m]
    assert len(signed) == 1 and signed[0].startswith(b"DKIM-Signature:")
    raw = signed[0]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"lm1._domainkey.shop.example." else b""

    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"[Test]", b"[Tset]"), dnsfunc=dns)


async def test_the_summary_sends_a_test_and_shows_refusals(
    client: Any, merchant: MerchantOut, owner: UserOut, api_token: str, smtp: Path
) -> None:
    await branded(merchant)
    campaign_id = await _campaign(client, api_token)
    csrf = await login(client, owner)
    client.headers["accept"] = "text/html"
    summary = (await client.get(f"/campaigns/{campaign_id}/summary")).text
    assert 'data-testid="test-send"' in summary
    assert f'value="{owner.email}" checked' in summary  # the marketer's own address, ticked
    path = f"/campaigns/{campaign_id}/test-send"
    sent = await client.post(
        path, data={"_csrf": csrf, "address": owner.email}, follow_redirects=False
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/campaigns/{campaign_id}/summary?notice=test_sent"
    shown = (await client.get(sent.headers["location"])).text
    assert "The test is on its way" in shown
    assert (await quota.overview(merchant.id)).test_sends.left == 9

    nobody = await client.post(path, data={"_csrf": csrf}, follow_redirects=False)
    assert nobody.status_code == 422
    assert "Choose who gets the test: one to five addresses." in nobody.text
    await quota.reserve(merchant.id, 9, key="used-up", pool="test")
    refused = await client.post(
        f"{path}?lang=de", data={"_csrf": csrf, "address": owner.email}, follow_redirects=False
    )
    assert refused.status_code == 409
    assert "Die Testsendungen dieses Monats sind aufgebraucht" in refused.text
    assert 'data-testid="test-send-error"' in refused.text
