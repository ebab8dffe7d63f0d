"""Settings: defaults for one machine, typed parsing, clear errors, .env, the kept secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from loyalmail.settings import Settings, SettingsError, load_settings


def load(tmp_path: Path, **environ: str) -> Settings:
    # No .env unless a test writes one: the developer's own .env must not leak in.
    environ.setdefault("LOYALMAIL_DATA_DIR", str(tmp_path / "data"))
    return load_settings(environ=environ, env_file=tmp_path / "absent.env")


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.database_url == "" and settings.redis_url == ""
    assert settings.effective_database_url == (
        f"sqlite:///{(tmp_path / 'data' / 'loyalmail.sqlite').resolve()}"
    )
    assert not settings.is_postgres
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "127.0.0.1",
        8025,
        "none",
    )
    assert settings.demo is False and settings.secure_cookies is False
    assert settings.outbox_dir == tmp_path / "data" / "outbox"
    assert settings.import_dir == tmp_path / "data" / "imports"


def test_environment_values_are_parsed_into_their_types(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        LOYALMAIL_DATABASE_URL="postgresql://app@db.internal:5433/loyalmail",
        LOYALMAIL_REDIS_URL="redis://cache:6379/2",
        LOYALMAIL_PORT="9000",
        LOYALMAIL_SMTP_TIMEOUT_SECONDS="2.5",
        LOYALMAIL_DEMO="yes",
        LOYALMAIL_SECURE_COOKIES="TRUE",
        LOYALMAIL_SMTP_SECURITY="starttls",
        LOYALMAIL_SECRET_KEY="shared-between-machines",
        LOYALMAIL_UNKNOWN_THING="ignored",
    )
    assert settings.port == 9000
    assert settings.smtp_timeout_seconds == 2.5
    assert settings.demo is True and settings.secure_cookies is True
    assert settings.is_postgres
    assert settings.effective_database_url == "postgresql://app@db.internal:5433/loyalmail"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.secret_key == "shared-between-machines"
    assert isinstance(settings.data_dir, Path)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOYALMAIL_PORT", "eighty"),
        ("LOYALMAIL_SMTP_PORT", "25.5"),
        ("LOYALMAIL_DEMO", "maybe"),
        ("LOYALMAIL_SMTP_TIMEOUT_SECONDS", "soon"),
        ("LOYALMAIL_MAX_BODY_BYTES", "1MB"),
        ("LOYALMAIL_SMTP_SECURITY", "ssl"),
        ("LOYALMAIL_BOUNCE_ADDRESS", "bounces+verp@lists.example"),
        ("LOYALMAIL_BOUNCE_ADDRESS", "newsletter-bounces@lists.example"),  # no room for VERP
        ("LOYALMAIL_BOUNCE_ADDRESS", "bounces"),
        ("LOYALMAIL_BOUNCE_ADDRESS", "Bounces <bounces@lists.example>"),
        # A pool without threads would never check a password; a lock after 0 failures
        # would lock every account at its first attempt.
        ("LOYALMAIL_PASSWORD_HASH_THREADS", "0"),
        ("LOYALMAIL_LOGIN_FAILURES_BEFORE_LOCK", "0"),
        ("LOYALMAIL_LOGIN_ADDRESS_FAILURES_BEFORE_LOCK", "0"),
        ("LOYALMAIL_LOGIN_LOCK_MAX_SECONDS", "0"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load(tmp_path, **{variable: value})


def test_dotenv_fills_in_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "LOYALMAIL_SMTP_HOST=smtp.example.net\n"
        "LOYALMAIL_SMTP_PORT=2525\n"
        "# a comment\n"
        "LOYALMAIL_LOG_LEVEL=DEBUG\n"
    )
    settings = load_settings(
        environ={"LOYALMAIL_DATA_DIR": str(tmp_path / "d"), "LOYALMAIL_SMTP_PORT": "587"},
        env_file=env_file,
    )
    assert settings.smtp_host == "smtp.example.net"
    assert settings.log_level == "DEBUG"
    assert settings.smtp_port == 587


def test_generated_secret_is_kept_in_the_data_dir(tmp_path: Path) -> None:
    first = load(tmp_path)
    stored = tmp_path / "data" / "secret_key"
    assert stored.is_file() and stored.read_text() == first.secret_key
    assert len(first.secret_key) >= 40
    # Only the owner may read it: it signs sessions and the erasure hashes.
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # A restart reads the same secret, so sessions and signed links stay valid.
    assert load(tmp_path).secret_key == first.secret_key
    # Another data directory is another installation with its own secret.
    other = load(tmp_path, LOYALMAIL_DATA_DIR=str(tmp_path / "other"))
    assert other.secret_key != first.secret_key


def test_an_explicit_secret_writes_nothing(tmp_path: Path) -> None:
    load(tmp_path, LOYALMAIL_SECRET_KEY="from-the-operator")
    assert not (tmp_path / "data" / "secret_key").exists()
