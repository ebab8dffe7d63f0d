"""``loyalmail inbound``: the SMTP server for the mail that comes back (docs/sending.md,
"Inbound mail"). aiosmtpd, behind the MTA that is the MX of the inbound and bounce domains.

At RCPT it takes only three kinds of address, and answers 550 to any other (an unknown local
part, a forged or truncated signature, another domain), so nothing else is ever read:

* ``unsubscribe+<merchant>.<campaign>.<recipient>.<signature>@<inbound domain>``, the signed
  ``mailto:`` of List-Unsubscribe (:mod:`campaigns.bounces.unsubscribe_address`): the mail
  unsubscribes exactly that recipient of that merchant, as the one-click POST does
  (:mod:`tracking.unsubscribe`: the customers' unsubscribe, logged with the source "mail",
  and the report's unsubscribe event). A test send's address (recipient 0), an erased
  customer or a replayed mail changes nothing, with the same answer.
* ``<bounce local part>+<…>@<bounce domain>``, a signed VERP return path
  (:mod:`campaigns.bounces.verp`): the mail is read as a DSN or ARF report and recorded as
  ``loyalmail bounces read-dsn`` and the webhooks do (:mod:`campaigns.bounces.services`); a
  hard bounce or complaint suppresses the address. Mail that is no report (an out-of-office
  reply to the return path) is accepted and ignored, with the reason in the answer:
  refusing it would only send a bounce back to whoever wrote it.
* ``unsubscribe@<inbound domain>`` (or of the mail_from domain), the address of mail sent
  before the signed ones: the subject carries the tracking token (``unsubscribe <token>``).
  Without a valid token the message is refused at DATA (550): nothing changes, and the
  writer learns that the unsubscribe did not work.

A message over ``inbound_max_message_bytes`` is refused with 552 by aiosmtpd, which counts
the bytes as they arrive and keeps none of them once past the limit. A database out of
reach is a 451: the MTA delivers the message again later.

Why here, in the assembly beside the scheduler and the demo's catcher, and not in an app: it
is an edge, like the web app, that takes a protocol's requests and hands them to the services
of several apps (campaigns' recipients and bounces, customers' unsubscribe, tracking's
events); no app may import them all (tracking depends on campaigns), and no service speaks
SMTP. It never speaks HTTP either: no litestar here. It runs as a process of its own
(``loyalmail inbound``), or inside ``serve`` and ``demo`` without Redis, like the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller
from piccolo.engine.postgres import PostgresEngine

from campaigns import services as campaigns
from campaigns.bounces import services as bounces
from campaigns.bounces import unsubscribe_address, verp
from customers.services import unsubscribe as unsubscribing
from loyalmail import database
from loyalmail.errors import LoyalmailError, NotFound, ServiceUnavailable
from loyalmail.settings import get_settings
from tracking import events

log = logging.getLogger("loyalmail.inbound")

#: RFC 5321 §4.5.3.1.8: a server must take at least 100 recipients of one message.
MOST_RECIPIENTS = 100
#: PostgreSQL connections ``loyalmail inbound`` keeps open for its handler's transactions.
POOL_SIZE = 4
#: The header block read for a legacy unsubscribe's subject.
HEADER_BYTES = 65_536

OK_RCPT = "250 2.1.5 OK"
UNKNOWN_RCPT = "550 5.1.1 No such recipient here"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
DONE = "250 2.0.0 OK"
NO_TOKEN = "550 5.7.1 No valid unsubscribe token in the subject: nothing was changed"
TRY_LATER = "451 4.3.0 Cannot record this now, try again later"

#: The legacy subject: ``unsubscribe <tracking token>``, maybe after a "Re:" or "Fwd:".
_LEGACY_SUBJECT = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_.\-]{5,200})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    ref: verp.RecipientRef


@dataclass(frozen=True, slots=True)
class Bounce:
    address: str


@dataclass(frozen=True, slots=True)
class LegacyUnsubscribe:
    pass


Target = Unsubscribe | Bounce | LegacyUnsubscribe


def target_of(address: str) -> Target | None:
    """What a mail to ``address`` is for; None: not an address of ours (550 at RCPT)."""
    ref = unsubscribe_address.parse(address)
    if ref is not None:
        return Unsubscribe(ref)
    if _is_return_path(address):
        return Bounce(address)
    if unsubscribe_address.is_legacy(address) or _is_legacy_of_mail_from(address):
        return LegacyUnsubscribe()
    return None


def _domain(address: str) -> str:
    return address.strip().removeprefix("<").removesuffix(">").rpartition("@")[2].lower()


def _is_return_path(address: str) -> bool:
    bounce_address = get_settings().bounce_address
    # parse_return_path leaves the domain out (a report may quote a rewritten one); here
    # the domain is where the mail was sent, and only the bounce domain is ours.
    return (
        bool(bounce_address)
        and _domain(address) == _domain(bounce_address)
        and verp.parse_return_path(address) is not None
    )


def _is_legacy_of_mail_from(address: str) -> bool:
    # Mail sent before the signed addresses named unsubscribe@ of the mail_from domain.
    settings = get_settings()
    legacy = f"{unsubscribe_address.LOCAL_PART}@{_domain(settings.mail_from)}"
    return address.strip().removeprefix("<").removesuffix(">").lower() == legacy


async def unsubscribe(ref: verp.RecipientRef, user_agent: str = "") -> bool:
    """Unsubscribe the recipient a signed address names, as the one-click POST does; whether
    anything changed. Recipient 0 (a test send), a row that is not the merchant's and
    campaign's, an erased customer or one already unsubscribed: nothing changes."""
    if ref.recipient_id == 0:
        return False
    try:
        customer_id = await campaigns.frozen_customer(
            ref.merchant_id, ref.campaign_id, ref.recipient_id
        )
    except NotFound:
        return False
    return await _unsubscribe(ref, customer_id, user_agent)


async def _unsubscribe(ref: events.RecipientRef, customer_id: int, user_agent: str) -> bool:
    try:
        changed = await unsubscribing.unsubscribe_by_mail(
            ref.merchant_id, customer_id, user_agent=user_agent[:300]
        )
    except NotFound:  # erased meanwhile
        return False
    if changed:  # the campaign report's unsubscribe, as tracking.unsubscribe records it
        await events.record(events.event_for(ref, "unsubscribe", datetime.now(UTC)))
    return changed


async def legacy_unsubscribe(token: str, user_agent: str = "") -> bool | None:
    """The old ``unsubscribe@`` with the tracking token in the subject; None when the token
    is not a valid unsubscribe token (or names nobody of ours any more)."""
    try:
        found = await campaigns.token_recipient("unsubscribe", token)
    except NotFound:
        return None
    if found.customer_id is None:  # a test send has no one to unsubscribe
        return False
    return await _unsubscribe(found, found.customer_id, user_agent)


def _headers(raw: bytes) -> Any:
    return BytesHeaderParser(policy=policy.default).parsebytes(raw[:HEADER_BYTES])


def _text(headers: Any, name: str) -> str:
    try:
        return str(headers.get(name, "") or "")
    except Exception:  # a garbled header: as if absent
        return ""


async def receive(raw: bytes, recipients: list[str]) -> str:
    """Act on one message for the recipients accepted at RCPT; the SMTP answer."""
    targets = [(address, target_of(address)) for address in recipients]
    headers = _headers(raw)
    user_agent = _text(headers, "User-Agent") or _text(headers, "X-Mailer")
    answers: list[str] = []
    legacy_token_missing = False
    for address, target in targets:
        if isinstance(target, Unsubscribe):
            changed = await unsubscribe(target.ref, user_agent)
            log.info("mailed unsubscribe of %s: %s", target.ref, "done" if changed else "no change")
        elif isinstance(target, Bounce):
            summary = await bounces.process_report(raw, address)
            answers.append(
                f"{summary.processed} recorded ({summary.suppressed} suppressed),"
                f" {summary.duplicates} duplicate, {len(summary.ignored)} ignored"
                + "".join(f"; {i.event}: {i.reason}" for i in summary.ignored[:3])
            )
            log.info("report to %s: %s", address, answers[-1])
        elif isinstance(target, LegacyUnsubscribe):
            found = _LEGACY_SUBJECT.search(_text(headers, "Subject"))
            outcome = None if found is None else await legacy_unsubscribe(found[1], user_agent)
            legacy_token_missing = outcome is None
            log.info("legacy unsubscribe: %s", "no valid token" if outcome is None else outcome)
    if legacy_token_missing and all(isinstance(t, LegacyUnsubscribe) for _a, t in targets):
        return NO_TOKEN
    return _one_line(f"{DONE} {'; '.join(answers)}".strip())


def _one_line(answer: str) -> str:
    """An SMTP reply line: printable ASCII (a report's addresses are the sender's text), and
    within the 512 characters of RFC 5321 §4.5.3.1.5."""
    return "".join(c if " " <= c <= "~" else "?" for c in answer)[:500]


class InboundHandler:
    """aiosmtpd's handler: judges each RCPT, acts at DATA."""

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if len(envelope.rcpt_tos) >= MOST_RECIPIENTS:
            return TOO_MANY_RCPTS
        if target_of(address) is None:
            log.info("refused RCPT %r from %s", address[:320], session.peer)
            return UNKNOWN_RCPT
        envelope.rcpt_tos.append(address)
        return OK_RCPT

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        try:
            return await receive(raw, list(envelope.rcpt_tos))
        except (OSError, sqlite3.OperationalError, ServiceUnavailable) as exc:
            log.warning("inbound message not recorded, the MTA will try again: %s", exc)
            return TRY_LATER
        except LoyalmailError as exc:
            log.warning("inbound message refused: %s", exc)
            return _one_line(f"550 5.6.0 {exc}")
        except Exception:  # a bug must not lose the message: the MTA keeps it and retries
            log.exception("inbound message failed")
            return TRY_LATER


def start_inbound(host: str | None = None, port: int | None = None) -> Controller:
    """The server on a thread of its own (its own event loop); ``.stop()`` ends it."""
    settings = get_settings()
    # aiosmtpd logs every SMTP command at INFO; what the server did is logged here.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(
        InboundHandler(),
        hostname=host or settings.inbound_host,
        port=settings.inbound_port if port is None else port,
        # The banner's name: without it aiosmtpd asks DNS for this machine's name.
        server_hostname=unsubscribe_address.inbound_domain() or "localhost",
        data_size_limit=settings.inbound_max_message_bytes,
        decode_data=False,
    )
    controller.start()
    return controller


def open_pool(server: Controller, size: int = POOL_SIZE) -> None:
    """A PostgreSQL connection pool on the server's event loop, for the process of its own:
    without one every transaction of the handler opens a connection (about four a mail).
    SQLite: nothing to do. A database out of reach now: no pool, and the handler answers
    451 until it is back."""
    engine = database.engine()
    if isinstance(engine, PostgresEngine):
        opening = engine.start_connection_pool(min_size=1, max_size=size)
        try:
            asyncio.run_coroutine_threadsafe(opening, server.loop).result(timeout=30)
        except Exception as exc:
            log.warning("no connection pool, every transaction connects anew: %s", exc)


def close_pool(server: Controller) -> None:
    engine = database.engine()
    if isinstance(engine, PostgresEngine):
        closing = engine.close_connection_pool()
        try:
            asyncio.run_coroutine_threadsafe(closing, server.loop).result(timeout=30)
        except Exception as exc:  # stopping anyway
            log.warning("closing the connection pool failed: %s", exc)
