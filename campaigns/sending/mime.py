"""One recipient's e-mail as bytes: headers, a text and an HTML part, optionally DKIM-signed.

Built by hand, not with :mod:`email`'s generator: a send builds hundreds of 50 KB messages a
second per worker, and the generator manages ~285 a second here. The hand-built message is
plain RFC 5322 + MIME that Python's parser (and every mail client) reads back:

* Header values never carry a line break: every control character (CR, LF, NUL, U+2028 …)
  becomes a space before anything else (:func:`templates.message.header_safe`). Non-ASCII
  text, and text that merely looks like an RFC 2047 encoded word (``=?utf-8?q?…?=``, the
  trick of CVE-2024-6923 to smuggle an encoded newline to a client), is sent as UTF-8 encoded
  words, so a client shows it literally.
* Addresses are ASCII: the domain of an internationalised address is IDNA-encoded; a
  non-ASCII local part would need SMTPUTF8 and is refused (:class:`AddressNotSendable`) —
  the customers app's one rule (``customers.schemas.wire_address``), which already keeps
  such addresses out at import, sign-up and the customer API.
* Both parts are quoted-printable UTF-8 with CRLF line ends, lines ≤ 76 characters
  (:mod:`campaigns.sending.qp`, encoded by the caller). The boundary starts with ``=_``,
  which quoted-printable text can never contain.
* The Message-ID is derived from merchant, campaign and recipient: a retried message keeps
  its Message-ID, so a receiver can tell it is the same one.
* RFC 8058: ``List-Unsubscribe`` with the HTTPS one-click URL and a mailto, and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``; the DKIM signature
  (:mod:`accounts.domains.signing`) covers both, and names From twice (oversigned).
* Reply-To (the merchant's contact address) and Gmail's Feedback-ID, both signed.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import quote

from accounts.domains.signing import DkimKey, sign
from campaigns.sending import qp
from customers.schemas import wire_address
from loyalmail.errors import ValidationFailed
from templates.message import RenderedMessage, header_safe

#: Raw bytes per encoded word: base64 of 45 bytes is 60 characters, the word 72 (< 75).
_WORD_BYTES = 45
#: Printable ASCII that needs no quoting in a display name (RFC 5322 atext and space).
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")


class AddressNotSendable(ValueError):
    """An address this sender cannot put into an ASCII message (a non-ASCII local part)."""


@dataclass(frozen=True, slots=True)
class Sender:
    name: str
    address: str
    #: Where answers go (the merchant's contact address); "" for none.
    reply_to: str = ""


@dataclass(frozen=True, slots=True)
class ListHeaders:
    #: ``<slug.installation-domain>`` without the brackets, e.g. "nordlicht.lists.example".
    list_id: str
    list_name: str
    #: The recipient's one-click unsubscribe URL (HTTPS, signed token).
    unsubscribe_url: str
    #: The recipient's signed unsubscribe address (campaigns.bounces.unsubscribe_address):
    #: a mail to it unsubscribes them, whatever the subject says.
    unsubscribe_mailto: str
    unsubscribe_subject: str = "unsubscribe"
    #: Gmail's Feedback-ID (``campaign:merchant:installation``): complaint rates per campaign
    #: and merchant in Postmaster Tools. "" for none.
    feedback_id: str = ""


def message_id(merchant_id: int, campaign_id: int, recipient_id: int, domain: str) -> str:
    return f"<lm.{merchant_id}.{campaign_id}.{recipient_id}@{ascii_domain(domain)}>"


def ascii_domain(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise AddressNotSendable(f"the domain {domain!r} has no ASCII form") from exc


def ascii_address(address: str) -> str:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise AddressNotSendable(f"{address!r} is not an e-mail address")
    if any(c in local + domain for c in "<>\r\n\x00, ") or header_safe(local) != local:
        raise AddressNotSendable(f"{address!r} is not an e-mail address")
    if f"{local}@{domain}".isascii():
        return f"{local}@{domain}"
    # The customers app's one rule (what its doors accept, this sends): an IDNA domain,
    # never a non-ASCII local part.
    try:
        return wire_address(f"{local}@{domain}")
    except ValidationFailed as exc:
        reason = "needs SMTPUTF8 (a non-ASCII local part)" if not local.isascii() else "invalid"
        raise AddressNotSendable(f"{address!r}: {reason}") from exc


def _encoded_words(text: str) -> str:
    """``text`` as UTF-8 base64 encoded words, folded one per line; no character is split."""
    words: list[bytes] = []
    chunk = b""
    for char in text:
        raw = char.encode()
        if len(chunk) + len(raw) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += raw
    if chunk or not words:
        words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


def header_text(value: str) -> str:
    """An unstructured header value (Subject): one line of plain ASCII, or encoded words."""
    value = header_safe(value).strip()
    if value.isascii() and "=?" not in value and len(value) <= 900:
        return value
    return _encoded_words(value)


def mailbox(name: str, address: str) -> str:
    """``Name <address>``: the name as written, quoted or encoded as it needs."""
    address = ascii_address(address)
    name = header_safe(name).strip()
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        if _ATEXT.match(name):
            return f"{name} <{address}>"
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{_encoded_words(name)} <{address}>"


@dataclass(frozen=True, slots=True)
class Body:
    """A message's subject and its two parts, already quoted-printable (CRLF line ends)."""

    subject: str
    text: bytes
    html: bytes
    #: Both parts are known to have nothing DKIM's relaxed canonicalisation rewrites
    #: (:func:`campaigns.sending.qp.is_relaxed`): the signer need not search them.
    relaxed: bool = False


def body_of(rendered: RenderedMessage) -> Body:
    """A rendered message's body encoded whole (test sends; a campaign's workers fill parts
    encoded once per campaign instead: :mod:`campaigns.sending.qp`)."""
    return Body(rendered.subject, qp.encode(rendered.text), qp.encode(rendered.html))


def build(
    body: Body,
    *,
    to: str,
    sender: Sender,
    lists: ListHeaders,
    message_id: str,
    date: datetime,
    dkim_key: DkimKey | None = None,
) -> bytes:
    """The complete message, CRLF line ends, ready for SMTP DATA."""
    boundary = f"=_lm_{secrets.token_hex(12)}"
    list_name = header_safe(lists.list_name).replace('"', "'").strip()
    list_id = f"<{ascii_domain(header_safe(lists.list_id).strip())}>"
    if list_name:
        # RFC 2919's phrase: quoted ASCII, or RFC 2047 words for a name such as "Café Åsa".
        phrase = f'"{list_name}"' if list_name.isascii() else _encoded_words(list_name)
        list_id = f"{phrase} {list_id}"
    headers = [
        f"Date: {format_datetime(date)}",
        f"From: {mailbox(sender.name, sender.address)}",
        *([f"Reply-To: {ascii_address(sender.reply_to)}"] if sender.reply_to else []),
        f"To: {ascii_address(to)}",
        f"Subject: {header_text(body.subject)}",
        f"Message-ID: {header_safe(message_id)}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        f"List-Id: {list_id}",
        f"List-Unsubscribe: <{header_safe(lists.unsubscribe_url)}>,"
        f"\r\n <mailto:{ascii_address(lists.unsubscribe_mailto)}"
        f"?subject={quote(header_safe(lists.unsubscribe_subject))}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        *([f"Feedback-ID: {header_safe(lists.feedback_id)}"] if lists.feedback_id else []),
        "Precedence: bulk",
    ]
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    parts = b"".join(
        b"--%s\r\nContent-Type: %s; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n"
        % (boundary.encode(), content_type, encoded.rstrip(b"\r\n"))
        for content_type, encoded in ((b"text/plain", body.text), (b"text/html", body.html))
    )
    message = head + parts + b"--%s--\r\n" % boundary.encode()
    return message if dkim_key is None else sign(message, dkim_key, relaxed=body.relaxed)
