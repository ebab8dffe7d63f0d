"""How a mail to a customer that is not a campaign leaves (the opt-in today): From and
Reply-To of the merchant's sending identity (its verified domain, else the installation's
fallback address), a Feedback-ID, DKIM-signed like every campaign message, and sent as the
exact bytes that were signed."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from accounts import domains
from accounts.domains.signing import sign
from accounts.schemas import MerchantOut
from customers.schemas import wire_address
from loyalmail import mail


async def send_to_customer(message: EmailMessage, merchant: MerchantOut, to: str, kind: str) -> str:
    """Address ``message`` from the merchant, sign it and send it to ``to`` (its domain in
    IDNA form: :func:`customers.schemas.wire_address`); ``kind`` names the mail in its
    Message-ID and Feedback-ID ("optin"). Raises
    :class:`accounts.domains.SigningUnavailable` (nothing sent) and aiosmtplib's errors."""
    identity = await domains.sending_identity(merchant)
    for name in ("From", "Reply-To", "Message-ID", "Feedback-ID"):
        del message[name]
    message["From"] = formataddr((identity.name, identity.address))
    if identity.reply_to:
        message["Reply-To"] = identity.reply_to
    message["Message-ID"] = make_msgid(kind, domain=identity.domain or None)
    message["Feedback-ID"] = domains.feedback_id(kind, merchant.id)
    data = message.as_bytes(policy=policy.SMTP)
    if identity.dkim is not None:
        data = sign(data, identity.dkim)
    return await mail.send_raw(identity.address, [wire_address(to)], data)
