"""Sending domains: add one (a key pair is made), show what to publish, check DNS, rotate
the key, remove it. Knows nothing of HTTP.

One domain belongs to one merchant in the installation. A check never takes verification
away on an error (a resolver that timed out knows nothing); only a required record found
missing or different does, and then the merchant's mail falls back to the installation's
address until the record is back.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import idna
import msgspec

from accounts.domains import keys, lookup, records
from accounts.domains.records import DnsRecord, RecordCheck
from accounts.domains.schemas import SendingDomainOut
from accounts.tables import Merchant, SendingDomain, SendingDomainKey
from loyalmail.errors import Conflict, NotFound, ValidationFailed, _
from loyalmail.settings import get_settings
from loyalmail.sql import is_unique_violation, write_transaction

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: Domains checked by one scheduler run at most (the rest wait for the next run).
RECHECK_BATCH = 50
#: A domain not verified yet is checked this often: its owner has just published (or is
#: about to publish) the records and waits for the word "Verified".
PENDING_RECHECK = timedelta(minutes=15)


def now() -> datetime:
    return datetime.now(UTC)


def normalize_domain(text: str) -> str:
    """The domain as DNS and DKIM want it: ASCII (IDNA 2008), lower case, no trailing dot.
    :class:`ValidationFailed` for anything that cannot be a public host name."""
    invalid = ValidationFailed(
        _("Enter a domain name such as shop.example (no address, no https://)."),
        fields={"domain": _("Enter a domain name such as shop.example.")},
    )
    name = text.strip().lower().rstrip(".")
    if not name or any(c in name for c in "@/:\\ \t\r\n\x00"):
        raise invalid
    try:
        name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise invalid from exc
    labels = name.split(".")
    if (
        len(name) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()  # an IP address, or a name no registry gives out
    ):
        raise invalid
    return name


def _records(domain: str, key_rows: list[dict[str, Any]]) -> list[DnsRecord]:
    settings = get_settings()
    wanted: list[DnsRecord] = []
    for row in key_rows:
        if row["state"] in ("active", "next"):
            wanted.append(
                DnsRecord(
                    kind="dkim" if row["state"] == "active" else "dkim_next",
                    name=records.dkim_name(row["selector"], domain),
                    value=keys.record_value(row["public_key"]),
                )
            )
    if settings.spf_include:
        wanted.append(
            DnsRecord(kind="spf", name=domain, value=records.spf_value(settings.spf_include))
        )
    wanted.append(
        DnsRecord(
            kind="dmarc", name=f"_dmarc.{domain}", value=records.dmarc_value(""), required=False
        )
    )
    return wanted


async def _key_rows(domain_id: int) -> list[dict[str, Any]]:
    rows = (
        await SendingDomainKey.select(
            SendingDomainKey.id,
            SendingDomainKey.selector,
            SendingDomainKey.public_key,
            SendingDomainKey.state,
        )
        .where((SendingDomainKey.domain == domain_id) & (SendingDomainKey.state != "retired"))
        .order_by(SendingDomainKey.id)
    )
    return list(rows)


async def _out(row: dict[str, Any], sender_domain: str | None = None) -> SendingDomainOut:
    key_rows = await _key_rows(int(row["id"]))
    active = next((k for k in key_rows if k["state"] == "active"), None)
    upcoming = next((k for k in key_rows if k["state"] == "next"), None)
    if sender_domain is None:
        sender_domain = await _sender_domain(int(row["merchant"]))
    checks = (
        msgspec.json.decode(row["check_result"], type=list[RecordCheck])
        if row["check_result"]
        else []
    )
    return SendingDomainOut(
        id=int(row["id"]),
        domain=row["domain"],
        status=row["status"],
        verified_at=row["verified_at"],
        checked_at=row["checked_at"],
        selector=active["selector"] if active else "",
        next_selector=upcoming["selector"] if upcoming else None,
        records=_records(row["domain"], key_rows),
        checks=checks,
        in_use=row["status"] == "verified" and row["domain"] == sender_domain,
        created_at=row["created_at"],
    )


def sender_domain_of(address: str) -> str:
    """The normalised domain of a sender address ("" when it has none a domain could be)."""
    if "@" not in address:
        return ""
    try:
        return normalize_domain(address.rpartition("@")[2])
    except ValidationFailed:
        return ""


async def _sender_domain(merchant_id: int) -> str:
    row = await Merchant.select(Merchant.sender_email).where(Merchant.id == merchant_id).first()
    return sender_domain_of(str(row["sender_email"])) if row else ""


async def _row(merchant_id: int, domain_id: int) -> dict[str, Any]:
    row = (
        await SendingDomain.select()
        .where((SendingDomain.id == domain_id) & (SendingDomain.merchant == merchant_id))
        .first()
    )
    if row is None:
        raise NotFound(_("Sending domain not found."))
    return row


async def _new_pair() -> keys.KeyPair:
    # RSA key generation takes a tenth of a second or more: not on the event loop.
    return await asyncio.to_thread(keys.generate, keys.new_selector(now()))


def _key_row(pair: keys.KeyPair, merchant_id: int, domain_id: int, state: str) -> SendingDomainKey:
    return SendingDomainKey(
        merchant=merchant_id,
        domain=domain_id,
        selector=pair.selector,
        public_key=pair.public_key,
        private_key=keys.encrypt(pair.private_pem),
        state=state,
        activated_at=now() if state == "active" else None,
    )


async def add_domain(merchant_id: int, name: str) -> SendingDomainOut:
    """Add a domain with a fresh key pair; it signs nothing until its records are found."""
    domain = normalize_domain(name)
    if await SendingDomain.exists().where(SendingDomain.domain == domain):
        mine = await SendingDomain.exists().where(
            (SendingDomain.domain == domain) & (SendingDomain.merchant == merchant_id)
        )
        raise Conflict(
            _("This domain is added already.")
            if mine
            else _("Another shop of this installation sends as this domain."),
            fields={"domain": domain},
        )
    pair = await _new_pair()  # before the transaction, which must not wait for it
    try:
        async with write_transaction():
            inserted = await SendingDomain.insert(
                SendingDomain(merchant=merchant_id, domain=domain, status="pending")
            ).returning(SendingDomain.id)
            domain_id = int(inserted[0]["id"])
            await SendingDomainKey.insert(_key_row(pair, merchant_id, domain_id, "active"))
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        # Two requests added it at once: the other one won.
        raise Conflict(_("This domain is added already."), fields={"domain": domain}) from exc
    return await get_domain(merchant_id, domain_id)


async def list_domains(merchant_id: int) -> list[SendingDomainOut]:
    rows = (
        await SendingDomain.select()
        .where(SendingDomain.merchant == merchant_id)
        .order_by(SendingDomain.domain)
    )
    sender_domain = await _sender_domain(merchant_id)
    return [await _out(row, sender_domain) for row in rows]


async def get_domain(merchant_id: int, domain_id: int) -> SendingDomainOut:
    return await _out(await _row(merchant_id, domain_id))


async def remove_domain(merchant_id: int, domain_id: int) -> None:
    await _row(merchant_id, domain_id)
    async with write_transaction():
        await SendingDomainKey.delete().where(SendingDomainKey.domain == domain_id)
        await SendingDomain.delete().where(
            (SendingDomain.id == domain_id) & (SendingDomain.merchant == merchant_id)
        )


async def rotate_key(merchant_id: int, domain_id: int) -> SendingDomainOut:
    """Make the next key: its record is published beside the active one, and the next check
    that finds it switches signing over to it and retires the old key."""
    row = await _row(merchant_id, domain_id)
    if row["status"] != "verified":
        raise ValidationFailed(
            _("Only a verified domain's key can be rotated: verify the domain first."),
            fields={"status": str(row["status"])},
        )
    if any(k["state"] == "next" for k in await _key_rows(domain_id)):
        raise Conflict(
            _("A new key is already waiting for its DNS record."), fields={"status": "rotating"}
        )
    await SendingDomainKey.insert(_key_row(await _new_pair(), merchant_id, domain_id, "next"))
    return await get_domain(merchant_id, domain_id)


async def check_domain(merchant_id: int, domain_id: int) -> SendingDomainOut:
    """Look every record up and record what was found (the "verify" action and the
    periodic re-check)."""
    row = await _row(merchant_id, domain_id)
    wanted = _records(row["domain"], await _key_rows(domain_id))
    answers = await asyncio.gather(*(lookup.txt(record.name) for record in wanted))
    checks = [records.judge(record, answer) for record, answer in zip(wanted, answers, strict=True)]
    required = [
        c for c, r in zip(checks, wanted, strict=True) if r.required and r.kind != "dkim_next"
    ]
    moment = now()
    status = str(row["status"])
    if all(c.status == "found" for c in required):
        status = "verified"
    elif status == "verified" and any(c.status in ("missing", "different") for c in required):
        status = "failed"
    switch = status == "verified" and any(
        c.kind == "dkim_next" and c.status == "found" for c in checks
    )
    async with write_transaction():
        await SendingDomain.update(
            {
                SendingDomain.status: status,
                SendingDomain.checked_at: moment,
                SendingDomain.check_result: msgspec.json.encode(checks).decode(),
                SendingDomain.verified_at: (
                    row["verified_at"] or moment if status == "verified" else row["verified_at"]
                ),
            }
        ).where((SendingDomain.id == domain_id) & (SendingDomain.merchant == merchant_id))
        if switch:
            await SendingDomainKey.update(
                {SendingDomainKey.state: "retired", SendingDomainKey.retired_at: moment}
            ).where((SendingDomainKey.domain == domain_id) & (SendingDomainKey.state == "active"))
            await SendingDomainKey.update(
                {SendingDomainKey.state: "active", SendingDomainKey.activated_at: moment}
            ).where((SendingDomainKey.domain == domain_id) & (SendingDomainKey.state == "next"))
    return await get_domain(merchant_id, domain_id)


async def recheck_due(limit: int = RECHECK_BATCH) -> int:
    """Check the domains whose last check is older than ``domain_recheck_minutes`` (a domain
    not verified: older than :data:`PENDING_RECHECK`); returns how many were checked. Safe
    to run on several schedulers: two checks of one domain record the same finding."""
    moment = now()
    cutoff = moment - timedelta(minutes=get_settings().domain_recheck_minutes)
    pending_cutoff = max(cutoff, moment - PENDING_RECHECK)
    due = (
        await SendingDomain.select(SendingDomain.id, SendingDomain.merchant)
        .where(
            SendingDomain.checked_at.is_null()
            | (SendingDomain.checked_at < cutoff)
            | ((SendingDomain.status != "verified") & (SendingDomain.checked_at < pending_cutoff))
        )
        .order_by(SendingDomain.id)
        .limit(limit)
    )
    for row in due:
        await check_domain(int(row["merchant"]), int(row["id"]))
    return len(due)


async def active_key(merchant_id: int, domain: str) -> dict[str, Any] | None:
    """The signing key (selector, encrypted private key) of the merchant's verified
    ``domain``, or None when the domain is not the merchant's or not verified."""
    row = (
        await SendingDomainKey.select(SendingDomainKey.selector, SendingDomainKey.private_key)
        .where(
            (SendingDomainKey.merchant == merchant_id)
            & (SendingDomainKey.state == "active")
            & (SendingDomainKey.domain.domain == domain)
            & (SendingDomainKey.domain.status == "verified")
        )
        .first()
    )
    return dict(row) if row else None
