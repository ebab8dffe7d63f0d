"""The Outbox's checks of a caught message: DKIM verified by dkimpy against the configured
key (no DNS), and RFC 8058's one-click headers covered by the signature."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from campaigns.sending.mime import Body, DkimKey, ListHeaders, Sender, build, message_id
from loyalmail import mail_checks
from loyalmail.demo import demo_dkim_key
from tests.campaigns.dkim_keys import new_key
from tests.settings_env import settings_env

LISTS = ListHeaders(
    list_id="shop.lists.example",
    list_name="Shop",
    unsubscribe_url="https://mail.example/r/unsubscribe/1-2-3.abc",
    unsubscribe_mailto="unsubscribe+1-2-3.abc@lists.example",
)


@pytest.fixture
def key_file(tmp_path: Path) -> Iterator[Path]:
    """A DKIM key the installation is configured with, for shop.example, selector s1."""
    private, _record = new_key(tmp_path)
    path = tmp_path / "dkim.pem"
    path.write_bytes(private)
    values = {
        "LOYALMAIL_FALLBACK_FROM": "news@shop.example",
        "LOYALMAIL_DKIM_DOMAIN": "shop.example",
        "LOYALMAIL_DKIM_SELECTOR": "s1",
        "LOYALMAIL_DKIM_PRIVATE_KEY_FILE": str(path),
    }
    with settings_env(values):
        yield path


def message(key: DkimKey | None, lists: ListHeaders = LISTS) -> bytes:
    return build(
        Body("Autumn", b"Hello", b"<p>Hello</p>"),
        to="anna@example.com",
        sender=Sender("Shop", "news@shop.example"),
        lists=lists,
        message_id=message_id(1, 2, 3, "shop.example"),
        date=datetime(2026, 11, 25, tzinfo=UTC),
        dkim_key=key,
    )


def check(raw: bytes) -> mail_checks.MailChecks:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return mail_checks.check(raw, parsed)


def test_a_message_signed_with_the_configured_key_verifies(key_file: Path) -> None:
    raw = message(DkimKey("shop.example", "s1", key_file.read_bytes()))
    assert check(raw) == mail_checks.MailChecks("verified", "d=shop.example s=s1", True)


def test_a_changed_message_fails(key_file: Path) -> None:
    raw = message(DkimKey("shop.example", "s1", key_file.read_bytes()))
    result = check(raw.replace(b"Subject: Autumn", b"Subject: Spring"))
    assert result.dkim == "failed"


def test_another_key_is_not_checked_and_unsigned_mail_says_so(
    key_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    other, _record = new_key(tmp_path / "other")
    result = check(message(DkimKey("shop.example", "s2", other)))
    assert (result.dkim, result.dkim_signer) == ("other_key", "d=shop.example s=s2")
    unsigned = check(message(None))
    assert unsigned == mail_checks.MailChecks("unsigned", "", True)


def test_one_click_needs_an_https_url_and_the_exact_post_header(key_file: Path) -> None:
    raw = message(None)
    assert not check(raw.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Yes")).one_click
    assert not check(raw.replace(b"<https://mail.example", b"<ftp://mail.example")).one_click


def test_the_demo_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = demo_dkim_key(tmp_path)
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    assert demo_dkim_key(tmp_path).read_bytes() == pem  # not made again
