"""One message through an open SMTP connection: MAIL, RCPT, DATA, without the copies.

aiosmtplib's ``sendmail`` is general: it parses both addresses with :mod:`email.utils` and
converts every lone CR or LF of the message to CRLF with a regular expression, twice (once
to announce the SIZE, once for DATA): ~1.5 ms for a 56 KB newsletter, more than building and
signing the message. Our messages are built with CRLF line ends only
(:mod:`campaigns.sending.mime`) and our addresses checked by :func:`mime.ascii_address`, so
none of that is needed; what remains of SMTP's rules is the dot-stuffing (RFC 5321 §4.5.2),
one ``bytes.replace``.

The commands go through the client's ``execute_command``, which closes the connection on a
timeout or a dropped line, so the pool never lends out a desynchronised one. The errors are
aiosmtplib's (refused sender, refused recipient, DATA refused), as ``sendmail`` raises them.
"""

from __future__ import annotations

import contextlib

import aiosmtplib
from aiosmtplib import (
    SMTPDataError,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

#: RCPT answers that accept the recipient: 250, and 251 "will forward".
RECIPIENT_ACCEPTED = (250, 251)


def stuffed(message: bytes) -> bytes:
    """The DATA payload: a line starting with "." gets a second one, and the end marker.
    ``message`` has CRLF line ends and ends with CRLF (its first line is a header)."""
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def send_prepared(
    client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes
) -> None:
    """Send ``message`` (CRLF line ends, ending with CRLF) from ``sender`` to ``recipient``
    (both plain ASCII addresses, already checked). Raises like ``sendmail``; after a refusal
    the envelope is reset (RSET) so the connection serves the next message."""
    if client.is_ehlo_or_helo_needed:
        # A connection that did not need EHLO to log in has not greeted yet (and its
        # extensions, SIZE among them, are unknown until it has).
        await client.ehlo()
    mail = [b"MAIL", b"FROM:<%s>" % sender.encode("ascii")]
    if client.supports_extension("size"):
        mail.append(b"SIZE=%d" % len(message))  # RFC 1870: the message's octets, CRLF included
    payload = stuffed(message)
    try:
        response = await client.execute_command(*mail)
        if response.code != 250:
            raise SMTPSenderRefused(response.code, response.message, sender)
        response = await client.execute_command(b"RCPT", b"TO:<%s>" % recipient.encode("ascii"))
        if response.code not in RECIPIENT_ACCEPTED:
            raise SMTPRecipientRefused(response.code, response.message, recipient)
        response = await client.execute_command(b"DATA")
        if response.code != 354:
            raise SMTPDataError(response.code, response.message)
        await _payload(client, payload)
    except SMTPResponseException:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            if client.is_connected:
                await client.rset()
        raise


async def _payload(client: aiosmtplib.SMTP, payload: bytes) -> None:
    protocol = client.protocol
    if protocol is None:
        raise SMTPServerDisconnected("Connection lost")
    try:
        # The write and the wait for the answer follow each other with no await between:
        # the answer cannot arrive before the protocol expects it.
        protocol.write(payload)
        response = await protocol.read_response(timeout=client.timeout)
    except (SMTPServerDisconnected, SMTPTimeoutError):
        client.close()
        raise
    if response.code != 250:
        raise SMTPDataError(response.code, response.message)
