"""Who opened, clicked or unsubscribed, against a hand-computed fixture, on both engines: each
list's members and figures, agreement with the report, pages that cover every row once, the
CSV with neutralised cells, erased customers, another merchant's campaign and bad input."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from accounts.schemas import MerchantOut, UserOut
from customers.services.customers import erase_customer
from customers.tables import Customer
from loyalmail import database
from loyalmail.errors import NotFound, ValidationFailed
from tests.campaigns.test_api import auth
from tests.campaigns.test_bounces import sent_messages
from tests.campaigns.test_sending import a_campaign
from tests.conftest import login, make_merchant
from tracking import events, people
from tracking.people import people_page
from tracking.queries import ACTIVITIES, people_sql
from tracking.reports import campaign_report
from tracking.tables import TrackingEvent

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FORMULA = '=HYPERLINK("x")'


@dataclass
class Fixture:
    campaign: int
    #: The recipient row ids, r[0] … r[9].
    r: list[int]


async def activity_fixture(merchant: MerchantOut) -> Fixture:
    """Ten recipients and what they did; the lists worked out by hand in EXPECTED."""
    sent = await sent_messages(merchant, 10)
    campaign = sent[0].campaign_id
    r = [s.recipient_id for s in sent]
    # Another campaign of the merchant's (a real one: a made-up id could be a later test's).
    other = await a_campaign(merchant)

    def event(n: int, kind: str, minutes: int, link: int | None = None, reason: str = "") -> Any:
        return events.Event(
            merchant.id, campaign, r[n], kind, T0 + timedelta(minutes=minutes), link, reason
        )

    await events.write_now(
        [
            # r0 reads twice and clicks twice; their name is a spreadsheet formula.
            event(0, "open", 5),
            event(0, "open", 70),
            event(0, "click", 6, link=0),
            event(0, "click", 71, link=0),
            # r1: only Apple's proxy fetched the pixel.
            event(1, "open", 0, reason="apple-mpp"),
            # r2: the proxy, then the person.
            event(2, "open", 1, reason="apple-mpp"),
            event(2, "open", 130),
            # r3 clicks with images blocked: an open too.
            event(3, "click", 10, link=1),
            # r4 unsubscribes; r5 too, and takes it back; r6 leaves, comes back, leaves.
            event(4, "unsubscribe", 20),
            event(5, "unsubscribe", 21),
            event(5, "resubscribe", 22),
            event(6, "unsubscribe", 23),
            event(6, "resubscribe", 24),
            event(6, "unsubscribe", 25),
            # r7: a scanner followed a link on arrival: on no list.
            event(7, "click", 0, link=0, reason="too-fast"),
            # r8 reads, and is erased later.
            event(8, "open", 40),
            # Not this campaign's lists: a test send (recipient 0) and another campaign.
            events.Event(merchant.id, campaign, 0, "open", T0),
            events.Event(merchant.id, other, r[9], "open", T0),
        ]
    )
    first = await Customer.select(Customer.id).where(
        (Customer.merchant == merchant.id) & (Customer.email_normalized == sent[0].address)
    )
    await Customer.update({Customer.first_name: FORMULA, Customer.last_name: ""}).where(
        Customer.id == first[0]["id"]
    )
    erased = await Customer.select(Customer.id).where(
        (Customer.merchant == merchant.id) & (Customer.email_normalized == sent[8].address)
    )
    await erase_customer(merchant.id, int(erased[0]["id"]))
    return Fixture(campaign, r)


#: (recipient number, first time in minutes after T0, opens, clicks, machine opens) per list.
EXPECTED = {
    "opened": [(0, 5, 2, 2, 0), (2, 130, 1, 0, 1), (3, 10, 0, 1, 0), (8, 40, 1, 0, 0)],
    "clicked": [(0, 6, 2, 2, 0), (3, 10, 0, 1, 0)],
    "unsubscribed": [(4, 20, 0, 0, 0), (6, 23, 0, 0, 0)],
    "machine_only": [(1, 0, 0, 0, 1)],
}


async def test_each_list_holds_the_hand_computed_people(merchant: MerchantOut) -> None:
    f = await activity_fixture(merchant)
    number = {recipient: n for n, recipient in enumerate(f.r)}
    for activity, expected in EXPECTED.items():
        page = await people_page(merchant.id, f.campaign, activity)
        assert page.next_after is None
        got = [
            (
                number[p.recipient_id],
                int((p.first_at - T0).total_seconds() // 60),
                p.opens,
                p.clicks,
                p.machine_opens,
            )
            for p in page.rows
        ]
        assert got == expected, activity
    page = await people_page(merchant.id, f.campaign, "opened")
    opened = {p.recipient_id: p for p in page.rows}
    assert (opened[f.r[0]].name, opened[f.r[0]].erased) == (FORMULA, False)
    assert opened[f.r[2]].email.startswith("p2.") and opened[f.r[2]].name == "Kim2"
    assert (opened[f.r[8]].email, opened[f.r[8]].name, opened[f.r[8]].erased) == ("", "", True)


async def test_the_lists_are_as_long_as_the_reports_figures(merchant: MerchantOut) -> None:
    f = await activity_fixture(merchant)
    report = await campaign_report(merchant.id, f.campaign)
    lengths = {
        activity: len((await people_page(merchant.id, f.campaign, activity)).rows)
        for activity in EXPECTED
    }
    assert lengths == {
        "opened": report.unique_opens,
        "clicked": report.unique_clicks,
        "unsubscribed": report.unsubscribes,
        "machine_only": report.machine_opens,
    }


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_pages_cover_every_row_exactly_once(merchant: MerchantOut, limit: int) -> None:
    f = await activity_fixture(merchant)
    seen: list[int] = []
    after, pages = 0, 0
    while True:
        page = await people_page(merchant.id, f.campaign, "opened", after=after, limit=limit)
        pages += 1
        assert 0 < len(page.rows) <= limit
        seen += [p.recipient_id for p in page.rows]
        if page.next_after is None:
            break
        assert page.next_after == page.rows[-1].recipient_id
        after = page.next_after
    assert seen == [f.r[n] for n in (0, 2, 3, 8)]
    assert pages == -(-4 // limit)


async def test_the_page_size_is_capped(merchant: MerchantOut, monkeypatch: Any) -> None:
    f = await activity_fixture(merchant)
    monkeypatch.setattr(people, "MOST_PER_PAGE", 2)
    page = await people_page(merchant.id, f.campaign, "opened", limit=1000)
    assert len(page.rows) == 2 and page.next_after == f.r[2]


async def test_the_api_answers_a_page_and_refuses_a_bad_list(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    f = await activity_fixture(merchant)
    path = f"/api/campaigns/{f.campaign}/report/people"
    answer = await client.get(
        path, params={"activity": "clicked", "limit": 1}, headers=auth(api_token)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [row["recipient_id"] for row in body["rows"]] == [f.r[0]]
    assert body["next_after"] == f.r[0] and body["activity"] == "clicked"
    assert body["rows"][0]["first_at"].startswith("2026-11-20T09:06:00")
    following = await client.get(
        path,
        params={"activity": "clicked", "limit": 1, "after": body["next_after"]},
        headers=auth(api_token),
    )
    assert [row["recipient_id"] for row in following.json()["rows"]] == [f.r[3]]
    assert following.json()["next_after"] is None

    for bad in ("bounced", "opened' OR 1=1 --"):
        refused = await client.get(path, params={"activity": bad}, headers=auth(api_token))
        assert refused.status_code == 422, refused.text
        assert "opened, clicked, unsubscribed" in refused.json()["detail"]
        assert refused.json()["fields"]["activity"] == bad[:32]
    csv_refused = await client.get(
        f"{path}.csv", params={"activity": "bounced"}, headers=auth(api_token)
    )
    assert csv_refused.status_code == 422 and csv_refused.json()["detail"]
    # A position outside any recipient id (a BIGINT) is a clear 400, never a database error.
    for position in (str(2**63), "-1"):
        beyond = await client.get(
            path, params={"activity": "opened", "after": position}, headers=auth(api_token)
        )
        assert beyond.status_code == 400, (position, beyond.text)
        assert "after" in beyond.text


async def test_the_csv_has_every_person_with_neutralised_text(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    f = await activity_fixture(merchant)
    answer = await client.get(
        f"/api/campaigns/{f.campaign}/report/people.csv",
        params={"activity": "opened"},
        headers=auth(api_token),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert f"campaign-{f.campaign}-opened.csv" in answer.headers["content-disposition"]
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0] == list(people.CSV_HEADER)
    assert len(rows) == 1 + 4
    assert rows[1][1] == "'" + FORMULA  # shown as text, never run
    assert rows[1][2:] == ["false", "2026-11-20 09:05:00Z", "2", "2", "0"]
    assert rows[4][:3] == ["", "", "true"]  # r8, erased


async def test_the_export_pages_through_the_whole_list(
    merchant: MerchantOut, monkeypatch: Any
) -> None:
    f = await activity_fixture(merchant)
    monkeypatch.setattr(people, "EXPORT_PAGE", 1)
    chunks = [c async for c in people.csv_chunks(merchant.id, f.campaign, "opened")]
    assert len(chunks) == 4
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(rows) == 1 + 4


async def test_another_merchants_campaign_is_404_with_no_data(
    client: Any, merchant: MerchantOut, api_token: str, owner: UserOut
) -> None:
    theirs = await activity_fixture(await make_merchant())
    for path in ("people", "people.csv"):
        answer = await client.get(
            f"/api/campaigns/{theirs.campaign}/report/{path}", headers=auth(api_token)
        )
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"] and "rows" not in answer.json()
    with pytest.raises(NotFound):
        await people_page(merchant.id, theirs.campaign, "opened")
    with pytest.raises(ValidationFailed):
        await people_page(merchant.id, theirs.campaign, "everyone")
    await login(client, owner)
    page = await client.get(f"/campaigns/{theirs.campaign}/report")
    assert page.status_code == 404
    assert "p0." not in page.text


async def test_the_report_page_lists_the_people(
    client: Any, merchant: MerchantOut, owner: UserOut, monkeypatch: Any
) -> None:
    f = await activity_fixture(merchant)
    await login(client, owner)
    page = await client.get(f"/campaigns/{f.campaign}/report?lang=de")
    assert page.status_code == 200, page.text
    section = page.text.split('data-testid="report-people"')[1]
    assert section.count('data-testid="people-row"') == 4
    assert "&#34;x&#34;" in section or "&quot;x&quot;" in section  # the formula, escaped
    assert "gelöscht" in section  # r8
    assert 'aria-current="page" data-testid="people-tab-opened"' in section
    assert f"/api/campaigns/{f.campaign}/report/people.csv?activity=opened" in section
    assert 'data-testid="people-next"' not in section
    download = await client.get(f"/api/campaigns/{f.campaign}/report/people.csv?activity=opened")
    assert download.status_code == 200 and download.text.count("\r\n") == 1 + 4  # the session

    clicked = await client.get(f"/campaigns/{f.campaign}/report?activity=clicked")
    rows = clicked.text.split('data-testid="report-people"')[1]
    assert rows.count('data-testid="people-row"') == 2

    monkeypatch.setattr(people, "MOST_PER_PAGE", 3)
    first = await client.get(f"/campaigns/{f.campaign}/report?activity=opened")
    link = f"?activity=opened&amp;after={f.r[3]}#people"
    assert link in first.text
    second = await client.get(f"/campaigns/{f.campaign}/report?activity=opened&after={f.r[3]}")
    later = second.text.split('data-testid="report-people"')[1]
    assert later.count('data-testid="people-row"') == 1
    assert 'data-testid="people-first"' in later and 'data-testid="people-next"' not in later

    bad = await client.get(
        f"/campaigns/{f.campaign}/report?activity=nobody", headers={"accept": "text/html"}
    )
    assert bad.status_code == 422


async def test_every_list_walks_the_events_index(merchant: MerchantOut) -> None:
    """SQLite's plan (it has no statistics to change its mind): every read of the events is an
    index search, none a scan. PostgreSQL's plans at a million recipients are in
    docs/tracking.md (a few milliseconds a page, no sequential scan)."""
    if database.is_postgres():
        pytest.skip("PostgreSQL plans by statistics; measured, not asserted")
    for activity in ACTIVITIES:
        sql, walks = people_sql(activity, "sqlite")
        args = [merchant.id, 1, 0, 101] * walks + [101, 1, merchant.id]
        plan = [
            str(row["detail"])
            for row in await TrackingEvent.raw("EXPLAIN QUERY PLAN " + sql, *args)
        ]
        reads = [step for step in plan if "tracking_event" in step]
        assert reads and all("USING INDEX tracking_event_campaign" in step for step in reads), plan
