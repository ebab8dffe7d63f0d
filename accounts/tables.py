"""Merchants (tenants) with their brand profile, marketer users, browser sessions, API tokens."""

from piccolo.columns import (
    Boolean,
    ForeignKey,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Merchant(Table, tablename="merchant"):
    id: Serial  # created by Piccolo; declared for the type checker
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=200)
    # Brand profile: every newsletter carries it in its locked frame.
    logo_url = Varchar(length=500, default="")
    imprint = Text(default="")
    publisher = Varchar(length=200, default="")
    copyright = Varchar(length=200, default="")
    street = Varchar(length=200, default="")
    postal_code = Varchar(length=20, default="")
    city = Varchar(length=100, default="")
    country = Varchar(length=2, default="")
    opening_hours = Text(default="")
    contact_email = Varchar(length=254, default="")
    contact_phone = Varchar(length=50, default="")
    website_url = Varchar(length=500, default="")
    privacy_policy_url = Varchar(length=500, default="")
    sender_name = Varchar(length=200, default="")
    sender_email = Varchar(length=254, default="")
    default_locale = Varchar(length=10, default="en")
    time_zone = Varchar(length=64, default="UTC")
    currency = Varchar(length=3, default="EUR")
    brand_color = Varchar(length=7, default="#1f6feb")
    #: Add utm_source / utm_medium / utm_campaign to newsletter links to the shop's website
    #: (campaigns.services.utm).
    utm_enabled = Boolean(default=False)
    utm_source = Varchar(length=100, default="newsletter")
    created_at = Timestamptz(default=TimestamptzNow())


class User(Table, tablename="marketer_user"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    # Stored lower-cased: one login per address across the installation.
    email = Varchar(length=254, unique=True)
    name = Varchar(length=200, default="")
    password_hash = Varchar(length=255)
    role = Varchar(length=10, default="staff")  # owner | staff
    locale = Varchar(length=10, default="en")
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)


class WebSession(Table, tablename="web_session"):
    id: Serial  # created by Piccolo; declared for the type checker
    # Only a SHA-256 of the cookie value is stored: a database leak yields no live sessions.
    token_hash = Varchar(length=64, unique=True)
    user = ForeignKey(references=User, null=False)
    merchant = ForeignKey(references=Merchant, null=False)
    csrf_token = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()


class ApiToken(Table, tablename="api_token"):
    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    name = Varchar(length=100)
    # The first characters, shown in lists so a token can be recognised without revealing it.
    prefix = Varchar(length=16)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class SendingDomain(Table, tablename="sending_domain"):
    """A domain a merchant sends as (the domain of its From address), with the outcome of
    the last DNS check. One merchant per domain in the installation: whoever publishes the
    DKIM record proves the domain is theirs, and a second claimant is refused."""

    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    #: Lower-case ASCII (an internationalised domain in its IDNA form), no trailing dot.
    domain = Varchar(length=253, unique=True)
    #: pending (never verified) | verified | failed (verified once, the records went away)
    status = Varchar(length=10, default="pending")
    verified_at = Timestamptz(null=True, default=None)
    checked_at = Timestamptz(null=True, default=None)
    #: The last check, record by record, as JSON (accounts.domains.records.RecordCheck).
    check_result = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class SendingDomainKey(Table, tablename="sending_domain_key"):
    """A DKIM key pair of a sending domain. Rotation publishes a ``next`` key beside the
    ``active`` one and switches once DNS has it; the old key is ``retired``."""

    id: Serial  # created by Piccolo; declared for the type checker
    merchant = ForeignKey(references=Merchant, null=False)
    domain = ForeignKey(references=SendingDomain, null=False)
    selector = Varchar(length=63)
    #: The DNS record's p= value: base64 of the DER SubjectPublicKeyInfo.
    public_key = Text()
    #: The PEM private key, encrypted (Fernet) with a key derived from the installation's
    #: secret: a copy of the database alone signs nothing.
    private_key = Text()
    #: next | active | retired
    state = Varchar(length=10, default="next")
    created_at = Timestamptz(default=TimestamptzNow())
    activated_at = Timestamptz(null=True, default=None)
    retired_at = Timestamptz(null=True, default=None)
