"""SMTP delivery configured from the settings: host, port, TLS mode and login."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from loyalmail.settings import Settings, get_settings


def _client(settings: Settings) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_security == "tls",
        start_tls=True if settings.smtp_security == "starttls" else False,
        timeout=settings.smtp_timeout_seconds,
    )


async def _login(client: aiosmtplib.SMTP, settings: Settings) -> None:
    if settings.smtp_username:
        await client.login(settings.smtp_username, settings.smtp_password)


async def open_connection(settings: Settings | None = None) -> aiosmtplib.SMTP:
    """A connected (and logged-in) client that the caller keeps open, as the send workers'
    connection pool does; the caller closes it."""
    settings = settings or get_settings()
    client = _client(settings)
    await client.connect()
    await _login(client, settings)
    return client


async def send(message: EmailMessage, settings: Settings | None = None) -> str:
    """Send one message; returns the server's reply. Raises aiosmtplib errors on failure."""
    settings = settings or get_settings()
    client = _client(settings)
    async with client:
        await _login(client, settings)
        _errors, reply = await client.send_message(message)
    return reply


async def ping(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    client = _client(settings)
    async with client:
        code, _message = await client.noop()
    return f"{settings.smtp_host}:{settings.smtp_port} answered {code}"


async def send_raw(
    envelope_from: str, recipients: list[str], data: bytes, settings: Settings | None = None
) -> str:
    """Send a message already serialised (and perhaps DKIM-signed: its bytes must go out
    unchanged); returns the server's reply. Raises aiosmtplib errors on failure."""
    settings = settings or get_settings()
    client = _client(settings)
    async with client:
        await _login(client, settings)
        _errors, reply = await client.sendmail(envelope_from, recipients, data)
    return reply
