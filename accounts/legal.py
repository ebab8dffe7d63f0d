"""The legal footer: what a brand profile must hold before its shop may send a newsletter.

Every newsletter (and every opt-in mail) carries the shop's postal address, its legal name
and a link to its privacy policy; shops in Germany, Austria and Switzerland also an imprint
(Impressum: § 5 DDG, § 5 ECG, Art. 3 UWG). One function says what is missing, and every
way to send — the summary, the API's send and schedule, the scheduler's tick, the command
line — asks it (campaigns.services.drafts.check_campaign). Test sends stay allowed: they go
only to the shop's own team and are marked as tests.

The legal name is the brand's ``publisher``: the person or company that publishes the
newsletter (Herausgeber, izdavač in the seeds' texts) — in practice the shop's registered
name ("Nordlicht Kaffeerösterei GmbH"), which the shop's display ``name`` often is not.
"""

from __future__ import annotations

import msgspec

from accounts.schemas import Brand
from loyalmail.errors import _

#: Countries whose shops must also publish an imprint.
IMPRINT_COUNTRIES = frozenset({"DE", "AT", "CH"})
#: Countries without postal codes (Universal Postal Union): their address needs none.
NO_POSTAL_CODE = frozenset(
    {"AE", "AG", "AO", "AW", "BF", "BI", "BJ", "BO", "BS", "BW", "BZ", "CF", "CG", "CI", "CM"}
    | {"CW", "DJ", "DM", "ER", "FJ", "GA", "GD", "GH", "GM", "GQ", "GY", "HK", "KI", "KM", "KP"}
    | {"ML", "MO", "MR", "MW", "NR", "NU", "QA", "RW", "SB", "SC", "SL", "SR", "SS", "ST", "SY"}
    | {"TD", "TG", "TK", "TL", "TO", "TV", "UG", "VU", "YE", "ZW"}
)

MISSING_STREET = _("The legal footer needs the shop's street and number.")
MISSING_POSTAL_CODE = _("The legal footer needs the shop's postal code.")
MISSING_CITY = _("The legal footer needs the shop's city.")
MISSING_COUNTRY = _("The legal footer needs the shop's country.")
MISSING_PUBLISHER = _("The legal footer needs the shop's legal name (publisher).")
MISSING_PRIVACY = _("The legal footer needs a link to the shop's privacy policy.")
MISSING_IMPRINT = _("Shops in Germany, Austria and Switzerland need an imprint in the footer.")
#: The one reason a send is refused (or a scheduled one held) for any of them.
INCOMPLETE = _("The legal footer is incomplete: fill in the brand settings first.")
#: Every message of the rule (the pages translate them).
MESSAGES = (
    MISSING_STREET,
    MISSING_POSTAL_CODE,
    MISSING_CITY,
    MISSING_COUNTRY,
    MISSING_PUBLISHER,
    MISSING_PRIVACY,
    MISSING_IMPRINT,
    INCOMPLETE,
)


class LegalProblem(msgspec.Struct, frozen=True, kw_only=True):
    #: The brand profile's field (``Brand``; the settings page's anchor ``#field-<name>``).
    field: str
    #: A message id (English, translated where it is shown).
    message: str


def legal_footer_problems(brand: Brand) -> list[LegalProblem]:
    """What the brand still lacks for the legal footer, in the settings page's order; empty
    when a newsletter may go out."""
    country = brand.country.strip().upper()
    found: list[LegalProblem] = []

    def need(field: str, value: str, message: str) -> None:
        if not value.strip():
            found.append(LegalProblem(field=field, message=message))

    need("street", brand.street, MISSING_STREET)
    if country not in NO_POSTAL_CODE:
        need("postal_code", brand.postal_code, MISSING_POSTAL_CODE)
    need("city", brand.city, MISSING_CITY)
    need("country", country, MISSING_COUNTRY)
    need("publisher", brand.publisher, MISSING_PUBLISHER)
    need("privacy_policy_url", brand.privacy_policy_url, MISSING_PRIVACY)
    if country in IMPRINT_COUNTRIES:
        need("imprint", brand.imprint, MISSING_IMPRINT)
    return found
