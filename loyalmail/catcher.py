"""A local SMTP server that keeps what it receives as .eml files: the demo's outbox.

Files, not memory, so the web process shows what the catcher (maybe another process) caught.
"""

from __future__ import annotations

import os
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class OutboxHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.directory / f".{name}.part"
        # Written then renamed: a reader never sees half a message.
        partial.write_bytes(envelope.original_content or envelope.content)
        os.replace(partial, self.directory / name)
        return "250 Message accepted for delivery"


def start_catcher(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    controller = Controller(OutboxHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def read_outbox(directory: Path, limit: int = 200) -> list[tuple[str, EmailMessage]]:
    """Newest first: (file id, parsed message)."""
    if not directory.is_dir():
        return []
    files = sorted((p for p in directory.glob("*.eml")), reverse=True)[:limit]
    parser = BytesParser(policy=policy.default)
    return [(p.stem, parser.parsebytes(p.read_bytes())) for p in files]
