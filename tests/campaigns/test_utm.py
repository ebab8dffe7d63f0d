"""UTM parameters on a campaign's links (a merchant setting): only links to the shop's own
website, never overriding what the marketer wrote, added to the stored link the click
redirect leads to."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from accounts import services as accounts
from accounts.schemas import MerchantOut, UserOut
from accounts.tables import Merchant
from campaigns.sending import dispatch
from campaigns.services import campaign_links
from campaigns.services.utm import campaign_slug, tag
from tests.campaigns.test_sending import ready
from tests.conftest import login

SHOP = "https://www.shop.example"


def utm(url: str) -> dict[str, str]:
    return {k: v for k, v in parse_qsl(urlsplit(url).query) if k.startswith("utm_")}


def test_links_to_the_shops_website_are_tagged_and_others_are_left_alone() -> None:
    tagged = tag(
        "https://shop.example/sale?size=m#top", source="nl", campaign="winter", website_url=SHOP
    )
    assert (
        tagged
        == "https://shop.example/sale?size=m&utm_source=nl&utm_medium=email&utm_campaign=winter#top"
    )
    assert utm(tag("http://blog.shop.example/", source="nl", campaign="w", website_url=SHOP)) == {
        "utm_source": "nl",
        "utm_medium": "email",
        "utm_campaign": "w",
    }
    for untouched in (
        "https://instagram.com/shop",
        "https://evilshop.example/",  # not a subdomain, just the same ending
        "https://shop.example.evil.test/",
        "mailto:info@shop.example",
        "tel:+4930123",
    ):
        assert tag(untouched, source="nl", campaign="w", website_url=SHOP) == untouched
    # What the marketer wrote into the link wins.
    own = "https://shop.example/?utm_campaign=black-friday&x=1"
    assert utm(tag(own, source="nl", campaign="w", website_url=SHOP)) == {
        "utm_campaign": "black-friday",
        "utm_source": "nl",
        "utm_medium": "email",
    }
    # No website set: every web link is the shop's.
    assert utm(tag("https://anything.example/", source="nl", campaign="w", website_url=""))


def test_the_campaign_name_becomes_a_readable_slug() -> None:
    assert campaign_slug("Winter Sale 2026 — 20 % off!", 7) == "winter-sale-2026-20-off"
    assert campaign_slug("★★★", 7) == "campaign-7"


async def test_a_started_campaign_stores_its_website_links_with_utm_parameters(
    merchant: MerchantOut,
) -> None:
    campaign_id, _ = await ready(merchant, 1)
    # The "offer" layout's button leads to https://example.com: the shop's site here.
    website = "https://www.example.com"
    await Merchant.update(
        {Merchant.utm_enabled: True, Merchant.utm_source: "loyalty", Merchant.website_url: website}
    ).where(Merchant.id == merchant.id)
    await dispatch.send_now(merchant.id, campaign_id)
    links = await campaign_links(merchant.id, campaign_id)
    shops = [url for url in links if urlsplit(url).hostname == "example.com"]
    assert shops, links
    for url in links:
        expected = (
            {"utm_source": "loyalty", "utm_medium": "email", "utm_campaign": "winter"}
            if url in shops
            else {}
        )
        assert utm(url) == expected, url


async def test_without_the_setting_links_stay_as_written(merchant: MerchantOut) -> None:
    campaign_id, _ = await ready(merchant, 1)
    await dispatch.send_now(merchant.id, campaign_id)
    assert not any(utm(url) for url in await campaign_links(merchant.id, campaign_id))


async def test_the_settings_page_turns_the_parameters_on_and_refuses_a_bad_source(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    page = await client.get("/settings")
    assert 'name="utm_enabled"' in page.text and 'name="utm_source"' in page.text
    values = {"name": merchant.name, "utm_enabled": "true", "utm_source": "loyalty-club"}
    saved = await client.post(
        "/settings", data=values, headers={"x-csrf-token": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    stored = await accounts.get_merchant(merchant.id)
    assert stored.utm_enabled is True and stored.utm_source == "loyalty-club"
    assert "checked" in (await client.get("/settings")).text.split('name="utm_enabled"')[1][:40]

    bad = await client.post(
        "/settings",
        data={**values, "utm_source": "a&b=c"},
        headers={"x-csrf-token": csrf},
    )
    assert bad.status_code == 422
    assert (await accounts.get_merchant(merchant.id)).utm_source == "loyalty-club"
    # Unticked: the box is not sent at all, and that turns the parameters off.
    off = await client.post(
        "/settings", data={"name": merchant.name}, headers={"x-csrf-token": csrf}
    )
    assert off.status_code in (200, 303)
    assert (await accounts.get_merchant(merchant.id)).utm_enabled is False
