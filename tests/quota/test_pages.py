"""The quota as the marketer sees it, through the whole app: the quota page, the dashboard card
and the composer summary's estimate, in English and German, on SQLite and PostgreSQL.

Pages use the real clock, so the figures are granted for the merchant's current month."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from babel import dates

from accounts.schemas import MerchantOut, UserOut
from campaigns import services as campaigns
from campaigns.schemas import Audience, CampaignCreate
from loyalmail.settings import reset_settings_cache
from quota import services as quota
from quota.schemas import HistoryEntry
from quota.services.common import Month

# The composer pages' autouse fixture (pages are asked for HTML, as a browser does) and
# their customer helper (a verified, subscribed address, as a target group counts it).
from tests.campaigns.test_pages import _browser_accept_header, _customer  # noqa: F401
from tests.conftest import login, make_merchant

BUY_URL = "https://billing.example/loyalmail-packs"


@pytest.fixture
def buy_url(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LOYALMAIL_PACK_PURCHASE_URL", BUY_URL)
    reset_settings_cache()
    yield BUY_URL
    monkeypatch.delenv("LOYALMAIL_PACK_PURCHASE_URL")
    reset_settings_cache()


def _month(merchant: MerchantOut) -> Month:
    return Month.containing(datetime.now(UTC), merchant.time_zone)


def _long(day: date, locale: str = "en") -> str:
    return str(dates.format_date(day, "long", locale=locale))


def _name(month: Month, locale: str = "en") -> str:
    return str(dates.get_month_names("wide", context="stand-alone", locale=locale)[month.month])


def _text(html: str) -> str:
    """The page's words without tags and with single spaces, as a reader sees them."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def _section(html: str, testid: str) -> str:
    """The text of the element with this test id (none of them nests its own kind)."""
    found = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    assert found, f"no {testid} on the page"
    return _text(found.group(2))


async def _shop_with_a_busy_month(merchant: MerchantOut) -> None:
    """1,000 units this month, a pack, a send under way and a test send used."""
    month = _month(merchant)
    now = datetime.now(UTC)
    await quota.grant_allowance(merchant.id, month, 500, counted_at=now)
    await quota.buy_pack(merchant.id, "order-77")
    send = await quota.reserve(merchant.id, 140, key="campaign:1", purpose="Autumn sale")
    await quota.spend(merchant.id, send.id, [f"r{n}" for n in range(40)])
    test = await quota.reserve(merchant.id, 1, key="test:1", pool="test", purpose="Test send")
    await quota.spend(merchant.id, test.id, ["me"])
    for n in range(3):
        await _customer(merchant, f"loyal{n}@example.com", customer_type="loyal")


async def test_the_quota_page_shows_allowance_packs_test_sends_forecast_and_history(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await _shop_with_a_busy_month(merchant)
    other = await make_merchant(name="Elsewhere")
    await quota.buy_pack(other.id, "their-order")
    month = _month(merchant)
    await login(client, owner)
    response = await client.get("/quota")
    assert response.status_code == 200
    html = response.text
    assert '<a href="/quota" aria-current="page">Quota</a>' in html
    assert "10,860" in _section(html, "quota-available")  # 860 of the allowance + 10,000

    allowance = _section(html, "quota-allowance")
    assert f"Allowance for {_name(month)} {month.year}" in allowance
    assert "Granted 1,000 2 units for each of your 500 loyal customers" in allowance
    assert "Spent 40 " in allowance and "Reserved 100 for sends under way" in allowance
    assert "Left 860 " in allowance
    assert f"Expires after {_long(month.last_day)}" in allowance

    packs = _section(html, "quota-packs")
    assert "order-77" in packs and "10,000 / 10,000" in packs
    assert "All packs 10,000" in packs and "Packs never expire." in packs
    assert "their-order" not in html  # another merchant's pack

    test_sends = _section(html, "quota-test-sends")
    assert "Used 1 of 10" in test_sends and "Left 9 " in test_sends
    assert f"Renews {_long(month.next().first_day)}" in test_sends

    forecast = _section(html, "quota-forecast")
    next_month = month.next()
    assert (
        f"At today's 3 loyal customers, the allowance for {_name(next_month)} "
        f"{next_month.year} will be 6 units." in forecast
    )
    assert "contact your loyalmail provider" in _section(html, "quota-buy")

    history = _section(html, "quota-history")
    rows = re.findall(r'<tr data-kind="(\w+)">', html)
    # Newest first: the test send, the send, the month's test sends (granted when the send
    # first looked at the quota), the pack, the allowance.
    assert rows == ["reserve", "reserve", "grant", "purchase", "grant"]
    assert "Reserved for a send −1 Test sends" in history
    assert "−140 " in history and "Autumn sale · 40 spent, 0 given back" in history
    assert "Pack bought +10,000 Pack order-77 1 × 10,000" in history
    assert "Granted +1,000 " in history and "2 × 500 loyal customers" in history
    assert "Older entries" not in history


async def test_the_quota_page_in_german(client: Any, merchant: MerchantOut, owner: UserOut) -> None:
    await _shop_with_a_busy_month(merchant)
    month = _month(merchant)
    await login(client, owner)
    html = (await client.get("/quota?lang=de")).text
    assert "10.860" in _section(html, "quota-available")
    allowance = _section(html, "quota-allowance")
    assert f"Monatskontingent {_name(month, 'de')} {month.year}" in allowance
    assert "Gutgeschrieben 1.000 2 Einheiten für jeden Ihrer 500 Treuekunden" in allowance
    assert f"Verfällt nach dem {_long(month.last_day, 'de')}" in allowance
    assert "Alle Pakete 10.000" in _section(html, "quota-packs")
    assert "Verbraucht 1 von 10" in _section(html, "quota-test-sends")
    assert "Bei heute 3 Treuekunden beträgt das Monatskontingent" in html
    history = _section(html, "quota-history")
    assert "Paket gekauft +10.000 Paket order-77 1 × 10.000" in history
    assert "Autumn sale · 40 verbraucht, 0 zurückgegeben" in history
    assert "Für einen Versand reserviert" in history and "2 × 500 Treuekunden" in history


async def test_the_history_pages_to_older_entries(
    client: Any, merchant: MerchantOut, owner: UserOut, buy_url: str
) -> None:
    await quota.grant_allowance(merchant.id, _month(merchant), 10, counted_at=datetime.now(UTC))
    for n in range(50):
        await quota.buy_pack(merchant.id, f"order-{n:02d}")
    await login(client, owner)
    first = (await client.get("/quota")).text
    assert len(re.findall(r"<tr data-kind=", first)) == 50
    older = re.search(r'href="/quota\?before=([0-9]+)" rel="next">Older entries', first)
    assert older, "a full page links to the older entries"
    assert "Newest entries" not in first
    # With a purchase address configured, the page links to it.
    assert f'<a class="btn" href="{buy_url}"' in first
    second = (await client.get(f"/quota?before={older.group(1)}")).text
    kinds = re.findall(r'<tr data-kind="(\w+)">', second)
    assert kinds[-1] == "grant" and len(kinds) == 2  # the oldest pack, then the allowance
    assert "Older entries" not in second and 'href="/quota">Newest entries' in second
    for bad in ("abc", "0", "-3", str(2**40)):
        refused = await client.get(f"/quota?before={bad}")
        assert refused.status_code == 400, bad


async def test_the_dashboard_card_shows_what_is_left(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    month = _month(merchant)
    await quota.grant_allowance(merchant.id, month, 430, counted_at=datetime.now(UTC))
    await login(client, owner)
    card = _section((await client.get("/")).text, "quota-left")
    assert f"860 860 of {_name(month)}'s allowance, expiring {_long(month.last_day)}" in card
    assert "packs" not in card  # none bought: nothing to say about them
    await quota.buy_pack(merchant.id, "order-1")
    html = (await client.get("/")).text
    assert 'href="/quota" data-testid="quota-left"' in html
    assert (
        f"Quota left 10,860 860 of {_name(month)}'s allowance, expiring "
        f"{_long(month.last_day)}; packs: 10,000" in _section(html, "quota-left")
    )
    german = _section((await client.get("/?lang=de")).text, "quota-left")
    assert (
        f"10.860 860 aus dem Monatskontingent {_name(month, 'de')}, gültig bis "
        f"{_long(month.last_day, 'de')}; Pakete: 10.000" in german
    )


async def _summary_campaign(merchant: MerchantOut, recipients: int) -> int:
    for n in range(recipients):
        await _customer(merchant, f"reader{n}@example.com")
    created = await campaigns.create_campaign(
        merchant.id,
        CampaignCreate(name="Autumn sale", audience=Audience(predefined="non_members")),
    )
    return created.id


async def test_the_summary_says_what_the_send_would_use(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    month = _month(merchant)
    campaign = await _summary_campaign(merchant, 3)
    await quota.grant_allowance(merchant.id, month, 1, counted_at=datetime.now(UTC))  # 2 units
    await login(client, owner)
    path = f"/campaigns/{campaign}/summary"

    short = (await client.get(path)).text
    assert (
        "This send needs 3 but only 2 are available: buy 1 pack of 10,000 or choose a "
        "smaller group. To buy packs, contact your loyalmail provider."
        in _section(short, "summary-quota")
    )
    assert 'class="cmp-quota-short"' in short
    test_sends = _section(short, "summary-test-sends")
    renews = _long(month.next().first_day)
    assert f"10 of 10 test sends left this month; new ones on {renews}." in test_sends

    await quota.buy_pack(merchant.id, "order-1")
    split = _section((await client.get(path)).text, "summary-quota")
    assert (
        f"This send uses 3: 2 from {_name(month)}'s allowance (expiring "
        f"{_long(month.last_day)}) and 1 from packs; 9,999 left in packs." in split
    )
    german = _section((await client.get(f"{path}?lang=de")).text, "summary-quota")
    assert (
        f"Dieser Versand verbraucht 3: 2 aus dem Monatskontingent {_name(month, 'de')} "
        f"(gültig bis {_long(month.last_day, 'de')}) und 1 aus Paketen; in Paketen bleiben "
        "9.999." in german
    )


async def test_the_summary_when_the_allowance_is_enough_or_packs_are_bought_elsewhere(
    client: Any, owner: UserOut, merchant: MerchantOut, buy_url: str
) -> None:
    month = _month(merchant)
    campaign = await _summary_campaign(merchant, 2)
    await login(client, owner)
    path = f"/campaigns/{campaign}/summary"
    # No allowance (no loyal customers yet), nothing bought: the link to buy packs.
    html = (await client.get(path)).text
    assert "buy 1 pack of 10,000" in _section(html, "summary-quota")
    assert f'<a href="{buy_url}" rel="noopener noreferrer" target="_blank">Buy packs</a>' in html

    await quota.buy_pack(merchant.id, "order-1")
    packs_only = _section((await client.get(path)).text, "summary-quota")
    assert "This send uses 2: all from packs; 9,998 left in packs." in packs_only

    # The page granted this first month's allowance from no loyal customers; it grows with them.
    await quota.grant_allowance(merchant.id, month, 100, counted_at=datetime.now(UTC), top_up=True)
    allowance = _section((await client.get(path)).text, "summary-quota")
    assert (
        f"This send uses 2: all from {_name(month)}'s allowance, 198 left after it, expiring "
        f"{_long(month.last_day)}; packs: 10,000." in allowance
    )
    assert "Buy packs" not in allowance


def _entry(kind: str, source_kind: str, **fields: object) -> HistoryEntry:
    return HistoryEntry(
        id=1,
        kind=kind,  # type: ignore[arg-type]
        units=1,
        created_at=datetime.now(UTC),
        source_kind=source_kind,  # type: ignore[arg-type]
        source_period="2026-11",
        source_reference="",
        reservation_id=None,
        purpose="",
        note="an English line the page does not show",
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("locale", "entry", "shown"),
    [
        ("en", _entry("grant", "allowance", loyal_customers=1200), "2 × 1,200 loyal customers"),
        (
            "de",
            _entry("grant", "allowance", loyal_customers=1200, first_month=True),
            "Startphase: 2 × 1.200 Treuekunden",
        ),
        ("de", _entry("purchase", "pack", packs=3), "3 × 10.000"),
        (
            "de",
            _entry("reserve", "allowance", spent=1500, released=20),
            "1.500 verbraucht, 20 zurückgegeben",
        ),
        ("de", _entry("grant", "test"), "Testsendungen"),
        ("de", _entry("expire", "allowance"), ""),
    ],
)
def test_history_details_are_shown_in_the_page_language(
    locale: str, entry: HistoryEntry, shown: str
) -> None:
    from loyalmail.i18n import current_locale
    from quota.pages_text import details

    token = current_locale.set(locale)
    try:
        assert details(entry) == shown
    finally:
        current_locale.reset(token)
