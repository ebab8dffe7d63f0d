"""The ``loyalmail`` command: the real console script on a fresh SQLite data directory, and
the same commands in-process on both engines to check what they wrote."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from accounts import services as accounts
from accounts.schemas import MerchantOut
from loyalmail.cli import app

SCRIPT = Path(sys.executable).with_name("loyalmail")


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    # The test session's own LOYALMAIL_* settings must not reach the command.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALMAIL_")}
    env.update(LOYALMAIL_DATA_DIR=str(data_dir), **extra)
    return env


def loyalmail(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        env=clean_env(data_dir, **extra),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_script_sets_up_a_shop_from_scratch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    migrated = loyalmail(data, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "Database is up to date." in migrated.stdout
    assert (data / "loyalmail.sqlite").is_file()

    bad = loyalmail(data, "create-merchant", "--slug", "Bad Slug!", "--name", "Bad")
    assert bad.returncode == 1
    assert "Could not create the merchant" in bad.stderr and "slug" in bad.stderr
    assert "Traceback" not in bad.stderr

    made = loyalmail(
        data, "create-merchant", "--slug", "nordlicht", "--name", "Nordlicht", "--locale", "de"
    )
    assert made.returncode == 0, made.stderr
    assert "Created merchant nordlicht" in made.stdout

    user = loyalmail(
        data,
        "create-user",
        "--merchant",
        "nordlicht",
        "--email",
        "Owner@Nordlicht.example",
        "--password",
        "a long enough password",
    )
    assert user.returncode == 0, user.stderr
    assert "owner@nordlicht.example" in user.stdout

    token = loyalmail(data, "create-token", "--merchant", "nordlicht", "--name", "shop system")
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("lm_")

    # Without Redis a refused send exits at once: it used to start its worker threads first,
    # which then kept the process alive for ever (a timeout here).
    refused = loyalmail(data, "campaign", "send", "999", "--merchant", "nordlicht")
    assert refused.returncode == 1 and "Campaign not found." in refused.stderr

    domain = loyalmail(data, "domain", "add", "--merchant", "nordlicht", "Nordlicht.example")
    assert domain.returncode == 0, domain.stderr
    assert (
        "._domainkey.nordlicht.example" in domain.stdout and "v=DKIM1; k=rsa; p=" in domain.stdout
    )
    no_domain = loyalmail(data, "domain", "add", "--merchant", "nordlicht", "https://x")
    assert no_domain.returncode == 1 and "Enter a domain name" in no_domain.stderr
    assert "Traceback" not in no_domain.stderr


def test_a_bad_setting_stops_the_command_with_its_name(tmp_path: Path) -> None:
    result = loyalmail(tmp_path / "data", "migrate", LOYALMAIL_SMTP_PORT="twenty-five")
    assert result.returncode == 2
    assert "LOYALMAIL_SMTP_PORT" in result.stderr and "Traceback" not in result.stderr


async def invoke(*args: str) -> Any:
    # The commands run their own event loop: give them a thread of their own.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_created_user_and_token_work(merchant: MerchantOut) -> None:
    email = f"staff-{merchant.slug}@example.com"
    result = await invoke(
        "create-user",
        "--merchant",
        merchant.slug,
        "--email",
        email,
        "--password",
        "staff password 123",
        "--role",
        "staff",
    )
    assert result.exit_code == 0, result.output
    user = await accounts.authenticate(email, "staff password 123")
    assert user.merchant_id == merchant.id and user.role == "staff"

    result = await invoke("create-token", "--merchant", merchant.slug, "--name", "pos")
    assert result.exit_code == 0, result.output
    principal = await accounts.resolve_api_token(result.stdout.strip())
    assert principal is not None and principal.merchant_id == merchant.id


async def test_refusals_exit_1_with_a_message(merchant: MerchantOut) -> None:
    duplicate = await invoke("create-merchant", "--slug", merchant.slug, "--name", "Again")
    assert duplicate.exit_code == 1 and "exists already" in duplicate.output

    zone = await invoke("create-merchant", "--slug", f"{merchant.slug}-tz", "--name", "X",
                        "--time-zone", "Mars/Olympus")  # fmt: skip
    assert zone.exit_code == 1 and "time zone" in zone.output

    unknown = await invoke("create-user", "--merchant", "no-such-shop", "--email",
                           "a@example.com", "--password", "long enough password")  # fmt: skip
    assert unknown.exit_code == 1 and "Merchant not found" in unknown.output

    short = await invoke("create-user", "--merchant", merchant.slug, "--email",
                         "b@example.com", "--password", "short")  # fmt: skip
    assert short.exit_code == 1 and "at least 10 characters" in short.output

    role = await invoke("create-user", "--merchant", merchant.slug, "--email", "c@example.com",
                        "--password", "long enough password", "--role", "boss")  # fmt: skip
    assert role.exit_code == 1 and "owner or staff" in role.output

    token = await invoke("create-token", "--merchant", "no-such-shop", "--name", "x")
    assert token.exit_code == 1 and "Merchant not found" in token.output
    assert await accounts.list_api_tokens(merchant.id) == []
