"""Bounces and complaints after the fact, on SQLite and PostgreSQL: VERP return paths, the
signed webhooks (JSON events and raw DSN/ARF reports), the CLI pipe for the MTA, and what
they change: a hard bounce or a complaint suppresses the recipient's address, once, and only
when the report is really about that recipient."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from accounts.schemas import MerchantOut
from campaigns.bounces import verp, webhooks
from campaigns.sending import mime
from campaigns.tables import CampaignBounce, CampaignRecipient
from customers.services.suppression import is_suppressed
from customers.tables import Customer, Suppression
from loyalmail.cli import app as cli
from loyalmail.errors import AuthenticationFailed
from loyalmail.security import email_hash
from quota import services as quota
from tests.campaigns.test_dsn import sample
from tests.campaigns.test_sending import ready
from tests.conftest import make_merchant
from tests.loyalmail.test_cli import invoke
from tests.settings_env import settings_env

SECRET = "whsec-test-3f9a0c"
BOUNCE_ADDRESS = "bounces@lists.example"
JSON = {"content-type": "application/json"}
REPORT = {"content-type": "message/rfc822"}


@pytest.fixture(autouse=True)
def bounce_settings() -> Iterator[None]:
    values = {"LOYALMAIL_BOUNCE_ADDRESS": BOUNCE_ADDRESS, "LOYALMAIL_BOUNCE_WEBHOOK_SECRET": SECRET}
    with settings_env(values):
        yield


# --- VERP and the signature, without a database ----------------------------------------------


def test_a_return_path_names_its_recipient_whatever_the_case() -> None:
    address = verp.return_path(12, 345, 67890)
    assert address is not None and address.startswith("bounces+c.159.10932.")
    assert address.endswith("@lists.example")
    expected = verp.RecipientRef(12, 345, 67890)
    assert verp.parse_return_path(address) == expected
    assert verp.parse_return_path(f"<{address.upper()}>") == expected  # an MTA lower-/upper-cased
    largest = verp.return_path(2**31 - 1, 2**31 - 1, 2**63 - 1)
    assert largest is not None and len(largest.partition("@")[0]) <= 64
    assert verp.parse_return_path(largest) == verp.RecipientRef(2**31 - 1, 2**31 - 1, 2**63 - 1)
    # Past what the columns hold: nobody's (a query would be refused by PostgreSQL).
    assert verp.parse_return_path(verp.return_path(2**31, 1, 1) or "") is None
    assert verp.parse_message_id("<lm.1.2.9223372036854775808@x.example>") is None
    assert verp.parse_message_id("<lm.1.2.9223372036854775807@x.example>") == verp.RecipientRef(
        1, 2, 2**63 - 1
    )


def test_an_altered_or_foreign_return_path_names_nobody() -> None:
    address = verp.return_path(12, 345, 67890)
    assert address is not None
    local, _at, domain = address.partition("@")
    signature = local.rpartition(".")[2]
    other = "a" if signature[0] != "a" else "b"
    for forged in (
        local.replace("+c.", "+d.", 1) + "@" + domain,  # another merchant, same signature
        local[: -len(signature)] + other + signature[1:] + "@" + domain,  # another signature
        local.rpartition(".")[0] + "@" + domain,  # no signature
        "news+" + local.partition("+")[2] + "@" + domain,  # not the bounce address
        "bounces@lists.example",
        "",
    ):
        assert verp.parse_return_path(forged) is None, forged
    with settings_env({"LOYALMAIL_BOUNCE_ADDRESS": ""}):
        assert verp.return_path(12, 345, 67890) is None
        assert verp.parse_return_path(address) is None


def test_return_paths_signed_before_a_key_rotation_still_verify() -> None:
    old = verp.return_path(1, 2, 3)
    assert old is not None
    rotated = {
        "LOYALMAIL_SECRET_KEY": "the-new-secret-key",
        "LOYALMAIL_PREVIOUS_SECRET_KEYS": "test-secret-key-not-for-production",
    }
    with settings_env(rotated):
        assert verp.return_path(1, 2, 3) != old
        assert verp.parse_return_path(old) == verp.RecipientRef(1, 2, 3)
    with settings_env({"LOYALMAIL_SECRET_KEY": "the-new-secret-key"}):
        assert verp.parse_return_path(old) is None


def test_only_our_message_ids_name_a_recipient() -> None:
    assert verp.parse_message_id(" <lm.1.22.333@shop.example> ") == verp.RecipientRef(1, 22, 333)
    for other in (
        "<lm.1.22.test5.1@shop.example>",  # a test send: no recipient row
        "<lm.1.2222222222.3@shop.example>",  # beyond the campaign id column
        "<lm.1.22.9223372036854775808@shop.example>",  # beyond the recipient id column
        "<CAF=abc@mail.gmail.com>",
        "lm.1.22.333",
        "",
    ):
        assert verp.parse_message_id(other) is None, other


def test_the_signature_holds_only_for_the_body_the_secret_and_the_time() -> None:
    body, now = b'{"events": []}', 1_764_000_000
    good = webhooks.signature(SECRET, body, now)
    webhooks.verify([SECRET], good, body, now=now + 299)
    webhooks.verify(["old-secret", SECRET], good, body, now=now)  # while we rotate ours
    rotating = f"{good},v1={'0' * 64}"  # a sender rotating its secret signs twice
    webhooks.verify([SECRET], rotating, body, now=now)
    for header, at, message in (
        (None, now, "not signed"),
        ("", now, "not signed"),
        ("sha256=abc", now, "must read"),
        (good.replace(f"t={now}", "t=\u00b2"), now, "must read"),  # a digit, but not 0-9
        (f"t={now}", now, "must read"),
        (good, now + 301, "five minutes"),
        (good, now - 301, "five minutes"),
        (webhooks.signature("another-secret", body, now), now, "does not match"),
        (webhooks.signature(SECRET, body + b" ", now), now, "does not match"),
        (good.replace(f"t={now}", f"t={now + 1}"), now, "does not match"),
    ):
        with pytest.raises(AuthenticationFailed, match=message):
            webhooks.verify([SECRET], header, body, now=at)


# --- the recipients a report can be about ----------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A message that left: the recipient row a send leaves behind."""

    merchant: MerchantOut
    campaign_id: int
    recipient_id: int
    address: str

    @property
    def message_id(self) -> str:
        return mime.message_id(
            self.merchant.id, self.campaign_id, self.recipient_id, "shop.example"
        )

    @property
    def return_path(self) -> str:
        path = verp.return_path(self.merchant.id, self.campaign_id, self.recipient_id)
        assert path is not None
        return path


async def sent_messages(merchant: MerchantOut, count: int, status: str = "sent") -> list[Sent]:
    """A campaign with ``count`` recipients whose messages the relay accepted, as the send
    pipeline records them (tests/campaigns/test_sending.py sends for real)."""
    campaign_id, addresses = await ready(merchant, count)
    customer_ids = {
        row["email_normalized"]: row["id"]
        for row in await Customer.select(Customer.id, Customer.email_normalized).where(
            Customer.merchant == merchant.id
        )
    }
    now = datetime.now(UTC)
    await CampaignRecipient.insert(
        *(
            CampaignRecipient(
                campaign=campaign_id,
                merchant=merchant.id,
                customer=customer_ids[address.lower()],
                email=address,
                email_normalized=address.lower(),
                status=status,
                attempts=1,
                sent_at=now,
            )
            for address in addresses
        )
    )
    rows = await (
        CampaignRecipient.select(CampaignRecipient.id, CampaignRecipient.email_normalized)
        .where(CampaignRecipient.campaign == campaign_id)
        .order_by(CampaignRecipient.id)
    )
    return [Sent(merchant, campaign_id, int(r["id"]), str(r["email_normalized"])) for r in rows]


async def suppressed(sent: Sent) -> str | None:
    """The suppression's reason, checked against the customer's flag (None: not suppressed)."""
    flag = await Customer.select(Customer.suppressed).where(
        (Customer.merchant == sent.merchant.id) & (Customer.email_normalized == sent.address)
    )
    listed = await is_suppressed(sent.merchant.id, sent.address)
    assert flag[0]["suppressed"] is listed, "the customer's flag follows the suppression list"
    row = await Suppression.select(Suppression.reason).where(
        (Suppression.merchant == sent.merchant.id)
        & (Suppression.email_hash == email_hash(sent.address))
    )
    return str(row[0]["reason"]) if row else None


async def bounces_of(merchant: MerchantOut) -> list[dict[str, Any]]:
    return await (
        CampaignBounce.select()
        .where(CampaignBounce.merchant == merchant.id)
        .order_by(CampaignBounce.id)
    )


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    moment = int(time.time() if at is None else at)
    return {webhooks.HEADER: webhooks.signature(secret, body, moment)}


def event(sent: Sent, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "bounce",
        "bounce_type": "hard",
        "email": sent.address,
        "message_id": sent.message_id,
        "timestamp": "2026-11-25T10:14:03Z",
        "status": "5.1.1",
        "diagnostic": "550 5.1.1 The email account that you tried to reach does not exist.",
        **fields,
    }


async def post_events(client: Any, *events: dict[str, Any]) -> Any:
    body = msgspec.json.encode({"events": list(events)})
    return await client.post(
        "/api/webhooks/bounces", content=body, headers={**JSON, **signed(body)}
    )


async def post_report(client: Any, raw: bytes) -> Any:
    return await client.post("/api/webhooks/dsn", content=raw, headers={**REPORT, **signed(raw)})


def summary(
    processed: int = 0,
    suppressed: int = 0,
    duplicates: int = 0,
    ignored: dict[str, str] | None = None,
) -> Any:
    """A webhook's answer; ``ignored`` maps each ignored event to its reason."""
    return {
        "processed": processed,
        "suppressed": suppressed,
        "duplicates": duplicates,
        "ignored": [{"event": e, "reason": r} for e, r in (ignored or {}).items()],
    }


# --- the JSON webhook ------------------------------------------------------------------------


async def test_a_hard_bounce_suppresses_the_address_once_and_leaves_the_quota(
    client: Any, merchant: MerchantOut
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    available = (await quota.overview(merchant.id)).available
    bounce = event(anna)
    body = msgspec.json.encode({"events": [bounce]})
    headers = {**JSON, **signed(body)}  # no login: the signature is the credential

    answer = await client.post("/api/webhooks/bounces", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == summary(processed=1, suppressed=1)
    assert await suppressed(anna) == "bounced"
    assert await suppressed(bert) is None
    (row,) = await bounces_of(merchant)
    assert (row["campaign"], row["recipient"], row["email_normalized"]) == (
        anna.campaign_id,
        anna.recipient_id,
        anna.address,
    )
    assert (row["kind"], row["source"], row["status"]) == ("hard", "webhook", "5.1.1")
    assert row["detail"].startswith("5.1.1 550 5.1.1 The email account")
    assert row["event_id"] == f"webhook:{bounce['id']}"
    assert row["occurred_at"] == datetime(2026, 11, 25, 10, 14, 3, tzinfo=UTC)

    # The provider retries the same request (within the signature's five minutes).
    again = await client.post("/api/webhooks/bounces", content=body, headers=headers)
    assert again.status_code == 200 and again.json() == summary(duplicates=1)
    assert len(await bounces_of(merchant)) == 1
    # The message was accepted, and paid for, when it left.
    assert (await quota.overview(merchant.id)).available == available


async def test_complaints_suppress_soft_and_policy_bounces_are_only_recorded(
    client: Any, merchant: MerchantOut
) -> None:
    anna, bert, cleo = await sent_messages(merchant, 3)
    answer = await post_events(
        client,
        event(anna, type="complaint", bounce_type=None, status="", diagnostic="abuse"),
        event(bert, bounce_type="soft", status="4.2.2", diagnostic="452 4.2.2 Mailbox full"),
        event(cleo, bounce_type="policy", status="5.7.1", diagnostic="554 5.7.1 Spam"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == summary(processed=3, suppressed=1)
    assert (await suppressed(anna), await suppressed(bert), await suppressed(cleo)) == (
        "complaint",
        None,
        None,
    )
    kinds = {row["recipient"]: row["kind"] for row in await bounces_of(merchant)}
    assert kinds == {
        anna.recipient_id: "complaint",
        bert.recipient_id: "soft",
        cleo.recipient_id: "policy",
    }


async def test_unsigned_forged_and_stale_requests_are_refused_and_change_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    body = msgspec.json.encode({"events": [event(anna)]})
    now = time.time()
    for path, content in (("/api/webhooks/bounces", body), ("/api/webhooks/dsn", sample(
        "postfix_hard.eml", recipient=anna.address, message_id=anna.message_id
    ))):  # fmt: skip
        for headers in (
            {},
            {webhooks.HEADER: "t=1764000000"},
            {webhooks.HEADER: "garbage"},
            signed(content, secret="guessed-secret"),
            signed(content, at=now - 360),
            signed(content, at=now + 360),
            signed(content + b"\n"),
        ):
            answer = await client.post(path, content=content, headers={**JSON, **headers})
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.json()["detail"]
    assert await suppressed(anna) is None
    assert await bounces_of(merchant) == []


async def test_an_event_about_someone_else_is_ignored(client: Any, merchant: MerchantOut) -> None:
    anna, bert = await sent_messages(merchant, 2)
    other_shop = await make_merchant()
    (olga,) = await sent_messages(other_shop, 1)
    guessed = mime.message_id(merchant.id, anna.campaign_id, bert.recipient_id + 1000, "x.example")
    answer = await post_events(
        client,
        # Anna's Message-ID with Bert's address: somebody wants Bert off the list.
        event(anna, id="e1", email=bert.address),
        # Another shop's recipient with this shop's customer.
        event(olga, id="e2", email=anna.address),
        event(anna, id="e3", message_id=guessed),
        event(anna, id="e4", message_id="<CAF=x@mail.gmail.com>"),
        # A signed return path of somebody else does not make the address anybody's.
        event(anna, id="e5", message_id="", return_path=bert.return_path),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == summary(
        ignored={
            "e1": "address_mismatch",
            "e2": "address_mismatch",
            "e3": "no_recipient",
            "e4": "unknown_message",
            "e5": "address_mismatch",
        }
    )
    for sent in (anna, bert, olga):
        assert await suppressed(sent) is None
    assert await bounces_of(merchant) == [] and await bounces_of(other_shop) == []


async def test_a_recipient_who_was_never_sent_the_message_is_ignored(
    client: Any, merchant: MerchantOut
) -> None:
    (skipped,) = await sent_messages(merchant, 1, status="skipped")
    answer = await post_events(client, event(skipped, id="s1"))
    assert answer.json() == summary(ignored={"s1": "not_sent"})
    assert await suppressed(skipped) is None


async def test_the_same_event_twice_at_once_is_recorded_once(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    body = msgspec.json.encode({"events": [event(anna)]})
    headers = {**JSON, **signed(body)}
    answers = await asyncio.gather(
        *(client.post("/api/webhooks/bounces", content=body, headers=headers) for _ in range(3))
    )
    results = [a.json() for a in answers]
    assert sorted(r["processed"] for r in results) == [0, 0, 1], results
    assert sum(r["duplicates"] for r in results) == 2
    assert len(await bounces_of(merchant)) == 1
    assert await suppressed(anna) == "bounced"


async def test_bad_bodies_are_422_naming_the_part_and_nothing_is_done(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    fine = event(anna)
    for body, path in (
        (b'{"events": [', "$"),
        (msgspec.json.encode({"events": [fine, {**event(anna), "type": "bounzce"}]}),
         "$.events[1].type"),
        (msgspec.json.encode({"events": [fine, {**event(anna), "bounce_type": None}]}),
         "$.events[1].bounce_type"),
        (msgspec.json.encode({"events": [fine, {"type": "bounce"}]}), "$.events[1]"),
        (msgspec.json.encode({"events": []}), "$.events"),
        (msgspec.json.encode([fine]), "$"),
        (b"   ", "$"),
    ):  # fmt: skip
        answer = await client.post(
            "/api/webhooks/bounces", content=body, headers={**JSON, **signed(body)}
        )
        assert answer.status_code == 422, (body, answer.text)
        assert path in answer.json()["fields"], (path, answer.json())
    assert await suppressed(anna) is None
    assert await bounces_of(merchant) == []


async def test_bodies_over_one_mib_are_413(client: Any, merchant: MerchantOut) -> None:
    (anna,) = await sent_messages(merchant, 1)
    padding = " " * webhooks.MAX_BODY_BYTES
    body = msgspec.json.encode({"events": [event(anna)]})[:-1] + padding.encode() + b"}"
    raw = sample("postfix_hard.eml", recipient=anna.address, message_id=anna.message_id)
    for path, content in (
        ("/api/webhooks/bounces", body),
        ("/api/webhooks/dsn", raw + b"\n" + b"x" * webhooks.MAX_BODY_BYTES),
    ):
        answer = await client.post(path, content=content, headers={**JSON, **signed(content)})
        assert answer.status_code == 413, answer.text
        assert "1 MiB" in answer.json()["detail"]
    assert await suppressed(anna) is None
    assert await bounces_of(merchant) == []


async def test_without_a_secret_the_webhooks_do_not_exist(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    body = msgspec.json.encode({"events": [event(anna)]})
    with settings_env({"LOYALMAIL_BOUNCE_WEBHOOK_SECRET": ""}):
        for path in ("/api/webhooks/bounces", "/api/webhooks/dsn"):
            answer = await client.post(path, content=body, headers={**JSON, **signed(body)})
            assert answer.status_code == 404
            assert (
                answer.json()["detail"] == "Bounce webhooks are not enabled on this installation."
            )
    assert await suppressed(anna) is None


async def test_the_webhooks_are_described_in_the_openapi_document(client: Any) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    events = document["paths"]["/api/webhooks/bounces"]["post"]
    schema = events["requestBody"]["content"]["application/json"]["schema"]
    event_schema = schema["properties"]["events"]["items"]
    assert event_schema["properties"]["type"]["enum"] == ["bounce", "complaint"]
    assert "$ref" not in msgspec.json.encode(schema).decode()  # self-contained
    assert {"200", "401", "404", "413", "422"} <= set(events["responses"])
    assert events["parameters"][0]["name"] == webhooks.HEADER
    reports = document["paths"]["/api/webhooks/dsn"]["post"]
    assert set(reports["requestBody"]["content"]) == {"message/rfc822", "application/octet-stream"}
    assert "BounceSummary" in document["components"]["schemas"]


# --- DSN and ARF reports ---------------------------------------------------------------------


async def test_a_dsn_to_the_return_path_suppresses_once(client: Any, merchant: MerchantOut) -> None:
    anna, bert = await sent_messages(merchant, 2)
    # Only the return path says who: the original's headers are not attached as ours.
    raw = sample(
        "postfix_hard.eml", recipient=anna.address, message_id="<x@y>", return_path=anna.return_path
    )
    answer = await post_report(client, raw)
    assert answer.status_code == 200, answer.text
    assert answer.json() == summary(processed=1, suppressed=1)
    assert await suppressed(anna) == "bounced" and await suppressed(bert) is None
    (row,) = await bounces_of(merchant)
    assert (row["recipient"], row["kind"], row["source"], row["status"]) == (
        anna.recipient_id,
        "hard",
        "dsn",
        "5.1.1",
    )
    assert "Recipient address rejected" in row["detail"]

    again = await post_report(client, raw)  # the same report again (another signature)
    assert again.json() == summary(duplicates=1)
    assert len(await bounces_of(merchant)) == 1


async def test_a_delay_warning_is_recorded_and_suppresses_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    raw = sample("postfix_delayed.eml", recipient=anna.address, message_id=anna.message_id)
    answer = await post_report(client, raw)
    assert answer.json() == summary(processed=1)
    assert await suppressed(anna) is None
    (row,) = await bounces_of(merchant)
    assert (row["kind"], row["status"]) == ("soft", "4.4.1")


async def test_a_report_naming_two_recipients_acts_only_on_ours(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    raw = sample("exim_two_recipients.eml", recipient=anna.address, message_id=anna.message_id)
    answer = await post_report(client, raw)
    assert answer.json() == summary(
        processed=1, suppressed=1, ignored={"partner@example.net": "address_mismatch"}
    )
    assert await suppressed(anna) == "bounced"


async def test_a_forged_dsn_with_a_guessed_message_id_suppresses_nobody(
    client: Any, merchant: MerchantOut
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    # Somebody who got Anna's Message-ID (from a forwarded copy) names Bert's address.
    raw = sample(
        "gmail_hard.eml", recipient=bert.address, message_id=anna.message_id, return_path="x@y.z"
    )
    answer = await post_report(client, raw)
    assert answer.json() == summary(ignored={bert.address: "address_mismatch"})
    assert await suppressed(anna) is None and await suppressed(bert) is None
    assert await bounces_of(merchant) == []


def redacted_complaint(message_id: str, return_path: str) -> bytes:
    """The feedback loop's report without the recipient's address (no Original-Rcpt-To, and
    the original's To left out), as many providers send it."""
    raw = sample("yahoo_arf.eml", recipient="", message_id=message_id, return_path=return_path)
    return raw.replace(b"Original-Rcpt-To: \n", b"").replace(b"\nTo: \n", b"\n")


async def test_complaints_from_a_feedback_loop(client: Any, merchant: MerchantOut) -> None:
    anna, bert = await sent_messages(merchant, 2)
    answer = await post_report(
        client, sample("yahoo_arf.eml", recipient=anna.address, message_id=anna.message_id)
    )
    assert answer.json() == summary(processed=1, suppressed=1)
    assert await suppressed(anna) == "complaint"
    # Redacted (no Original-Rcpt-To, no To): only Bert's signed return path says who.
    answer = await post_report(
        client, redacted_complaint(message_id="<x@y>", return_path=bert.return_path)
    )
    assert answer.json() == summary(processed=1, suppressed=1)
    assert await suppressed(bert) == "complaint"
    kinds = [(row["recipient"], row["kind"]) for row in await bounces_of(merchant)]
    assert kinds == [(anna.recipient_id, "complaint"), (bert.recipient_id, "complaint")]


async def test_a_redacted_complaint_without_a_return_path_is_ignored(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    answer = await post_report(client, redacted_complaint(anna.message_id, return_path=""))
    assert answer.json() == summary(ignored={"message": "no_address"})
    assert await suppressed(anna) is None


async def test_mail_that_is_no_report_is_answered_with_the_reason(
    client: Any, merchant: MerchantOut
) -> None:
    (anna,) = await sent_messages(merchant, 1)
    for raw, reason in (
        (sample("out_of_office.eml", message_id=anna.message_id), "not_a_report"),
        (b"\x00\xff not mail at all", "not_a_report"),
    ):
        answer = await post_report(client, raw)
        assert answer.status_code == 200 and answer.json() == summary(ignored={"message": reason})
    assert await bounces_of(merchant) == []


# --- the MTA's pipe --------------------------------------------------------------------------


async def test_the_cli_reads_a_report_from_a_file_or_standard_input(
    merchant: MerchantOut, tmp_path: Path
) -> None:
    anna, bert = await sent_messages(merchant, 2)
    # The report names nobody we know: the address it was delivered to (--recipient) does.
    report = tmp_path / "bounce.eml"
    report.write_bytes(
        sample("gmail_hard.eml", recipient=anna.address, message_id="<x@y>", return_path="a@b.c")
    )
    done = await invoke("bounces", "read-dsn", str(report), "--recipient", anna.return_path)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("1 recorded (1 suppressed), 0 duplicate, 0 ignored.")
    assert await suppressed(anna) == "bounced"
    again = await invoke("bounces", "read-dsn", str(report), "--recipient", anna.return_path)
    assert again.exit_code == 0 and "1 duplicate" in again.output

    piped = sample("postfix_hard.eml", recipient=bert.address, message_id=bert.message_id)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["bounces", "read-dsn", "--json"], input=piped
    )
    assert result.exit_code == 0, result.output
    assert msgspec.json.decode(result.stdout) == summary(processed=1, suppressed=1)
    assert await suppressed(bert) == "bounced"

    garbage = await asyncio.to_thread(
        CliRunner().invoke, cli, ["bounces", "read-dsn", "-"], input=b"hello"
    )
    assert garbage.exit_code == 0 and "ignored message: not_a_report" in garbage.output
    missing = await invoke("bounces", "read-dsn", str(tmp_path / "absent.eml"))
    assert missing.exit_code == 1 and "Could not read" in missing.output
    assert len(await bounces_of(merchant)) == 2
