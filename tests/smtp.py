"""A real SMTP peer for the tests: the demo's catcher (aiosmtpd) on a free port, the
settings pointed at it, and what arrived read back with Python's e-mail parser."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from loyalmail.catcher import start_catcher
from loyalmail.settings import get_settings, reset_settings_cache


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_settings_port(port: int) -> Iterator[None]:
    """Point the (read-once) settings at ``port`` for a while, then restore them."""
    previous = os.environ.get("LOYALMAIL_SMTP_PORT")
    os.environ["LOYALMAIL_SMTP_PORT"] = str(port)
    reset_settings_cache()
    assert get_settings().smtp_port == port
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LOYALMAIL_SMTP_PORT", None)
        else:
            os.environ["LOYALMAIL_SMTP_PORT"] = previous
        reset_settings_cache()


@contextmanager
def catcher() -> Iterator[Path]:
    """aiosmtpd (the demo's catcher) on a free port, with the settings pointing at it."""
    outbox = Path(tempfile.mkdtemp(prefix="loyalmail-optin-outbox-"))
    port = free_port()
    controller = start_catcher(outbox, host="127.0.0.1", port=port)
    try:
        with smtp_settings_port(port):
            yield outbox
    finally:
        controller.stop()


def mails_to(outbox: Path, address: str) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    found = [parser.parsebytes(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))]
    return [m for m in found if address in str(m["To"])]


def recipients_in(outbox: Path) -> list[str]:
    """The To address of every message, oldest first; reads only the headers."""
    parser = BytesParser(policy=policy.default)
    found = []
    for path in sorted(outbox.glob("*.eml")):
        with path.open("rb") as handle:
            message = parser.parse(handle, headersonly=True)
        found += [address.addr_spec for address in message["To"].addresses]
    return found


def raw_mails(outbox: Path) -> list[bytes]:
    """Every message as it arrived, oldest first (what a signature was computed over)."""
    return [path.read_bytes() for path in sorted(outbox.glob("*.eml"))]


async def mail_to(outbox: Path, address: str, count: int = 1) -> EmailMessage:
    """Wait (at most 20 s, without blocking the loop) for ``count`` mails to ``address``."""
    async with asyncio.timeout(20):
        while True:
            mine = await asyncio.to_thread(mails_to, outbox, address)
            if len(mine) >= count:
                return mine[-1]
            await asyncio.sleep(0.05)


class RefusingHandler:
    """An SMTP server that knows no such user: 550 for every recipient."""

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.1.1 No such user here"


class Recorder:
    """An SMTP server's handler that counts what it accepted per address, with faults the
    test switches on: answers per address, "come back later" for a while or for the next
    n recipients, a connection dropped after DATA."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        #: The envelope sender (MAIL FROM) of the last message accepted for each address.
        self.senders: dict[str, str] = {}
        self.lock = threading.Lock()
        #: Until this time.monotonic(), every RCPT is answered 421.
        self.busy_until = 0.0
        #: The next n RCPTs are answered 451.
        self.busy_left = 0
        #: A fixed answer for some addresses ("550 5.1.1 No such user").
        self.rcpt_answers: dict[str, str] = {}
        #: Where it listens (set by :func:`recording_server`).
        self.port = 0
        #: Drop the connection after DATA (no reply) for the next n messages.
        self.drop_after_data = 0

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.accepted.values())

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if time.monotonic() < self.busy_until:
            return "421 4.3.2 Service not available, closing channel"
        if self.busy_left > 0:
            self.busy_left -= 1
            return "451 4.3.0 Try again later"
        if address in self.rcpt_answers:
            return self.rcpt_answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            if self.drop_after_data > 0:
                self.drop_after_data -= 1
                drop = True
            else:
                drop = False
                for address in envelope.rcpt_tos:
                    self.accepted[address] += 1
                    self.senders[address] = envelope.mail_from
        if drop:
            server.transport.close()  # the message was never acknowledged: not accepted
            return "421 4.4.2 Connection dropped"
        return "250 OK"


@contextmanager
def recording_server() -> Iterator[Recorder]:
    """A :class:`Recorder` on a free port, with the settings pointing at it meanwhile."""
    recorder = Recorder()
    recorder.port = port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtp_settings_port(port):
            yield recorder
    finally:
        controller.stop()
