"""Merchants, marketer logins, browser sessions and API tokens. Knows nothing of HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from email_validator import EmailNotValidError, validate_email

# The legal footer's rule is the brand's: other apps ask it here.
from accounts.legal import INCOMPLETE, MESSAGES
from accounts.legal import LegalProblem as LegalProblem
from accounts.legal import legal_footer_problems as legal_footer_problems
from accounts.passwords import DUMMY_HASH, hash_password, needs_rehash, password_matches
from accounts.schemas import (
    ApiTokenCreated,
    ApiTokenOut,
    Brand,
    MerchantCreate,
    MerchantOut,
    Principal,
    Role,
    UserOut,
)
from accounts.tables import ApiToken, Merchant, User, WebSession
from loyalmail.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed, _
from loyalmail.security import new_token, sha256_hex
from loyalmail.settings import get_settings

#: Why a campaign is refused, or a scheduled one held, while the legal footer has gaps.
LEGAL_FOOTER_INCOMPLETE = INCOMPLETE
LEGAL_FOOTER_MESSAGES = MESSAGES

MIN_PASSWORD_LENGTH = 10
API_TOKEN_PREFIX = "lm_"


def now() -> datetime:
    return datetime.now(UTC)


def _check_time_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(
            _("Unknown time zone."), fields={"time_zone": _("Unknown time zone.")}
        ) from exc


def _merchant_out(row: dict[str, object]) -> MerchantOut:
    return msgspec.convert(row, MerchantOut, from_attributes=False, strict=False)


async def create_merchant(data: MerchantCreate) -> MerchantOut:
    _check_time_zone(data.time_zone)
    if await Merchant.exists().where(Merchant.slug == data.slug):
        raise Conflict(_("A merchant with this short name exists already."), fields={"slug": ""})
    rows = await Merchant.insert(Merchant(**msgspec.structs.asdict(data))).returning(
        *Merchant.all_columns()
    )
    return _merchant_out(rows[0])


async def get_merchant(merchant_id: int) -> MerchantOut:
    row = await Merchant.select().where(Merchant.id == merchant_id).first()
    if row is None:
        raise NotFound(_("Merchant not found."))
    return _merchant_out(row)


async def get_merchant_by_slug(slug: str) -> MerchantOut:
    row = await Merchant.select().where(Merchant.slug == slug).first()
    if row is None:
        raise NotFound(_("Merchant not found."))
    return _merchant_out(row)


async def update_brand(merchant_id: int, data: Brand) -> MerchantOut:
    _check_time_zone(data.time_zone)
    await get_merchant(merchant_id)
    values = msgspec.structs.asdict(data)
    await Merchant.update({getattr(Merchant, k): v for k, v in values.items()}).where(
        Merchant.id == merchant_id
    )
    return await get_merchant(merchant_id)


def normalize_login_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed(
            _("This is not a valid e-mail address."), fields={"email": str(exc)}
        ) from exc


async def create_user(
    merchant_id: int,
    email: str,
    password: str,
    *,
    name: str = "",
    role: Role = "staff",
    locale: str = "en",
) -> UserOut:
    await get_merchant(merchant_id)
    address = normalize_login_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            _("The password must have at least 10 characters."), fields={"password": ""}
        )
    if await User.exists().where(User.email == address):
        raise Conflict(_("A user with this e-mail address exists already."), fields={"email": ""})
    user = User(
        merchant=merchant_id,
        email=address,
        name=name,
        role=role,
        locale=locale,
        password_hash=await hash_password(password),
    )
    await user.save()
    return _user_out(user.to_dict())


def _user_out(row: dict[str, object]) -> UserOut:
    return UserOut(
        id=int(row["id"]),  # type: ignore[call-overload]
        merchant_id=int(row["merchant"]),  # type: ignore[call-overload]
        email=str(row["email"]),
        name=str(row["name"]),
        role=row["role"],  # type: ignore[arg-type]
        locale=str(row["locale"]),
    )


async def get_user(merchant_id: int, user_id: int) -> UserOut:
    row = await User.select().where((User.id == user_id) & (User.merchant == merchant_id)).first()
    if row is None:
        raise NotFound(_("User not found."))
    return _user_out(row)


async def authenticate(email: str, password: str) -> UserOut:
    """The user for these credentials, or AuthenticationFailed with one message for every cause."""
    row = await User.select().where(User.email == email.strip().lower()).first()
    failure = AuthenticationFailed(_("Wrong e-mail address or password."))
    if row is None or not row["is_active"]:
        # Checked all the same: a login for an unknown address takes as long as any other.
        await password_matches(DUMMY_HASH, password + "x")
        raise failure
    if not await password_matches(row["password_hash"], password):
        raise failure
    if needs_rehash(row["password_hash"]):
        new_hash = await hash_password(password)
        await User.update({User.password_hash: new_hash}).where(User.id == row["id"])
    await User.update({User.last_login_at: now()}).where(User.id == row["id"])
    return _user_out(row)


async def start_session(user: UserOut) -> tuple[str, Principal]:
    """Returns the cookie value (shown once, stored only hashed) and the new principal."""
    token = new_token()
    csrf = new_token(24)
    session = WebSession(
        token_hash=sha256_hex(token),
        user=user.id,
        merchant=user.merchant_id,
        csrf_token=csrf,
        expires_at=now() + timedelta(days=get_settings().session_days),
    )
    await session.save()
    return token, Principal(
        merchant_id=user.merchant_id,
        via="session",
        user_id=user.id,
        email=user.email,
        role=user.role,
        locale=user.locale,
        csrf_token=csrf,
        session_id=int(session.id),
    )


async def resolve_session(token: str) -> Principal | None:
    if not token:
        return None
    row = (
        await WebSession.select(
            WebSession.id,
            WebSession.merchant,
            WebSession.csrf_token,
            WebSession.expires_at,
            WebSession.user.id,
            WebSession.user.email,
            WebSession.user.role,
            WebSession.user.locale,
            WebSession.user.is_active,
        )
        .where(WebSession.token_hash == sha256_hex(token))
        .first()
    )
    if row is None or not row["user.is_active"] or _aware(row["expires_at"]) < now():
        return None
    return Principal(
        merchant_id=row["merchant"],
        via="session",
        user_id=row["user.id"],
        email=row["user.email"],
        role=row["user.role"],
        locale=row["user.locale"],
        csrf_token=row["csrf_token"],
        session_id=row["id"],
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def end_session(token: str) -> None:
    await WebSession.delete().where(WebSession.token_hash == sha256_hex(token))


async def create_api_token(merchant_id: int, name: str) -> ApiTokenCreated:
    await get_merchant(merchant_id)
    token = API_TOKEN_PREFIX + new_token()
    row = ApiToken(merchant=merchant_id, name=name, prefix=token[:10], token_hash=sha256_hex(token))
    await row.save()
    return ApiTokenCreated(
        id=int(row.id),
        name=name,
        prefix=token[:10],
        created_at=row.created_at,
        last_used_at=None,
        revoked_at=None,
        token=token,
    )


async def list_api_tokens(merchant_id: int) -> list[ApiTokenOut]:
    rows = await ApiToken.select().where(ApiToken.merchant == merchant_id).order_by(ApiToken.id)
    return [
        ApiTokenOut(
            id=r["id"],
            name=r["name"],
            prefix=r["prefix"],
            created_at=r["created_at"],
            last_used_at=r["last_used_at"],
            revoked_at=r["revoked_at"],
        )
        for r in rows
    ]


async def revoke_api_token(merchant_id: int, token_id: int) -> None:
    count = await ApiToken.count().where(
        (ApiToken.id == token_id) & (ApiToken.merchant == merchant_id)
    )
    if not count:
        raise NotFound(_("API token not found."))
    await ApiToken.update({ApiToken.revoked_at: now()}).where(
        (ApiToken.id == token_id)
        & (ApiToken.merchant == merchant_id)
        & ApiToken.revoked_at.is_null()
    )


async def resolve_api_token(token: str) -> Principal | None:
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    row = (
        await ApiToken.select(ApiToken.id, ApiToken.merchant, ApiToken.name)
        .where((ApiToken.token_hash == sha256_hex(token)) & ApiToken.revoked_at.is_null())
        .first()
    )
    if row is None:
        return None
    await ApiToken.update({ApiToken.last_used_at: now()}).where(ApiToken.id == row["id"])
    return Principal(
        merchant_id=row["merchant"], via="token", email=f"token:{row['name']}", role="staff"
    )


async def user_emails(merchant_id: int) -> list[str]:
    """The login addresses of a merchant's active marketers (where test sends may go)."""
    rows = await User.select(User.email).where(
        (User.merchant == merchant_id) & (User.is_active == True)  # noqa: E712 - SQL
    )
    return sorted(str(row["email"]) for row in rows)


async def merchant_ids() -> list[int]:
    """Every merchant, for the jobs that visit them all (the quota's monthly grants)."""
    return [int(row["id"]) for row in await Merchant.select(Merchant.id).order_by(Merchant.id)]
