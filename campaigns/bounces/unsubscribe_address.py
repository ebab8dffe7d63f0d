"""The signed unsubscribe address of one recipient: the ``mailto:`` of ``List-Unsubscribe``.

``unsubscribe+<merchant>.<campaign>.<recipient>.<signature>@<inbound domain>``, in the format of
the VERP return paths (:mod:`campaigns.bounces.verp`: lower-case hex ids and 12 lower-case
base32 characters of an HMAC-SHA256, so an MTA that lower-cases local parts changes nothing;
at most 59 characters before the @), signed with a key of its own: a return path is no
unsubscribe address and neither is a tracking token. Addresses signed before a secret key
rotation keep verifying. A mail client that sends the ``mailto:`` thus says who unsubscribes
in the address itself, whatever it does with the subject; ``loyalmail inbound``
(:mod:`loyalmail.inbound`) receives it.

The domain is ``LOYALMAIL_INBOUND_DOMAIN``, by default the domain of ``LOYALMAIL_MAIL_FROM``.
Mail sent before these addresses carried ``unsubscribe@<that domain>`` with the tracking
token in the subject (:func:`is_legacy`).
"""

from __future__ import annotations

from campaigns.bounces import verp
from loyalmail.settings import get_settings

LOCAL_PART = "unsubscribe"
#: The key of these signatures: never the return paths' (loyalmail.verp) nor the tracking
#: tokens' (loyalmail.token.*).
_SIGNED = verp.SignedIds(b"loyalmail.unsubscribe-address")


def inbound_domain() -> str:
    """The domain of the unsubscribe addresses, lower case, in its ASCII (IDNA) form."""
    settings = get_settings()
    return _ascii(settings.inbound_domain or settings.mail_from.rpartition("@")[2])


def _ascii(domain: str) -> str:
    domain = domain.strip().lower()
    try:
        return domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:  # no ASCII form: compared as it is (and matches nothing sent)
        return domain


class AddressMaker:
    """The unsubscribe addresses of one campaign's recipients: one HMAC per recipient."""

    def __init__(self, merchant_id: int, campaign_id: int) -> None:
        self._signer = _SIGNED.for_campaign(merchant_id, campaign_id)
        self._domain = inbound_domain()

    def for_recipient(self, recipient_id: int) -> str:
        return f"{LOCAL_PART}+{self._signer.sign(recipient_id)}@{self._domain}"


def address(merchant_id: int, campaign_id: int, recipient_id: int) -> str:
    return AddressMaker(merchant_id, campaign_id).for_recipient(recipient_id)


def _split(address: str) -> tuple[str, str]:
    candidate = address.strip().removeprefix("<").removesuffix(">").strip().lower()
    local, at, domain = candidate.rpartition("@")
    return (local, domain) if at else ("", "")


def parse(address: str) -> verp.RecipientRef | None:
    """Whose unsubscribe address ``address`` is (recipient 0: a test send's); None when it is
    not one of ours, is of another domain, is altered or is signed with an unknown key."""
    if len(address) > 320:
        return None
    local, domain = _split(address)
    base, plus, extension = local.partition("+")
    if not plus or base != LOCAL_PART or domain != inbound_domain():
        return None
    ids = _SIGNED.read(extension)
    return None if ids is None else verp.recipient_ref(*ids, smallest_recipient=0)


def is_legacy(address: str) -> bool:
    """``unsubscribe@<inbound domain>``: the address of mail sent before the signed ones, whose
    subject carries the tracking token (``unsubscribe <token>``)."""
    return len(address) <= 320 and _split(address) == (LOCAL_PART, inbound_domain())
