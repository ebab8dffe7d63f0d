"""Sending in a real browser: a marketer opens the summary of a ready campaign, clicks "Send
now", confirms, lands on the progress page, watches it reach "Sent" without reloading (HTMX
polls the figures), and finds the campaign as sent in the list."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from campaigns.sending import control, dispatch
from tests.campaigns.test_sending import (
    fast_sending,  # noqa: F401  (a fixture)
    ready,
    received,
)
from tests.conftest import Jobs, make_merchant, make_owner
from tests.e2e.conftest import shot
from tests.e2e.test_composer_browser import PASSWORD, _log_in


@pytest.fixture
def held_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The send's batches stay in the database until the test hands them out, so the page
    is seen while the campaign is still sending (then the polling has something to show)."""
    kept: list[int] = []

    async def keep(campaign_id: int, batch_ids: list[int], delay_ms: int = 0) -> int:
        kept.extend(batch_ids)
        return 0

    monkeypatch.setattr(dispatch, "enqueue_batches", keep)
    yield kept


@pytest.mark.usefixtures("fast_sending")
async def test_send_now_and_watch_it_reach_sent(
    page: Any, live_server: str, jobs: Jobs, smtp: Path, held_batches: list[int]
) -> None:
    merchant = await make_merchant(name="Kiez Kaffee")
    campaign_id, addresses = await ready(merchant, 3)
    owner = await make_owner(merchant, PASSWORD)
    await _log_in(page, live_server, owner.email)

    await page.goto(f"{live_server}/campaigns/{campaign_id}/summary")
    await expect(page.get_by_test_id("summary-ready")).to_be_visible()
    questions: list[str] = []

    async def confirm(dialog: Any) -> None:
        questions.append(dialog.message)
        await dialog.accept()

    page.once("dialog", confirm)
    await page.get_by_role("button", name="Send now to 3 recipients").click()
    await expect(page).to_have_url(
        re.compile(rf"/campaigns/{campaign_id}/sending\?notice=sending$")
    )
    assert questions == ["Send “Winter” now to 3 recipients? This cannot be undone."]
    status = page.get_by_test_id("sending-status")
    await expect(status).to_have_text("Sending")
    await expect(page.get_by_test_id("figure-remaining")).to_have_text("3")
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    assert held_batches, "the send started; its batches wait for the test"

    # The workers get the batches now; the open page follows by itself, without a reload.
    await page.evaluate("window.stillTheSamePage = true")
    await control.hand_out_unfinished(campaign_id, datetime.now(UTC) + timedelta(seconds=1))
    await expect(status).to_have_text("Sent", timeout=20_000)
    await expect(page.get_by_test_id("figure-sent")).to_have_text("3")
    await expect(page.get_by_test_id("figure-remaining")).to_have_text("0")
    await expect(page.get_by_test_id("sending-done")).to_have_text(
        "3 of 3 recipients handled (100%)"
    )
    await expect(page.get_by_test_id("sending-finished")).not_to_be_empty()
    await expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    assert await page.evaluate("window.stillTheSamePage === true")
    assert received(smtp, addresses) == dict.fromkeys(addresses, 1)
    await shot(page, "campaign-sent")

    await page.get_by_role("link", name="← Campaigns").click()
    row = page.locator(f"[data-testid=campaign-row][data-campaign-id='{campaign_id}']")
    await expect(row.get_by_test_id("campaign-status")).to_have_text("Sent")
    await row.get_by_role("link", name="Report").click()
    await expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/sending$"))
    await expect(page.get_by_test_id("figure-sent")).to_have_text("3")
