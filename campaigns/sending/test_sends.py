"""Test sends: the campaign as a chosen customer (or a sample person) would get it, to the
marketer's own addresses, paid from the month's ten test sends.

"Own addresses" are the login addresses of the merchant's marketers: they are known to be
the team's, so a test send can never become a way to mail strangers. At most five at a
time. The request reserves one test send per address (refused with the renewal date when the
month's ten are used) and queues the delivery; the job builds each message exactly as a real
send does (MIME, RFC 8058 headers, DKIM when configured), with "[Test]" before the subject,
links that are not tracked, and tokens of no recipient, so an unsubscribe clicked in a test
mail unsubscribes nobody. Each accepted message spends its unit; a refused address gives it
back; a temporary failure retries the job, which then sends only to the addresses not yet
resolved.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from datetime import UTC, datetime

import aiosmtplib

from accounts import domains
from accounts import services as accounts
from campaigns.schemas import TestSendOut, TestSendRequest
from campaigns.sending import mime
from campaigns.sending.envelope import envelope_of, list_headers
from campaigns.sending.smtp_pool import pool_for
from campaigns.sending.smtp_transaction import send_prepared
from campaigns.services.drafts import campaign_row
from campaigns.services.previews import (
    recipient_from_row,
    render_for,
    sample_recipient,
    saved_content,
)
from customers.services.customers import customer_row
from loyalmail.errors import ValidationFailed, _
from quota import services as quota
from templates import compiler
from templates.compiler import RenderFailed

log = logging.getLogger("loyalmail.sending")

TEST_SUBJECT_PREFIX = "[Test] "
MAX_ADDRESSES = 5


async def request_test_send(
    merchant_id: int, campaign_id: int, data: TestSendRequest
) -> TestSendOut:
    """Check, reserve and queue a test send; the job delivers it."""
    from campaigns import actors

    merchant = await accounts.get_merchant(merchant_id)
    row = await campaign_row(merchant_id, campaign_id)
    found = compiler.problems(saved_content(row))
    if found:
        raise RenderFailed(_("The newsletter cannot be rendered yet."), fields=found)
    if not merchant.sender_email:
        missing = _("Set a sender address in the brand settings first.")
        raise ValidationFailed(missing, fields={"sender_email": missing})
    addresses = list(dict.fromkeys(a.strip().lower() for a in data.addresses))
    team = set(await accounts.user_emails(merchant_id))
    strangers = {
        f"addresses[{n}]": _("Test sends go only to your team's login addresses.")
        for n, address in enumerate(addresses)
        if address not in team
    }
    if strangers:
        raise ValidationFailed(
            _("Test sends go only to your team's login addresses."), fields=strangers
        )
    if data.customer_id is not None:
        await customer_row(merchant_id, data.customer_id)  # another merchant's: 404
    # A key that must sign and cannot is refused now, with its reason, not in the job.
    await envelope_of(merchant, row["sender_name"])
    reservation = await quota.reserve(
        merchant_id,
        len(addresses),
        key=f"test:{campaign_id}:{secrets.token_hex(8)}",
        purpose=f"Test: {row['name']}",
        pool="test",
    )
    actors.deliver_test_send.send(
        merchant_id, campaign_id, reservation.id, addresses, data.customer_id
    )
    left = (await quota.overview(merchant_id)).test_sends.left
    return TestSendOut(addresses=addresses, reservation_id=reservation.id, test_sends_left=left)


async def deliver_test_send(
    merchant_id: int,
    campaign_id: int,
    reservation_id: int,
    addresses: list[str],
    customer_id: int | None,
) -> int:
    """Send to the addresses not yet resolved; returns how many were accepted now."""
    pending = await quota.unresolved(merchant_id, reservation_id, addresses)
    if not pending:  # a retried job whose addresses are all resolved: nothing to build or send
        await quota.release_rest(merchant_id, reservation_id)
        return 0
    merchant = await accounts.get_merchant(merchant_id)
    row = await campaign_row(merchant_id, campaign_id)
    if customer_id is not None:
        recipient = recipient_from_row(await customer_row(merchant_id, customer_id), merchant)
    else:
        recipient = sample_recipient(merchant, merchant.default_locale)
    rendered, _language = render_for(merchant, campaign_id, saved_content(row), 0, recipient)
    rendered = dataclasses.replace(rendered, subject=TEST_SUBJECT_PREFIX + rendered.subject)
    try:
        envelope = await envelope_of(merchant, row["sender_name"])
    except domains.SigningUnavailable as exc:
        # The key became unreadable after the request was checked: nothing goes unsigned,
        # the test sends go back, and a retry could not do better.
        log.warning("test send of campaign %s not sent: %s", campaign_id, exc.message)
        await quota.release_rest(merchant_id, reservation_id)
        return 0
    sender, domain, dkim_key = envelope.sender, envelope.domain, envelope.dkim_key
    # The same for every address of this test: worked out once.
    lists = dataclasses.replace(
        list_headers(merchant, campaign_id, recipient_id=0),
        feedback_id=domains.feedback_id(f"test{campaign_id}", merchant.id),
    )
    body = mime.body_of(rendered)
    envelope_from = mime.ascii_address(sender.address)
    accepted = 0
    # The campaign workers' own way out: a pooled connection, one SMTP transaction a message.
    async with pool_for().connection() as client:
        for number, address in enumerate(pending):
            data = mime.build(
                body,
                to=address,
                sender=sender,
                lists=lists,
                message_id=f"<lm.{merchant.id}.{campaign_id}.test{reservation_id}.{number}@{domain}>",
                date=datetime.now(UTC),
                dkim_key=dkim_key,
            )
            try:
                await send_prepared(client, envelope_from, mime.ascii_address(address), data)
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code < 500:
                    raise  # temporary: the job is retried and sends to what is still pending
                await quota.release(merchant_id, reservation_id, [address])
                continue
            await quota.spend(merchant_id, reservation_id, [address])
            accepted += 1
    await quota.release_rest(merchant_id, reservation_id)
    return accepted
