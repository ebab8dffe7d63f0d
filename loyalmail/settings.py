"""Typed settings, read once from ``LOYALMAIL_*`` environment variables (and ``.env``).

Nothing else in the code base reads the environment: call :func:`get_settings`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import get_type_hints
from urllib.parse import urlparse

from dotenv import dotenv_values

PREFIX = "LOYALMAIL_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, with the default used by the embedded one-machine mode."""

    data_dir: Path = Path("./loyalmail-data")
    #: ``sqlite:///path`` or ``postgresql://user@host:port/db``; empty = SQLite under data_dir.
    database_url: str = ""
    #: ``redis://host:6379/0``; empty = in-process broker with a worker thread.
    redis_url: str = ""
    #: A worker process silent this long is taken for dead: another process puts the jobs
    #: it had taken back on the queue (dramatiq's Redis heartbeat). Its recipients' leases
    #: (send_lease_seconds) decide, independently, when they may be sent by someone else.
    broker_heartbeat_seconds: float = 60.0
    #: Signs session cookies, tokens and the erasure hashes. Generated and kept in
    #: data_dir when empty, so one machine needs no configuration.
    secret_key: str = ""
    #: Earlier secret keys, comma-separated: links in e-mails already sent keep working after
    #: a rotation (they verify with any of these; new ones are signed with secret_key).
    previous_secret_keys: str = ""
    #: Public base URL used in e-mails (opt-in links) and in the sign-up page's QR code.
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = ""
    smtp_password: str = ""
    #: ``none``, ``starttls`` or ``tls`` (implicit TLS, usually port 465).
    smtp_security: str = "none"
    smtp_timeout_seconds: float = 30.0
    #: Envelope sender for system mail (opt-in); merchant mail uses the merchant's sender.
    mail_from: str = "noreply@loyalmail.localhost"
    #: Demo mode: a local SMTP catcher and the Outbox page.
    demo: bool = False
    session_days: int = 14
    #: Largest accepted request body (bytes); imports have their own limit.
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 100_000_000
    log_level: str = "INFO"
    #: Cookies only over HTTPS. Off by default so the embedded demo works on http://127.0.0.1.
    #: A request that reached a trusted proxy over HTTPS gets them Secure in any case.
    secure_cookies: bool = False
    #: The reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses
    #: or networks, comma-separated; "*": any peer). The client address they name is what the
    #: per-address limits count; the scheme they name makes cookies Secure. Nobody else's is.
    trusted_proxies: str = "127.0.0.1"
    #: Threads that hash and check passwords (argon2: a third of a second and 64 MiB each),
    #: beside the event loop; more logins at once wait for one of them.
    password_hash_threads: int = 2
    #: Login throttling (accounts.login_throttle): after this many failed logins for one
    #: address, each further attempt waits 1 s, doubling per failure up to
    #: login_lock_max_seconds; a successful login starts the count again.
    login_failures_before_lock: int = 5
    #: The same from one client address, whatever accounts it tries (several people behind
    #: one office router mistype too: a higher threshold).
    login_address_failures_before_lock: int = 30
    login_lock_max_seconds: int = 900
    worker_threads: int = 4
    #: Threads for the import queue, apart from worker_threads (embedded mode, and the import
    #: process group of ``loyalmail worker``): a slow workbook never holds a sending thread.
    import_worker_threads: int = 1
    #: DKIM signing of campaign mail (RFC 6376, rsa-sha256): the signing domain, the selector
    #: whose DNS TXT record publishes the public key, and the PEM file of the RSA private key.
    #: All three set: every campaign message is signed; any empty: none is.
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_private_key_file: str = ""
    #: Sending domains (accounts.domains). A merchant whose From domain is verified sends as
    #: itself, signed with that domain's own key; every other merchant's mail goes out From
    #: this address of the installation's own domain (empty: mail_from), the merchant's name
    #: as display name and its address as Reply-To, signed with the key above, whose domain
    #: must then be this address's domain (DMARC alignment).
    fallback_from: str = ""
    #: The nameservers that answer the domain checks: "host" or "host:port", comma-separated
    #: (one port for all); empty: the system's resolver.
    dns_resolver: str = ""
    dns_timeout_seconds: float = 5.0
    #: The SPF mechanism merchants include so the relay may send for their domain, e.g.
    #: "_spf.mail.example": shown as a record to publish and checked. Empty: not asked for
    #: (DMARC passes through the aligned DKIM signature alone).
    spf_include: str = ""
    #: How often the scheduler checks a domain's records again; a verified domain whose DKIM
    #: record is gone falls back to the installation's address until it is back.
    domain_recheck_minutes: int = 360
    #: Bearer token of the operator API (/api/operator/…: recording bought packs, running the
    #: monthly grants) for the installation's operator or a payment integration. Empty: that
    #: API answers 404. Merchants' own API tokens never reach it.
    operator_token: str = ""
    #: Where a merchant buys packs of 10,000 sends (the operator's shop or billing page); shown
    #: on the quota page and in refusals. Empty: they are told to contact the operator.
    pack_purchase_url: str = ""
    #: Who says which customers are loyal, the figure the monthly allowance is counted from
    #: (docs/quota.md). ``merchant``: the merchant's pages, API and imports set the type, and
    #: only loyal customers whose address the recipient confirmed count. ``operator``: only
    #: the operator API (a loyalty programme's integration) sets or removes ``loyal``, the
    #: merchant's attempts are refused, and every loyal customer counts.
    loyalty_source: str = "merchant"
    #: PostgreSQL ends a session that sits inside a transaction this long without sending a
    #: statement (0: never). Such a session is a stopped or frozen process (SIGSTOP, a paused
    #: VM) holding its locks: one frozen send worker holding a campaign's quota rows stalls
    #: every other worker's recording until it wakes (the fault suite's sigstop scenario).
    #: No transaction of the app waits this long between two statements.
    database_idle_transaction_seconds: float = 60.0
    #: Sending (campaigns.sending): recipients per job.
    send_batch_size: int = 100
    #: How long a worker's claim on its recipients lasts; a claim that outlives it (the
    #: worker died) is taken over by the next job.
    send_lease_seconds: float = 120.0
    #: Messages per second, held across every worker (0: no limit): per merchant, and for
    #: the SMTP relay as a whole.
    send_rate_per_merchant: int = 0
    send_rate_per_relay: int = 0
    #: A temporary failure (4xx, dropped connection) is tried again after base × 2^n seconds,
    #: at most this many times in all; then the recipient is given up as failed.
    send_retry_base_seconds: float = 30.0
    send_max_attempts: int = 6
    # --- Deliverability: a running campaign pauses itself (campaigns.sending.deliverability)
    #: when more than this share of its accepted messages drew a complaint (Gmail's bulk
    #: sender limit is 0.3 %; webhooks and ARF reports count as they arrive) ...
    pause_complaint_rate: float = 0.003
    #: ... or more than this share of the messages it tried bounced hard (refused at once, or
    #: reported later). 0 turns a check off. A rate is judged only once the campaign has
    #: enough messages for its limit to stand for three events (docs/sending.md).
    pause_hard_bounce_rate: float = 0.05
    #: SMTP connections each worker process keeps open to the relay.
    smtp_pool_size: int = 8
    #: A scheduled campaign whose time passed more than this long ago (the service was
    #: down) waits for the marketer to confirm instead of going out late.
    schedule_grace_minutes: int = 60
    #: The reconciler hands a batch out again when it was enqueued this long ago and still
    #: has recipients left (its job was lost with Redis, or its worker died).
    reconcile_after_seconds: float = 180.0
    #: Bounces after the fact (campaigns.bounces). The envelope sender of campaign mail as a
    #: VERP address, e.g. ``bounces@lists.example``: each message gets
    #: ``bounces+<merchant>.<campaign>.<recipient>.<signature>@lists.example``, so a bounce
    #: names its recipient even when the report does not. Empty: the merchant's sender.
    bounce_address: str = ""
    #: The shared secret(s) that sign the bounce webhooks (/api/webhooks/…); several,
    #: comma-separated, while rotating. Empty: those endpoints answer 404.
    bounce_webhook_secret: str = ""
    #: Inbound mail (``loyalmail inbound``, docs/sending.md "Inbound mail"): the SMTP server
    #: that takes mailed unsubscribes and the bounces to the VERP address. The domain of the
    #: signed ``unsubscribe+…@`` addresses in List-Unsubscribe (its MX must lead to that
    #: server); empty: the domain of mail_from.
    inbound_domain: str = ""
    #: Where the server listens: behind the domain's MX (Postfix, a provider's inbound route).
    inbound_host: str = "127.0.0.1"
    inbound_port: int = 2525
    #: A longer message is refused (552) while it arrives; nothing of it is kept meanwhile.
    inbound_max_message_bytes: int = 10_000_000
    #: Requests per minute to the public /r/ routes (pixel, click, unsubscribe, web version,
    #: opt-in) per client address and per token, in each web process; 0: no limit. The
    #: address budget is large: mail providers' image proxies fetch for all their users.
    public_rate_per_ip: int = 6000
    public_rate_per_token: int = 60
    #: Sign-ups per minute from one client address on the public sign-up pages (each may
    #: create a customer and send an e-mail), in each web process; 0: no limit.
    signup_rate_per_ip: int = 10

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'loyalmail.sqlite').resolve()}"

    @property
    def is_postgres(self) -> bool:
        return self.effective_database_url.startswith(("postgres://", "postgresql://"))

    @property
    def installation_name(self) -> str:
        """The installation in Feedback-ID and List-Id: its public host name."""
        return urlparse(self.base_url).hostname or "loyalmail.localhost"

    @property
    def effective_fallback_from(self) -> str:
        return self.fallback_from or self.mail_from

    @property
    def installation_dkim_configured(self) -> bool:
        return bool(self.dkim_domain and self.dkim_selector and self.dkim_private_key_file)

    @property
    def signing_keys(self) -> list[str]:
        """Every secret that verifies a signature: oldest first, the current one last."""
        previous = [key.strip() for key in self.previous_secret_keys.split(",") if key.strip()]
        return [*previous, self.secret_key]

    @property
    def bounce_webhook_secrets(self) -> list[str]:
        return [key.strip() for key in self.bounce_webhook_secret.split(",") if key.strip()]

    @property
    def media_dir(self) -> Path:
        """Uploaded images; several machines must share it (or a mounted volume)."""
        return self.data_dir / "media"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def import_dir(self) -> Path:
        return self.data_dir / "imports"


def _convert(name: str, raw: str, kind: object) -> object:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name.upper()} has an invalid value: {raw!r}") from exc


def load_settings(environ: dict[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build settings from the environment, ``.env`` filling in what the environment lacks."""
    source: dict[str, str] = {}
    dotenv_path = env_file or Path(".env")
    if dotenv_path.is_file():
        source.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    hints = get_type_hints(Settings)
    values: dict[str, object] = {}
    for f in fields(Settings):
        key = PREFIX + f.name.upper()
        if key in source:
            values[f.name] = _convert(f.name, source[key], hints[f.name])
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.smtp_security not in {"none", "starttls", "tls"}:
        raise SettingsError("LOYALMAIL_SMTP_SECURITY must be none, starttls or tls")
    if settings.loyalty_source not in {"merchant", "operator"}:
        raise SettingsError("LOYALMAIL_LOYALTY_SOURCE must be merchant or operator")
    for name in (
        "send_batch_size",
        "send_max_attempts",
        "smtp_pool_size",
        "broker_heartbeat_seconds",
        "domain_recheck_minutes",
        "password_hash_threads",
        "login_failures_before_lock",
        "login_address_failures_before_lock",
        "login_lock_max_seconds",
        "import_worker_threads",
    ):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
    for name in ("pause_complaint_rate", "pause_hard_bounce_rate"):
        if not 0 <= getattr(settings, name) <= 1:
            raise SettingsError(f"{PREFIX}{name.upper()} must be a share from 0 to 1, e.g. 0.003")
    _check_bounce_address(settings.bounce_address)
    _check_fallback_alignment(settings)
    if not settings.secret_key:
        settings = _with_generated_secret(settings)
    return settings


#: The VERP extension (``+<merchant>.<campaign>.<recipient>.<signature>``) takes up to 48
#: characters, and a local part may have 64 (RFC 5321 §4.5.3.1.1).
BOUNCE_LOCAL_PART_MAX = 16


def _check_bounce_address(address: str) -> None:
    if not address:
        return
    local, _at, domain = address.rpartition("@")
    plain = address.isascii() and address.count("@") == 1 and local and "." in domain
    if not plain or any(c in address for c in ' <>+,;"\r\n'):
        raise SettingsError(
            f"{PREFIX}BOUNCE_ADDRESS must be a plain address such as bounces@lists.example"
            " (no + in it: the recipient is added after a +)"
        )
    if len(local) > BOUNCE_LOCAL_PART_MAX:
        raise SettingsError(
            f"{PREFIX}BOUNCE_ADDRESS may have at most {BOUNCE_LOCAL_PART_MAX} characters before"
            " the @: the recipient's part after the + must still fit into 64"
        )


def _check_fallback_alignment(settings: Settings) -> None:
    """The installation's key signs the fallback address's mail: a key of another domain
    would sign every such message unaligned, which DMARC fails. Refused at start."""
    if not settings.installation_dkim_configured:
        return
    fallback_domain = settings.effective_fallback_from.rpartition("@")[2].lower()
    if fallback_domain != settings.dkim_domain.lower().rstrip("."):
        raise SettingsError(
            f"{PREFIX}DKIM_DOMAIN ({settings.dkim_domain}) must be the domain of the fallback"
            f" sender address ({settings.effective_fallback_from}): set {PREFIX}FALLBACK_FROM"
            " to an address of that domain"
        )


def _with_generated_secret(settings: Settings) -> Settings:
    # One machine: keep a generated secret next to the data, so restarts keep sessions valid.
    # Several machines must share LOYALMAIL_SECRET_KEY; the README says so.
    path = settings.data_dir / "secret_key"
    if path.is_file():
        secret = path.read_text().strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
    values = {f.name: getattr(settings, f.name) for f in fields(Settings)}
    values["secret_key"] = secret
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """For tests and the CLI, which set the environment before anything reads it."""
    get_settings.cache_clear()
