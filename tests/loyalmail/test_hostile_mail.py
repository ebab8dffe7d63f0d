"""The hostile-input corpus, part 2: what reaches a real SMTP server (aiosmtpd). Header
injection and display-name spoofing through the subject, the sender name and the customers'
names and addresses; template text in subject, blocks and personalisation; image addresses
the server would fetch. Each message is parsed with Python's e-mail parser: exactly the
expected headers, no injected header, no extra recipient. Payloads: hostile_payloads.py."""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from accounts import services as accounts
from accounts.schemas import MerchantOut
from campaigns.sending import deliver, dispatch
from campaigns.tables import CampaignBatch, CampaignRecipient
from customers.tables import Customer
from loyalmail.settings import get_settings
from quota import services as quota
from tests.campaigns.test_api import auth, branded
from tests.conftest import jobs_go_nowhere, make_merchant
from tests.loyalmail.hostile_payloads import (
    HEADER_BREAKERS,
    IDN_ADDRESSES,
    INJECTED_ADDRESS,
    SPOOFED_NAMES,
    TEMPLATE,
)
from tests.smtp import free_port, smtp_settings_port

#: The headers a campaign message has, each exactly once (DKIM is off in these tests).
ONCE = (
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Message-ID",
    "Date",
    "List-Unsubscribe",
    "MIME-Version",
)


class Envelopes:
    """An SMTP server that keeps each message with its envelope (MAIL FROM, RCPT TO)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 OK"

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        parser = BytesParser(policy=policy.default)
        return [(rcpts, parser.parsebytes(raw)) for _, rcpts, raw in self.received]


@pytest.fixture
def relay() -> Iterator[Envelopes]:
    handler = Envelopes()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        with smtp_settings_port(port):
            yield handler
    finally:
        controller.stop()


async def shop() -> tuple[MerchantOut, str]:
    """A branded merchant and an API token of it."""
    merchant = await branded(await make_merchant())
    return merchant, (await accounts.create_api_token(merchant.id, "t")).token


async def verified(merchant: MerchantOut, client: Any, token: str, **fields: Any) -> int:
    created = await client.post(
        "/api/customers", json={"send_optin": False, **fields}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    customer_id = int(created.json()["id"])
    await Customer.update({Customer.email_status: "verified", Customer.subscribed: True}).where(
        Customer.id == customer_id
    )
    return customer_id


async def send_everything(merchant: MerchantOut, campaign_id: int) -> None:
    """Dispatch, then run every batch as the workers would."""
    await quota.buy_pack(merchant.id, reference=f"pack-{merchant.slug}")
    with jobs_go_nowhere():  # the batches run right here, not on the session's worker
        await dispatch.send_now(merchant.id, campaign_id)
    batches = await CampaignBatch.select(CampaignBatch.id).where(
        CampaignBatch.campaign == campaign_id
    )
    for batch in batches:
        await deliver.send_batch(campaign_id, int(batch["id"]))


def assert_clean_headers(message: EmailMessage, rcpts: list[str], address: str) -> None:
    for name in ONCE:
        assert len(message.get_all(name) or []) == 1, (name, message.get_all(name))
    for name in ("Bcc", "Cc", "Sender"):
        assert message.get_all(name) is None, name
    assert rcpts == [address]
    assert [a.addr_spec for a in message["To"].addresses] == [address]
    # The shop has no verified domain: From the installation's address, Reply-To the shop's.
    fallback = get_settings().effective_fallback_from
    assert [a.addr_spec for a in message["From"].addresses] == [fallback]
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["news@shop.example"]
    for name, value in message.items():
        assert INJECTED_ADDRESS not in value or name == "Subject", (name, value)
        assert "\r" not in str(value) and "\n" not in str(value), (name, value)


async def test_names_subject_and_sender_cannot_add_headers_or_recipients(
    client: Any, relay: Envelopes
) -> None:
    merchant, token = await shop()
    h = auth(token)
    # The shop's sender name may carry anything printable; line breaks are refused or
    # flattened, never a second header.
    for name in HEADER_BREAKERS + SPOOFED_NAMES:
        brand = await client.get("/api/merchant", headers=h)
        body = {**brand.json(), "sender_name": name}
        for key in ("id", "slug", "created_at"):
            body.pop(key)
        answer = await client.put("/api/merchant", json=body, headers=h)
        assert answer.status_code in (200, 422), answer.text
    people: dict[str, str] = {}
    payloads = HEADER_BREAKERS + SPOOFED_NAMES
    for n, payload in enumerate(payloads):
        address = f"p{n}.{merchant.slug}@example.com"
        if "\x00" in payload:  # refused everywhere (PostgreSQL cannot store it): 422
            refused = await client.post(
                "/api/customers", json={"email": address, "first_name": payload}, headers=h
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["fields"] == {"$.first_name": "contains NUL"}
            continue
        await verified(
            merchant, client, token, email=address, first_name=payload[:100], last_name=payload
        )
        people[address] = payload
    # An address cannot carry a second one.
    for bad in (
        f"x@example.com\r\nBcc: {INJECTED_ADDRESS}",
        f"x@example.com, {INJECTED_ADDRESS}",
        f'"x@example.com" <{INJECTED_ADDRESS}>',
        f"x@example.com\x00{INJECTED_ADDRESS}",
    ):
        refused = await client.post(
            "/api/customers", json={"email": bad, "send_optin": False}, headers=h
        )
        assert refused.status_code == 422, (bad, refused.text)
    # A subject or sender name with a line break is refused; a spoofed display name is kept
    # as a display name of the shop's own address.
    for field in ("subject", "sender_name"):
        for payload in HEADER_BREAKERS[:4]:
            refused = await client.post(
                "/api/campaigns", json={"name": "x", field: payload}, headers=h
            )
            assert refused.status_code == 422, (field, payload, refused.text)
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Hostile",
            "subject": f"{{{{ first_name }}}} {{{{ last_name }}}} {HEADER_BREAKERS[4]}",
            "sender_name": SPOOFED_NAMES[0],
            "audience": {"predefined": "all_customers"},
            "blocks": [{"type": "heading", "text": "Hi {{ first_name }}"}],
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    await send_everything(merchant, campaign_id)

    received = relay.messages()
    assert sorted(r for rcpts, _ in received for r in rcpts) == sorted(people)
    for rcpts, message in received:
        address = rcpts[0]
        assert_clean_headers(message, rcpts, address)
        sender = message["From"].addresses[0]
        assert sender.display_name == SPOOFED_NAMES[0]  # a name, of the shop's own address
        subject = str(message["Subject"])
        assert subject.endswith(HEADER_BREAKERS[4])  # the encoded word, shown as typed
    sent = await CampaignRecipient.count().where(
        (CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.status == "sent")
    )
    assert sent == len(people)


async def test_template_text_is_sent_literally_and_never_evaluated(
    client: Any, relay: Envelopes
) -> None:
    merchant, token = await shop()
    h = auth(token)
    address = f"t.{merchant.slug}@example.com"
    # In the customer's own fields: substituted as text, never run again as a template.
    await verified(
        merchant,
        client,
        token,
        email=address,
        first_name=TEMPLATE[0],
        last_name=TEMPLATE[2][:100],
        city=TEMPLATE[1][:100],
    )
    # Written by the marketer: kept as written (or refused), never evaluated.
    for payload in TEMPLATE:
        answer = await client.post(
            "/api/campaigns", json={"name": "x", "subject": payload}, headers=h
        )
        assert answer.status_code in (201, 422), (payload, answer.text)
        if answer.status_code == 201:
            assert answer.json()["subject"] == payload
        else:
            assert "subject" in answer.json()["fields"]
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Literal",
            "subject": "{{ first_name }} ${7*7} #{7*7}",
            "audience": {"predefined": "all_customers"},
            "blocks": [
                {"type": "heading", "text": "{{ first_name }} / {{ last_name }}"},
                {"type": "text", "markdown": "${7*7} #{7*7} {{ first_name }} {{ city }}"},
            ],
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    await send_everything(merchant, int(created.json()["id"]))
    [(rcpts, message)] = relay.messages()
    assert rcpts == [address]
    assert str(message["Subject"]) == "{{ 7*7 }} ${7*7} #{7*7}"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "{{ 7*7 }}" in part and "49" not in part.replace("2049", "")
        assert "__mro__" in part and "<class" not in part and "&lt;class" not in part
    assert "{{ ''.__class__.__mro__ }}" in text


async def test_image_addresses_are_never_fetched_by_the_server(
    client: Any, relay: Envelopes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSRF: an image's address goes into the message as written (the recipient's mail
    client loads it) or is refused; the server opens no connection of the marketer's
    choosing while saving, previewing, test-sending or sending."""
    import socket

    opened: list[object] = []
    real_connect = socket.socket.connect

    def watching(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            opened.append(address)
        return real_connect(self, address)

    merchant, token = await shop()
    h = auth(token)
    address = f"i.{merchant.slug}@example.com"
    await verified(merchant, client, token, email=address, first_name="Ida")
    refused_sources = (
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "javascript:alert(1)",
        "data:image/svg+xml,<svg onload=alert(1)>",
        "//169.254.169.254/latest/meta-data/",
        "/media/../../etc/passwd",
    )
    for src in refused_sources:
        answer = await client.post(
            "/api/campaigns",
            json={"name": "x", "blocks": [{"type": "image", "src": src}]},
            headers=h,
        )
        assert answer.status_code == 422, (src, answer.text)
    internal = "https://169.254.169.254/latest/meta-data/iam.png"
    monkeypatch.setattr(socket.socket, "connect", watching)
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "Pictures",
            "subject": "Pictures",
            "audience": {"predefined": "all_customers"},
            "blocks": [
                {"type": "image", "src": internal, "href": "https://shop.example/"},
                {"type": "image", "src": "https://10.0.0.1:6379/x.png"},
            ],
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    preview = await client.post(f"/api/campaigns/{campaign_id}/preview", json={}, headers=h)
    assert preview.status_code in (200, 404, 405), preview.text
    await send_everything(merchant, campaign_id)
    monkeypatch.undo()
    assert opened == []
    [(rcpts, message)] = relay.messages()
    assert rcpts == [address]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert internal in html  # for the recipient's client to load, not us


async def test_international_addresses_get_their_message_and_nobody_else(
    client: Any, relay: Envelopes
) -> None:
    merchant, token = await shop()
    await verified(merchant, client, token, email=IDN_ADDRESSES[0], first_name="Jörg")
    # Addresses with a local part beyond ASCII are kept out at the door (the one address
    # rule, customers.schemas); one stored before that rule is still never sent.
    for address in IDN_ADDRESSES[1:]:
        refused = await client.post(
            "/api/customers", json={"email": address, "send_optin": False}, headers=auth(token)
        )
        assert refused.status_code == 422, refused.text
        await Customer.insert(
            Customer(
                merchant=merchant.id,
                email=address,
                email_normalized=address.lower(),
                email_status="verified",
                subscribed=True,
            )
        )
    created = await client.post(
        "/api/campaigns",
        json={
            "name": "IDN",
            "subject": "Hallo {{ first_name }}",
            "audience": {"predefined": "all_customers"},
        },
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    await send_everything(merchant, campaign_id)
    statuses = await CampaignRecipient.select(
        CampaignRecipient.email, CampaignRecipient.status
    ).where(CampaignRecipient.campaign == campaign_id)
    # The domain goes out IDNA-encoded; a non-ASCII local part (stored before the rule) needs
    # SMTPUTF8, which this sender does not speak (campaigns/sending/mime.py): skipped, not
    # sent, not paid for.
    assert {r["email"]: r["status"] for r in statuses} == {
        IDN_ADDRESSES[0]: "sent",
        IDN_ADDRESSES[1]: "skipped",
        IDN_ADDRESSES[2]: "skipped",
    }
    [(rcpts, message)] = relay.messages()
    assert rcpts == ["user@xn--bcher-kva.example"]
    assert_clean_headers(message, rcpts, "user@xn--bcher-kva.example")
    reservation = await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")
    assert reservation is not None and reservation.spent == 1
