"""What every campaign message of a merchant shares around its content: the sender (who it
is from, Reply-To, the DKIM key: :mod:`accounts.domains.identity`), the list headers
(RFC 2369 / RFC 8058) with the recipient's unsubscribe token, and the Feedback-ID. Test
sends and real sends build their messages with these, so both look the same."""

from __future__ import annotations

from dataclasses import dataclass

from accounts import domains
from accounts.schemas import MerchantOut
from campaigns.bounces import unsubscribe_address
from campaigns.sending import mime
from loyalmail.settings import get_settings
from tracking import tokens


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sends a campaign's messages, as the message and the SMTP envelope need it."""

    sender: mime.Sender
    dkim_key: mime.DkimKey | None
    #: The From domain, ASCII: the Message-ID's right-hand side.
    domain: str
    #: The merchant's own verified domain (False: the installation's fallback address).
    own_domain: bool


def _sendable(address: str) -> str:
    """``address`` as it can go into a header, or "" (a Reply-To that cannot be written in
    ASCII is left out rather than stopping every message)."""
    try:
        return mime.ascii_address(address) if address else ""
    except mime.AddressNotSendable:
        return ""


async def envelope_of(merchant: MerchantOut, campaign_sender_name: str = "") -> Envelope:
    """:class:`accounts.domains.SigningUnavailable` when a key must sign and cannot."""
    identity = await domains.sending_identity(merchant, campaign_sender_name)
    return Envelope(
        sender=mime.Sender(identity.name, identity.address, _sendable(identity.reply_to)),
        dkim_key=identity.dkim,
        domain=mime.ascii_domain(identity.domain),
        own_domain=identity.own_domain,
    )


@dataclass(frozen=True)
class ListHeaderMaker:
    """The list headers of one campaign's messages: everything but the recipient's
    unsubscribe token is worked out once, not once per message."""

    list_id: str
    list_name: str
    unsubscribe_base: str
    unsubscribe_mailto: unsubscribe_address.AddressMaker
    feedback_id: str
    tokens: tokens.CampaignTokens

    def for_recipient(self, recipient_id: int) -> mime.ListHeaders:
        token = self.tokens.make("unsubscribe", recipient_id)
        return mime.ListHeaders(
            list_id=self.list_id,
            list_name=self.list_name,
            unsubscribe_url=f"{self.unsubscribe_base}{token}",
            unsubscribe_mailto=self.unsubscribe_mailto.for_recipient(recipient_id),
            feedback_id=self.feedback_id,
        )


def list_header_maker(merchant: MerchantOut, campaign_id: int) -> ListHeaderMaker:
    settings = get_settings()
    base = settings.base_url.rstrip("/")
    return ListHeaderMaker(
        list_id=f"{merchant.slug}.{settings.installation_name}",
        list_name=merchant.name,
        unsubscribe_base=f"{base}/r/unsubscribe/",
        unsubscribe_mailto=unsubscribe_address.AddressMaker(merchant.id, campaign_id),
        feedback_id=domains.feedback_id(str(campaign_id), merchant.id),
        tokens=tokens.CampaignTokens(merchant.id, campaign_id),
    )


def list_headers(merchant: MerchantOut, campaign_id: int, recipient_id: int) -> mime.ListHeaders:
    """One message's list headers (a test send's; a batch keeps a :class:`ListHeaderMaker`)."""
    return list_header_maker(merchant, campaign_id).for_recipient(recipient_id)
