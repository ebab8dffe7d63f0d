"""The demo's SMTP catcher: real SMTP in, .eml files out, read back by the Outbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from loyalmail import mail
from loyalmail.catcher import read_outbox, start_catcher
from loyalmail.demo import free_port
from loyalmail.settings import get_settings


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[tuple[Controller, Path]]:
    outbox = tmp_path / "outbox"
    controller = start_catcher(outbox, port=free_port())
    try:
        yield controller, outbox
    finally:
        controller.stop()


def message(subject: str, to: str = "kunde@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Nordlicht Kaffeerösterei <news@nordlicht.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Hallo Jürgen,\nunser Herbstkaffee ist da.")
    msg.add_alternative("<p>Hallo Jürgen, <b>unser Herbstkaffee</b> ist da.</p>", subtype="html")
    return msg


async def test_a_sent_message_lands_in_the_outbox_readable(
    catcher: tuple[Controller, Path],
) -> None:
    controller, outbox = catcher
    await aiosmtplib.send(
        message("Grüße aus der Rösterei – 20 % Rabatt"),
        hostname="127.0.0.1",
        port=controller.port,
    )
    caught = read_outbox(outbox)
    assert len(caught) == 1
    file_id, parsed = caught[0]
    assert (outbox / f"{file_id}.eml").is_file()
    assert parsed["Subject"] == "Grüße aus der Rösterei – 20 % Rabatt"
    assert parsed["To"] == "kunde@example.com"
    assert "Kaffeerösterei" in str(parsed["From"])
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None and "Hallo Jürgen" in text.get_content()
    assert html is not None and "<b>unser Herbstkaffee</b>" in html.get_content()
    # No half-written files are left next to the messages.
    assert [p.name for p in outbox.iterdir() if not p.name.endswith(".eml")] == []


async def test_outbox_is_newest_first_and_limited(catcher: tuple[Controller, Path]) -> None:
    controller, outbox = catcher
    for n in range(3):
        await aiosmtplib.send(
            message(f"Mail {n}", to=f"r{n}@example.com"), hostname="127.0.0.1", port=controller.port
        )
    assert [m["Subject"] for _, m in read_outbox(outbox)] == ["Mail 2", "Mail 1", "Mail 0"]
    assert [m["Subject"] for _, m in read_outbox(outbox, limit=1)] == ["Mail 2"]


def test_an_outbox_that_was_never_created_is_empty(tmp_path: Path) -> None:
    assert read_outbox(tmp_path / "nothing-yet") == []


async def test_the_mail_transport_delivers_to_the_catcher(catcher: tuple[Controller, Path]) -> None:
    controller, outbox = catcher
    settings = dataclasses.replace(get_settings(), smtp_host="127.0.0.1", smtp_port=controller.port)
    assert "250" in await mail.ping(settings)
    await mail.send(message("Sent through loyalmail.mail"), settings)
    assert [m["Subject"] for _, m in read_outbox(outbox)] == ["Sent through loyalmail.mail"]
