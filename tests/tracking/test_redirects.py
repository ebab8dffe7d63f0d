"""Opens and clicks from a message that really went out: the pixel and the click redirect
record an event each (people and machines told apart), a click only ever leads to the
campaign's own link, and a bad token or link number is a 404 that stores nothing."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from accounts.schemas import MerchantOut
from campaigns.sending import dispatch
from campaigns.services import campaign_links
from campaigns.tables import CampaignRecipient
from loyalmail.rate_limits import WindowCounter
from tests.campaigns.test_sending import ready
from tests.conftest import Jobs
from tests.settings_env import settings_env
from tests.smtp import mails_to
from tracking import events, tokens
from tracking.machines import machine_reason
from tracking.redirects import PIXEL
from tracking.tables import TrackingEvent

BROWSER = {"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/128.0"}


async def sent_campaign(merchant: MerchantOut, jobs: Jobs, smtp: Path) -> tuple[int, str]:
    """A campaign sent for real to three people; (campaign id, the first one's HTML)."""
    campaign_id, addresses = await ready(merchant, 3)
    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    message = (await asyncio.to_thread(mails_to, smtp, addresses[0]))[0]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return campaign_id, html


def paths(html: str, kind: str) -> list[str]:
    """The message's /r/o/… or /r/c/… URLs as paths (the base URL is the settings')."""
    found = re.findall(rf'https?://[^/"]+(/r/{kind}/[^"]+)"', html)
    return list(dict.fromkeys(found))


async def events_of(campaign_id: int) -> list[dict[str, Any]]:
    return list(
        await TrackingEvent.select()
        .where(TrackingEvent.campaign == campaign_id)
        .order_by(TrackingEvent.id)
    )


async def sent_an_hour_ago(campaign_id: int) -> None:
    earlier = datetime.now(UTC) - timedelta(hours=1)
    await CampaignRecipient.update({CampaignRecipient.sent_at: earlier}).where(
        CampaignRecipient.campaign == campaign_id
    )


async def test_an_open_and_a_click_are_recorded_and_the_click_leads_to_the_campaigns_link(
    client: Any, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    campaign_id, html = await sent_campaign(merchant, jobs, smtp)
    (pixel,) = paths(html, "o")
    clicks = paths(html, "c")
    links = await campaign_links(merchant.id, campaign_id)
    assert clicks and len(clicks) == len(links)
    await sent_an_hour_ago(campaign_id)

    opened = await client.get(pixel, headers=BROWSER)
    assert opened.status_code == 200 and opened.content == PIXEL
    assert opened.headers["content-type"] == "image/gif"
    assert "no-store" in opened.headers["cache-control"]

    number = int(clicks[0].rsplit("/", 1)[1])
    clicked = await client.get(clicks[0], headers=BROWSER, follow_redirects=False)
    assert clicked.status_code == 302
    assert clicked.headers["location"] == links[number]
    assert clicked.headers["referrer-policy"] == "no-referrer"

    recorded = await events_of(campaign_id)
    recipient = tokens.read("open", pixel.removeprefix("/r/o/").removesuffix(".gif"))
    assert recipient is not None
    assert [(e["kind"], e["link"], e["machine"], e["recipient"]) for e in recorded] == [
        ("open", None, False, recipient.recipient_id),
        ("click", number, False, recipient.recipient_id),
    ]
    assert all(e["merchant"] == merchant.id for e in recorded)


async def test_a_click_never_leaves_the_campaigns_links(
    client: Any, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    campaign_id, html = await sent_campaign(merchant, jobs, smtp)
    click = paths(html, "c")[0]
    token = click.split("/")[3]
    data = tokens.read("click", token)
    assert data is not None
    links = await campaign_links(merchant.id, campaign_id)
    own = links[int(click.rsplit("/", 1)[1])]

    # A URL in the query is ignored: the stored link is the only way out.
    appended = await client.get(click + "?url=https://evil.example/", follow_redirects=False)
    assert (appended.status_code, appended.headers["location"]) == (302, own)

    other_campaign = tokens.make(
        "click", tokens.TokenData(merchant.id, campaign_id + 1000, data.recipient_id)
    )
    unsubscribe = tokens.make("unsubscribe", data)
    bad = [
        f"/r/c/{token}/{len(links)}",  # a number the campaign has no link for
        f"/r/c/{token}/-1",
        f"/r/c/{token[:-3]}{'abc' if not token.endswith('abc') else 'xyz'}/0",  # tampered
        f"/r/c/{token[:-12]}/0",  # truncated
        f"/r/c/{unsubscribe}/0",  # another purpose's token
        f"/r/c/{other_campaign}/0",  # a campaign without these links
        f"/r/c/{token}//evil.example",
        "/r/c//evil.example/0",
        "/r/o/" + token + ".gif",  # a click token as a pixel
        f"/r/c/{token}/0/more",  # the pixel and click paths are answered before routing:
        f"/r/c/{token}/00000000",  # any other shape is refused by them, not passed on
        f"/r/c/{token}/0x1",
        f"/r/c/{token}/²",  # str.isdigit() says yes, int() refuses: was a 503
        f"/r/c/{token}/①",
        f"/r/c/{token}/١",  # int() reads these as 1: were taken for link 1
        f"/r/c/{token}/１",
        f"/r/c/{token}",
        "/r/o/",
        f"/r/o/{token}.gif/x",
    ]
    for path in bad:
        answer = await client.get(path, follow_redirects=False)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers, path
        cache = {part.strip() for part in answer.headers["cache-control"].split(",")}
        assert cache == {"no-store", "private"}, path
    for method in ("POST", "PUT", "DELETE"):
        refused = await client.request(method, click, follow_redirects=False)
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert len(await events_of(campaign_id)) == 1  # only the first click


async def test_machines_are_recorded_and_flagged_not_dropped(
    client: Any, merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    campaign_id, html = await sent_campaign(merchant, jobs, smtp)
    (pixel,) = paths(html, "o")
    click = paths(html, "c")[0]
    # A gateway following the link the moment the message arrived.
    assert (await client.get(click, headers=BROWSER, follow_redirects=False)).status_code == 302
    await sent_an_hour_ago(campaign_id)
    assert (await client.get(pixel, headers={"user-agent": "Mozilla/5.0"})).status_code == 200
    proxy = {"user-agent": "Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)"}
    assert (await client.get(pixel, headers=proxy)).status_code == 200
    head = await client.head(click, headers=BROWSER, follow_redirects=False)
    assert head.status_code == 302 and head.content == b""
    scanner = {"user-agent": "python-requests/2.32"}
    assert (await client.get(click, headers=scanner, follow_redirects=False)).status_code == 302
    assert [(e["kind"], e["machine"], e["reason"]) for e in await events_of(campaign_id)] == [
        ("click", True, "too-fast"),
        ("open", True, "apple-mpp"),
        ("open", True, "google-proxy"),
        ("click", True, "head"),
        ("click", True, "scanner"),
    ]


def test_machine_reasons() -> None:
    person = BROWSER["user-agent"]
    assert machine_reason("open", "GET", person) == ""
    assert machine_reason("click", "GET", person, seconds_since_sent=3600) == ""
    assert machine_reason("click", "GET", person, seconds_since_sent=2) == "too-fast"
    assert machine_reason("open", "GET", person, seconds_since_sent=2) == ""  # opens: no
    assert machine_reason("open", "HEAD", person) == "head"
    assert machine_reason("open", "GET", "") == "no-agent"
    assert machine_reason("open", "GET", " Mozilla/5.0 ") == "apple-mpp"
    assert machine_reason("open", "GET", "YahooMailProxy; https://help.yahoo.com") == "yahoo-proxy"
    assert machine_reason("click", "GET", "Mozilla/5.0 (compatible; Barracuda)") == "scanner"


async def test_concurrent_events_share_commits_and_all_arrive(
    db: Any, merchant: MerchantOut, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[int] = []
    write_now = events.write_now

    async def counted(batch: list[events.Event]) -> None:
        commits.append(len(batch))
        await write_now(batch)

    monkeypatch.setattr(events, "write_now", counted)
    now = datetime.now(UTC)
    await asyncio.gather(
        *(events.record(events.Event(merchant.id, 987_654, n + 1, "open", now)) for n in range(300))
    )
    stored = await TrackingEvent.count().where(TrackingEvent.campaign == 987_654)
    assert stored == 300 and sum(commits) == 300
    # Requests that arrive while a batch is written go into the next one together.
    assert len(commits) < 300 and max(commits) > 1


async def test_public_routes_answer_429_past_their_budget_per_token_and_per_address(
    db: Any, merchant: MerchantOut
) -> None:
    from litestar.testing import AsyncTestClient

    from loyalmail.app import create_app

    limits = {"LOYALMAIL_PUBLIC_RATE_PER_TOKEN": "3", "LOYALMAIL_PUBLIC_RATE_PER_IP": "5"}
    pixel = "/r/o/{}.gif"
    first = tokens.make("open", tokens.TokenData(merchant.id, 1, 0))  # a test send's: no event
    second = tokens.make("open", tokens.TokenData(merchant.id, 2, 0))
    with settings_env(limits):
        async with AsyncTestClient(app=create_app(use_pool=False)) as client:
            answers = [(await client.get(pixel.format(first))).status_code for _ in range(4)]
            assert answers == [200, 200, 200, 429]  # the token's budget: 3 a minute
            assert [(await client.get(pixel.format(second))).status_code for _ in range(2)] == [
                200,
                429,  # the address's budget: 5 a minute, the refused one counted too
            ]
            refused = await client.get(pixel.format(second))
            assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
            # Routes behind a login are not counted here.
            assert (await client.get("/login")).status_code == 200


def test_a_window_counter_forgets_when_the_minute_turns() -> None:
    counter = WindowCounter(2, window=60.0)
    assert [counter.allow("a", 120.0), counter.allow("a", 130.0)] == [None, None]
    assert counter.allow("a", 150.0) == 30.0  # refused until 180
    assert counter.allow("b", 150.0) is None  # another key has its own budget
    assert counter.allow("a", 180.0) is None  # a new window


async def test_an_event_that_cannot_be_stored_is_a_503_not_a_pixel(
    client: Any, merchant: MerchantOut, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_down(batch: list[events.Event]) -> None:
        raise ConnectionRefusedError("the database is down")

    monkeypatch.setattr(events, "write_now", database_down)
    token = tokens.make("open", tokens.TokenData(merchant.id, 5, 7))
    answer = await client.get(f"/r/o/{token}.gif", headers=BROWSER)
    assert answer.status_code == 503
    assert answer.content != PIXEL
