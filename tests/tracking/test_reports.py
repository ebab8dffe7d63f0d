"""The campaign report against a hand-computed fixture: events written as the endpoints write
them, the numbers worked out by hand below, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.schemas import MerchantOut, UserOut
from campaigns.services import links, list_campaigns
from campaigns.tables import Campaign, CampaignRecipient
from loyalmail import sql
from tests.campaigns.test_api import auth
from tests.campaigns.test_bounces import sent_messages
from tests.campaigns.test_sending import a_campaign
from tests.conftest import login, make_merchant
from tests.tracking.test_people import activity_fixture
from tracking import events
from tracking.reports import campaign_figures, campaign_report, with_figures

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


async def test_the_campaign_lists_figures_are_the_reports(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    f = await activity_fixture(merchant)
    # A second sent campaign without any events, and a draft.
    quiet, draft = await a_campaign(merchant), await a_campaign(merchant)
    await CampaignRecipient.insert(
        *(
            CampaignRecipient(
                campaign=quiet, merchant=merchant.id, email=f"q{n}@example.com", status="bounced"
            )
            for n in range(3)
        )
    )
    await Campaign.update({Campaign.status: "sent", Campaign.started_at: T0}).where(
        Campaign.id.is_in([f.campaign, quiet])
    )

    figures = await campaign_figures(merchant.id, [f.campaign, quiet, draft])
    assert set(figures) == {f.campaign, quiet}  # the draft froze nobody
    for campaign_id, got in figures.items():
        report = await campaign_report(merchant.id, campaign_id)
        assert (
            got.recipients,
            got.delivered,
            got.unique_opens,
            got.open_rate,
            got.unique_clicks,
            got.click_rate,
            got.unsubscribes,
        ) == (
            report.recipients,
            report.delivered,
            report.unique_opens,
            report.open_rate,
            report.unique_clicks,
            report.click_rate,
            report.unsubscribes,
        )
    # By hand: 10 delivered (r8 erased since, still delivered), 4 opened, 2 clicked, 2 left.
    assert (figures[f.campaign].unique_opens, figures[f.campaign].open_rate) == (4, 0.4)
    assert (figures[f.campaign].click_rate, figures[f.campaign].unsubscribes) == (0.2, 2)
    assert (figures[quiet].recipients, figures[quiet].delivered, figures[quiet].open_rate) == (
        3,
        0,
        0.0,
    )
    listed = {c.id: c for c in await with_figures(merchant.id, await list_campaigns(merchant.id))}
    assert listed[draft].figures is None and listed[f.campaign].figures == figures[f.campaign]

    answer = await client.get("/api/campaigns", headers=auth(api_token))
    assert answer.status_code == 200, answer.text
    items = {item["id"]: item for item in answer.json()["items"]}
    assert items[draft]["figures"] is None
    assert items[f.campaign]["figures"]["open_rate"] == 0.4
    assert items[f.campaign]["figures"]["recipients"] == 10
