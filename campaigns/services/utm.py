"""UTM parameters on a campaign's links (a merchant setting), so the shop's web analytics
can tell which newsletter brought a visitor.

Added to the stored link the click redirect leads to, when the campaign starts: the message
itself carries only the redirect, so the parameters cannot be seen or stripped before the
click. Only links to the shop's own website (its host and subdomains; every web link when no
website is set) are tagged: other sites get nothing about the campaign. A parameter the
marketer wrote into the link already is kept as written.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MEDIUM = "email"
#: utm_campaign: the campaign's name as analytics tools show it (lower case, dashes).
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def campaign_slug(name: str, campaign_id: int) -> str:
    slug = _NOT_SLUG.sub("-", name.lower()).strip("-")[:80]
    return slug or f"campaign-{campaign_id}"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _is_shops(host: str, website_host: str) -> bool:
    return not website_host or host == website_host or host.endswith("." + website_host)


def tag(url: str, *, source: str, campaign: str, website_url: str) -> str:
    """``url`` with utm_source, utm_medium and utm_campaign added, if it is a web link to the
    shop's website; anything else unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url
    if not _is_shops(_host(url), _host(website_url)):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    wanted = {"utm_source": source, "utm_medium": MEDIUM, "utm_campaign": campaign}
    added = [(key, value) for key, value in wanted.items() if key not in present and value]
    if not added:
        return url
    joined = "&".join(part for part in (parts.query, urlencode(added)) if part)
    return urlunsplit(parts._replace(query=joined))


def tag_links(
    urls: tuple[str, ...], *, source: str, campaign: str, website_url: str
) -> tuple[str, ...]:
    return tuple(
        tag(url, source=source, campaign=campaign, website_url=website_url) for url in urls
    )
