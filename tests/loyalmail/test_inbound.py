"""``loyalmail inbound`` on SQLite and PostgreSQL: the real SMTP server on a free port, real
mail sent to it with smtplib (and a raw socket for the 100 MB message). A mail to the
``mailto:`` of a sent message's List-Unsubscribe unsubscribes exactly that recipient; DSN and
ARF reports to the VERP address suppress; everything else is refused and changes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from accounts.schemas import MerchantOut
from campaigns.bounces.unsubscribe_address import address
from campaigns.sending import dispatch
from customers.services import customers
from customers.tables import ConsentEvent, Customer
from loyalmail import database
from loyalmail.inbound import start_inbound
from loyalmail.settings import get_settings
from tests.campaigns.test_bounces import Sent, bounces_of, sent_messages, suppressed
from tests.campaigns.test_dsn import sample
from tests.campaigns.test_sending import ready
from tests.conftest import TEST_DATABASE_URL, Jobs, make_merchant
from tests.settings_env import settings_env
from tests.smtp import free_port, mail_to
from tracking import tokens
from tracking.tables import TrackingEvent

DOMAIN = "in.loyalmail.example"
BOUNCE_ADDRESS = "bounces@lists.example"
#: Small, so that going past it is quick; the 100 MB message goes far past it.
LIMIT = 1_000_000
ROOT = Path(__file__).resolve().parents[2]
LOYALMAIL = str(Path(sys.executable).parent / "loyalmail")
MAILTO = re.compile(r"<mailto:([^?>]+)\?subject=([^>]*)>")
UNSUBSCRIBE_MAIL = b"Subject: unsubscribe\r\nUser-Agent: TestMail/1.0\r\n\r\nPlease.\r\n"


@pytest.fixture(scope="module", autouse=True)
def inbound() -> Iterator[int]:
    """The server on a free port, with the settings it reads; its port."""
    values = {
        "LOYALMAIL_INBOUND_DOMAIN": DOMAIN,
        "LOYALMAIL_BOUNCE_ADDRESS": BOUNCE_ADDRESS,
        "LOYALMAIL_INBOUND_MAX_MESSAGE_BYTES": str(LIMIT),
    }
    with settings_env(values):
        port = free_port()
        server = start_inbound("127.0.0.1", port)
        try:
            yield port
        finally:
            server.stop()


@dataclass(frozen=True)
class Answer:
    #: The code of each RCPT, then of DATA (None: not sent, no recipient was taken).
    rcpts: list[int]
    data: int | None = None
    text: str = ""


def exchange(port: int, recipients: list[str], message: bytes, sender: str) -> Answer:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("client.example")
        code, text = client.mail(sender)
        assert code == 250, text
        codes = [client.rcpt(recipient)[0] for recipient in recipients]
        if 250 not in codes:
            return Answer(codes)
        reply: bytes | str
        try:  # smtplib sends bytes as they are: SMTP wants CRLF
            code, reply = client.data(message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        except smtplib.SMTPDataError as exc:
            code, reply = exc.smtp_code, exc.smtp_error
        return Answer(codes, code, reply.decode() if isinstance(reply, bytes) else reply)


async def send(
    port: int, *recipients: str, message: bytes = UNSUBSCRIBE_MAIL, sender: str = "a@example.com"
) -> Answer:
    return await asyncio.to_thread(exchange, port, list(recipients), message, sender)


async def subscribed(merchant: MerchantOut, addresses: list[str]) -> list[bool]:
    rows = await Customer.select(Customer.email_normalized, Customer.subscribed).where(
        Customer.merchant == merchant.id
    )
    found = {row["email_normalized"]: row["subscribed"] for row in rows}
    return [found[a.lower()] for a in addresses]


async def consent_of(merchant: MerchantOut, email: str) -> list[tuple[str, str, str]]:
    rows = await (
        ConsentEvent.select(ConsentEvent.action, ConsentEvent.source, ConsentEvent.user_agent)
        .where((ConsentEvent.merchant == merchant.id) & (ConsentEvent.email == email))
        .order_by(ConsentEvent.id)
    )
    return [(r["action"], r["source"], r["user_agent"]) for r in rows]


async def withdrawals(merchant: MerchantOut) -> int:
    return await ConsentEvent.count().where(
        (ConsentEvent.merchant == merchant.id) & (ConsentEvent.action == "withdrawn")
    )


def unsubscribe_address_of(sent: Sent) -> str:
    return address(sent.merchant.id, sent.campaign_id, sent.recipient_id)


# --- unsubscribes ------------------------------------------------------------------------------


async def test_a_mail_to_a_sent_messages_mailto_unsubscribes_exactly_that_recipient(
    merchant: MerchantOut, jobs: Jobs, smtp: Path, inbound: int
) -> None:
    campaign_id, addresses = await ready(merchant, 3)
    other = await make_merchant()
    other_campaign, other_addresses = await ready(other, 2)
    await dispatch.send_now(merchant.id, campaign_id)
    await dispatch.send_now(other.id, other_campaign)
    await asyncio.to_thread(jobs.drain)

    message = await mail_to(smtp, addresses[1])
    found = MAILTO.search(str(message["List-Unsubscribe"]))
    assert found is not None, message["List-Unsubscribe"]
    mailto, subject = found[1], unquote(found[2])
    assert mailto.startswith("unsubscribe+") and mailto.endswith(f"@{DOMAIN}")
    assert subject == "unsubscribe"
    others = [(await mail_to(smtp, a))["List-Unsubscribe"] for a in (addresses[0], addresses[2])]
    assert all(mailto not in str(header) for header in others)  # each recipient has their own

    mail = f"Subject: {subject}\r\nUser-Agent: TestMail/1.0\r\n\r\n\r\n".encode()
    answer = await send(inbound, mailto, message=mail, sender=addresses[1])
    assert (answer.rcpts, answer.data) == ([250], 250), answer
    assert await subscribed(merchant, addresses) == [True, False, True]
    assert await subscribed(other, other_addresses) == [True, True]
    log = await consent_of(merchant, addresses[1])
    assert log == [("withdrawn", "mail", "TestMail/1.0")]
    assert await withdrawals(other) == 0
    # The campaign report's unsubscribe, as the one-click POST records it.
    events = await TrackingEvent.select(TrackingEvent.kind, TrackingEvent.merchant).where(
        TrackingEvent.campaign.is_in([campaign_id, other_campaign])
    )
    assert events == [{"kind": "unsubscribe", "merchant": merchant.id}]

    # The same mail again (a replay, or the client sending twice) changes nothing more.
    again = await send(inbound, mailto, message=mail, sender=addresses[1])
    assert (again.rcpts, again.data) == ([250], 250)
    assert len(await consent_of(merchant, addresses[1])) == 1
    assert await TrackingEvent.count().where(TrackingEvent.campaign == campaign_id) == 1


async def test_forged_truncated_foreign_and_unknown_addresses_are_refused_at_rcpt(
    merchant: MerchantOut, inbound: int
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    good = unsubscribe_address_of(anna)
    local = good.partition("@")[0]
    signature = local.rpartition(".")[2]
    other = "a" if signature[0] != "a" else "b"
    forged = [
        f"{local[: -len(signature)]}{other}{signature[1:]}@{DOMAIN}",  # another signature
        f"{local[:-1]}@{DOMAIN}",  # truncated
        f"{local.rpartition('.')[0]}@{DOMAIN}",  # no signature
        # Bert's ids under Anna's signature.
        good.replace(f".{anna.recipient_id:x}.", f".{bert.recipient_id:x}."),
        f"{local}@other.example",  # another domain
        f"unsubscribe+@{DOMAIN}",  # no token
        f"postmaster@{DOMAIN}",
        f"info@{DOMAIN}",
        # A return path at the unsubscribe domain, an unsubscribe address at the bounce one.
        anna.return_path.replace("@lists.example", f"@{DOMAIN}"),
        good.replace(f"@{DOMAIN}", "@lists.example"),
        # A return path with the unsubscribe address's signature.
        f"bounces+{local.partition('+')[2]}@lists.example",
        BOUNCE_ADDRESS,
        "anna@example.com",
    ]
    refused = await send(inbound, *forged)
    assert refused.rcpts == [550] * len(forged) and refused.data is None
    assert await subscribed(merchant, [anna.address, bert.address]) == [True, True]
    assert await withdrawals(merchant) == 0
    assert await bounces_of(merchant) == []

    # Among forged ones, only the valid address is taken, and only its recipient leaves.
    mixed = await send(inbound, forged[3], good, forged[0])
    assert (mixed.rcpts, mixed.data) == ([550, 250, 550], 250)
    assert await subscribed(merchant, [anna.address, bert.address]) == [False, True]


async def test_a_test_sends_or_an_erased_customers_address_changes_nothing(
    merchant: MerchantOut, inbound: int
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    erased = await Customer.select(Customer.id).where(
        (Customer.merchant == merchant.id) & (Customer.email_normalized == bert.address)
    )
    await customers.erase_customer(merchant.id, erased[0]["id"])
    test_send = address(merchant.id, anna.campaign_id, 0)
    answer = await send(inbound, test_send, unsubscribe_address_of(bert))
    # Accepted (the addresses are genuine), with the answer of any other.
    assert (answer.rcpts, answer.data) == ([250, 250], 250)
    assert await subscribed(merchant, [anna.address]) == [True]
    assert await withdrawals(merchant) == 0
    assert await TrackingEvent.count().where(TrackingEvent.campaign == anna.campaign_id) == 0


async def test_the_old_address_acts_on_the_token_in_the_subject_only(
    merchant: MerchantOut, inbound: int
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    legacy = f"unsubscribe@{DOMAIN}"

    def token(purpose: tokens.Purpose, sent: Sent) -> str:
        return tokens.make(
            purpose, tokens.TokenData(sent.merchant.id, sent.campaign_id, sent.recipient_id)
        )

    unsubscribe = token("unsubscribe", anna)
    for subject in (
        "unsubscribe",  # no token
        "please take me off your list",
        f"unsubscribe {token('click', anna)}",  # made for another purpose
        f"unsubscribe {unsubscribe[:-4]}",  # truncated
    ):
        mail = f"Subject: {subject}\r\n\r\n\r\n".encode()
        answer = await send(inbound, legacy, message=mail)
        assert (answer.rcpts, answer.data) == ([250], 550), (subject, answer)
        assert "nothing was changed" in answer.text
    assert await subscribed(merchant, [anna.address, bert.address]) == [True, True]
    assert await withdrawals(merchant) == 0

    mail = f"Subject: Re: unsubscribe {unsubscribe}\r\n\r\n\r\n".encode()
    answer = await send(inbound, legacy.upper(), message=mail)
    assert (answer.rcpts, answer.data) == ([250], 250), answer
    assert await subscribed(merchant, [anna.address, bert.address]) == [False, True]
    assert await consent_of(merchant, anna.address) == [("withdrawn", "mail", "")]


# --- bounces and complaints ----------------------------------------------------------------------


async def test_reports_to_the_return_path_suppress_once(
    merchant: MerchantOut, inbound: int
) -> None:
    anna, bert, cleo = await sent_messages(merchant, 3)
    # Only the address it is delivered to says who: the report names nobody we know.
    dsn = sample("postfix_hard.eml", recipient=anna.address, message_id="<x@y>", return_path="")
    answer = await send(inbound, anna.return_path, message=dsn, sender="")
    assert (answer.rcpts, answer.data) == ([250], 250), answer
    assert "1 recorded (1 suppressed)" in answer.text
    assert await suppressed(anna) == "bounced"

    arf = sample("yahoo_arf.eml", recipient=bert.address, message_id=bert.message_id)
    answer = await send(inbound, bert.return_path.upper(), message=arf, sender="fbl@yahoo.example")
    assert (answer.rcpts, answer.data) == ([250], 250), answer
    assert await suppressed(bert) == "complaint"

    again = await send(inbound, anna.return_path, message=dsn, sender="")
    assert again.data == 250 and "1 duplicate" in again.text
    # An out-of-office reply to the return path: accepted, ignored, the reason said.
    reply = sample("out_of_office.eml", recipient=cleo.address, message_id=cleo.message_id)
    ignored = await send(inbound, cleo.return_path, message=reply, sender=cleo.address)
    assert ignored.data == 250 and "not_a_report" in ignored.text, ignored
    assert await suppressed(cleo) is None
    kinds = [(row["recipient"], row["kind"]) for row in await bounces_of(merchant)]
    assert kinds == [(anna.recipient_id, "hard"), (bert.recipient_id, "complaint")]


# --- size --------------------------------------------------------------------------------------


async def smtp_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    lines = []
    while True:
        line = await reader.readline()
        assert line, "the server closed the connection"
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), b"".join(lines)


async def huge_then_small(port: int, recipient: str, size: int) -> list[int]:
    """Over one connection: a MAIL that declares ``size``, then ``size`` bytes of DATA (1 MB
    at a time, never held here), then a small message; every answer's code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    codes = [(await smtp_reply(reader))[0]]

    async def command(line: bytes) -> int:
        writer.write(line + b"\r\n")
        await writer.drain()
        return (await smtp_reply(reader))[0]

    codes.append(await command(b"EHLO client.example"))
    codes.append(await command(b"MAIL FROM:<a@example.com> SIZE=%d" % size))
    for _ in range(2):
        codes.append(await command(b"MAIL FROM:<a@example.com>"))
        codes.append(await command(b"RCPT TO:<%s>" % recipient.encode()))
        codes.append(await command(b"DATA"))
        writer.write(UNSUBSCRIBE_MAIL)
        if len(codes) < 8:
            chunk = (b"x" * 998 + b"\r\n") * 1000
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        codes.append(await command(b"."))
    codes.append(await command(b"QUIT"))
    writer.close()
    await writer.wait_closed()
    return codes


async def test_a_100_mb_message_is_refused_and_the_server_goes_on(
    merchant: MerchantOut, inbound: int
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    codes = await huge_then_small(inbound, unsubscribe_address_of(anna), 100 * 2**20)
    # 552 for the declared size, 552 after the 100 MB; the next message on the same
    # connection is taken.
    assert codes == [220, 250, 552, 250, 250, 354, 552, 250, 250, 354, 250, 221], codes
    # Nothing of it was held: this process (the server's thread is in it) grew far less.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 50 * 1024
    assert await subscribed(merchant, [anna.address, bert.address]) == [False, True]
    assert await withdrawals(merchant) == 1

    # Just over the limit, through smtplib: 552, and nothing done.
    mail = UNSUBSCRIBE_MAIL + (b"y" * 998 + b"\r\n") * (LIMIT // 1000 + 1)
    over = await send(inbound, unsubscribe_address_of(bert), message=mail)
    assert (over.rcpts, over.data) == ([250], 552), over
    assert await subscribed(merchant, [bert.address]) == [True]


@pytest.mark.filterwarnings("ignore:.*Unable to connect to database")
async def test_without_the_database_the_mta_is_told_to_try_again(
    merchant: MerchantOut, inbound: int
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    working = database.engine()
    # Nothing listens on port 1: every connection is refused, as when PostgreSQL is down.
    database.use_engine(database.make_engine("postgresql://postgres@127.0.0.1:1/loyalmail_test"))
    try:
        answer = await send(inbound, unsubscribe_address_of(anna))
    finally:
        database.use_engine(working)
    assert (answer.rcpts, answer.data) == ([250], 451), answer
    assert await subscribed(merchant, [anna.address]) == [True]
    # Delivered again later, it is done.
    again = await send(inbound, unsubscribe_address_of(anna))
    assert again.data == 250 and await subscribed(merchant, [anna.address]) == [False]


# --- the command -------------------------------------------------------------------------------


async def test_loyalmail_inbound_runs_as_a_process_of_its_own(
    merchant: MerchantOut, tmp_path: Path
) -> None:
    """The production set-up: the command in its own process, on this test's database (with
    its connection pool on PostgreSQL), stopped by SIGTERM."""
    anna, bert = await sent_messages(merchant, 2)
    engine = database.engine()
    url = TEST_DATABASE_URL if database.is_postgres(engine) else f"sqlite:///{engine.path}"  # type: ignore[attr-defined]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALMAIL_")}
    env.update(
        {
            "LOYALMAIL_DATA_DIR": str(tmp_path),
            "LOYALMAIL_DATABASE_URL": url,
            "LOYALMAIL_SECRET_KEY": get_settings().secret_key,  # what signed the addresses
            "LOYALMAIL_INBOUND_DOMAIN": DOMAIN,
            "LOYALMAIL_BOUNCE_ADDRESS": BOUNCE_ADDRESS,
        }
    )
    process = await asyncio.create_subprocess_exec(
        *(LOYALMAIL, "inbound", "--port", str(port)),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        started = f"Receiving mail on 127.0.0.1:{port} for unsubscribe+…@{DOMAIN} and bounces+…@"
        lines = [(await process.stdout.readline()).decode()]
        while lines[-1] and started not in lines[-1]:
            lines.append((await process.stdout.readline()).decode())
        assert started in lines[-1], lines
        forged = f"unsubscribe+1.2.3.abcdefghijkl@{DOMAIN}"
        answer = await send(port, forged, f"nobody@{DOMAIN}", unsubscribe_address_of(bert))
        assert (answer.rcpts, answer.data) == ([550, 550, 250], 250), answer
        dsn = sample("postfix_hard.eml", recipient=anna.address, message_id=anna.message_id)
        bounced = await send(port, anna.return_path, message=dsn, sender="")
        assert (bounced.rcpts, bounced.data) == ([250], 250), bounced
    finally:
        process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    assert process.returncode == 0, output
    assert "Stopped." in output and "Traceback" not in output, output
    assert "no connection pool" not in output and "WARNING" not in output, output
    assert await subscribed(merchant, [anna.address, bert.address]) == [True, False]
    assert await suppressed(anna) == "bounced" and await suppressed(bert) is None
