"""The ``loyalmail`` command: migrate, create merchants/users/tokens, quota and campaign
operations, bounce reports from the MTA, serve, worker, scheduler, inbound mail, demo."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from accounts.commands import domain_app
from loyalmail.settings import SettingsError, get_settings, reset_settings_cache

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _operator_call(
    what: str, values: dict[str, Any], struct: type[T], call: Callable[[T], Awaitable[Any]]
) -> Any:
    """An operator command: ``values`` checked as the API's ``struct`` would be, then
    ``call`` run with it; a bad value or a refusal ends the command with "Could not …"."""
    import msgspec

    from loyalmail.errors import LoyalmailError

    try:
        checked = msgspec.convert(values, struct)
    except msgspec.ValidationError as exc:
        fail(f"Could not {what}: {exc}")

    async def go() -> Any:
        return await call(checked)

    try:
        return run(go())
    except LoyalmailError as exc:
        fail(f"Could not {what}: {exc.message}")


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


app.add_typer(domain_app, name="domain")

quota_app = typer.Typer(no_args_is_help=True, help="The quota ledger, for operators.")
app.add_typer(quota_app, name="quota")


@quota_app.command("show")
def quota_show(
    merchant: Annotated[str, typer.Option(help="The merchant's slug")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """What a merchant has left: this month's allowance, packs, test sends, next month."""
    import msgspec

    from accounts import services as accounts
    from loyalmail.errors import LoyalmailError
    from quota import services as quota
    from quota.schemas import QuotaOverview

    async def go() -> QuotaOverview:
        shop = await accounts.get_merchant_by_slug(merchant)
        return await quota.overview(shop.id)

    try:
        figures = run(go())
    except LoyalmailError as exc:
        fail(exc.message)
        return
    if json_output:
        typer.echo(msgspec.json.encode(figures).decode())
        return
    allowance = figures.allowance
    typer.echo(f"Quota of {merchant}, month {figures.period}")
    if allowance is not None:
        typer.echo(
            f"  allowance  {allowance.available:>10,} left of {allowance.granted:,}"
            f" (2 × {allowance.basis_loyal or 0:,} loyal customers), {allowance.spent:,} spent,"
            f" {allowance.reserved:,} reserved, expires after {allowance.expires_on}"
        )
    for pack in figures.packs:
        typer.echo(
            f"  pack       {pack.available:>10,} left of {pack.granted:,}"
            f" (reference {pack.reference}, bought {pack.created_at:%Y-%m-%d}, never expires)"
        )
    tests = figures.test_sends
    typer.echo(
        f"  test sends {tests.left:>10,} left of {tests.granted}, renew on {tests.renews_on}"
    )
    typer.echo(f"  available  {figures.available:>10,} for sends now")
    typer.echo(
        f"  next month {figures.forecast.allowance:>10,} at today's"
        f" {figures.forecast.loyal_customers:,} loyal customers ({figures.forecast.period})"
    )


@quota_app.command("add-pack")
def quota_add_pack(
    merchant: Annotated[str, typer.Option(help="The merchant's slug")],
    reference: Annotated[str, typer.Option(help="The purchase reference (credits once)")],
    packs: Annotated[int, typer.Option(min=1, max=1000, help="Packs of 10,000")] = 1,
) -> None:
    """Record bought packs; the same reference again credits nothing."""
    from accounts import services as accounts
    from quota import services as quota
    from quota.schemas import PackPurchase, PackRecorded

    async def record(purchase: PackPurchase) -> PackRecorded:
        shop = await accounts.get_merchant_by_slug(merchant)
        return await quota.buy_pack(shop.id, purchase.reference, purchase.packs)

    values = {"reference": reference, "packs": packs}
    recorded: PackRecorded = _operator_call("record the pack", values, PackPurchase, record)
    if recorded.created:
        typer.echo(f"Credited {recorded.pack.granted:,} units to {merchant} ({reference}).")
    else:
        typer.echo(f"{reference} was recorded before; nothing credited again.")


@quota_app.command("set-type")
def quota_set_type(
    merchant: Annotated[str, typer.Option(help="The merchant's slug")],
    email: Annotated[str, typer.Option(help="The customer's e-mail address")],
    customer_type: Annotated[
        str, typer.Option("--type", help="loyal, member or non_member (the loyalty programme's)")
    ],
) -> None:
    """Set a customer's type as the loyalty programme says (with LOYALMAIL_LOYALTY_SOURCE=
    operator the only way a customer becomes loyal or stops being loyal)."""
    from accounts import services as accounts
    from customers.schemas import OperatorTypeResult, OperatorTypeSet
    from customers.services import loyalty

    async def set_type(wanted: OperatorTypeSet) -> OperatorTypeResult:
        shop = await accounts.get_merchant_by_slug(merchant)
        return await loyalty.set_type_by_operator(shop.id, wanted.email, wanted.customer_type)

    values = {"email": email, "customer_type": customer_type}
    result: OperatorTypeResult = _operator_call("set the type", values, OperatorTypeSet, set_type)
    done = "is now" if result.changed else "was already"
    typer.echo(f"Customer {result.customer_id} of {merchant} {done} {result.customer_type}.")


@quota_app.command("grant")
def quota_grant() -> None:
    """Run the monthly job now: grant every merchant's month, expire what is over (safe to
    run any number of times)."""
    from quota import services as quota

    result = run(quota.run_monthly_job())
    typer.echo(
        f"{result.merchants} merchants: {result.allowances_granted} allowances and"
        f" {result.test_sends_granted} test-send grants made, {result.units_expired:,} units"
        f" expired from {result.sources_expired} sources."
    )


campaign_app = typer.Typer(no_args_is_help=True, help="Send, pause, resume and cancel campaigns.")
app.add_typer(campaign_app, name="campaign")

MerchantOption = Annotated[str, typer.Option(help="The merchant's slug")]
#: A send is over (for --wait) in these states; paused and overdue wait for a person.
SETTLED = {"sent", "cancelled", "paused", "overdue", "draft", "scheduled"}


def _campaign_call(merchant: str, action: Callable[[int], Awaitable[Any]]) -> Any:
    from accounts import services as accounts
    from loyalmail.errors import LoyalmailError

    async def go() -> Any:
        shop = await accounts.get_merchant_by_slug(merchant)
        return await action(shop.id)

    try:
        return run(go())
    except LoyalmailError as exc:
        # What is missing, field by field (e.g. the legal footer's gaps in the brand).
        details = [f"  {name}: {text}" for name, text in exc.fields.items() if text]
        fail("\n".join([exc.message, *details]))


def _print_progress(figures: Any) -> None:
    typer.echo(
        f"Campaign {figures.campaign_id}: {figures.status}"
        + (f" ({figures.status_reason})" if figures.status_reason else "")
        + f"; {figures.sent:,} sent, {figures.bounced:,} bounced, {figures.failed:,} failed,"
        f" {figures.skipped:,} skipped, {figures.cancelled:,} cancelled,"
        f" {figures.remaining:,} remaining of {figures.recipients:,}"
    )


def _watch(merchant: str, campaign_id: int) -> Any:
    """A rich progress bar until the send is over (or paused); in the embedded mode this
    process runs the worker threads meanwhile, since no other process takes its jobs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from accounts import services as accounts
    from campaigns.sending.progress import progress

    async def go() -> Any:
        shop = await accounts.get_merchant_by_slug(merchant)
        figures = await progress(shop.id, campaign_id)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
        ) as bar:
            task = bar.add_task(figures.status, total=max(figures.recipients, 1), rate="")
            while True:
                done = figures.recipients - figures.remaining
                left = f", {figures.seconds_left} s left" if figures.seconds_left else ""
                bar.update(
                    task,
                    completed=done,
                    description=figures.status,
                    rate=f"{figures.rate_per_second:.0f}/s{left}",
                )
                if figures.status in SETTLED:
                    return figures
                await asyncio.sleep(0.5)
                figures = await progress(shop.id, campaign_id)

    return run(go())


def _embedded_worker_if_needed() -> bool:
    """Without Redis no other process takes this one's jobs: start worker threads here, and
    say so (True). Called once the send was accepted: the in-process queue keeps the jobs
    until then, and a refusal must not leave worker threads that keep the process alive."""
    from loyalmail.broker import start_embedded_worker

    if get_settings().redis_url:
        return False
    typer.echo("No Redis configured: this process sends the messages itself.")
    start_embedded_worker(get_settings().worker_threads)
    return True


@campaign_app.command("send")
def campaign_send(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    merchant: MerchantOption,
    wait: Annotated[bool, typer.Option(help="Show a progress bar until it is sent")] = False,
) -> None:
    """Send a campaign now: freeze its target group, reserve the quota, hand it to the
    workers. Without Redis, this process does the sending and waits."""
    from campaigns.sending.dispatch import send_now

    figures = _campaign_call(merchant, lambda shop: send_now(shop, campaign_id))
    _print_progress(figures)
    embedded = _embedded_worker_if_needed()
    if wait or embedded:
        _print_progress(_watch(merchant, campaign_id))


@campaign_app.command("progress")
def campaign_progress(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    merchant: MerchantOption,
    wait: Annotated[bool, typer.Option(help="Show a progress bar until it is sent")] = False,
) -> None:
    """Where a send stands."""
    from campaigns.sending.progress import progress

    _print_progress(_campaign_call(merchant, lambda shop: progress(shop, campaign_id)))
    if wait:
        _print_progress(_watch(merchant, campaign_id))


@campaign_app.command("pause")
def campaign_pause(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    merchant: MerchantOption,
    reason: Annotated[str, typer.Option(help="Shown on the campaign page")] = "",
) -> None:
    """Pause a running send; the workers stop after the messages in hand."""
    from campaigns.sending.control import pause

    _print_progress(_campaign_call(merchant, lambda shop: pause(shop, campaign_id, reason)))


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    merchant: MerchantOption,
    wait: Annotated[bool, typer.Option(help="Show a progress bar until it is sent")] = False,
) -> None:
    """Resume a paused send."""
    from campaigns.sending.control import resume

    _print_progress(_campaign_call(merchant, lambda shop: resume(shop, campaign_id)))
    embedded = _embedded_worker_if_needed()
    if wait or embedded:
        _print_progress(_watch(merchant, campaign_id))


@campaign_app.command("cancel")
def campaign_cancel(
    campaign_id: Annotated[int, typer.Argument(help="The campaign's id")],
    merchant: MerchantOption,
) -> None:
    """Stop a send for good; the unused rest of its reservation goes back."""
    from campaigns.sending.control import cancel

    _print_progress(_campaign_call(merchant, lambda shop: cancel(shop, campaign_id)))


bounces_app = typer.Typer(
    no_args_is_help=True, help="Bounces and complaints that come back after a send."
)
app.add_typer(bounces_app, name="bounces")

#: sysexits.h EX_TEMPFAIL: an MTA's pipe keeps the message and delivers it again later.
EX_TEMPFAIL = 75


@bounces_app.command("read-dsn")
def bounces_read_dsn(
    source: Annotated[
        str, typer.Argument(help="The report as a file; - (or nothing): standard input")
    ] = "-",
    recipient: Annotated[
        str,
        typer.Option(help="The address the report was delivered to: the VERP return path"),
    ] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Record a bounce (DSN) or complaint (ARF) report, e.g. piped from the MTA: a hard
    bounce or a complaint suppresses the address. Exits 0 for a message that is no report
    too (the MTA must not send it back), 75 when the database is out of reach (the MTA
    tries again later)."""
    import sqlite3

    import msgspec

    from campaigns.bounces import services
    from campaigns.bounces.webhooks import MAX_BODY_BYTES
    from loyalmail.errors import LoyalmailError, ServiceUnavailable

    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_BODY_BYTES)
        else:
            with Path(source).open("rb") as report_file:
                raw = report_file.read(MAX_BODY_BYTES)
    except OSError as exc:
        fail(f"Could not read {source}: {exc.strerror or exc}")
        return
    # A longer message is read in part: its status part comes before the original it attaches.
    try:
        summary = run(services.process_report(raw, recipient))
    except (OSError, sqlite3.OperationalError, ServiceUnavailable) as exc:
        typer.secho(f"The database is out of reach, try again later: {exc}", err=True)
        raise typer.Exit(code=EX_TEMPFAIL) from exc
    except LoyalmailError as exc:
        fail(exc.message)
        return
    if json_output:
        typer.echo(msgspec.json.encode(summary).decode())
        return
    typer.echo(
        f"{summary.processed} recorded ({summary.suppressed} suppressed),"
        f" {summary.duplicates} duplicate, {len(summary.ignored)} ignored."
    )
    for ignored in summary.ignored:
        typer.echo(f"  ignored {ignored.event}: {ignored.reason}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
    server: Annotated[
        str,
        typer.Option(help="granian (the default) or uvicorn; without Redis always uvicorn"),
    ] = "granian",
) -> None:
    """Run the web app and API. Without Redis, background jobs run in this process."""
    from loyalmail import serving

    settings = get_settings()
    if server not in ("granian", "uvicorn"):
        fail(f"--server must be granian or uvicorn, not {server!r}.")
    run = serving.run_granian if server == "granian" else serving.run_uvicorn
    if not settings.redis_url:
        if workers > 1:
            fail("Several API processes need LOYALMAIL_REDIS_URL: the broker is per process.")
        from loyalmail.broker import start_embedded_worker

        # The jobs run beside the app in this one process, which granian's worker
        # processes are not.
        start_embedded_worker(settings.worker_threads)
        _embedded_inbound()
        run = serving.run_uvicorn
    run(host or settings.host, port or settings.port, workers, settings.log_level)


def _embedded_inbound() -> None:
    """``loyalmail inbound`` inside this process (without Redis, like the scheduler); a port
    in use is said, not fatal: the web app still serves."""
    from loyalmail.inbound import start_inbound

    settings = get_settings()
    try:
        start_inbound()
    except OSError as exc:
        typer.secho(
            f"The inbound mail server cannot listen on {settings.inbound_host}:"
            f"{settings.inbound_port} ({exc.strerror or exc}): mailed unsubscribes and bounces"
            " are not received. Set LOYALMAIL_INBOUND_PORT, or run `loyalmail inbound`.",
            fg=typer.colors.YELLOW,
            err=True,
        )


@app.command()
def inbound(
    host: Annotated[str | None, typer.Option(help="Default: LOYALMAIL_INBOUND_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: LOYALMAIL_INBOUND_PORT")] = None,
) -> None:
    """Receive mail (SMTP, behind the MX of the inbound and bounce domains): a mail to a
    recipient's unsubscribe address unsubscribes them, a DSN or ARF report to the VERP
    bounce address is recorded; every other address is refused. Runs until stopped."""
    from campaigns.bounces.unsubscribe_address import inbound_domain
    from loyalmail.inbound import close_pool, open_pool, start_inbound

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    host, port = host or settings.inbound_host, settings.inbound_port if port is None else port
    try:
        server = start_inbound(host, port)
    except OSError as exc:
        fail(f"Cannot listen on {host}:{port}: {exc.strerror or exc}")
        return
    open_pool(server)
    bounces = settings.bounce_address.replace("@", "+…@", 1)
    typer.echo(
        f"Receiving mail on {host}:{port} for unsubscribe+…@{inbound_domain()}"
        + (f" and {bounces}" if bounces else "")
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    close_pool(server)
    server.stop()
    typer.echo("Stopped.")


@app.command()
def worker(
    processes: Annotated[int, typer.Option()] = 2,
    threads: Annotated[int, typer.Option()] = 4,
    queues: Annotated[
        str,
        typer.Option(
            help="Comma-separated queues (default, sending, imports) for this worker alone."
            " Without it: two process groups, imports apart from every other queue."
        ),
    ] = "",
    import_processes: Annotated[int, typer.Option(help="Processes for the imports queue")] = 1,
    import_threads: Annotated[
        int | None,
        typer.Option(help="Threads per import process; default: LOYALMAIL_IMPORT_WORKER_THREADS"),
    ] = None,
) -> None:
    """Run dramatiq worker processes against Redis (LOYALMAIL_REDIS_URL). Imports run in
    processes of their own, so a slow or huge workbook never delays a send."""
    from loyalmail.broker import IMPORT_QUEUES, queues_apart_from_imports
    from loyalmail.worker_groups import dramatiq_command, run_groups

    settings = get_settings()
    if not settings.redis_url:
        fail("loyalmail worker needs LOYALMAIL_REDIS_URL; without it, `serve` and `demo` run jobs.")
    if queues:
        command = dramatiq_command(processes, threads, [q.strip() for q in queues.split(",")])
        os.execvp(command[0], command)
    others = dramatiq_command(processes, threads, queues_apart_from_imports())
    imports = dramatiq_command(
        import_processes,
        settings.import_worker_threads if import_threads is None else import_threads,
        sorted(IMPORT_QUEUES),
    )
    raise typer.Exit(code=run_groups([others, imports]))


@app.command()
def scheduler() -> None:
    """Enqueue the periodic jobs (monthly grants, scheduled campaigns, the send reconciler,
    the sending domains' DNS checks) on their intervals, against Redis. Safe to run on
    several machines: every periodic job is safe to run twice."""
    from loyalmail import scheduler as periodic
    from loyalmail.broker import load_actors

    if not get_settings().redis_url:
        fail("loyalmail scheduler needs LOYALMAIL_REDIS_URL; `serve` and `demo` run it inside.")
    load_actors()
    typer.echo(
        "Scheduling: "
        + ", ".join(f"{j.actor} every {j.every_seconds:.0f} s" for j in periodic.PERIODIC_JOBS)
    )
    stop = threading.Event()
    try:
        periodic.run(stop)
    except KeyboardInterrupt:
        stop.set()


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
    inbound_port: Annotated[
        int,
        typer.Option(
            help="The inbound mail server's port (mailed unsubscribes, bounces); a free one"
            " is picked if it is taken"
        ),
    ] = 2525,
) -> None:
    """Migrate, seed a demo shop and run everything on this machine (SQLite, SMTP catcher)."""
    from loyalmail.demo import DemoStartFailed, run_demo

    try:
        run_demo(
            host=host,
            port=port,
            data_dir=data_dir,
            customers=customers,
            smtp_port=smtp_port,
            inbound_port=inbound_port,
        )
    except DemoStartFailed as exc:
        fail(str(exc))


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(2)


__all__ = ["main", "reset_settings_cache"]
