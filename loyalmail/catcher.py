"""A local SMTP server that keeps what it receives as .eml files: the demo's outbox.

Files, not memory, so the web process shows what the catcher (maybe another process) caught.

Each file is named ``<nanoseconds>-<random>-<merchant>.eml``: the merchant whose mail it is,
read when the message is caught from the Feedback-ID our sender sets on every campaign, test
send and opt-in (``<kind>:<merchant>:<installation>``, accounts.domains.identity). A recipient
never writes that header, and a merchant cannot: header values are made by the sender, from
the database, never from the merchant's text. A message without exactly one Feedback-ID of
this installation belongs to nobody (merchant 0) and the Outbox shows it to no merchant.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from loyalmail.settings import get_settings

#: A caught message's id (its file name without ``.eml``); the last field is the merchant.
OUTBOX_ID = re.compile(r"^[0-9]{20}-[0-9a-f]{8}-([0-9]+)$")
NOBODY = 0


def merchant_of(raw: bytes) -> int:
    """The merchant a message was sent for, from its one Feedback-ID; NOBODY otherwise."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    values = headers.get_all("Feedback-ID") or []
    if len(values) != 1:
        return NOBODY
    fields = str(values[0]).strip().split(":")
    if len(fields) != 3 or fields[2] != get_settings().installation_name:
        return NOBODY
    merchant = fields[1]
    # ASCII digits only: str.isdigit() also takes '²' and '١'.
    return int(merchant) if re.fullmatch(r"[0-9]{1,18}", merchant) else NOBODY


def merchant_of_id(mail_id: str) -> int | None:
    """The merchant in a caught message's id; None when the id is not one the catcher makes."""
    match = OUTBOX_ID.match(mail_id)
    return int(match.group(1)) if match else None


class OutboxHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-{merchant_of(raw)}.eml"
        partial = self.directory / f".{name}.part"
        # Written then renamed: a reader never sees half a message.
        partial.write_bytes(raw)
        os.replace(partial, self.directory / name)
        return "250 Message accepted for delivery"


def start_catcher(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    controller = Controller(OutboxHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def read_outbox(
    directory: Path, *, merchant_id: int | None = None, limit: int = 200
) -> list[tuple[str, EmailMessage]]:
    """Newest first: (file id, parsed message), of one merchant (the Outbox page), or of
    everybody when ``merchant_id`` is None (the tests' own catcher)."""
    if not directory.is_dir():
        return []
    files = sorted(
        (
            path
            for path in directory.glob("*.eml")
            if merchant_id is None or merchant_of_id(path.stem) == merchant_id
        ),
        reverse=True,
    )[:limit]
    parser = BytesParser(policy=policy.default)
    return [(p.stem, parser.parsebytes(p.read_bytes())) for p in files]
