"""DKIM key pairs of sending domains: made here, kept encrypted, read back to sign.

A key pair is RSA-2048 (what every receiver accepts; 1024 is refused by some, 4096 does not
fit many DNS providers' TXT fields). The private key is stored as a Fernet token (AES-128-CBC
and HMAC-SHA256, from ``cryptography``) under a key derived with HKDF from the installation's
secret, so a copy of the database alone signs nothing. After a secret rotation the keys
stored under a previous secret (``LOYALMAIL_PREVIOUS_SECRET_KEYS``) still decrypt; new ones
are stored under the current secret.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from loyalmail.settings import get_settings

KEY_BITS = 2048
#: The HKDF "info" of the key-encryption key: never the same key as any other use of the secret.
_KDF_INFO = b"loyalmail.dkim-private-key.v1"


class KeyUnreadable(Exception):
    """A stored private key that no secret of this installation decrypts (the secret was
    changed without listing the old one in LOYALMAIL_PREVIOUS_SECRET_KEYS), or that is not
    an RSA key once decrypted. Nothing may be sent with it."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    selector: str
    #: The DNS record's p= value: base64 of the DER SubjectPublicKeyInfo.
    public_key: str
    private_pem: bytes


def new_selector(now: datetime) -> str:
    """``lm`` + year and month + 4 random hex digits (``lm202612a3f0``): a rotation's new
    selector never equals the old one, and the date tells an operator how old a key is."""
    return f"lm{now:%Y%m}{secrets.token_hex(2)}"


def generate(selector: str) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(selector, base64.b64encode(public).decode("ascii"), pem)


def record_value(public_key: str) -> str:
    """The TXT record that publishes a public key (RFC 6376 §3.6.1)."""
    return f"v=DKIM1; k=rsa; p={public_key}"


@cache
def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _ciphers() -> MultiFernet:
    # MultiFernet encrypts with the first and decrypts with any: the current secret first.
    keys = get_settings().signing_keys
    return MultiFernet([_fernet(secret) for secret in reversed(keys)])


def encrypt(private_pem: bytes) -> str:
    return _ciphers().encrypt(private_pem).decode("ascii")


def decrypt(stored: str) -> bytes:
    """The PEM of a stored key; :class:`KeyUnreadable` when no secret opens it."""
    try:
        pem = _ciphers().decrypt(stored.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
        raise KeyUnreadable("no secret of this installation decrypts the key") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyUnreadable("the decrypted key is not a PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyUnreadable("the decrypted key is not an RSA key")
    return pem
