"""DKIM signatures (RFC 6376, rsa-sha256, relaxed/relaxed) at sending speed.

dkimpy signs ~105 messages of 70 KB a second here, far below what one worker must send: it
canonicalises in Python line by line and does RSA with Python integers (~150 a second).
Here the canonicalisation is a few byte searches and regular expressions (C), the hash is
hashlib's and the RSA signature (PKCS#1 v1.5) is OpenSSL's through ``cryptography`` (~3,300
a second), so nothing cryptographic is written here. tests/accounts/test_dkim_signing.py
checks the signatures with ``dkim.verify`` and the canonical forms against dkimpy's.

Oversigning: a header named in ``oversigned`` is listed in ``h=`` once more than the message
has it. A verifier hashes a missing instance as nothing, so a second ``From`` added on the
way (the trick that shows a receiver another sender than the one DKIM vouched for) breaks
the signature instead of riding on it (RFC 6376 §8.15).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

#: A run of spaces and tabs; spaces and tabs before a line end.
_WSP_RUN = re.compile(rb"[ \t]+")
_WSP_BEFORE_EOL = re.compile(rb"[ \t]+\r\n")
#: "Name: value" with folded continuation lines, as a message header block holds them.
_HEADER = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*?)(?=\r\n(?![ \t])|\Z)", re.M | re.S)


def relaxed_body(body: bytes, relaxed: bool = False) -> bytes:
    """RFC 6376 §3.4.4: runs of whitespace become one space, none before a line end, no empty
    lines at the end, and a non-empty body ends with exactly one CRLF (read the way dkimpy
    and OpenDKIM read it: a last line without CRLF keeps its whitespace and gets a CRLF).
    ``relaxed``: the caller knows there is no whitespace to rewrite (only the end is)."""
    # Quoted-printable bodies seldom have anything to change: look before rewriting 70 KB.
    if not relaxed and (b"\t" in body or b"  " in body):
        body = _WSP_RUN.sub(b" ", body)
    if not relaxed and b" \r\n" in body:
        body = _WSP_BEFORE_EOL.sub(b"\r\n", body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    body = body[:end] + b"\r\n"
    return b"" if body == b"\r\n" else body


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfolded value, whitespace runs as one space, none
    around the colon or at the end."""
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip().lower() + b":" + value


@dataclass(frozen=True, slots=True)
class DkimKey:
    """What signs a message: the d= domain, the selector and the PEM RSA private key."""

    domain: str
    selector: str
    #: PEM (PKCS#1 or PKCS#8) RSA private key.
    private_key: bytes


class DkimSigner:
    def __init__(self, domain: str, selector: str, private_key: bytes) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        key = serialization.load_pem_private_key(private_key, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the DKIM key must be an RSA private key")
        self._key = key

    def signature_header(
        self,
        message: bytes,
        signed: tuple[bytes, ...],
        now: int | None = None,
        *,
        relaxed: bool = False,
        oversigned: tuple[bytes, ...] = (),
    ) -> bytes:
        """The ``DKIM-Signature`` header line (CRLF-terminated) for ``message``, covering the
        headers named in ``signed`` that the message has (the last instance of each), and
        once more each header named in ``oversigned``.
        ``relaxed``: the body is known to have no whitespace to canonicalise."""
        head, _sep, body = message.partition(b"\r\n\r\n")
        # Every instance of each header, bottom first: RFC 6376 §5.4.2 takes them upwards.
        found: dict[bytes, list[bytes]] = {}
        for match in _HEADER.finditer(head):
            found.setdefault(match.group(1).lower(), []).insert(
                0, match.group(1) + b":" + match.group(2)
            )
        names = [name for name in signed if name.lower() in found] + list(oversigned)
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body, relaxed)).digest())
        tags = b"; ".join(
            [
                b"v=1",
                b"a=rsa-sha256",
                b"c=relaxed/relaxed",
                b"d=" + self.domain,
                b"s=" + self.selector,
                b"t=%d" % (int(time.time()) if now is None else now),
                b"h=" + b":".join(name.lower() for name in names),
                b"bh=" + body_hash,
                b"b=",
            ]
        )
        digest = hashlib.sha256()
        taken: dict[bytes, int] = {}
        for name in names:
            instances = found.get(name.lower(), [])
            index = taken[name.lower()] = taken.get(name.lower(), -1) + 1
            if index >= len(instances):
                continue  # a header named but absent is hashed as nothing
            header_name, _colon, value = instances[index].partition(b":")
            digest.update(relaxed_header(header_name, value) + b"\r\n")
        # The signature header itself, with an empty b= and no line end (§3.7).
        digest.update(relaxed_header(b"DKIM-Signature", b" " + tags))
        raw = self._key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        signature = base64.b64encode(raw)
        folded = b"\r\n ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return b"DKIM-Signature: " + tags + b"\r\n " + folded + b"\r\n"


#: The headers a signature covers when the message has them (RFC 8058 §4 requires the two
#: List-Unsubscribe ones); From is oversigned.
SIGNED_HEADERS = (
    b"From",
    b"Reply-To",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Language",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"Feedback-ID",
)
OVERSIGNED_HEADERS = (b"From",)


def sign(message: bytes, key: DkimKey, *, relaxed: bool = False) -> bytes:
    """``message`` (CRLF line ends, as it goes into SMTP DATA) with its DKIM-Signature on top.
    ``relaxed``: the body is known to have no whitespace to canonicalise."""
    signer = signer_for(key.domain, key.selector, key.private_key)
    header = signer.signature_header(
        message, SIGNED_HEADERS, relaxed=relaxed, oversigned=OVERSIGNED_HEADERS
    )
    return header + message


@cache
def signer_for(domain: str, selector: str, private_key: bytes) -> DkimSigner:
    """One signer per key and process: the key is parsed once."""
    return DkimSigner(domain, selector, private_key)
