"""The sending pages through the whole app: send now and schedule from the summary, refusals
shown where the marketer clicked (nothing half done), the progress page with its polled
figures and its pause, resume and cancel buttons, the composer closed once a campaign sends,
and another merchant's campaign out of reach."""

from __future__ import annotations

import asyncio
import html as html_lib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.schemas import MerchantOut, UserOut
from campaigns.schemas import ScheduleRequest
from campaigns.sending import dispatch
from campaigns.sending.progress import progress
from campaigns.tables import Campaign
from loyalmail.i18n import format_moment
from quota import services as quota
from tests.campaigns.test_pages import _browser_accept_header  # noqa: F401  (a fixture)
from tests.campaigns.test_sending import (
    a_campaign,
    fast_sending,  # noqa: F401  (a fixture)
    ready,
    received,
    recipients_by_status,
)
from tests.conftest import Jobs, login, make_merchant, make_owner

BERLIN = ZoneInfo("Europe/Berlin")


@contextmanager
def not_handed_out(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Sends started meanwhile keep their batches in the database, as if Redis had lost the
    jobs: the page's buttons meet a send that is surely still running. Yields the batch ids."""
    kept: list[int] = []

    async def keep(campaign_id: int, batch_ids: list[int], delay_ms: int = 0) -> int:
        kept.extend(batch_ids)
        return 0

    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "enqueue_batches", keep)
        yield kept


async def status_of(campaign_id: int) -> str:
    row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
    assert row is not None
    return str(row["status"])


def figure(html: str, name: str) -> int:
    found = re.search(rf'data-testid="figure-{name}">([0-9.,]+)<', html)
    assert found, f"no figure {name}"
    return int(found.group(1).replace(",", ""))


def row_of(listing: str, campaign_id: int) -> str:
    found = re.search(rf'data-campaign-id="{campaign_id}".*?</tr>', listing, re.DOTALL)
    assert found, f"campaign {campaign_id} is not in the list"
    return found.group(0)


@pytest.mark.usefixtures("fast_sending")
async def test_send_now_from_the_summary_leads_to_the_progress_page(
    client: Any, merchant: MerchantOut, owner: UserOut, jobs: Jobs, smtp: Path
) -> None:
    campaign_id, addresses = await ready(merchant, 3)
    csrf = await login(client, owner)
    summary = (await client.get(f"/campaigns/{campaign_id}/summary")).text
    assert "Not available yet" not in summary
    assert f'action="/campaigns/{campaign_id}/send"' in summary
    assert "Send now to 3 recipients</button>" in summary
    assert 'data-confirm="Send “Winter” now to 3 recipients? This cannot be undone."' in summary
    assert '<input type="datetime-local" name="at"' in summary
    assert "Send at (time zone Europe/Berlin)" in summary

    sent = await client.post(
        f"/campaigns/{campaign_id}/send", data={"_csrf": csrf}, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/campaigns/{campaign_id}/sending?notice=sending"
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)

    page = await client.get(sent.headers["location"])
    assert page.status_code == 200
    assert "The campaign is being sent." in page.text
    assert 'data-testid="sending-status">Sent<' in page.text
    assert (figure(page.text, "sent"), figure(page.text, "remaining")) == (3, 0)
    assert "3 of 3 recipients handled (100%)" in page.text
    assert '<progress max="3" value="3"' in page.text
    assert 'data-testid="sending-finished"' in page.text
    assert 'hx-trigger="every 2s"' not in page.text  # finished: nothing to poll for
    assert 'action="/campaigns/{campaign_id}/pause"' not in page.text

    row = row_of((await client.get("/campaigns")).text, campaign_id)
    assert 'data-testid="campaign-status">Sent<' in row
    assert f'href="/campaigns/{campaign_id}/sending">Report</a>' in row
    assert "/delete" not in row
    # A second click (an old tab): the progress page, nothing sent twice.
    again = await client.post(
        f"/campaigns/{campaign_id}/send", data={"_csrf": csrf}, follow_redirects=False
    )
    assert again.status_code == 303
    assert again.headers["location"] == f"/campaigns/{campaign_id}/sending"
    assert (await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")) is not None


async def test_a_send_the_quota_does_not_cover_is_refused_on_the_summary(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign_id, _addresses = await ready(merchant, 3, pack=False)
    csrf = await login(client, owner)
    refused = await client.post(f"/campaigns/{campaign_id}/send", data={"_csrf": csrf})
    assert refused.status_code == 409
    error = re.search(r'data-testid="send-error">(.*?)</div>', refused.text, re.DOTALL)
    assert error, "the refusal is next to the send button"
    assert "This send needs 3 but only 0 are available: buy 1 pack of 10,000" in error.group(1)
    assert "Traceback" not in refused.text
    # Nothing frozen, nothing reserved, still a draft.
    assert await recipients_by_status(campaign_id) == {}
    assert await status_of(campaign_id) == "draft"
    assert await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}") is None

    german = await client.post(f"/campaigns/{campaign_id}/send?lang=de", data={"_csrf": csrf})
    assert german.status_code == 409
    assert "Dieser Versand braucht 3, verfügbar sind aber nur 0: Kaufen Sie 1 Paket" in german.text


async def test_schedule_refuses_a_past_time_then_shows_the_schedule_until_dropped(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign_id, _addresses = await ready(merchant, 2)
    csrf = await login(client, owner)
    past = await client.post(
        f"/campaigns/{campaign_id}/schedule", data={"_csrf": csrf, "at": "2020-01-01T09:00"}
    )
    assert past.status_code == 422
    assert 'data-testid="schedule-error">That time has passed.<' in past.text
    assert 'value="2020-01-01T09:00"' in past.text  # what was typed stays
    empty = await client.post(f"/campaigns/{campaign_id}/schedule", data={"_csrf": csrf})
    assert empty.status_code == 422 and "Choose the day and the time." in empty.text
    garbled = await client.post(
        f"/campaigns/{campaign_id}/schedule?lang=de", data={"_csrf": csrf, "at": "tomorrow"}
    )
    assert garbled.status_code == 422 and "Zeitzone des Shops" in garbled.text
    assert await status_of(campaign_id) == "draft"

    at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    local = at.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")
    scheduled = await client.post(
        f"/campaigns/{campaign_id}/schedule",
        data={"_csrf": csrf, "at": local},
        follow_redirects=False,
    )
    assert scheduled.status_code == 303, scheduled.text
    assert scheduled.headers["location"] == f"/campaigns/{campaign_id}/summary?notice=scheduled"
    assert await status_of(campaign_id) == "scheduled"
    summary = (await client.get(scheduled.headers["location"])).text
    assert "The campaign is scheduled." in summary
    shown = html_lib.escape(format_moment(at, "Europe/Berlin", "long"), quote=False)
    assert f"Scheduled for {shown} (Europe/Berlin)." in summary
    assert f'value="{local}"' in summary and ">Reschedule</button>" in summary
    assert f'action="/campaigns/{campaign_id}/unschedule"' in summary
    row = row_of((await client.get("/campaigns")).text, campaign_id)
    assert 'data-testid="campaign-status">Scheduled<' in row
    assert f'href="/campaigns/{campaign_id}/summary">Edit</a>' in row

    dropped = await client.post(
        f"/campaigns/{campaign_id}/unschedule", data={"_csrf": csrf}, follow_redirects=False
    )
    assert dropped.status_code == 303
    assert dropped.headers["location"] == f"/campaigns/{campaign_id}/summary?notice=unscheduled"
    assert await status_of(campaign_id) == "draft"
    after = (await client.get(dropped.headers["location"])).text
    assert "The schedule was cancelled: the campaign is a draft again." in after
    assert 'data-testid="scheduled-for"' not in after
    twice = await client.post(f"/campaigns/{campaign_id}/unschedule", data={"_csrf": csrf})
    assert twice.status_code == 409 and "This campaign is not scheduled." in twice.text


async def test_an_overdue_campaign_says_why_and_can_be_sent_or_rescheduled(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign_id, _addresses = await ready(merchant, 1)
    at = datetime.now(UTC) + timedelta(minutes=5)
    await dispatch.schedule(merchant.id, campaign_id, ScheduleRequest(at=at.isoformat()))
    # The service was down for hours when its time came.
    await dispatch.start_due_campaigns(now=at + timedelta(hours=3))
    assert await status_of(campaign_id) == "overdue"
    await login(client, owner)
    summary = (await client.get(f"/campaigns/{campaign_id}/summary?lang=de")).text
    assert "Ihr Zeitpunkt ist verstrichen, während der Dienst nicht lief" in summary
    assert "Jetzt an 1 Empfänger senden" in summary and ">Planen</button>" in summary
    assert 'name="at" value=""' in summary  # the old time is of no use
    listing = (await client.get("/campaigns?lang=de")).text
    assert 'data-testid="campaign-status">Überfällig<' in row_of(listing, campaign_id)


@pytest.mark.usefixtures("fast_sending")
async def test_pause_resume_and_cancel_through_the_progress_page(
    client: Any,
    merchant: MerchantOut,
    owner: UserOut,
    jobs: Jobs,
    smtp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id, addresses = await ready(merchant, 4)
    csrf = await login(client, owner)
    with not_handed_out(monkeypatch) as batches:
        await dispatch.send_now(merchant.id, campaign_id)
        assert batches  # started, but no worker has any of it
        page = (await client.get(f"/campaigns/{campaign_id}/sending")).text
        assert 'data-testid="sending-status">Sending<' in page
        assert f'hx-get="/campaigns/{campaign_id}/sending/figures"' in page
        assert 'hx-trigger="every 2s" hx-swap="outerHTML"' in page
        assert f'<a class="small" href="/campaigns/{campaign_id}/sending">Refresh</a>' in page
        assert figure(page, "remaining") == 4 and "0 of 4 recipients handled (0%)" in page
        assert "Time left" in page and "being measured" in page
        paused = await client.post(
            f"/campaigns/{campaign_id}/pause", data={"_csrf": csrf}, follow_redirects=False
        )
        assert paused.status_code == 303
        assert paused.headers["location"] == f"/campaigns/{campaign_id}/sending?notice=paused"
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 0)
    page = (await client.get(paused.headers["location"])).text
    assert "The send is paused." in page and 'data-testid="sending-status">Paused<' in page
    assert 'hx-trigger="every 2s"' not in page
    assert f'action="/campaigns/{campaign_id}/resume"' in page
    assert f'action="/campaigns/{campaign_id}/pause"' not in page
    # A second pause (another tab): the message on the page, with its status.
    refused = await client.post(f"/campaigns/{campaign_id}/pause", data={"_csrf": csrf})
    assert refused.status_code == 409
    assert (
        'data-testid="sending-error">Only a campaign that is being sent can be paused.<'
        in refused.text
    )

    resumed = await client.post(
        f"/campaigns/{campaign_id}/resume", data={"_csrf": csrf}, follow_redirects=False
    )
    assert resumed.headers["location"] == f"/campaigns/{campaign_id}/sending?notice=resumed"
    await asyncio.to_thread(jobs.drain)
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)
    done = (await client.get(resumed.headers["location"])).text
    assert "The send goes on." in done and figure(done, "sent") == 4
    late = await client.post(f"/campaigns/{campaign_id}/cancel", data={"_csrf": csrf})
    assert late.status_code == 409
    assert "Only a campaign that is being sent can be cancelled." in late.text

    other_id = await a_campaign(merchant)  # the same four people, a second campaign
    with not_handed_out(monkeypatch):
        await dispatch.send_now(merchant.id, other_id)
        page = (await client.get(f"/campaigns/{other_id}/sending")).text
        assert 'data-confirm="Cancel the send for good?' in page
        assert '<script src="/static/confirm.js" defer></script>' in page  # asks it
        cancelled = await client.post(
            f"/campaigns/{other_id}/cancel", data={"_csrf": csrf}, follow_redirects=False
        )
        assert cancelled.headers["location"] == f"/campaigns/{other_id}/sending?notice=cancelled"
    figures = await progress(merchant.id, other_id)
    assert (figures.status, figures.sent, figures.cancelled) == ("cancelled", 0, 4)
    page = (await client.get(cancelled.headers["location"])).text
    assert "The send was cancelled: nobody else gets the campaign." in page
    assert figure(page, "cancelled") == 4 and figure(page, "sent") == 0
    assert f'action="/campaigns/{other_id}/resume"' not in page
    assert await asyncio.to_thread(received, smtp, addresses) == dict.fromkeys(addresses, 1)


async def test_a_sending_campaign_leaves_the_composer_for_its_progress_page(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign_id, _addresses = await ready(merchant, 2)
    # Started a moment ago (its jobs are not this test's business).
    await Campaign.update({Campaign.status: "sending"}).where(Campaign.id == campaign_id)
    csrf = await login(client, owner)
    target = f"/campaigns/{campaign_id}/sending"
    for path in ("", "/audience", "/layout", "/design", "/summary"):
        step = await client.get(f"/campaigns/{campaign_id}{path}", follow_redirects=False)
        assert (step.status_code, step.headers.get("location")) == (303, target), path
    saved = await client.post(
        f"/campaigns/{campaign_id}/basics",
        data={"_csrf": csrf, "name": "Changed", "subject": "Changed"},
        follow_redirects=False,
    )
    assert (saved.status_code, saved.headers.get("location")) == (303, target)
    row = await Campaign.select(Campaign.name).where(Campaign.id == campaign_id).first()
    assert row is not None and row["name"] == "Winter"

    listing = (await client.get("/campaigns")).text
    assert "Not available yet" not in listing
    row_html = row_of(listing, campaign_id)
    assert 'data-testid="campaign-status">Sending<' in row_html
    assert f'href="{target}">Progress</a>' in row_html

    # The live part alone, for HTMX: no layout around it, polling while it sends.
    fragment = await client.get(f"{target}/figures", headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="sending-figures"' in fragment.text
    assert 'hx-trigger="every 2s"' in fragment.text
    assert f'name="_csrf" value="{csrf}"' in fragment.text  # its buttons are forms
    german = (await client.get(f"{target}/figures?lang=de")).text
    assert 'data-testid="sending-status">Versand<' in german
    assert ">Pausieren</button>" in german and ">Versand abbrechen</button>" in german


async def test_another_merchants_sending_pages_answer_404(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    other = await make_merchant(name="Elsewhere")
    await make_owner(other)
    theirs, _addresses = await ready(other, 1)
    csrf = await login(client, owner)
    for path in ("/sending", "/sending/figures"):
        answer = await client.get(f"/campaigns/{theirs}{path}")
        assert answer.status_code == 404, path
        assert "Winter" not in answer.text
    for path, data in (
        ("/send", {}),
        ("/schedule", {"at": "2030-01-01T09:00"}),
        ("/unschedule", {}),
        ("/pause", {}),
        ("/resume", {}),
        ("/cancel", {}),
    ):
        answer = await client.post(
            f"/campaigns/{theirs}{path}", data={"_csrf": csrf, **data}, follow_redirects=False
        )
        assert answer.status_code == 404, path
    assert await status_of(theirs) == "draft"
    assert await recipients_by_status(theirs) == {}
