"""The ``loyalmail`` command: migrate, create merchants/users/tokens, serve, worker, demo."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from loyalmail.settings import SettingsError, get_settings, reset_settings_cache

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


async def migrate_database(quiet: bool = False) -> None:
    from contextlib import redirect_stdout
    from io import StringIO

    from piccolo.apps.migrations.commands.forwards import run_forwards

    # Piccolo prints a heading per app; the CLI shows one line unless asked for more.
    buffer = StringIO()
    with redirect_stdout(buffer if quiet else sys.stdout):
        result = await run_forwards("all")
    if not result.success:
        raise RuntimeError(f"migration failed: {result.message}\n{buffer.getvalue()}")


@app.command()
def migrate() -> None:
    """Create or upgrade every table (safe to run again)."""
    run(migrate_database(quiet=False))
    typer.echo("Database is up to date.")


@app.command("create-merchant")
def create_merchant(
    slug: Annotated[str, typer.Option(help="Short name, lower-case letters, digits and -")],
    name: Annotated[str, typer.Option(help="The shop's name as customers know it")],
    sender_email: Annotated[str, typer.Option()] = "",
    locale: Annotated[str, typer.Option()] = "en",
    time_zone: Annotated[str, typer.Option()] = "UTC",
    currency: Annotated[str, typer.Option()] = "EUR",
) -> None:
    """Create a merchant (a tenant)."""
    import msgspec

    from accounts import services
    from accounts.schemas import MerchantCreate
    from loyalmail.errors import LoyalmailError

    try:
        data = msgspec.convert(
            {
                "slug": slug,
                "name": name,
                "sender_email": sender_email,
                "sender_name": name,
                "default_locale": locale,
                "time_zone": time_zone,
                "currency": currency,
            },
            MerchantCreate,
        )
        merchant = run(services.create_merchant(data))
    except (msgspec.ValidationError, LoyalmailError) as exc:
        fail(f"Could not create the merchant: {exc}")
        return
    typer.echo(f"Created merchant {merchant.slug} (id {merchant.id}).")


@app.command("create-user")
def create_user(
    merchant: Annotated[str, typer.Option(help="The merchant's slug")],
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[str, typer.Option(help="owner or staff")] = "owner",
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a marketer login for a merchant."""
    from accounts import services
    from loyalmail.errors import LoyalmailError

    if role not in ("owner", "staff"):
        fail("The role must be owner or staff.")

    async def go() -> str:
        shop = await services.get_merchant_by_slug(merchant)
        user = await services.create_user(shop.id, email, password, name=name, role=role)  # type: ignore[arg-type]
        return user.email

    try:
        address = run(go())
    except LoyalmailError as exc:
        fail(f"Could not create the user: {exc.message} {exc.fields or ''}".strip())
        return
    typer.echo(f"Created {role} {address} for {merchant}.")


@app.command("create-token")
def create_token(
    merchant: Annotated[str, typer.Option(help="The merchant's slug")],
    name: Annotated[str, typer.Option(help="What the token is for")],
) -> None:
    """Create an API token for an integration; it is printed once."""
    from accounts import services
    from loyalmail.errors import LoyalmailError

    async def go() -> str:
        shop = await services.get_merchant_by_slug(merchant)
        return (await services.create_api_token(shop.id, name)).token

    try:
        token = run(go())
    except LoyalmailError as exc:
        fail(exc.message)
        return
    typer.echo(token)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
) -> None:
    """Run the web app and API. Without Redis, background jobs run in this process."""
    import uvicorn

    settings = get_settings()
    if not settings.redis_url:
        if workers > 1:
            fail("Several API processes need LOYALMAIL_REDIS_URL: the broker is per process.")
        from loyalmail.broker import start_embedded_worker

        start_embedded_worker(settings.worker_threads)
    uvicorn.run(
        "loyalmail.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


@app.command()
def worker(
    processes: Annotated[int, typer.Option()] = 2,
    threads: Annotated[int, typer.Option()] = 4,
) -> None:
    """Run dramatiq worker processes against Redis (LOYALMAIL_REDIS_URL)."""
    if not get_settings().redis_url:
        fail("loyalmail worker needs LOYALMAIL_REDIS_URL; without it, `serve` and `demo` run jobs.")
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "dramatiq",
            "loyalmail.worker",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ],
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data")] = Path(
        "./loyalmail-data"
    ),
    customers: Annotated[int, typer.Option(min=0, help="How many demo customers to seed")] = 5000,
    smtp_port: Annotated[
        int, typer.Option(help="The SMTP catcher's port; a free one is picked if it is taken")
    ] = 8025,
) -> None:
    """Migrate, seed a demo shop and run everything on this machine (SQLite, SMTP catcher)."""
    from loyalmail.demo import DemoStartFailed, run_demo

    try:
        run_demo(host=host, port=port, data_dir=data_dir, customers=customers, smtp_port=smtp_port)
    except DemoStartFailed as exc:
        fail(str(exc))


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(2)


__all__ = ["main", "reset_settings_cache"]
