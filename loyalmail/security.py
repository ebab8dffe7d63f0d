"""Secrets derived from the installation's secret key, and hashing of tokens and addresses."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from loyalmail.settings import get_settings


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def _derived_key(purpose: str) -> bytes:
    return hmac.new(get_settings().secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def email_hash(normalized_email: str) -> str:
    """Keyed hash kept on the suppression list: it recognises an address, it cannot reveal one."""
    return hmac.new(
        _derived_key("suppression"), normalized_email.encode(), hashlib.sha256
    ).hexdigest()


def keyed_digest(purpose: str, value: str) -> str:
    """A keyed hash of ``value`` for ``purpose`` (128 bits, hex): put in a token, it lets the
    token recognise the value without revealing it."""
    return hmac.new(_derived_key(purpose), value.encode(), hashlib.sha256).hexdigest()[:32]


def signer(purpose: str) -> URLSafeTimedSerializer:
    """A serializer per purpose: a token made for one purpose never verifies for another."""
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"loyalmail.{purpose}")


def load_signed(purpose: str, token: str, max_age_seconds: int | None = None) -> object | None:
    try:
        return signer(purpose).loads(token, max_age=max_age_seconds)
    except BadSignature:
        return None
