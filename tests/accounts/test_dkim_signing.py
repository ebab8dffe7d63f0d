"""The fast DKIM signer agrees with dkimpy: the same canonical forms on generated input, and
signatures that ``dkim.verify`` accepts (and rejects once a signed header changes)."""

from __future__ import annotations

import dkim
import pytest
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.domains.signing import DkimSigner, relaxed_body, relaxed_header
from tests.campaigns.dkim_keys import new_key

#: Lines made of what canonicalisation cares about: spaces, tabs, text, empty lines.
LINES = st.lists(st.text(alphabet=" \ta=é<", max_size=12), max_size=8)


@settings(max_examples=300, deadline=None)
@given(lines=LINES, ending=st.sampled_from(["", "\r\n", "\r\n\r\n", " \r\n\t\r\n"]))
def test_body_canonical_form_equals_dkimpys(lines: list[str], ending: str) -> None:
    body = ("\r\n".join(lines) + ending).encode()
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from([b"Subject", b"FROM", b"List-Unsubscribe "]),
    value=st.lists(st.text(alphabet=" \tab:;=", max_size=10), min_size=1, max_size=4),
)
def test_header_canonical_form_equals_dkimpys(name: bytes, value: list[str]) -> None:
    folded = "\r\n ".join(value).encode()
    [(their_name, their_value)] = Relaxed.canonicalize_headers([(name, folded)])
    assert relaxed_header(name, folded) == their_name + b":" + their_value.removesuffix(b"\r\n")


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[DkimSigner, bytes]:
    pem, record = new_key(tmp_path_factory.mktemp("dkim"))
    return DkimSigner("shop.example", "sel", pem), record


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"plain\r\n",
        b"trailing spaces   \r\n\ttabs\t and  runs \r\n\r\n\r\n",
        b"no final line end",
        b"=C3=A9t=C3=A9\r\n" * 2000,
    ],
)
def test_signatures_verify_with_dkimpy(signer: tuple[DkimSigner, bytes], body: bytes) -> None:
    key, record = signer

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"sel._domainkey.shop.example." else b""

    head = (
        b"From: Shop <news@shop.example>\r\n"
        b"To: anna@example.com\r\n"
        b"Subject:   Autumn\r\n   offers \t for you\r\n"
        b"List-Unsubscribe: <https://shop.example/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    )
    message = head + b"\r\n" + body
    names = (b"From", b"To", b"Subject", b"List-Unsubscribe", b"List-Unsubscribe-Post", b"Cc")
    signed = key.signature_header(message, names) + message
    assert dkim.verify(signed, dnsfunc=dns)
    assert b"h=from:to:subject:list-unsubscribe:list-unsubscribe-post;" in signed  # no absent Cc
    assert not dkim.verify(signed.replace(b"Autumn", b"Spring"), dnsfunc=dns)
    if body:
        assert not dkim.verify(signed[:-3] + b"XYZ", dnsfunc=dns)


def test_an_oversigned_from_breaks_when_a_second_from_is_added(
    signer: tuple[DkimSigner, bytes],
) -> None:
    """``h=`` names From twice: a From added on the way, above or below, fails the check."""
    key, record = signer

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"sel._domainkey.shop.example." else b""

    message = b"From: Shop <news@shop.example>\r\nSubject: Hi\r\n\r\nbody\r\n"
    oversigned = key.signature_header(message, (b"From", b"Subject"), oversigned=(b"From",))
    assert b"h=from:subject:from;" in oversigned
    assert dkim.verify(oversigned + message, dnsfunc=dns)
    forged = message.replace(b"Subject: Hi", b"Subject: Hi\r\nFrom: Bank <ceo@bank.example>")
    assert not dkim.verify(oversigned + forged, dnsfunc=dns)
    forged_above = b"From: Bank <ceo@bank.example>\r\n" + message
    assert not dkim.verify(oversigned + forged_above, dnsfunc=dns)
