"""How a bounce names the message it is about: the VERP return path, or our Message-ID.

With ``LOYALMAIL_BOUNCE_ADDRESS`` set (``bounces@lists.example``), a campaign message's
envelope sender is ``bounces+<merchant>.<campaign>.<recipient>.<signature>@lists.example``
(VERP): the receiving side sends its bounce there, so the recipient is known from the address
alone, even when the report leaves out the original message or rewrites the recipient's
address. The signature is what makes the address trustworthy: nobody can make up the return
path of a recipient they did not get a message for.

The format is not the tracking tokens' (:mod:`tracking.tokens`): some MTAs lower-case local
parts, and base64 is case-sensitive. Numbers are lower-case hex, the signature is the first
12 characters of the lower-case base32 HMAC-SHA256 (60 bits, with a key of its own derived
from the installation's secret), so the extension is at most 48 characters and the local
part stays within 64 (the settings cap the bounce address's own part at 16).
After a secret key rotation, return paths signed with a previous key still verify.

Without VERP a bounce is matched by the original message's ``Message-ID``
(``<lm.{merchant}.{campaign}.{recipient}@domain>``, :func:`campaigns.sending.mime.message_id`),
which anybody who received the message can read: the services act on it only when the
bounced address is the recipient's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import cache

from loyalmail import database
from loyalmail.settings import get_settings

SIGNATURE_CHARS = 12
#: The key of these signatures: never the tracking tokens' (their salts are loyalmail.token.*).
_SALT = b"loyalmail.verp"
_EXTENSION = re.compile(r"([0-9a-f]{1,8})\.([0-9a-f]{1,8})\.([0-9a-f]{1,16})\.([a-z2-7]{12})")
_MESSAGE_ID = re.compile(r"<\s*lm\.(\d{1,10})\.(\d{1,10})\.(\d{1,19})@[^<>\s@]+\s*>", re.ASCII)


@dataclass(frozen=True, slots=True)
class RecipientRef:
    """One recipient row of one campaign of one merchant (not yet looked up)."""

    merchant_id: int
    campaign_id: int
    recipient_id: int


def recipient_ref(
    merchant_id: int, campaign_id: int, recipient_id: int, *, smallest_recipient: int = 1
) -> RecipientRef | None:
    """The ids as a reference when they can name a row (``smallest_recipient`` 0 lets a test
    send's recipient 0 through)."""
    # Checked before any query: PostgreSQL would refuse a parameter out of the column's range.
    if (
        0 < merchant_id <= database.LARGEST_KEY
        and 0 < campaign_id <= database.LARGEST_KEY
        and smallest_recipient <= recipient_id <= database.LARGEST_BIG_KEY  # BIGINT since 12-07
    ):
        return RecipientRef(merchant_id, campaign_id, recipient_id)
    return None


@cache
def _derived_keys(salt: bytes, signing_keys: tuple[str, ...]) -> tuple[bytes, ...]:
    # itsdangerous's "hmac" key derivation, by hand: its signatures are base64 (see above).
    return tuple(hmac.new(key.encode(), salt, hashlib.sha256).digest() for key in signing_keys)


def _encoded(digest: bytes) -> str:
    # Base32 takes 5 bytes to 8 characters: the first 10 give the same 12 characters as all
    # 32 would, in a third of the time (b32encode loops in Python).
    return base64.b32encode(digest[:10]).decode().lower()[:SIGNATURE_CHARS]


def _signature(key: bytes, value: str) -> str:
    return _encoded(hmac.new(key, value.encode(), hashlib.sha256).digest())


class SignedIds:
    """``<merchant>.<campaign>.<recipient>.<signature>`` in the format above, signed with a key
    derived for ``salt`` alone: the return paths here and the unsubscribe addresses
    (:mod:`campaigns.bounces.unsubscribe_address`) share the format, never a key."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt

    def keys(self) -> tuple[bytes, ...]:
        """Oldest first, the current one (which signs) last."""
        return _derived_keys(self.salt, tuple(get_settings().signing_keys))

    def sign(self, merchant_id: int, campaign_id: int, recipient_id: int) -> str:
        value = f"{merchant_id:x}.{campaign_id:x}.{recipient_id:x}"
        return f"{value}.{_signature(self.keys()[-1], value)}"

    def for_campaign(self, merchant_id: int, campaign_id: int) -> CampaignSigner:
        return CampaignSigner(self.keys()[-1], merchant_id, campaign_id)

    def read(self, extension: str) -> tuple[int, int, int] | None:
        """The ids of a lower-case extension whose signature any of the keys made."""
        found = _EXTENSION.fullmatch(extension)
        if found is None:
            return None
        merchant, campaign, recipient, signature = found.groups()
        value = f"{merchant}.{campaign}.{recipient}"
        if not any(hmac.compare_digest(_signature(k, value), signature) for k in self.keys()):
            return None
        return int(merchant, 16), int(campaign, 16), int(recipient, 16)


class CampaignSigner:
    """:meth:`SignedIds.sign` for the recipients of one campaign: one HMAC per recipient, by
    copying a keyed one (as :mod:`tracking.tokens` does), for the send's per-message cost."""

    def __init__(self, key: bytes, merchant_id: int, campaign_id: int) -> None:
        self._prefix = f"{merchant_id:x}.{campaign_id:x}."
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, recipient_id: int) -> str:
        value = f"{self._prefix}{recipient_id:x}"
        mac = self._mac.copy()
        mac.update(value.encode())
        return f"{value}.{_encoded(mac.digest())}"


_RETURN_PATHS = SignedIds(_SALT)


def return_path(merchant_id: int, campaign_id: int, recipient_id: int) -> str | None:
    """The envelope sender of this recipient's message; None without a bounce address."""
    settings = get_settings()
    if not settings.bounce_address:
        return None
    local, _at, domain = settings.bounce_address.rpartition("@")
    return f"{local}+{_RETURN_PATHS.sign(merchant_id, campaign_id, recipient_id)}@{domain}"


def parse_return_path(address: str) -> RecipientRef | None:
    """Whose return path ``address`` is; None when it is not one of ours, is altered or is
    signed with a key this installation does not have. Case does not matter; the domain is
    not compared (an MX may rewrite it), the signature is."""
    settings = get_settings()
    if not settings.bounce_address or len(address) > 320:
        return None
    candidate = address.strip().removeprefix("<").removesuffix(">").strip().lower()
    local, at, _domain = candidate.rpartition("@")
    base, plus, extension = local.partition("+")
    if not at or not plus or base != settings.bounce_address.rpartition("@")[0].lower():
        return None
    ids = _RETURN_PATHS.read(extension)
    return None if ids is None else recipient_ref(*ids)


def parse_message_id(value: str) -> RecipientRef | None:
    """The recipient a campaign message's Message-ID names; None for anything else (a test
    send's, another sender's). Unsigned: see the module's docstring."""
    found = _MESSAGE_ID.fullmatch(value.strip()) if len(value) <= 998 else None
    if found is None:
        return None
    return recipient_ref(*(int(part) for part in found.groups()))
