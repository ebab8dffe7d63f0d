"""The DNS records a merchant publishes for its sending domain, and how a found record is
judged: found (as asked), missing (nothing there), different (something else is there:
what was found is shown), or error (the look-up failed, nothing is known).

- DKIM (required): ``<selector>._domainkey.<domain>`` TXT ``v=DKIM1; k=rsa; p=<key>``.
  While a rotation is under way the next key's record is asked for beside the active one.
- SPF (required when the installation names its include, ``LOYALMAIL_SPF_INCLUDE``): the
  domain's one ``v=spf1`` record must include it.
- DMARC (suggested): ``_dmarc.<domain>`` with any ``v=DMARC1`` policy. Gmail and Yahoo want
  one from bulk senders; loyalmail's mail passes it through the aligned DKIM signature.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from accounts.domains.lookup import TxtAnswer

Kind = Literal["dkim", "dkim_next", "spf", "dmarc"]
Status = Literal["found", "missing", "different", "error", "unchecked"]

_TAG = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*([^;]*)")


class DnsRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One record to publish, as a DNS provider's form asks for it."""

    kind: Kind
    #: The full name, without a trailing dot.
    name: str
    type: Literal["TXT"] = "TXT"
    value: str
    #: Verification waits for it (DKIM, SPF); a suggested one only shows its state.
    required: bool = True


class RecordCheck(msgspec.Struct, kw_only=True, frozen=True):
    """What a check found for one record."""

    kind: Kind
    name: str
    status: Status
    #: What is there when it is not as asked (or the error), to show beside the record.
    found: list[str] = []


def dkim_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def spf_value(include: str) -> str:
    return f"v=spf1 include:{include} ~all"


def dmarc_value(report_address: str) -> str:
    rua = f"; rua=mailto:{report_address}" if report_address else ""
    return f"v=DMARC1; p=none{rua}"


def _tags(record: str) -> dict[str, str]:
    return {name.lower(): "".join(value.split()) for name, value in _TAG.findall(record)}


def judge(record: DnsRecord, answer: TxtAnswer) -> RecordCheck:
    def result(status: Status, found: list[str] | None = None) -> RecordCheck:
        return RecordCheck(kind=record.kind, name=record.name, status=status, found=found or [])

    if answer.error:
        return result("error", [answer.error])
    if record.kind in ("dkim", "dkim_next"):
        wanted = _tags(record.value)["p"]
        keys = [r for r in answer.records if _tags(r).get("v", "DKIM1") == "DKIM1"]
        if any(_tags(r).get("p") == wanted and _tags(r).get("k", "rsa") == "rsa" for r in keys):
            return result("found")
        return result("different", list(answer.records)) if answer.records else result("missing")
    if record.kind == "spf":
        spf = [r for r in answer.records if r.strip().lower().startswith("v=spf1")]
        include = record.value.split()[1].lower()  # "include:<domain>"
        if len(spf) == 1 and include in spf[0].lower().split():
            return result("found")
        # Two SPF records are a permanent error for every receiver (RFC 7208 §4.5).
        return result("different", spf) if spf else result("missing")
    dmarc = [r for r in answer.records if r.strip().upper().startswith("V=DMARC1")]
    if len(dmarc) == 1:
        return result("found")
    return result("different", dmarc) if dmarc else result("missing")
