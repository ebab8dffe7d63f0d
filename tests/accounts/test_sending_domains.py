"""Sending domains against a real authoritative DNS server (dnslib on 127.0.0.1, the
resolver setting pointed at it): a domain is added with its own key, its records are
found, missing or different, an unanswering or garbled resolver takes nothing away, a key
rotates, another merchant's domain is refused and a key no secret opens signs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from accounts import domains
from accounts.domains import keys
from accounts.domains.schemas import SendingDomainOut
from accounts.schemas import MerchantOut
from accounts.tables import SendingDomain, SendingDomainKey
from loyalmail.errors import Conflict, NotFound, ValidationFailed
from tests.conftest import make_merchant
from tests.dns_server import Zone, dns_server
from tests.settings_env import settings_env


@pytest.fixture
def zone() -> Iterator[Zone]:
    with dns_server() as served:
        yield served


def publish(zone: Zone, domain: SendingDomainOut, *kinds: str) -> None:
    for record in domain.records:
        if record.kind in kinds:
            zone.publish(record.name, record.value)


def statuses(domain: SendingDomainOut) -> dict[str, str]:
    return {check.kind: check.status for check in domain.checks}


async def test_a_domain_gets_its_own_key_and_the_records_to_publish(merchant: MerchantOut) -> None:
    with settings_env({"LOYALMAIL_SPF_INCLUDE": "_spf.mail.example"}):
        added = await domains.add_domain(merchant.id, "  News.Shop.EXAMPLE. ")
    assert (added.domain, added.status, added.in_use) == ("news.shop.example", "pending", False)
    assert added.selector.startswith("lm2") and added.next_selector is None
    kinds = {record.kind: record for record in added.records}
    assert set(kinds) == {"dkim", "spf", "dmarc"}
    assert kinds["dkim"].name == f"{added.selector}._domainkey.news.shop.example"
    assert kinds["dkim"].value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # RSA-2048
    assert kinds["spf"].value == "v=spf1 include:_spf.mail.example ~all"
    assert not kinds["dmarc"].required
    stored = await SendingDomainKey.select().where(SendingDomainKey.domain == added.id).first()
    assert stored is not None and b"PRIVATE KEY" not in stored["private_key"].encode()
    assert b"BEGIN PRIVATE KEY" in keys.decrypt(stored["private_key"])
    # An internationalised domain is kept in its IDNA form, as DNS and DKIM use it.
    idn = await domains.add_domain(merchant.id, "bäckerei-nord.example")
    assert idn.domain == "xn--bckerei-nord-gcb.example"


@pytest.mark.parametrize(
    "bad",
    ["", "shop", "news@shop.example", "https://shop.example", "-shop.example", "1.2.3.4", "a..b"],
)
async def test_what_is_no_domain_is_refused(merchant: MerchantOut, bad: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await domains.add_domain(merchant.id, bad)
    assert "domain" in refused.value.fields
    assert await domains.list_domains(merchant.id) == []


async def test_a_domain_belongs_to_one_merchant(merchant: MerchantOut) -> None:
    other = await make_merchant()
    mine = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    with pytest.raises(Conflict, match="Another shop"):
        await domains.add_domain(other.id, f"{merchant.slug}.EXAMPLE")
    with pytest.raises(Conflict, match="added already"):
        await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    for action in (domains.get_domain, domains.check_domain, domains.remove_domain):
        with pytest.raises(NotFound):
            await action(other.id, mine.id)
    assert await domains.list_domains(other.id) == []


async def test_published_records_verify_the_domain(merchant: MerchantOut, zone: Zone) -> None:
    added = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    with settings_env({"LOYALMAIL_SPF_INCLUDE": "_spf.mail.example"}):
        nothing = await domains.check_domain(merchant.id, added.id)
        assert nothing.status == "pending" and nothing.checked_at is not None
        assert statuses(nothing) == {"dkim": "missing", "spf": "missing", "dmarc": "missing"}
        publish(zone, added, "dkim")
        zone.publish(added.domain, "v=spf1 include:_spf.other.example -all")
        half = await domains.check_domain(merchant.id, added.id)
        assert half.status == "pending"
        assert statuses(half)["dkim"] == "found"
        spf = next(c for c in half.checks if c.kind == "spf")
        assert (spf.status, spf.found) == ("different", ["v=spf1 include:_spf.other.example -all"])
        zone.unpublish(added.domain)
        zone.publish(added.domain, "v=spf1 mx include:_spf.mail.example ~all")
        done = await domains.check_domain(merchant.id, added.id)
    assert done.status == "verified" and done.verified_at is not None
    assert statuses(done) == {"dkim": "found", "spf": "found", "dmarc": "missing"}
    assert done.in_use is False  # the merchant's sender address is on another domain


async def test_another_key_in_dns_is_shown_as_different(merchant: MerchantOut, zone: Zone) -> None:
    added = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    dkim = next(record for record in added.records if record.kind == "dkim")
    zone.publish(dkim.name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAother")
    checked = await domains.check_domain(merchant.id, added.id)
    found = next(c for c in checked.checks if c.kind == "dkim")
    assert (checked.status, found.status) == ("pending", "different")
    assert found.found[0].endswith("AQEAother")


async def test_a_silent_or_garbled_resolver_takes_nothing_away(
    merchant: MerchantOut, zone: Zone
) -> None:
    added = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    publish(zone, added, "dkim")
    assert (await domains.check_domain(merchant.id, added.id)).status == "verified"
    for mode in ("silent", "malformed"):
        zone.mode = mode
        checked = await domains.check_domain(merchant.id, added.id)
        assert checked.status == "verified", mode
        assert statuses(checked)["dkim"] == "error", mode
    with settings_env(
        {"LOYALMAIL_DNS_RESOLVER": "127.0.0.1:1", "LOYALMAIL_DNS_TIMEOUT_SECONDS": "1"}
    ):
        unreachable = await domains.check_domain(merchant.id, added.id)
    assert (unreachable.status, statuses(unreachable)["dkim"]) == ("verified", "error")
    zone.mode = "answer"
    zone.unpublish(next(r.name for r in added.records if r.kind == "dkim"))
    gone = await domains.check_domain(merchant.id, added.id)
    assert (gone.status, statuses(gone)["dkim"]) == ("failed", "missing")
    publish(zone, added, "dkim")
    assert (await domains.check_domain(merchant.id, added.id)).status == "verified"


async def test_a_rotation_switches_once_the_new_record_is_found(
    merchant: MerchantOut, zone: Zone
) -> None:
    added = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    with pytest.raises(ValidationFailed, match="verify the domain first"):
        await domains.rotate_key(merchant.id, added.id)
    publish(zone, added, "dkim")
    await domains.check_domain(merchant.id, added.id)
    rotating = await domains.rotate_key(merchant.id, added.id)
    assert rotating.next_selector and rotating.next_selector != added.selector
    assert [r.kind for r in rotating.records][:2] == ["dkim", "dkim_next"]
    with pytest.raises(Conflict, match="already waiting"):
        await domains.rotate_key(merchant.id, added.id)
    waiting = await domains.check_domain(merchant.id, added.id)
    assert (waiting.selector, waiting.status) == (added.selector, "verified")
    assert statuses(waiting)["dkim_next"] == "missing"
    publish(zone, rotating, "dkim_next")
    switched = await domains.check_domain(merchant.id, added.id)
    assert (switched.selector, switched.next_selector) == (rotating.next_selector, None)
    states = await SendingDomainKey.select(SendingDomainKey.state).where(
        SendingDomainKey.domain == added.id
    )
    assert sorted(row["state"] for row in states) == ["active", "retired"]


async def test_the_sender_of_a_verified_domain_is_the_merchant_itself(
    merchant: MerchantOut, zone: Zone
) -> None:
    from accounts import services as accounts
    from tests.campaigns.test_api import branded

    shop = await branded(merchant)  # sender news@shop.example: not on the new domain
    added = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    publish(zone, added, "dkim")
    await domains.check_domain(merchant.id, added.id)
    fallback = await domains.sending_identity(shop)
    assert (fallback.own_domain, fallback.address) == (False, "noreply@loyalmail.localhost")
    assert fallback.reply_to == "news@shop.example" and fallback.name == shop.name
    moved = await accounts.update_brand(
        merchant.id, _brand(shop, sender_email=f"post@{merchant.slug}.example")
    )
    own = await domains.sending_identity(moved)
    assert (own.own_domain, own.address) == (True, f"post@{merchant.slug}.example")
    assert own.dkim is not None
    assert (own.dkim.domain, own.dkim.selector) == (added.domain, added.selector)
    assert (await domains.get_domain(merchant.id, added.id)).in_use
    # A key stored under a secret the installation no longer knows signs nothing ...
    with settings_env({"LOYALMAIL_SECRET_KEY": "a-new-secret"}):
        with pytest.raises(domains.SigningUnavailable):
            await domains.sending_identity(moved)
        # ... until the old secret is listed as a previous one.
        with settings_env({"LOYALMAIL_PREVIOUS_SECRET_KEYS": "test-secret-key-not-for-production"}):
            assert (await domains.sending_identity(moved)).dkim is not None


def _brand(merchant: MerchantOut, **changes: Any) -> Any:
    import msgspec

    from accounts.schemas import Brand

    values = {name: getattr(merchant, name) for name in Brand.__struct_fields__}
    values.update(changes)
    return msgspec.convert(values, Brand)


async def test_the_scheduler_rechecks_old_checks_only(merchant: MerchantOut, zone: Zone) -> None:
    added = await domains.add_domain(merchant.id, f"{merchant.slug}.example")
    publish(zone, added, "dkim")
    assert await domains.recheck_due(limit=1000) >= 1
    assert (await domains.get_domain(merchant.id, added.id)).status == "verified"
    before = len(zone.queries)
    await domains.recheck_due(limit=1000)
    assert not any(merchant.slug in name for name in zone.queries[before:])
    # Twenty minutes on: a verified domain waits for its six hours, a pending one (its owner
    # is publishing the records) is looked at again every quarter of an hour.
    waiting = await domains.add_domain(merchant.id, f"waiting.{merchant.slug}.example")
    await domains.check_domain(merchant.id, waiting.id)
    earlier = datetime.now(UTC) - timedelta(minutes=20)
    await SendingDomain.update({SendingDomain.checked_at: earlier}).where(
        SendingDomain.merchant == merchant.id
    )
    before = len(zone.queries)
    await domains.recheck_due(limit=1000)
    asked = zone.queries[before:]
    assert any(name.endswith(f"waiting.{merchant.slug}.example") for name in asked)
    assert not any(name.endswith(f"._domainkey.{merchant.slug}.example") for name in asked)
