"""The recipient's preference page (/r/preferences/<unsubscribe token>): pause for a few
months and come back by itself, leave, ask for erasure; GET changes nothing; on both engines,
without credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.schemas import MerchantOut
from customers.services import preferences
from customers.services.suppression import suppress
from customers.tables import Customer
from tests.campaigns.test_bounces import Sent, sent_messages
from tests.conftest import login, make_owner
from tests.tracking.test_unsubscribe import GERMAN, consent_log, customer_of, link
from tracking.tables import TrackingEvent


def prefs(sent: Sent, **changes: int) -> str:
    return link(sent, "unsubscribe", **changes).replace("/r/unsubscribe/", "/r/preferences/")


def consent(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["action"], e["source"]) for e in log]


async def unsubscribe_events(sent: Sent) -> int:
    return await TrackingEvent.count().where(
        (TrackingEvent.campaign == sent.campaign_id)
        & (TrackingEvent.recipient == sent.recipient_id)
        & (TrackingEvent.kind == "unsubscribe")
    )


async def test_get_shows_the_choices_in_the_recipients_language_and_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]  # a German customer
    page = await client.get(prefs(sent))
    assert page.status_code == 200
    assert 'lang="de"' in page.text and "Ihre Newsletter-Einstellungen" in page.text
    assert f'action="{prefs(sent)}/pause"' in page.text
    assert f'action="{prefs(sent)}/leave"' in page.text
    assert f'action="{prefs(sent)}/erase"' in page.text
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert (await customer_of(sent))["subscribed"] is True
    assert await consent_log(sent) == []
    # The unsubscribe page leads here.
    assert f'href="{prefs(sent)}"' in (await client.get(link(sent))).text


async def test_a_pause_unsubscribes_until_its_end_and_the_job_brings_them_back(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    before = datetime.now(UTC)
    response = await client.post(
        f"{prefs(sent)}/pause", data={"months": "3"}, headers={"user-agent": "Phone/1"}
    )
    assert response.status_code == 200
    row = await customer_of(sent)
    assert row["subscribed"] is False and row["paused_until"] is not None
    until = row["paused_until"]
    assert timedelta(days=88) < until - before < timedelta(days=93)
    assert "sind bis" in response.text and "pausiert" in response.text
    assert str(until.year) in response.text
    log = await consent_log(sent)
    assert consent(log) == [("paused", "preferences")] and log[0]["user_agent"] == "Phone/1"
    assert await unsubscribe_events(sent) == 1  # the campaign lost this reader

    # A shorter pause replaces the first; the reader was lost once.
    assert (await client.post(f"{prefs(sent)}/pause", data={"months": "1"})).status_code == 200
    shorter = (await customer_of(sent))["paused_until"]
    assert shorter < until
    assert await unsubscribe_events(sent) == 1

    assert await preferences.end_due_pauses(shorter - timedelta(minutes=1)) == 0
    assert (await customer_of(sent))["subscribed"] is False
    assert await preferences.end_due_pauses(shorter + timedelta(minutes=1)) == 1
    row = await customer_of(sent)
    assert row["subscribed"] is True and row["paused_until"] is None
    assert row["unsubscribed_at"] is None
    assert consent(await consent_log(sent))[-1] == ("resumed", "preferences")
    # Run twice (or on two machines): nothing more.
    assert await preferences.end_due_pauses(shorter + timedelta(days=1)) == 0
    assert len(await consent_log(sent)) == 3


async def test_a_pause_ends_without_resuming_an_address_suppressed_meanwhile(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    await client.post(f"{prefs(sent)}/pause", data={"months": "1"})
    await suppress(merchant.id, sent.address, "bounced")
    later = datetime.now(UTC) + timedelta(days=40)
    assert await preferences.end_due_pauses(later) == 0
    row = await customer_of(sent)
    assert row["subscribed"] is False and row["paused_until"] is None
    assert [e["action"] for e in await consent_log(sent)] == ["paused"]


async def test_a_pause_length_the_page_does_not_offer_is_400_and_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    for body in ({"months": "12"}, {"months": "0"}, {"months": "-1"}, {"months": "x"}, {}):
        response = await client.post(f"{prefs(sent)}/pause", data=body, headers=GERMAN)
        assert response.status_code == 400, body
        assert "wie lange pausiert" in response.text
    assert (await client.post(f"{prefs(sent)}/pause", json={"months": 3})).status_code == 400
    assert (await customer_of(sent))["subscribed"] is True
    assert await consent_log(sent) == []


async def test_leaving_ends_a_pause_for_good(client: Any, merchant: MerchantOut) -> None:
    paused, subscribed = await sent_messages(merchant, 2)
    await client.post(f"{prefs(paused)}/pause", data={"months": "1"})
    left = await client.post(f"{prefs(paused)}/leave")
    assert left.status_code == 200 and "keine Newsletter" in left.text
    row = await customer_of(paused)
    assert row["subscribed"] is False and row["paused_until"] is None
    assert consent(await consent_log(paused)) == [
        ("paused", "preferences"),
        ("withdrawn", "preferences"),
    ]
    assert await preferences.end_due_pauses(datetime.now(UTC) + timedelta(days=400)) == 0
    assert (await customer_of(paused))["subscribed"] is False
    assert await unsubscribe_events(paused) == 1

    assert (await client.post(f"{prefs(subscribed)}/leave")).status_code == 200
    assert (await client.post(f"{prefs(subscribed)}/leave")).status_code == 200  # idempotent
    assert consent(await consent_log(subscribed)) == [("withdrawn", "preferences")]
    assert await unsubscribe_events(subscribed) == 1
    # Once out, the page offers no pause, and a pause posted anyway changes nothing: only a
    # fresh opt-in brings an address that left back.
    page = (await client.get(prefs(subscribed))).text
    assert "/pause" not in page and "Sie erhalten keine Newsletter" in page
    paused = await client.post(f"{prefs(subscribed)}/pause", data={"months": "1"})
    assert paused.status_code == 200
    row = await customer_of(subscribed)
    assert row["subscribed"] is False and row["paused_until"] is None


async def test_asking_for_erasure_unsubscribes_and_tells_the_marketer(
    client: Any, merchant: MerchantOut
) -> None:
    sent, other = await sent_messages(merchant, 2)
    response = await client.post(f"{prefs(sent)}/erase")
    assert response.status_code == 200 and "weitergegeben" in response.text
    row = await customer_of(sent)
    assert row["subscribed"] is False and row["erasure_requested_at"] is not None
    assert consent(await consent_log(sent)) == [("withdrawn", "preferences")]
    again = await client.post(f"{prefs(sent)}/erase")
    assert again.status_code == 200 and 'data-testid="erasure-requested"' in again.text
    assert len(await consent_log(sent)) == 1
    assert (await customer_of(sent))["erasure_requested_at"] == row["erasure_requested_at"]

    # The marketer sees the request on the customer and can list every such customer.
    await login(client, await make_owner(merchant))
    detail = await client.get(f"/customers/{row['id']}")
    assert detail.status_code == 200 and 'data-testid="erasure-requested"' in detail.text
    assert f'href="/customers/{row["id"]}/erase"' in detail.text
    listed = await client.get("/api/customers", params={"erasure_requested": "true"})
    assert listed.status_code == 200, listed.text
    assert [c["email"].lower() for c in listed.json()["items"]] == [sent.address]
    assert listed.json()["items"][0]["erasure_requested_at"] is not None
    others = await client.get("/api/customers", params={"erasure_requested": "false"})
    assert [c["email"].lower() for c in others.json()["items"]] == [other.address]


async def test_a_marketer_decision_cancels_the_recipients_pause(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    await client.post(f"{prefs(sent)}/pause", data={"months": "1"})
    customer_id = (await customer_of(sent))["id"]
    token = await login(client, await make_owner(merchant))
    changed = await client.patch(
        f"/api/customers/{customer_id}",
        json={"subscribed": False},
        headers={"x-csrf-token": token},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["paused_until"] is None
    assert await preferences.end_due_pauses(datetime.now(UTC) + timedelta(days=60)) == 0
    assert (await customer_of(sent))["subscribed"] is False


async def test_bad_tokens_are_404_and_a_test_sends_link_changes_nothing(
    client: Any, merchant: MerchantOut
) -> None:
    sent = (await sent_messages(merchant, 1))[0]
    good = prefs(sent)
    click_token = link(sent, "click").rsplit("/", 1)[1]
    for path in (good[:-4] + "abcd", good[:-10], f"/r/preferences/{click_token}"):
        for response in (
            await client.get(path, headers=GERMAN),
            await client.post(f"{path}/pause", data={"months": "1"}),
            await client.post(f"{path}/leave"),
            await client.post(f"{path}/erase"),
        ):
            assert response.status_code == 404, path
    sample = prefs(sent, recipient_id=0)
    assert (await client.get(sample)).status_code == 200
    for action, body in (("pause", {"months": "1"}), ("leave", {}), ("erase", {})):
        done = await client.post(f"{sample}/{action}", data=body, headers=GERMAN)
        assert done.status_code == 200 and "This was a test message" in done.text
    row = await customer_of(sent)
    assert row["subscribed"] is True and row["erasure_requested_at"] is None
    assert await consent_log(sent) == []
    assert not await Customer.exists().where(Customer.paused_until.is_not_null())


def test_a_pause_ends_on_the_same_day_or_the_months_last() -> None:
    from customers.services.preferences import _months_later

    def later(day: str, months: int) -> str:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return _months_later(start, months).date().isoformat()

    assert later("2026-01-31", 1) == "2026-02-28"
    assert later("2027-11-30", 3) == "2028-02-29"  # a leap year's February
    assert later("2027-12-15", 1) == "2028-01-15"  # across the year
    assert later("2026-08-31", 6) == "2027-02-28"
