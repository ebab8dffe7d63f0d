"""Typed values at the edge for sending domains."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from accounts.domains.records import DnsRecord, RecordCheck

DomainStatus = Literal["pending", "verified", "failed"]


class SendingDomainCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    domain: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]


class SendingDomainOut(msgspec.Struct, kw_only=True):
    id: int
    #: ASCII, lower case (an internationalised domain in its IDNA form).
    domain: str
    #: pending: never verified; verified: the required records were found; failed: verified
    #: once, then a check found a required record missing or different.
    status: DomainStatus
    verified_at: datetime | None
    checked_at: datetime | None
    #: The selector of the key that signs; that of the key waiting for its record in a rotation.
    selector: str
    next_selector: str | None
    #: What to publish, in the order of the settings page.
    records: list[DnsRecord]
    #: The last check, record by record (empty before the first).
    checks: list[RecordCheck]
    #: Mail From this domain is signed with it now: it is verified and it is the domain of the
    #: merchant's sender address.
    in_use: bool
    created_at: datetime
