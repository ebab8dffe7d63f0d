"""The campaign report against a hand-computed fixture: events written as the endpoints write
them, the numbers worked out by hand below, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.schemas import MerchantOut, UserOut
from campaigns.services import links
from campaigns.tables import Campaign
from loyalmail import sql
from tests.campaigns.test_api import auth
from tests.campaigns.test_bounces import sent_messages
from tests.conftest import login, make_merchant
from tests.tracking.test_people import activity_fixture
from tracking import events
from tracking.reports import campaign_report

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def test_the_report_matches_the_hand_computed_figures(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    # tests.tracking.test_people's fixture: ten recipients, what each did is told there.
    f = await activity_fixture(merchant)
    campaign = f.campaign
    async with sql.write_transaction():
        await links.register_links(campaign, ("https://shop.example/a", "https://shop.example/b"))
    report = await campaign_report(merchant.id, campaign)
    assert (report.recipients, report.delivered, report.bounced) == (10, 10, 0)
    # Opened: r0, r2 (after the proxy), r3 (a click), r8 (erased since); r1 machine only.
    assert (report.unique_opens, report.opens, report.open_rate) == (4, 4, 0.4)
    assert report.machine_opens == 1
    assert (report.unique_clicks, report.clicks, report.click_rate) == (2, 3, 0.2)
    assert report.click_to_open_rate == 0.5
    assert report.unsubscribes == 2  # r4 and r6; r5 took it back
    assert [(x.number, x.url, x.clicks, x.unique_clicks) for x in report.links] == [
        (0, "https://shop.example/a", 2, 1),
        (1, "https://shop.example/b", 1, 1),
    ]
    assert [(a.hour, a.opens, a.clicks) for a in report.activity] == [
        (T0, 2, 2),  # 09:05 and 09:40 opens, 09:06 and 09:10 clicks
        (T0 + timedelta(hours=1), 1, 1),  # 10:10 open, 10:11 click
        (T0 + timedelta(hours=2), 1, 0),  # 11:10 open
    ]

    answer = await client.get(f"/api/campaigns/{campaign}/report", headers=auth(api_token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["unique_opens"], body["unique_clicks"], body["unsubscribes"]) == (4, 2, 2)
    assert body["activity"][0]["hour"].startswith("2026-11-20T09:00:00")


async def test_the_report_page_shows_the_figures_the_links_and_the_chart(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    sent = await sent_messages(merchant, 4)
    campaign = sent[0].campaign_id
    async with sql.write_transaction():
        await links.register_links(campaign, ("https://shop.example/<a>",))
    r = [s.recipient_id for s in sent]
    await events.write_now(
        [
            events.Event(merchant.id, campaign, r[0], "open", T0),
            events.Event(merchant.id, campaign, r[0], "click", T0, 0),
            events.Event(merchant.id, campaign, r[1], "open", T0, None, "apple-mpp"),
            events.Event(merchant.id, campaign, r[2], "open", T0 + timedelta(hours=3)),
        ]
    )
    await login(client, owner)
    page = await client.get(f"/campaigns/{campaign}/report?lang=de")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'data-testid="report-opens">2 <small>50 %</small>' in text
    assert 'data-testid="report-clicks">1 <small>25 %</small>' in text
    assert "Maschinelle Öffnungen (oben nicht gezählt): 1 Empfänger" in text
    assert "https://shop.example/&lt;a&gt;" in text and "<a>" not in text.split("report-links")[1]
    chart = text.split('data-testid="activity-chart"')[1].split("</svg>")[0]
    assert chart.count("<rect") == 2 * 4  # four hours, opens and clicks each
    assert 'data-opens="1"' in chart and 'data-clicks="1"' in chart
    await Campaign.update({Campaign.status: "sent"}).where(Campaign.id == campaign)
    sending = await client.get(f"/campaigns/{campaign}/sending")
    assert f'href="/campaigns/{campaign}/report"' in sending.text


async def test_another_merchants_report_is_404(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    theirs = (await sent_messages(await make_merchant(), 1))[0]
    path = f"/api/campaigns/{theirs.campaign_id}/report"
    answer = await client.get(path, headers=auth(api_token))
    assert answer.status_code == 404
    assert answer.json()["detail"]
