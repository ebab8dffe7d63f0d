"""``loyalmail demo``: the whole product on one machine, in one process.

SQLite in the data directory, the in-process broker with worker threads, a local SMTP
catcher whose mail the Outbox page shows, the inbound mail server (mailed unsubscribes and
bounces, :mod:`loyalmail.inbound`) and the web app. The environment is set before
anything reads the settings, so every part (and Piccolo's engine) sees the embedded mode
whatever a ``.env`` or the shell says about PostgreSQL or Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from accounts.domains import keys
from loyalmail.settings import Settings, get_settings, reset_settings_cache

DEFAULT_SMTP_PORT = 8025
#: The inbound mail server's port in the demo unless taken (then a free one).
DEFAULT_INBOUND_PORT = 2525  # Settings.inbound_port's default
#: The demo signs its campaign mail (DKIM) with a key of its own, made on first start.
DEMO_DKIM_SELECTOR = "loyalmail-demo"
#: The installation's own sender address in the demo (merchants without a verified domain).
DEMO_FALLBACK_FROM = "shops@loyalmail.localhost"
DEMO_DKIM_KEY_FILE = "dkim-demo.pem"


class DemoStartFailed(RuntimeError):
    """The demo cannot start (a port is taken, the data directory unusable); says why."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        # The same option uvicorn and aiosmtpd use: a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def public_url(host: str, port: int) -> str:
    # A wildcard address is where we listen, not where a browser can go.
    shown = "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def demo_dkim_key(data_dir: Path) -> Path:
    """The demo's RSA-2048 DKIM key in the data directory, made once (readable by us only)."""
    path = data_dir / DEMO_DKIM_KEY_FILE
    if not path.is_file():
        pem = keys.generate(DEMO_DKIM_SELECTOR).private_pem
        data_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(pem)
        partial.chmod(0o600)
        partial.replace(path)  # never half a key, should the demo stop meanwhile
    return path


def configure_environment(
    host: str,
    port: int,
    data_dir: Path,
    smtp_port: int,
    inbound_port: int = DEFAULT_INBOUND_PORT,
) -> Settings:
    """Point every setting at the embedded mode, then (re)read the settings. The shop's mail
    is DKIM-signed for the installation's fallback domain; the Outbox verifies it with dkimpy."""
    os.environ.update(
        {
            "LOYALMAIL_DATA_DIR": str(data_dir),
            "LOYALMAIL_DEMO": "1",
            "LOYALMAIL_HOST": host,
            "LOYALMAIL_PORT": str(port),
            "LOYALMAIL_BASE_URL": public_url(host, port),
            # Empty means SQLite under the data directory and the in-process broker.
            "LOYALMAIL_DATABASE_URL": "",
            "LOYALMAIL_REDIS_URL": "",
            "LOYALMAIL_SMTP_HOST": "127.0.0.1",
            "LOYALMAIL_SMTP_PORT": str(smtp_port),
            "LOYALMAIL_SMTP_SECURITY": "none",
            "LOYALMAIL_SMTP_USERNAME": "",
            "LOYALMAIL_SMTP_PASSWORD": "",
            "LOYALMAIL_INBOUND_HOST": "127.0.0.1",
            "LOYALMAIL_INBOUND_PORT": str(inbound_port),
            # The demo's DNS is nobody's: the shop cannot verify its domain here, so its mail
            # goes out From the installation's own address, signed with the installation key.
            "LOYALMAIL_FALLBACK_FROM": DEMO_FALLBACK_FROM,
            "LOYALMAIL_DKIM_DOMAIN": DEMO_FALLBACK_FROM.rpartition("@")[2],
            "LOYALMAIL_DKIM_SELECTOR": DEMO_DKIM_SELECTOR,
            "LOYALMAIL_DKIM_PRIVATE_KEY_FILE": str(demo_dkim_key(data_dir)),
        }
    )
    reset_settings_cache()
    settings = get_settings()
    from loyalmail import database

    # piccolo_conf may have been imported with other settings already (tests, a .env).
    database.use_engine(database.make_engine(settings.effective_database_url))
    return settings


class DemoServer(uvicorn.Server):
    """uvicorn, minus re-raising the stop signal after shutdown: the demo cleans up after the
    server and then exits 0, which is what Ctrl-C and SIGTERM should mean here."""

    def __init__(self, config: uvicorn.Config, banner: str) -> None:
        super().__init__(config)
        self.banner = banner

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        def stop(signum: int, frame: FrameType | None) -> None:
            if self.should_exit:
                self.force_exit = True  # a second Ctrl-C: do not wait for open connections
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.banner, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def banner(settings: Settings, smtp_port: int) -> str:
    from campaigns.bounces.unsubscribe_address import inbound_domain
    from loyalmail.seed import DEMO_EMAIL, DEMO_PASSWORD

    url = settings.base_url
    return "\n".join(
        [
            "",
            "loyalmail demo is running.",
            f"  Open:     {url}/",
            f"  E-mail:   {DEMO_EMAIL}",
            f"  Password: {DEMO_PASSWORD}",
            f"  Outbox:   {url}/outbox  (SMTP catcher on 127.0.0.1:{smtp_port})",
            f"  Inbound:  unsubscribe+…@{inbound_domain()} and bounces, SMTP on"
            f" {settings.inbound_host}:{settings.inbound_port}",
            f"  Data:     {settings.data_dir}",
            f"  Health:   {url}/health",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def run_demo(
    host: str,
    port: int,
    data_dir: Path,
    customers: int,
    smtp_port: int = DEFAULT_SMTP_PORT,
    inbound_port: int = DEFAULT_INBOUND_PORT,
) -> None:
    """Run until Ctrl-C or SIGTERM; then stop the server, the worker and the catcher."""
    # Until uvicorn takes over the signals, SIGTERM stops seeding the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    started: list[Any] = []
    try:
        _run(host, port, data_dir.resolve(), customers, smtp_port, inbound_port, started)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr, flush=True)
    finally:
        for part in reversed(started):
            with contextlib.suppress(Exception):
                part.stop()
        if started:
            print("loyalmail demo stopped.", flush=True)


def _run(
    host: str,
    port: int,
    data_dir: Path,
    customers: int,
    smtp_port: int,
    inbound_port: int,
    started: list[Any],
) -> None:
    if not port_is_free(host, port):
        raise DemoStartFailed(f"Port {port} on {host} is in use: pick another with --port.")
    if not port_is_free("127.0.0.1", smtp_port):
        smtp_port = free_port()
    if not port_is_free("127.0.0.1", inbound_port):
        inbound_port = free_port()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoStartFailed(f"Cannot use the data directory {data_dir}: {exc}") from exc
    settings = configure_environment(host, port, data_dir, smtp_port, inbound_port)

    from loyalmail.cli import migrate_database
    from loyalmail.seed import seed_demo

    print(f"Preparing the demo in {settings.data_dir} …", flush=True)
    asyncio.run(migrate_database(quiet=True))
    seeded = asyncio.run(seed_demo(customers))
    if seeded.created:
        print(f"Seeded {seeded.customers} customers and {seeded.purchases} purchases.", flush=True)
    else:
        print(f"Reusing the demo shop ({seeded.customers} customers).", flush=True)

    from loyalmail.broker import start_embedded_worker
    from loyalmail.catcher import start_catcher

    # aiosmtpd logs every SMTP command at INFO; every /health probe would fill the terminal.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    try:
        started.append(start_catcher(settings.outbox_dir, host="127.0.0.1", port=smtp_port))
    except OSError as exc:  # lost a race for the port between the check and the bind
        if exc.errno != errno.EADDRINUSE:
            raise
        raise DemoStartFailed(f"The SMTP catcher could not use port {smtp_port}.") from exc
    started.append(start_embedded_worker(settings.worker_threads))
    from loyalmail.inbound import start_inbound

    try:
        started.append(start_inbound())
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise DemoStartFailed(f"The inbound server could not use port {inbound_port}.") from exc

    from loyalmail.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
    )
    DemoServer(config, banner(settings, smtp_port)).run()
