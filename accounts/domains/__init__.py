"""Sending domains: a merchant proves a domain through DNS and then sends as it, signed
with that domain's own DKIM key. The facade other apps import."""

from accounts.domains.identity import (
    SendingIdentity,
    SigningUnavailable,
    feedback_id,
    from_of,
    installation_key,
    sending_identity,
)
from accounts.domains.schemas import SendingDomainCreate, SendingDomainOut
from accounts.domains.services import (
    add_domain,
    check_domain,
    get_domain,
    list_domains,
    normalize_domain,
    recheck_due,
    remove_domain,
    rotate_key,
)
from accounts.domains.signing import DkimKey

__all__ = [
    "DkimKey",
    "SendingDomainCreate",
    "SendingDomainOut",
    "SendingIdentity",
    "SigningUnavailable",
    "add_domain",
    "check_domain",
    "feedback_id",
    "from_of",
    "get_domain",
    "installation_key",
    "list_domains",
    "normalize_domain",
    "recheck_due",
    "remove_domain",
    "rotate_key",
    "sending_identity",
]
