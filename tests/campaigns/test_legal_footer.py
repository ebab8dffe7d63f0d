"""No send without the legal footer (issue 20, item 5): a shop whose brand lacks its postal
address, legal name, privacy-policy link or (in DE/AT/CH) imprint cannot send a campaign —
not from the summary, the API, the scheduler's tick or the command line — and is told what to
fill in; a test send to the team still goes out. All of it failed before the rule (``/check``
said ready and the campaign went out)."""

from __future__ import annotations

import asyncio
import html as html_lib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from accounts import services as accounts
from accounts.schemas import Brand, MerchantOut, UserOut
from campaigns.schemas import ScheduleRequest
from campaigns.sending import dispatch
from campaigns.sending.progress import progress
from campaigns.tables import Campaign, CampaignRecipient
from quota import services as quota
from tests.campaigns.test_api import auth
from tests.campaigns.test_sending import a_campaign, people
from tests.conftest import login, make_merchant, make_owner
from tests.settings_env import settings_env

#: The brand fields the footer needs, as a German shop with an empty profile lacks them.
GAPS = ["street", "postal_code", "city", "publisher", "privacy_policy_url", "imprint"]


async def bare_shop() -> MerchantOut:
    """A German shop with a name and a sender, and nothing of the legal footer."""
    return await make_merchant(
        street="", postal_code="", city="", publisher="", imprint="", privacy_policy_url=""
    )


async def complete(merchant: MerchantOut) -> None:
    values = {name: getattr(merchant, name) for name in Brand.__struct_fields__}
    values.update(
        street="Oranienstraße 42",
        postal_code="10999",
        city="Berlin",
        publisher="Nordlicht Kaffeerösterei GmbH",
        imprint="Nordlicht Kaffeerösterei GmbH · HRB 123456 B",
        privacy_policy_url="https://shop.example/privacy",
    )
    await accounts.update_brand(merchant.id, Brand(**values))


async def nothing_frozen(campaign_id: int) -> bool:
    return not await CampaignRecipient.exists().where(CampaignRecipient.campaign == campaign_id)


async def test_check_and_the_api_name_every_gap_and_send_nothing(client: Any) -> None:
    merchant = await bare_shop()
    token = (await accounts.create_api_token(merchant.id, "tests")).token
    await people(merchant, 2)
    await quota.buy_pack(merchant.id, reference=f"pack-{merchant.slug}")
    campaign_id = await a_campaign(merchant)
    h = auth(token)

    check = (await client.get(f"/api/campaigns/{campaign_id}/check", headers=h)).json()
    assert check["ready"] is False
    assert [p["field"] for p in check["problems"]] == GAPS
    assert all(p["legal_footer"] for p in check["problems"])

    sent = await client.post(f"/api/campaigns/{campaign_id}/send", headers=h)
    assert sent.status_code == 422, sent.text
    body = sent.json()
    assert body["detail"] == "The legal footer is incomplete: fill in the brand settings first."
    assert sorted(body["fields"]) == sorted(GAPS)
    assert body["fields"]["privacy_policy_url"] == (
        "The legal footer needs a link to the shop's privacy policy."
    )
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = await client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"at": at}, headers=h
    )
    assert scheduled.status_code == 422, scheduled.text
    assert sorted(scheduled.json()["fields"]) == sorted(GAPS)
    assert (await progress(merchant.id, campaign_id)).status == "draft"
    assert await nothing_frozen(campaign_id)

    # Outside DE/AT/CH no imprint is needed; with the rest filled in the campaign is ready.
    await complete(merchant)
    shop = await accounts.get_merchant(merchant.id)
    values = {name: getattr(shop, name) for name in Brand.__struct_fields__}
    await accounts.update_brand(merchant.id, Brand(**{**values, "country": "FR", "imprint": ""}))
    check = (await client.get(f"/api/campaigns/{campaign_id}/check", headers=h)).json()
    assert check == {"ready": True, "problems": []}


async def test_the_scheduler_holds_a_due_campaign_whose_brand_lost_its_footer(
    merchant: MerchantOut,
) -> None:
    await people(merchant, 2)
    await quota.buy_pack(merchant.id, reference=f"pack-{merchant.slug}")
    campaign_id = await a_campaign(merchant)
    at = datetime.now(UTC) + timedelta(minutes=5)
    await dispatch.schedule(merchant.id, campaign_id, ScheduleRequest(at=at.isoformat()))
    # The profile is emptied after the campaign was scheduled.
    values = {name: getattr(merchant, name) for name in Brand.__struct_fields__}
    await accounts.update_brand(merchant.id, Brand(**{**values, "street": "", "imprint": ""}))

    assert await dispatch.start_due_campaigns(now=at + timedelta(seconds=1)) == []
    held = await progress(merchant.id, campaign_id)
    assert held.status == "overdue"
    assert held.status_reason == accounts.LEGAL_FOOTER_INCOMPLETE
    assert await nothing_frozen(campaign_id)
    # A later tick does not pick it up again; filled in, the marketer sends it.
    assert await dispatch.start_due_campaigns(now=at + timedelta(minutes=1)) == []
    await complete(merchant)
    with settings_env({"LOYALMAIL_SEND_BATCH_SIZE": "7"}):
        started = await dispatch.send_now(merchant.id, campaign_id)
    assert started.status == "sending" and started.recipients == 2


async def test_the_summary_names_the_gaps_links_to_them_and_offers_no_send(
    client: Any,
) -> None:
    merchant = await bare_shop()
    owner: UserOut = await make_owner(merchant)
    await people(merchant, 1)
    campaign_id = await a_campaign(merchant)
    csrf = await login(client, owner)
    client.headers["accept"] = "text/html"
    summary = (await client.get(f"/campaigns/{campaign_id}/summary")).text
    assert 'data-testid="summary-problems"' in summary
    for field in GAPS:
        assert f'href="/settings#field-{field}"' in summary, field
    assert "The legal footer needs the shop's postal code." in html_lib.unescape(summary)
    assert 'data-testid="legal-footer-rule"' in summary  # test sends stay allowed: it says so
    assert 'data-testid="send-now"' not in summary and 'data-testid="schedule"' not in summary
    assert 'data-testid="test-send"' in summary
    # Every anchor exists on the settings page.
    settings = (await client.get("/settings")).text
    for field in GAPS:
        assert f'id="field-{field}"' in settings, field
    assert 'data-testid="legal-gaps"' in settings
    # The form's POST is refused the same way, shown on the summary.
    refused = await client.post(
        f"/campaigns/{campaign_id}/send", data={"_csrf": csrf}, follow_redirects=False
    )
    assert refused.status_code == 422
    assert 'data-testid="send-error"' not in refused.text  # no send form to show it on
    assert 'data-testid="summary-problems"' in refused.text
    assert await nothing_frozen(campaign_id)

    # In German, too (the marketer's page language).
    client.cookies.set("lm_lang", "de")
    german = (await client.get(f"/campaigns/{campaign_id}/summary")).text
    assert "Für das Impressum im Newsletter fehlt die Postleitzahl des Geschäfts." in (
        html_lib.unescape(german)
    )


async def test_a_held_campaign_shows_why_on_its_summary(client: Any) -> None:
    merchant = await make_merchant()
    owner = await make_owner(merchant)
    await people(merchant, 1)
    campaign_id = await a_campaign(merchant)
    at = datetime.now(UTC) + timedelta(minutes=5)
    await dispatch.schedule(merchant.id, campaign_id, ScheduleRequest(at=at.isoformat()))
    values = {name: getattr(merchant, name) for name in Brand.__struct_fields__}
    await accounts.update_brand(merchant.id, Brand(**{**values, "privacy_policy_url": ""}))
    scheduled = (await Campaign.select().where(Campaign.id == campaign_id).first()) or {}
    assert scheduled["status"] == "scheduled"
    await login(client, owner)
    client.headers["accept"] = "text/html"
    page = (await client.get(f"/campaigns/{campaign_id}/summary")).text
    # Still scheduled: the schedule can be dropped, but no button sends.
    assert 'data-testid="unschedule"' in page
    assert '<button type="submit" disabled>Send now' in page
    await dispatch.start_due_campaigns(now=at + timedelta(seconds=1))
    page = (await client.get(f"/campaigns/{campaign_id}/summary")).text
    assert 'data-testid="overdue"' in page
    assert accounts.LEGAL_FOOTER_INCOMPLETE in html_lib.unescape(page)
    assert 'href="/settings#field-privacy_policy_url"' in page


async def test_a_test_send_may_go_out_without_the_footer(
    client: Any, jobs: Any, smtp: Path
) -> None:
    merchant = await bare_shop()
    owner = await make_owner(merchant)
    token = (await accounts.create_api_token(merchant.id, "tests")).token
    campaign_id = await a_campaign(merchant)
    sent = await client.post(
        f"/api/campaigns/{campaign_id}/test-sends",
        json={"addresses": [owner.email]},
        headers=auth(token),
    )
    assert sent.status_code == 202, sent.text


async def test_the_command_line_refuses_and_names_the_fields(db: Any) -> None:
    from typer.testing import CliRunner

    from loyalmail.cli import app

    # Without Redis too: a refused send starts no worker threads (loyalmail.cli), so the
    # command exits with the refusal on either broker.
    merchant = await bare_shop()
    await people(merchant, 1)
    campaign_id = await a_campaign(merchant)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["campaign", "send", str(campaign_id), "--merchant", merchant.slug],
    )
    assert result.exit_code == 1, result.output
    assert "The legal footer is incomplete" in result.output
    for field in GAPS:
        assert f"  {field}: " in result.output, field
    assert await nothing_frozen(campaign_id)
