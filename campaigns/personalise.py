"""Per-recipient personalisation of a compiled campaign, tracking links included.

Built once per (campaign, language); :meth:`Personaliser.message` is what a send worker
calls for every recipient. It does no parsing and no template work: the placeholder values
the message uses, one signed token per purpose (click, open, unsubscribe, view), the
recipient's URLs, and :func:`templates.message.render`'s ``str.format``.

The click URL carries the recipient's click token and the link's number; the redirect
(tracking issue) only ever leads to the URL registered for that number in that campaign,
so the token needs no URL inside it and one token serves every link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from templates import personal
from templates.message import (
    CompiledMessage,
    RenderedMessage,
    SlotValues,
    html_safe,
    recipient_values,
    rendered_with,
)
from tracking import tokens


@dataclass
class Personaliser:
    message: CompiledMessage
    merchant_id: int
    campaign_id: int
    merchant_locale: str
    base_url: str
    #: False for previews and the web version: links go straight to their targets.
    track: bool = True
    _names: frozenset[str] = field(init=False)
    _defaults: dict[str, str] = field(init=False)
    _link_count: int = field(init=False)
    _tokens: tokens.CampaignTokens = field(init=False)
    #: Our own URLs need no HTML escaping when the base URL has nothing to escape: they are
    #: the base, a path and a token of [0-9a-f.-_] (tracked links only; without tracking the
    #: marketer's links stand in the HTML and are escaped).
    _trusted_urls: bool = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._names = frozenset(
            slot.key for slot in self.message.slots if slot.kind == "placeholder"
        )
        self._defaults = {"salutation": personal.neutral_salutation(self.message.language)}
        self._link_count = len(self.message.links)
        self._tokens = tokens.CampaignTokens(self.merchant_id, self.campaign_id)
        self._trusted_urls = self.track and html_safe(self.base_url) == self.base_url

    def urls(self, recipient_id: int) -> tuple[list[str] | None, dict[str, str]]:
        """(link URLs, the recipient's own URLs) for one recipient."""
        make, base = self._tokens.make, self.base_url
        own = {
            "view_url": f"{base}/r/view/{make('view', recipient_id)}",
            "unsubscribe_url": f"{base}/r/unsubscribe/{make('unsubscribe', recipient_id)}",
            "pixel_url": f"{base}/r/o/{make('open', recipient_id)}.gif" if self.track else "",
        }
        if not self.track:
            return None, own
        click = f"{base}/r/c/{make('click', recipient_id)}/"
        return [f"{click}{number}" for number in range(self._link_count)], own

    def message_for(self, recipient_id: int, recipient: personal.Recipient) -> RenderedMessage:
        return rendered_with(self.message, self.values_for(recipient_id, recipient))

    def values_for(self, recipient_id: int, recipient: personal.Recipient) -> SlotValues:
        """The recipient's slot values; a send worker fills them into parts it encoded once
        (:mod:`campaigns.sending.qp`) instead of rendering the message as text."""
        # The message was compiled for the recipient's language: no need to work it out again.
        values = personal.values(
            recipient, self.merchant_locale, self._names, self.message.language
        )
        link_urls, own = self.urls(recipient_id)
        return recipient_values(
            self.message,
            values,
            defaults=self._defaults,
            link_urls=link_urls,
            urls=own,
            trusted_urls=self._trusted_urls,
        )
