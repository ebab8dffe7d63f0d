"""What every campaign message of a merchant shares around its content: the sender, the
list headers (RFC 2369 / RFC 8058) with the recipient's unsubscribe token, and the DKIM key.
Test sends and real sends build their messages with these, so both look the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from accounts.schemas import MerchantOut
from campaigns.bounces import unsubscribe_address
from campaigns.sending import mime
from loyalmail.settings import get_settings
from tracking import tokens


def sender_of(merchant: MerchantOut, campaign_sender_name: str) -> mime.Sender:
    return mime.Sender(
        name=campaign_sender_name or merchant.sender_name or merchant.name,
        address=merchant.sender_email,
    )


def sender_domain(merchant: MerchantOut) -> str:
    """The Message-ID's right-hand side: the sender's own domain."""
    return mime.ascii_domain(merchant.sender_email.rpartition("@")[2])


@dataclass(frozen=True)
class ListHeaderMaker:
    """The list headers of one campaign's messages: everything but the recipient's
    unsubscribe token is worked out once, not once per message."""

    list_id: str
    list_name: str
    unsubscribe_base: str
    unsubscribe_mailto: unsubscribe_address.AddressMaker
    tokens: tokens.CampaignTokens

    def for_recipient(self, recipient_id: int) -> mime.ListHeaders:
        token = self.tokens.make("unsubscribe", recipient_id)
        return mime.ListHeaders(
            list_id=self.list_id,
            list_name=self.list_name,
            unsubscribe_url=f"{self.unsubscribe_base}{token}",
            unsubscribe_mailto=self.unsubscribe_mailto.for_recipient(recipient_id),
        )


def list_header_maker(merchant: MerchantOut, campaign_id: int) -> ListHeaderMaker:
    settings = get_settings()
    base = settings.base_url.rstrip("/")
    host = urlparse(base).hostname or "loyalmail.localhost"
    return ListHeaderMaker(
        list_id=f"{merchant.slug}.{host}",
        list_name=merchant.name,
        unsubscribe_base=f"{base}/r/unsubscribe/",
        unsubscribe_mailto=unsubscribe_address.AddressMaker(merchant.id, campaign_id),
        tokens=tokens.CampaignTokens(merchant.id, campaign_id),
    )


def list_headers(merchant: MerchantOut, campaign_id: int, recipient_id: int) -> mime.ListHeaders:
    """One message's list headers (a test send's; a batch keeps a :class:`ListHeaderMaker`)."""
    return list_header_maker(merchant, campaign_id).for_recipient(recipient_id)


def configured_dkim_key() -> mime.DkimKey | None:
    settings = get_settings()
    if not (settings.dkim_domain and settings.dkim_selector and settings.dkim_private_key_file):
        return None
    key = Path(settings.dkim_private_key_file).read_bytes()
    return mime.DkimKey(settings.dkim_domain, settings.dkim_selector, key)
