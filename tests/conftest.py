"""Shared fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

``LOYALMAIL_TEST_DATABASE_URL`` (a PostgreSQL database this suite may wipe) and
``LOYALMAIL_TEST_REDIS_URL`` add the real services. With ``LOYALMAIL_REQUIRE_SERVICES=1``
(CI) a missing or unreachable service fails the run instead of skipping.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

# Settings are read once: point them at a throw-away data directory before anything loads.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="loyalmail-tests-"))
os.environ["LOYALMAIL_DATA_DIR"] = str(_DATA_DIR)
os.environ["LOYALMAIL_SECRET_KEY"] = "test-secret-key-not-for-production"
os.environ["LOYALMAIL_DATABASE_URL"] = f"sqlite:///{_DATA_DIR / 'boot.sqlite'}"
# No test asks real DNS (the network is not ours): a sending-domain check that no test
# pointed at its own server (tests/dns_server.py) meets a resolver that never answers.
os.environ["LOYALMAIL_DNS_RESOLVER"] = "127.0.0.1:1"
os.environ["LOYALMAIL_DNS_TIMEOUT_SECONDS"] = "0.5"
os.environ.pop("LOYALMAIL_REDIS_URL", None)
TEST_DATABASE_URL = os.environ.get("LOYALMAIL_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("LOYALMAIL_TEST_REDIS_URL", "")
REQUIRE_SERVICES = os.environ.get("LOYALMAIL_REQUIRE_SERVICES", "") == "1"

import pytest  # noqa: E402
from piccolo.engine.base import Engine  # noqa: E402

from accounts import services as accounts  # noqa: E402
from accounts.schemas import MerchantCreate, MerchantOut, UserOut  # noqa: E402
from loyalmail import database  # noqa: E402

ENGINES = ["sqlite", "postgres"]


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_SERVICES and not (TEST_DATABASE_URL and TEST_REDIS_URL):
        raise pytest.UsageError(
            "LOYALMAIL_REQUIRE_SERVICES=1 needs LOYALMAIL_TEST_DATABASE_URL and "
            "LOYALMAIL_TEST_REDIS_URL"
        )


#: How long the process may take to exit once pytest is done.
EXIT_GRACE_SECONDS = 60.0


def pytest_unconfigure(config: pytest.Config) -> None:
    """Name every thread that would keep the interpreter from exiting, and do not let one
    hang the run: a thread left behind (an aiosqlite connection never closed, a join with no
    timeout) once kept a CI run waiting past its time limit after pytest had printed its
    result. After the grace period the threads' stacks are printed and the process exits
    with pytest's own status."""
    import faulthandler
    import sys
    import threading

    lingering = [
        t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()
    ]
    if not lingering:
        return
    names = ", ".join(t.name for t in lingering)
    print(f"\nthreads still running after the tests: {names}", file=sys.stderr, flush=True)
    status = int(getattr(config, "_loyalmail_exit_status", 0))

    def give_up() -> None:
        print(
            f"\nthe process did not exit within {EXIT_GRACE_SECONDS:.0f} s; its threads:",
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(status)

    timer = threading.Timer(EXIT_GRACE_SECONDS, give_up)
    timer.daemon = True
    timer.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from accounts import passwords

    passwords.shutdown()  # its threads would be named below as keeping the process alive
    session.config._loyalmail_exit_status = exitstatus  # type: ignore[attr-defined]


def service_missing(what: str, reason: str) -> None:
    """Skip with the reason on a laptop; fail in CI, where the service must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (LOYALMAIL_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"{what} not available: {reason}")


async def _reset_postgres(url: str) -> Engine:
    engine = database.make_engine(url)
    name = url.rsplit("/", 1)[-1]
    if "test" not in name:
        raise pytest.UsageError(f"refusing to wipe {name!r}: the test database name must say test")
    try:
        await engine.run_ddl("DROP SCHEMA IF EXISTS public CASCADE")
        await engine.run_ddl("CREATE SCHEMA public")
    except OSError as exc:
        service_missing("PostgreSQL", str(exc))
    return engine


@pytest.fixture(scope="session", params=ENGINES)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """A migrated, empty database on one engine; tests isolate by creating their own merchant."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    engine: Engine
    if request.param == "sqlite":
        engine = database.sqlite_engine(_DATA_DIR / "tests.sqlite")
    else:
        if not TEST_DATABASE_URL:
            service_missing("PostgreSQL", "LOYALMAIL_TEST_DATABASE_URL is not set")
        engine = await _reset_postgres(TEST_DATABASE_URL)
    database.use_engine(engine)
    result = await run_forwards("all")
    assert result.success, result.message
    yield engine


_counter = itertools.count(1)


@pytest.fixture
async def merchant(db: Engine) -> MerchantOut:
    return await make_merchant()


async def make_merchant(**brand: object) -> MerchantOut:
    n = next(_counter)
    values: dict[str, object] = {
        "slug": f"shop-{os.getpid()}-{n}",
        "name": f"Shop {n}",
        "sender_email": "news@shop.example",
        "sender_name": f"Shop {n}",
        "time_zone": "Europe/Berlin",
        "currency": "EUR",
        # A complete legal footer (accounts.legal): without it no campaign may be sent.
        "street": "Teststraße 1",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "publisher": f"Shop {n} GmbH",
        "imprint": f"Shop {n} GmbH · Amtsgericht Berlin HRB {n}",
        "privacy_policy_url": "https://shop.example/privacy",
    }
    values.update(brand)
    return await accounts.create_merchant(MerchantCreate(**values))  # type: ignore[arg-type]


async def make_owner(merchant: MerchantOut, password: str = "correct horse battery") -> UserOut:
    return await accounts.create_user(
        merchant.id,
        f"owner-{merchant.slug}@example.com",
        password,
        name="Olga Owner",
        role="owner",
    )


@pytest.fixture
async def owner(merchant: MerchantOut) -> UserOut:
    return await make_owner(merchant)


@pytest.fixture
async def api_token(merchant: MerchantOut) -> str:
    created = await accounts.create_api_token(merchant.id, "tests")
    return created.token


@pytest.fixture
async def client(db: Engine) -> AsyncIterator[object]:
    """The whole app in-process (no connection pool: the test engine is already bound)."""
    from litestar.testing import AsyncTestClient

    from loyalmail.app import create_app

    async with AsyncTestClient(app=create_app(use_pool=False)) as test_client:
        yield test_client


def login_csrf_of(html: str) -> str:
    """The login form's pre-session CSRF token (accounts.login_csrf) in its page."""
    import re

    found = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert found, "the login form carries a CSRF token"
    return found.group(1)


async def login_form_token(client: object) -> str:
    """Open the login page (its cookie stays in the client); the form's token ("" when the
    page has none: the post is then refused, which the caller's assertion shows)."""
    import re

    page = await client.get("/login")  # type: ignore[attr-defined]
    found = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    return found.group(1) if found else ""


async def login(client: object, user: UserOut, password: str = "correct horse battery") -> str:
    """Log in through the form; returns the session's CSRF token for unsafe requests."""
    from accounts.services import resolve_session
    from loyalmail.auth import SESSION_COOKIE

    form_token = await login_form_token(client)
    response = await client.post(  # type: ignore[attr-defined]
        "/login",
        data={"email": user.email, "password": password, "next": "/", "_csrf": form_token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    principal = await resolve_session(client.cookies[SESSION_COOKIE])  # type: ignore[attr-defined]
    assert principal is not None
    return principal.csrf_token


class Jobs:
    """The broker the tests run jobs on, with a real dramatiq worker consuming it."""

    def __init__(self, kind: str, broker: object, worker: object) -> None:
        self.kind = kind
        self.broker = broker
        self.worker = worker

    def drain(self, timeout_ms: int = 30_000) -> None:
        """Wait until every queue is empty and the worker is idle."""
        for queue in self.broker.get_declared_queues():  # type: ignore[attr-defined]
            self.broker.join(queue, timeout=timeout_ms)  # type: ignore[attr-defined]
        self.worker.join()  # type: ignore[attr-defined]


@pytest.fixture(scope="session", params=["inprocess", "redis"])
def jobs(request: pytest.FixtureRequest) -> Iterator[Jobs]:
    """Background jobs on the in-process broker and, when configured, on Redis."""
    import dramatiq

    from loyalmail import broker as broker_setup

    if request.param == "redis":
        if not TEST_REDIS_URL:
            service_missing("Redis", "LOYALMAIL_TEST_REDIS_URL is not set")
        import redis

        try:
            redis.Redis.from_url(TEST_REDIS_URL).flushdb()
        except redis.exceptions.ConnectionError as exc:
            service_missing("Redis", str(exc))
    broker = broker_setup.make_broker(TEST_REDIS_URL if request.param == "redis" else "")
    broker_setup.use_broker(broker)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        yield Jobs(request.param, broker, worker)
    finally:
        worker.stop()
        broker.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[Path]:
    """aiosmtpd (the demo's catcher) on a free port, with the settings pointing at it; the
    directory it writes each received message into."""
    from tests.smtp import catcher

    with catcher() as outbox:
        yield outbox


@contextmanager
def jobs_go_nowhere() -> Iterator[None]:
    """Jobs enqueued meanwhile go to a broker that no worker consumes. For tests that start
    sends or test sends only to have them on record: the session's worker (the ``jobs``
    fixture) would otherwise run them in the background during later tests, retrying
    against an SMTP server that is gone and writing to the shared database (on SQLite:
    "database is locked" in whatever test runs then)."""
    from loyalmail import broker as broker_setup

    previous = broker_setup.get_broker()
    broker_setup.use_broker(broker_setup.make_broker(""))
    try:
        yield
    finally:
        broker_setup.use_broker(previous)


@pytest.fixture
def no_background_jobs() -> Iterator[None]:
    """:func:`jobs_go_nowhere` for a whole test: for modules whose tests create customers and
    imports through the API and pages (which queue opt-in mails and import jobs) and check
    what was stored and shown, not the jobs. Run by the session's worker, those jobs would
    land in later tests (an opt-in mail in another test's SMTP server)."""
    with jobs_go_nowhere():
        yield
