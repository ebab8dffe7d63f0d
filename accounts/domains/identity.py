"""Who a merchant's mail is from, and what signs it: one answer for campaigns, test sends,
the opt-in and every other mail to a merchant's customers.

- The merchant's sender address is on a domain it has verified: From that address, signed
  with that domain's key (``d=`` is the From domain: DMARC-aligned).
- Otherwise: From the installation's fallback address (``LOYALMAIL_FALLBACK_FROM``) with the
  merchant's name as display name, signed with the installation's key, whose domain is the
  fallback's (checked when the settings are read). Never From a domain nobody proved.
- Reply-To is the merchant's contact address (else its sender address) either way, so a
  customer's answer reaches the shop.
- A key that should sign but cannot be read raises :class:`SigningUnavailable`: the message
  is not sent unsigned. Only an installation with no key at all (a laptop, the tests) sends
  the fallback's mail unsigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from accounts.domains import keys
from accounts.domains.services import active_key, sender_domain_of
from accounts.domains.signing import DkimKey
from accounts.schemas import MerchantOut
from loyalmail.errors import Conflict, _
from loyalmail.settings import get_settings


class SigningUnavailable(Conflict):
    """A key that must sign this merchant's mail cannot be read; nothing goes out unsigned."""


@dataclass(frozen=True, slots=True)
class SendingIdentity:
    #: The From display name and address.
    name: str
    address: str
    #: "" when the merchant has no address at all, or it is the From address itself.
    reply_to: str
    dkim: DkimKey | None
    #: From the merchant's own verified domain (False: the installation's fallback address).
    own_domain: bool

    @property
    def domain(self) -> str:
        """The From address's domain (a Message-ID's right-hand side)."""
        return self.address.rpartition("@")[2]


@cache
def _installation_pem(path: str, modified: float) -> bytes:
    return Path(path).read_bytes()


def installation_key() -> DkimKey | None:
    """The installation's own key (``LOYALMAIL_DKIM_*``), None when none is configured."""
    settings = get_settings()
    if not settings.installation_dkim_configured:
        return None
    path = Path(settings.dkim_private_key_file)
    try:
        pem = _installation_pem(str(path), path.stat().st_mtime)
    except OSError as exc:
        raise SigningUnavailable(
            _("The installation's DKIM key file cannot be read: nothing is sent unsigned."),
            fields={"dkim": str(path)},
        ) from exc
    return DkimKey(settings.dkim_domain, settings.dkim_selector, pem)


async def _own_key(merchant: MerchantOut) -> tuple[str, dict[str, Any] | None]:
    """The domain of the merchant's sender address and its signing key (still encrypted),
    or None when that domain is not the merchant's verified one."""
    domain = sender_domain_of(merchant.sender_email)
    return domain, (await active_key(merchant.id, domain) if domain else None)


def feedback_id(kind: str, merchant_id: int) -> str:
    """Gmail's Feedback-ID: ``<campaign id or kind of mail>:<merchant>:<installation>``; the
    last field is the sender's constant id."""
    return f"{kind}:{merchant_id}:{get_settings().installation_name}"


async def from_of(merchant: MerchantOut, display_name: str = "") -> tuple[str, str]:
    """The From display name and address a message of the merchant will have (what a
    preview shows), without reading any key."""
    name = display_name or merchant.sender_name or merchant.name
    _domain, key = await _own_key(merchant)
    return name, merchant.sender_email if key else get_settings().effective_fallback_from


async def sending_identity(merchant: MerchantOut, display_name: str = "") -> SendingIdentity:
    name = display_name or merchant.sender_name or merchant.name
    domain, key = await _own_key(merchant)
    dkim: DkimKey | None
    if key is not None:
        try:
            pem = keys.decrypt(key["private_key"])
        except keys.KeyUnreadable as exc:
            raise SigningUnavailable(
                _(
                    "The DKIM key of your sending domain cannot be read (the installation's"
                    " secret changed): nothing is sent unsigned. Ask the operator."
                ),
                fields={"domain": domain},
            ) from exc
        address, dkim = merchant.sender_email, DkimKey(domain, str(key["selector"]), pem)
    else:
        address, dkim = get_settings().effective_fallback_from, installation_key()
    # Answers reach the shop; no Reply-To when it would only repeat the From.
    reply_to = merchant.contact_email or merchant.sender_email
    if reply_to.lower() == address.lower():
        reply_to = ""
    return SendingIdentity(name, address, reply_to, dkim, own_domain=key is not None)
