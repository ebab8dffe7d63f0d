"""What every mail to a customer that is not a newsletter shares (today: the double opt-in's
confirmation): the MIME policy and the shop's legal footer."""

from __future__ import annotations

import email.policy
import html

import msgspec

from accounts.schemas import MerchantOut
from loyalmail.i18n import email_gettext

#: RFC 2045 allows quoted-printable lines of 76 characters; the default policy's 78 is the
#: header limit of RFC 5322, and ``set_content`` encodes the body to the policy's length.
MAIL_POLICY = email.policy.default.clone(max_line_length=76)


class LegalFooter(msgspec.Struct, frozen=True, kw_only=True):
    """The shop's legal footer as every mail to a customer carries it (the newsletters' frame
    has the same lines: templates/compiler.py): name, postal address, imprint, publisher and
    the privacy policy, labelled in the recipient's language."""

    lines: tuple[str, ...]
    privacy_label: str
    privacy_url: str

    def text(self) -> str:
        privacy = [f"{self.privacy_label}: {self.privacy_url}"] if self.privacy_url else []
        return "\n".join(["-- ", *self.lines, *privacy])

    def html(self) -> str:
        e = html.escape
        parts = [e(line).replace("\n", "<br>") for line in self.lines]
        if self.privacy_url:
            parts.append(
                f'<a href="{e(self.privacy_url)}" style="color:#555">{e(self.privacy_label)}</a>'
            )
        return (
            '<p style="font-size:12px;color:#555;border-top:1px solid #ddd;padding-top:12px"'
            ' data-legal-footer="">' + "<br>".join(parts) + "</p>"
        )


def legal_footer(merchant: MerchantOut, locale: str) -> LegalFooter:
    address = ", ".join(
        part
        for part in (
            merchant.street,
            f"{merchant.postal_code} {merchant.city}".strip(),
            merchant.country,
        )
        if part.strip()
    )
    publisher = (
        f"{email_gettext(locale, 'Publisher')}: {merchant.publisher}" if merchant.publisher else ""
    )
    lines = (merchant.name, address, merchant.imprint.strip(), publisher)
    return LegalFooter(
        lines=tuple(line for line in lines if line),
        privacy_label=email_gettext(locale, "Privacy policy"),
        privacy_url=merchant.privacy_policy_url,
    )
