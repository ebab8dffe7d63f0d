"""Typed values at the edge of the accounts app."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Role = Literal["owner", "staff"]
Locale = Literal["en", "de", "fr", "nb", "fi", "sr"]
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "de", "fr", "nb", "fi", "sr")

Slug = Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=4000)]
Url = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^(https?://\S+)?$")]
EmailText = Annotated[str, msgspec.Meta(max_length=254)]
Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


class Brand(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The brand profile every newsletter carries. All fields optional on update."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    logo_url: Url = ""
    #: Required in the legal footer of shops in DE, AT and CH (accounts.legal).
    imprint: LongText = ""
    #: The shop's legal name as registered ("… GmbH"): the legal footer names it.
    publisher: ShortText = ""
    copyright: ShortText = ""
    street: ShortText = ""
    postal_code: Annotated[str, msgspec.Meta(max_length=20)] = ""
    city: Annotated[str, msgspec.Meta(max_length=100)] = ""
    country: Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{2})?$")] = ""
    opening_hours: LongText = ""
    contact_email: EmailText = ""
    contact_phone: Annotated[str, msgspec.Meta(max_length=50)] = ""
    website_url: Url = ""
    privacy_policy_url: Url = ""
    sender_name: ShortText = ""
    sender_email: EmailText = ""
    default_locale: Locale = "en"
    time_zone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "EUR"
    brand_color: Color = "#1f6feb"
    #: UTM parameters on the newsletters' links to the shop's website.
    utm_enabled: bool = False
    utm_source: Annotated[str, msgspec.Meta(max_length=100, pattern=r"^[A-Za-z0-9._-]*$")] = (
        "newsletter"
    )


class MerchantOut(Brand, kw_only=True):
    id: int
    slug: str
    created_at: datetime


class MerchantCreate(Brand, kw_only=True, forbid_unknown_fields=True):
    slug: Slug


class UserOut(msgspec.Struct, kw_only=True):
    id: int
    merchant_id: int
    email: str
    name: str
    role: Role
    locale: str


class ApiTokenOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenOut, kw_only=True):
    #: Shown once, at creation; only its hash is stored.
    token: str


class ApiTokenCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class Principal(msgspec.Struct, kw_only=True, frozen=True):
    """Who is calling: a marketer in a browser session, or an integration with a token."""

    merchant_id: int
    via: Literal["session", "token"]
    user_id: int | None = None
    email: str = ""
    role: Role = "staff"
    locale: str = "en"
    csrf_token: str = ""
    session_id: int | None = None
