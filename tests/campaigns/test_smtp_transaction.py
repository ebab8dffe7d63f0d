"""One message through an open connection without aiosmtplib's sendmail: what the server
receives, the SIZE it is told, and the connection staying usable after each refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from campaigns.sending.smtp_transaction import send_prepared, stuffed
from loyalmail.demo import free_port

MESSAGE = (
    b"From: news@shop.example\r\nTo: anna@example.com\r\nSubject: Dots\r\n\r\n"
    b"first line\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n"
)


@dataclass
class Server:
    """Records every accepted message with its envelope; refuses what it is told to."""

    port: int = 0
    received: list[tuple[str, list[str], list[str], bytes]] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    refuse_sender: str = ""
    refuse_data: str = ""
    drop_after_data: bool = False

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from, envelope.mail_options = address, options
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.drop_after_data:
            server.transport.close()
            return "421 closing"
        if self.refuse_data:
            return self.refuse_data
        content = envelope.original_content or envelope.content
        self.received.append(
            (envelope.mail_from, list(envelope.mail_options), list(envelope.rcpt_tos), content)
        )
        return "250 OK queued"


@pytest.fixture
def server() -> Iterator[Server]:
    handler = Server(port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[aiosmtplib.SMTP]:
    # Connected but not greeted: send_prepared says EHLO itself when nobody has.
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=False)
    await smtp.connect()
    try:
        yield smtp
    finally:
        if smtp.is_connected:
            await smtp.quit()


def test_dot_stuffing_doubles_every_leading_dot_and_ends_the_data() -> None:
    assert stuffed(b"H: v\r\n\r\n.a\r\n..b\r\nc.\r\n") == b"H: v\r\n\r\n..a\r\n...b\r\nc.\r\n.\r\n"


async def test_the_server_receives_the_message_byte_for_byte(
    server: Server, client: aiosmtplib.SMTP
) -> None:
    await send_prepared(client, "news@shop.example", "anna@example.com", MESSAGE)
    assert server.received == [
        ("news@shop.example", [f"SIZE={len(MESSAGE)}"], ["anna@example.com"], MESSAGE)
    ]


async def test_each_refusal_raises_and_leaves_the_connection_usable(
    server: Server, client: aiosmtplib.SMTP
) -> None:
    server.refuse_rcpt = {"gone@example.com": "550 5.1.1 No such user"}
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
        await send_prepared(client, "news@shop.example", "gone@example.com", MESSAGE)
    assert (refused.value.code, refused.value.message) == (550, "5.1.1 No such user")

    server.refuse_data = "554 5.6.0 Message content rejected"
    with pytest.raises(aiosmtplib.SMTPDataError) as data_refused:
        await send_prepared(client, "news@shop.example", "anna@example.com", MESSAGE)
    assert data_refused.value.code == 554
    server.refuse_data = ""

    server.refuse_sender = "553 5.7.1 Sender address rejected"
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as sender_refused:
        await send_prepared(client, "news@shop.example", "anna@example.com", MESSAGE)
    assert sender_refused.value.code == 553
    server.refuse_sender = ""

    # After each refusal the envelope was reset: the next message goes through as usual.
    await send_prepared(client, "news@shop.example", "bert@example.com", MESSAGE)
    assert [(r[2], r[3]) for r in server.received] == [(["bert@example.com"], MESSAGE)]
    assert client.is_connected


async def test_a_connection_dropped_after_data_is_closed_not_reused(
    server: Server, client: aiosmtplib.SMTP
) -> None:
    server.drop_after_data = True
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send_prepared(client, "news@shop.example", "anna@example.com", MESSAGE)
    assert not client.is_connected
    assert server.received == []
