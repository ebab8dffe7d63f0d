"""The MIME message a recipient gets, read back with Python's e-mail parser: headers, parts,
RFC 8058 unsubscribe headers, hostile values that must not become headers, and a DKIM
signature that dkimpy verifies."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import dkim
import pytest

from campaigns.sending.mime import (
    AddressNotSendable,
    DkimKey,
    ListHeaders,
    Sender,
    body_of,
    build,
    message_id,
)
from templates.message import RenderedMessage
from tests.campaigns.dkim_keys import new_key

HTML = (
    "<html><body><p>Grüß Gott, Anna – 20 % off.</p>\n" + "<p>" + "x" * 300 + "</p>\n.</body></html>"
)
TEXT = "Grüß Gott, Anna\r\n\r\n.a line with a leading dot\n" + "y" * 200
LISTS = ListHeaders(
    list_id="nordlicht.lists.loyalmail.example",
    list_name="Nordlicht",
    unsubscribe_url="https://mail.example/r/unsubscribe/1-2a-63.abc_DEF-123",
    unsubscribe_mailto="unsubscribe+1-2a-63.abc@lists.loyalmail.example",
)
SENDER = Sender(name="Nordlicht Café", address="news@nordlicht.example")
WHEN = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def message(
    subject: str = "Unser Herbst – für Sie",
    *,
    to: str = "anna@example.com",
    sender: Sender = SENDER,
    key: DkimKey | None = None,
) -> bytes:
    rendered = RenderedMessage(subject=subject, preheader="", html=HTML, text=TEXT)
    return build(
        body_of(rendered),
        to=to,
        sender=sender,
        lists=LISTS,
        message_id=message_id(1, 42, 99, "nordlicht.example"),
        date=WHEN,
        dkim_key=key,
    )


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers_and_parts_read_back_exactly() -> None:
    raw = message()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF everywhere, no bare LF
    parsed = parse(raw)
    assert parsed["Subject"] == "Unser Herbst – für Sie"
    assert parsed["From"] == "Nordlicht Café <news@nordlicht.example>"
    assert parsed["To"] == "anna@example.com"
    assert parsed["Message-ID"] == "<lm.1.42.99@nordlicht.example>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"] == (
        "<https://mail.example/r/unsubscribe/1-2a-63.abc_DEF-123>, "
        "<mailto:unsubscribe+1-2a-63.abc@lists.loyalmail.example?subject=unsubscribe>"
    )
    assert parsed["List-Id"] == '"Nordlicht" <nordlicht.lists.loyalmail.example>'
    assert parsed["Precedence"] == "bulk"
    assert parsed["Date"] == "Wed, 25 Nov 2026 09:30:00 +0000"
    assert parsed.get_content_type() == "multipart/alternative"
    html = parsed.get_body(preferencelist=("html",))
    text = parsed.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    # MIME text travels with CRLF line ends; the parser hands them back as they travelled.
    assert html.get_content() == HTML.replace("\n", "\r\n")
    assert text.get_content() == TEXT.replace("\r\n", "\n").replace("\n", "\r\n")
    # Retrying the same message keeps its Message-ID; only the boundary differs.
    assert parse(message())["Message-ID"] == parsed["Message-ID"]


@pytest.mark.parametrize(
    "subject",
    [
        "Hello\r\nBcc: victim@example.com",
        "Hello\nBcc: victim@example.com",
        "Hello\x00Bcc: victim@example.com",
        "Hello\u2028Bcc: victim@example.com",
        "=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=",  # an encoded newline (CVE-2024-6923)
        "Grüße\r\n\r\n<html>body</html>",
    ],
)
def test_no_value_ever_becomes_a_header_or_the_body(subject: str) -> None:
    parsed = parse(message(subject, sender=Sender(name=subject, address="news@nordlicht.example")))
    assert parsed["Bcc"] is None
    assert [k for k in parsed.keys() if k.lower() == "to"] == ["To"]
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    if subject.startswith("=?"):
        # Shown literally: the client decodes our encoded words back to the text as typed.
        assert str(parsed["Subject"]) == subject
    assert parsed.get_content_type() == "multipart/alternative"


def test_long_and_non_latin_subjects_fold_without_breaking_characters() -> None:
    subject = "Поштовани купци – " * 20 + "🎉 " * 30
    parsed = parse(message(subject))
    assert parsed["Subject"] == subject.strip()
    assert all(len(line) <= 90 for line in message(subject).split(b"\r\n\r\n")[0].split(b"\r\n"))


def test_addresses_are_ascii_or_refused() -> None:
    parsed = parse(message(to="anna@müller.example"))
    assert parsed["To"] == "anna@xn--mller-kva.example"
    # IDNA 2008, as the customers app validates: ß stays (IDNA 2003 made it "strasse").
    assert parse(message(to="kunde@straße.de"))["To"] == "kunde@xn--strae-oqa.de"
    with pytest.raises(AddressNotSendable):
        message(to="änna@example.com")
    with pytest.raises(AddressNotSendable):
        message(to="anna@example.com>\r\nBcc: x@example.com")
    quoted = parse(message(sender=Sender(name='Shop "Best" (Berlin)', address="a@b.example")))
    assert quoted["From"].addresses[0].display_name == 'Shop "Best" (Berlin)'


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[DkimKey, bytes]:
    """A fresh RSA-2048 key and the DNS TXT record that publishes it."""
    pem, record = new_key(tmp_path_factory.mktemp("dkim"))
    return DkimKey("nordlicht.example", "lm2026", pem), record


def test_the_dkim_signature_covers_the_unsubscribe_headers_and_verifies(
    dkim_key: tuple[DkimKey, bytes],
) -> None:
    key, record = dkim_key

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"lm2026._domainkey.nordlicht.example." else b""

    raw = message(key=key)
    assert dkim.verify(raw, dnsfunc=dns)
    signature = parse(raw)["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
    signed = next(part[2:] for part in signature.split(";") if part.startswith("h="))
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= {
        name.lower() for name in signed.split(":")
    }
    tampered = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"
    )
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_list_name_beyond_ascii_keeps_its_phrase_encoded() -> None:
    """RFC 2919's phrase as RFC 2047 words: the name survives (it used to be dropped)."""
    from dataclasses import replace

    rendered = RenderedMessage(subject="Hej", preheader="", html=HTML, text=TEXT)
    raw = build(
        body_of(rendered),
        to="anna@example.com",
        sender=Sender("Kaffebrenneriet Ås", "news@aas.example", reply_to="hei@aas.example"),
        lists=replace(LISTS, list_name="Kaffebrenneriet Ås", feedback_id="42:7:mail.example"),
        message_id=message_id(7, 42, 99, "aas.example"),
        date=WHEN,
    )
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.isascii() and b"=?utf-8?b?" in head.split(b"List-Id:")[1].split(b"\r\nList")[0]
    parsed = parse(raw)
    assert str(parsed["List-Id"]) == "Kaffebrenneriet Ås <nordlicht.lists.loyalmail.example>"
    assert parsed["Reply-To"] == "hei@aas.example"
    assert parsed["Feedback-ID"] == "42:7:mail.example"
