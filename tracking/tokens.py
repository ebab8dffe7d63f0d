"""Signed tokens in recipient URLs: view in browser, open pixel, click, unsubscribe.

A token carries (merchant, campaign, recipient) and an HMAC-SHA256 signature made with the
installation's secret and a key derived per purpose, so a click token can never
unsubscribe and no token can be forged or altered. Verifying needs no database. After a
key rotation (``LOYALMAIL_PREVIOUS_SECRET_KEYS``) tokens signed with an old key keep
verifying; new ones use ``LOYALMAIL_SECRET_KEY``. Tokens never expire: an e-mail's links
must keep working, and every purpose is harmless to repeat.

itsdangerous does the signing and all verifying. Its ``Signer`` derives the purpose key and
sets up a fresh HMAC on every call; with four tokens per recipient that was a third of the
personalisation time, so :class:`_PurposeSigner` derives each key once and signs by copying
a keyed HMAC — the same bytes itsdangerous would produce (tests/tracking checks both ways).
"""

from __future__ import annotations

import hashlib
import hmac
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from functools import cache
from typing import Literal

from itsdangerous import BadSignature, Signer

from loyalmail.settings import get_settings

Purpose = Literal["view", "open", "click", "unsubscribe"]
PURPOSES: tuple[Purpose, ...] = ("view", "open", "click", "unsubscribe")


@dataclass(frozen=True, slots=True)
class TokenData:
    merchant_id: int
    campaign_id: int
    recipient_id: int


class _PurposeSigner(Signer):
    def __init__(self, secret_keys: list[str], purpose: str) -> None:
        super().__init__(
            secret_keys,
            salt=f"loyalmail.token.{purpose}",
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )
        self._derived = {key: Signer.derive_key(self, key) for key in self.secret_keys}
        self._signing_mac = hmac.new(self._derived[self.secret_keys[-1]], digestmod=hashlib.sha256)

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else secret_key
        if isinstance(key, str):
            key = key.encode()
        return self._derived.get(key) or Signer.derive_key(self, key)

    def sign_text(self, value: str) -> str:
        """``sign(value)`` for ASCII text, without itsdangerous's per-call set-up."""
        mac = self._signing_mac.copy()
        mac.update(value.encode())
        # itsdangerous.encoding.base64_encode, without its type juggling.
        return f"{value}.{urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


@cache
def _signer(purpose: str, secret_key: str, previous: str) -> _PurposeSigner:
    # Oldest first, current last: itsdangerous signs with the last and verifies with any.
    keys = [key.strip() for key in previous.split(",") if key.strip()] + [secret_key]
    return _PurposeSigner(keys, purpose)


def signer(purpose: Purpose) -> _PurposeSigner:
    settings = get_settings()
    return _signer(purpose, settings.secret_key, settings.previous_secret_keys)


def _encode(number: int) -> str:
    return format(number, "x")


def make(purpose: Purpose, data: TokenData) -> str:
    value = f"{_encode(data.merchant_id)}-{_encode(data.campaign_id)}-{_encode(data.recipient_id)}"
    return signer(purpose).sign_text(value)


def read(purpose: Purpose, token: str) -> TokenData | None:
    """The token's data, or None when it is tampered, truncated or made for another purpose."""
    if len(token) > 200:
        return None
    try:
        value = signer(purpose).unsign(token).decode()
        merchant, campaign, recipient = (int(part, 16) for part in value.split("-"))
    except (BadSignature, ValueError, UnicodeDecodeError):
        return None
    return TokenData(merchant, campaign, recipient)


class CampaignTokens:
    """Tokens of every purpose for the recipients of one campaign: the signers and the
    campaign's part of the value are looked up once, not per recipient and purpose."""

    def __init__(self, merchant_id: int, campaign_id: int) -> None:
        self._prefix = f"{_encode(merchant_id)}-{_encode(campaign_id)}-"
        self._signers = {purpose: signer(purpose) for purpose in PURPOSES}

    def make(self, purpose: Purpose, recipient_id: int) -> str:
        return self._signers[purpose].sign_text(f"{self._prefix}{recipient_id:x}")
