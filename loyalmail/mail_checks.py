"""What a caught message proves, for the demo's Outbox: its DKIM signature checked by dkimpy
against the configured key, and RFC 8058's one-click unsubscribe headers.

The DKIM check needs no DNS: the record a receiver would look up
(``<selector>._domainkey.<domain>``) is made from the configured private key, so a message
verifies exactly when it was signed by that key and left unchanged. A signature by another
domain or selector cannot be checked here and says so.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization

from loyalmail.settings import get_settings

#: The outcomes of the DKIM check, as the page words them.
VERIFIED, FAILED, UNSIGNED, OTHER_KEY = "verified", "failed", "unsigned", "other_key"
_TAG = re.compile(r"\s*([a-z]+)\s*=\s*([^;]*)")


@dataclass(frozen=True, slots=True)
class MailChecks:
    #: verified | failed | unsigned | other_key
    dkim: str
    #: "d=… s=…" of the signature ("" when unsigned).
    dkim_signer: str
    #: List-Unsubscribe with an HTTPS URL, List-Unsubscribe-Post exactly as RFC 8058 wants
    #: it, and (when signed) both covered by the signature.
    one_click: bool


@cache
def _published_record(key_file: str, modified: float) -> bytes:
    """The DNS TXT record of the configured key (``modified`` renews it after a change)."""
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _tags(header: str) -> dict[str, str]:
    return {name: "".join(value.split()) for name, value in _TAG.findall(header)}


def check(raw: bytes, message: EmailMessage) -> MailChecks:
    """Check ``raw`` (the message as it arrived; ``message`` is it parsed)."""
    unsubscribe = str(message.get("List-Unsubscribe", ""))
    one_click = ("<https://" in unsubscribe or "<http://" in unsubscribe) and str(
        message.get("List-Unsubscribe-Post", "")
    ).strip() == "List-Unsubscribe=One-Click"
    header = message.get("DKIM-Signature")
    if header is None:
        return MailChecks(UNSIGNED, "", one_click)
    tags = _tags(str(header))
    signer = f"d={tags.get('d', '')} s={tags.get('s', '')}"
    covered = {name.strip().lower() for name in tags.get("h", "").split(":")}
    one_click = one_click and {"list-unsubscribe", "list-unsubscribe-post"} <= covered
    settings = get_settings()
    key_file = Path(settings.dkim_private_key_file) if settings.dkim_private_key_file else None
    if (
        key_file is None
        or not key_file.is_file()
        or (tags.get("d", "").lower(), tags.get("s", "").lower())
        != (settings.dkim_domain.lower(), settings.dkim_selector.lower())
    ):
        return MailChecks(OTHER_KEY, signer, one_click)
    record = _published_record(str(key_file), key_file.stat().st_mtime)
    expected = f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}.".lower().encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return record if name.lower().rstrip(b".") + b"." == expected else b""

    try:
        verified = dkim.verify(raw, dnsfunc=lookup)
    except Exception:  # dkimpy raises on garbled signatures: that is a failed check
        verified = False
    return MailChecks(VERIFIED if verified else FAILED, signer, one_click)
