"""Every merchant sends as itself, checked as a receiver checks it: two merchants on one
installation, one with a verified domain and one without; every message each sends (campaign,
test send, opt-in) arrives at a real SMTP server, verifies with dkimpy through the test DNS
server, and its ``d=`` is the domain of its From. The shop without a domain sends from the
installation's fallback address, aligned, with its own address as Reply-To."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import dkim
import msgspec
import pytest

from accounts import domains
from accounts import services as accounts
from accounts.schemas import Brand, MerchantOut
from campaigns.schemas import CampaignCreate
from campaigns.sending import test_sends
from campaigns.services import create_campaign
from campaigns.tables import Campaign
from customers.schemas import CustomerCreate
from customers.services import consent, customers
from quota import services as quota
from tests.campaigns.dkim_keys import new_key
from tests.campaigns.test_api import branded
from tests.campaigns.test_sending import a_campaign, people
from tests.conftest import jobs_go_nowhere, make_merchant, make_owner
from tests.dns_server import Zone, dns_server, lookup_for
from tests.loyalmail.test_hostile_mail import send_everything
from tests.settings_env import settings_env
from tests.smtp import raw_mails

FALLBACK = "shops@mail.installation.example"


@pytest.fixture
def zone(tmp_path: Path) -> Iterator[Zone]:
    """The test DNS server, with the installation's key configured and published."""
    pem, record = new_key(tmp_path)
    (tmp_path / "installation.pem").write_bytes(pem)
    with dns_server() as served:
        served.publish("inst._domainkey.mail.installation.example", record.decode())
        with settings_env(
            {
                "LOYALMAIL_FALLBACK_FROM": FALLBACK,
                "LOYALMAIL_DKIM_DOMAIN": "mail.installation.example",
                "LOYALMAIL_DKIM_SELECTOR": "inst",
                "LOYALMAIL_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "installation.pem"),
            }
        ):
            yield served


async def a_verified_shop(zone: Zone) -> MerchantOut:
    shop = await make_merchant()
    domain = f"{shop.slug}.example"
    added = await domains.add_domain(shop.id, domain)
    for record in added.records:
        if record.kind == "dkim":
            zone.publish(record.name, record.value)
    assert (await domains.check_domain(shop.id, added.id)).status == "verified"
    return await _rebrand(shop, f"post@{domain}")


async def _rebrand(shop: MerchantOut, sender: str) -> MerchantOut:
    """A complete brand profile with ``sender`` and a contact address of its domain."""
    shop = await branded(shop)
    values = {name: getattr(shop, name) for name in Brand.__struct_fields__}
    values.update(sender_email=sender, contact_email=f"hello@{sender.partition('@')[2]}")
    return await accounts.update_brand(shop.id, msgspec.convert(values, Brand))


async def send_campaign(shop: MerchantOut, count: int, tag: str) -> tuple[int, list[str]]:
    """A campaign to ``count`` new verified customers of ``shop``, sent right here."""
    addresses = await people(shop, count, tag)
    campaign_id = await a_campaign(shop)
    await send_everything(shop, campaign_id)
    return campaign_id, addresses


def arrived(outbox: Path, address: str) -> list[bytes]:
    to = f"To: {address}\r\n".encode()
    return [raw for raw in raw_mails(outbox) if to in raw or f"<{address}>".encode() in raw]


def parsed(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def assert_aligned(raw: bytes, zone: Zone, from_address: str, reply_to: str) -> None:
    """Verifies through DNS; d= is the From domain; From oversigned; Reply-To is there."""
    assert dkim.verify(raw, dnsfunc=lookup_for(zone)), raw[:600]
    message = parsed(raw)
    assert [a.addr_spec for a in message["From"].addresses] == [from_address]
    assert [a.addr_spec for a in message["Reply-To"].addresses] == [reply_to]
    signature = re.sub(r"\s+", "", str(message["DKIM-Signature"]))
    tags = dict(part.split("=", 1) for part in signature.split(";") if "=" in part)
    assert tags["d"] == from_address.rpartition("@")[2]
    assert tags["h"].lower().split(":").count("from") == 2
    # A changed From fails: what a receiver checks is what we sent.
    forged = raw.replace(b"From: ", b"From: x", 1)
    assert not dkim.verify(forged, dnsfunc=lookup_for(zone))


async def test_each_merchant_sends_aligned_as_itself_or_from_the_fallback(
    merchant: MerchantOut, smtp: Path, zone: Zone
) -> None:
    own = await a_verified_shop(zone)
    other = await _rebrand(merchant, f"post@{merchant.slug}-unverified.example")
    own_campaign, own_people = await send_campaign(own, 3, "a")
    _campaign, other_people = await send_campaign(other, 3, "b")

    for address in own_people:
        [raw] = await asyncio.to_thread(arrived, smtp, address)
        assert_aligned(raw, zone, own.sender_email, own.contact_email)
        message = parsed(raw)
        assert message["Feedback-ID"] == f"{own_campaign}:{own.id}:127.0.0.1"
        assert message["Message-ID"].endswith(f"@{own.slug}.example>")
    for address in other_people:
        [raw] = await asyncio.to_thread(arrived, smtp, address)
        assert_aligned(raw, zone, FALLBACK, other.contact_email)
        assert parsed(raw)["From"].addresses[0].display_name == (other.sender_name or other.name)

    # The test send and the opt-in are signed the same way.
    owner = await make_owner(own)
    campaign_id = own_campaign
    reservation = await quota.reserve(own.id, 1, key=f"t-{own.slug}", pool="test")
    await test_sends.deliver_test_send(own.id, campaign_id, reservation.id, [owner.email], None)
    [raw] = await asyncio.to_thread(arrived, smtp, owner.email)
    assert_aligned(raw, zone, own.sender_email, own.contact_email)
    assert parsed(raw)["Feedback-ID"] == f"test{campaign_id}:{own.id}:127.0.0.1"

    for shop, sender in ((own, own.sender_email), (other, FALLBACK)):
        address = f"optin.{shop.slug}@example.com"
        with jobs_go_nowhere():
            created = await customers.create_customer(
                shop.id, CustomerCreate(email=address, send_optin=True)
            )
        assert await consent.send_optin_message(created.id)
        [raw] = await asyncio.to_thread(arrived, smtp, address)
        assert_aligned(raw, zone, sender, shop.contact_email)
        assert parsed(raw)["Feedback-ID"] == f"optin:{shop.id}:127.0.0.1"


async def test_a_key_that_cannot_be_read_pauses_the_send_and_sends_nothing(
    merchant: MerchantOut, smtp: Path, zone: Zone
) -> None:
    own = await a_verified_shop(zone)
    with settings_env({"LOYALMAIL_SECRET_KEY": "another-secret-without-the-old-one"}):
        campaign_id, [address] = await send_campaign(own, 1, "nobody")
    row = await Campaign.select(Campaign.status, Campaign.status_reason).where(
        Campaign.id == campaign_id
    )
    assert row[0]["status"] == "paused"
    assert "cannot be read" in row[0]["status_reason"]
    assert await asyncio.to_thread(arrived, smtp, address) == []


async def test_the_preview_shows_the_from_the_message_will_have(
    merchant: MerchantOut, zone: Zone
) -> None:
    from campaigns.schemas import PreviewRequest
    from campaigns.services import preview_campaign

    own = await a_verified_shop(zone)
    other = await _rebrand(merchant, f"post@{merchant.slug}-unverified.example")
    for shop, address in ((own, own.sender_email), (other, FALLBACK)):
        campaign = await create_campaign(
            shop.id, CampaignCreate(name="Preview", subject="Hi", layout="offer")
        )
        shown = await preview_campaign(shop.id, campaign.id, PreviewRequest())
        assert shown.sender.endswith(f"<{address}>"), shown.sender
