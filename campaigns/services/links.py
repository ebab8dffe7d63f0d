"""The campaign's links by number, for the click redirect: registered once when the campaign
starts, read by tracking for every click.

The numbers are the compiled message's (``CompiledMessage.links``, one per distinct URL, in
the order the blocks use them). The blocks are the same in every language, so the merchant's
language gives the numbering all languages share.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from campaigns.tables import CampaignLink
from loyalmail import sql

INSERT_LINK = "INSERT INTO campaign_link (campaign, number, url) VALUES (?, ?, ?)"

#: One campaign's links, if the campaign is the merchant's (Piccolo's placeholders).
LINKS = """
SELECT l.number, l.url FROM campaign_link l JOIN campaign c ON c.id = l.campaign
WHERE l.campaign = {} AND c.merchant = {} ORDER BY l.number
"""

#: Links of a started campaign never change; a little memory spares a query per click.
_KEPT = 512
_cache: OrderedDict[tuple[int, int], tuple[float, tuple[str, ...]]] = OrderedDict()
#: A campaign without links yet (a test send's message is untracked, so this is rare) is
#: looked up again after this many seconds.
_EMPTY_FOR = 30.0


async def register_links(campaign_id: int, urls: tuple[str, ...]) -> None:
    """Store ``urls`` as the campaign's links 0, 1, …, on the open transaction (the dispatch's:
    a campaign starts once, so the rows are written once)."""
    for number, url in enumerate(urls):
        await sql.execute(INSERT_LINK, campaign_id, number, url)


async def campaign_links(merchant_id: int, campaign_id: int) -> tuple[str, ...]:
    """The campaign's links in number order; empty for another merchant's campaign."""
    key = (merchant_id, campaign_id)
    found = _cache.get(key)
    if found is not None and (found[1] or time.monotonic() - found[0] < _EMPTY_FOR):
        _cache.move_to_end(key)
        return found[1]
    rows = await CampaignLink.raw(LINKS, campaign_id, merchant_id)
    links = tuple(str(row["url"]) for row in rows)
    _cache[key] = (time.monotonic(), links)
    while len(_cache) > _KEPT:
        _cache.popitem(last=False)
    return links


async def link_url(merchant_id: int, campaign_id: int, number: int) -> str | None:
    """Where link ``number`` of the campaign leads, or None (no such link, or not the
    merchant's campaign)."""
    links = await campaign_links(merchant_id, campaign_id)
    return links[number] if 0 <= number < len(links) else None
