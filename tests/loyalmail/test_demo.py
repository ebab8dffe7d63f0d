"""``loyalmail demo``: the seed on both engines, and the whole command in a real process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from piccolo.engine.base import Engine

from accounts import services as accounts
from customers.tables import ConsentEvent, Customer, Purchase
from loyalmail import database
from loyalmail.demo import free_port
from loyalmail.seed import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG, build_people, seed_demo
from tests.conftest import login_csrf_of

TODAY = date(2026, 2, 10)  # four weeks from here include 29 February's stand-in, 1 March


async def test_seed_builds_a_realistic_shop_once(db: Engine) -> None:
    first = await seed_demo(200, today=TODAY)
    assert first.created and first.customers == 200 and first.purchases > 200
    merchant = await accounts.get_merchant_by_slug(DEMO_SLUG)
    assert merchant.id == first.merchant_id
    assert merchant.imprint and merchant.opening_hours and merchant.privacy_policy_url
    assert merchant.sender_email and merchant.street and merchant.currency == "EUR"
    owner = await accounts.authenticate(DEMO_EMAIL, DEMO_PASSWORD)
    assert owner.merchant_id == merchant.id and owner.role == "owner"
    # The quota: the welcome pack, and this month's allowance from the seeded loyal customers.
    from quota import services as quota

    shown = await quota.overview(merchant.id)
    assert [p.reference for p in shown.packs] == ["demo-welcome-pack"]
    loyal = await Customer.count().where(
        (Customer.merchant == merchant.id)
        & (Customer.customer_type == "loyal")
        & (Customer.email_status == "verified")
        & (Customer.confirmed_by_recipient == True)  # noqa: E712
    )
    assert shown.allowance is not None and shown.allowance.granted == 2 * loyal > 0
    # A draft that is ready to be tested.
    from campaigns import services as campaigns

    [draft] = await campaigns.list_campaigns(merchant.id)
    assert (await campaigns.check_campaign(merchant.id, draft.id)).ready

    rows = await Customer.select().where(Customer.merchant == merchant.id)
    assert len(rows) == 200
    assert len({r["email_normalized"] for r in rows}) == 200
    assert all(r["email_normalized"] == r["email"].lower() for r in rows)
    assert all(r["email"].endswith(".example") for r in rows)  # never a real mailbox
    assert {r["locale"] for r in rows} == {"de", "en", "fr", "nb", "fi", "sr"}
    assert {r["customer_type"] for r in rows} == {"loyal", "member", "non_member"}
    statuses = Counter(r["email_status"] for r in rows)
    assert statuses["verified"] > 0.6 * 200 and statuses["pending"] and statuses["unverified"]
    unsubscribed = [r for r in rows if not r["subscribed"]]
    assert unsubscribed and all(r["unsubscribed_at"] is not None for r in unsubscribed)
    births = [r["birth_date"] for r in rows if r["birth_date"]]
    assert (2, 29) in {(b.month, b.day) for b in births}
    coming = {(TODAY + timedelta(days=n)).timetuple()[1:3] for n in range(28)}
    assert sum((b.month, b.day) in coming for b in births) >= 5
    assert any("loyalty_card" in str(r["custom_fields"]) for r in rows)

    # Every customer has a consent record; verified ones a confirmation too.
    events = await ConsentEvent.select(ConsentEvent.customer, ConsentEvent.action).where(
        ConsentEvent.merchant == merchant.id
    )
    actions: dict[int, set[str]] = {}
    for event in events:
        actions.setdefault(event["customer"], set()).add(event["action"])
    assert set(actions) == {r["id"] for r in rows}
    for r in rows:
        assert ("confirmed" in actions[r["id"]]) == (r["email_status"] == "verified")
        assert ("withdrawn" in actions[r["id"]]) == (not r["subscribed"])

    purchases = await Purchase.select().where(Purchase.merchant == merchant.id)
    kinds = Counter(p["kind"] for p in purchases)
    assert kinds["purchase"] > 200 and kinds["refund"] and kinds["exchange"]
    oldest = min(p["occurred_at"] for p in purchases)
    assert oldest >= datetime(2024, 2, 9, tzinfo=UTC) and oldest < datetime(2024, 6, 1, tzinfo=UTC)
    assert max(p["occurred_at"] for p in purchases) <= datetime(2026, 2, 10, tzinfo=UTC)
    assert max(r["created_at"] for r in rows) <= datetime(2026, 2, 10, tzinfo=UTC)
    assert {p["currency"] for p in purchases} == {"EUR"}

    # The derived columns agree with an independent aggregate over the purchases.
    derived = {r["id"]: r for r in rows}
    recomputed = await Purchase.raw(
        """
        SELECT customer,
               SUM(CASE WHEN kind = 'purchase' THEN 1 ELSE 0 END) AS purchases,
               SUM(CASE WHEN kind = 'refund' THEN 1 ELSE 0 END) AS refunds,
               SUM(CASE kind WHEN 'purchase' THEN amount_minor WHEN 'refund' THEN -amount_minor
                             ELSE amount_minor END) AS ltv,
               MIN(CASE WHEN kind = 'purchase' THEN occurred_at END) AS first_at,
               MAX(CASE WHEN kind = 'purchase' THEN occurred_at END) AS last_at
        FROM purchase WHERE merchant = {} GROUP BY customer
        """,
        merchant.id,
    )
    assert len(recomputed) > 150
    for agg in recomputed:
        row = derived[agg["customer"]]
        assert row["purchase_count"] == agg["purchases"]
        assert row["refund_count"] == agg["refunds"]
        assert row["lifetime_value_minor"] == agg["ltv"]
        assert _same_instant(row["first_purchase_at"], agg["first_at"])
        assert _same_instant(row["last_purchase_at"], agg["last_at"])
    without = set(derived) - {agg["customer"] for agg in recomputed}
    assert without, "some customers never bought"
    for customer_id in without:
        row = derived[customer_id]
        assert row["purchase_count"] == 0 and row["lifetime_value_minor"] == 0
        assert row["first_purchase_at"] is None and row["last_purchase_at"] is None
    if database.is_postgres(db):
        # PostgreSQL's extra derived column: every purchase moment, sorted (NULL: none).
        moments: dict[int, list[datetime]] = {}
        for p in sorted(purchases, key=lambda p: p["occurred_at"]):
            if p["kind"] == "purchase":
                moments.setdefault(p["customer"], []).append(p["occurred_at"])
        kept = await Customer.raw(
            "SELECT id, purchase_times FROM customer WHERE merchant = {}", merchant.id
        )
        assert {r["id"]: r["purchase_times"] for r in kept} == {
            customer_id: moments.get(customer_id) for customer_id in derived
        }

    again = await seed_demo(500, today=TODAY)
    assert not again.created
    assert (again.merchant_id, again.customers, again.purchases) == (
        first.merchant_id,
        200,
        first.purchases,
    )
    assert await Customer.count().where(Customer.merchant == merchant.id) == 200


def _same_instant(stored: datetime | None, aggregated: Any) -> bool:
    # PostgreSQL returns a datetime, SQLite the stored text: compare the instant either way.
    if stored is None or aggregated is None:
        return stored is None and aggregated is None
    if isinstance(aggregated, str):
        aggregated = datetime.fromisoformat(aggregated)
    if aggregated.tzinfo is None:
        aggregated = aggregated.replace(tzinfo=UTC)
    return bool(stored == aggregated)


def test_seed_is_deterministic() -> None:
    assert build_people(50, TODAY) == build_people(50, TODAY)
    assert build_people(50, TODAY) != build_people(50, TODAY + timedelta(days=1))


# --- the command, end to end ---------------------------------------------------------------


def demo_command(port: int, data_dir: Path, customers: int) -> list[str]:
    args = ["demo", "--port", str(port), "--data-dir", str(data_dir), "--customers", str(customers)]
    uv = shutil.which("uv")
    if uv:
        return [uv, "run", "--frozen", "loyalmail", *args]
    return [str(Path(sys.executable).with_name("loyalmail")), *args]


class Demo:
    def __init__(self, data_dir: Path, customers: int = 200) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"demo-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALMAIL_")}
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                demo_command(self.port, data_dir, customers),
                cwd=Path(__file__).resolve().parents[2],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"demo exited early:\n{self.output()}"
            try:
                response = httpx.get(f"{self.url}/health", timeout=2)
                if response.status_code == 200:
                    # The banner is printed right after the server is up.
                    while "Password:" not in self.output() and time.monotonic() < deadline:
                        time.sleep(0.1)
                    return dict(response.json())
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"demo not healthy within {timeout}s:\n{self.output()}")

    def credentials(self) -> tuple[str, str]:
        email = re.search(r"E-mail:\s+(\S+)", self.output())
        password = re.search(r"Password:\s+(\S+)", self.output())
        assert email and password, self.output()
        return email.group(1), password.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def customer_count(data_dir: Path, table: str = "customer") -> int:
    """Rows in a table of the demo's database; 0 when it was never created (stopped early)."""
    with sqlite3.connect(data_dir / "loyalmail.sqlite") as connection:
        try:
            return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
        except sqlite3.OperationalError:
            return 0


def test_demo_runs_logs_in_stops_and_restarts_on_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    demo = Demo(data_dir)
    try:
        health = demo.wait_healthy()
        assert health["database"]["detail"] == "sqlite"
        assert health["broker"]["detail"] == "in-process"
        assert health["mail"]["ok"] is True
        assert "Seeded 200 customers" in demo.output()
        email, password = demo.credentials()
        assert (email, password) == (DEMO_EMAIL, DEMO_PASSWORD)
        # The inbound mail server runs inside (on 2525, or a free port when that is taken).
        inbound = re.search(
            r"Inbound:\s+unsubscribe\+…@(\S+) and bounces, SMTP on 127.0.0.1:(\d+)", demo.output()
        )
        assert inbound, demo.output()
        with smtplib.SMTP("127.0.0.1", int(inbound[2]), timeout=10) as client:
            client.ehlo("client.example")
            client.mail("anna@example.com")
            assert client.rcpt(f"nobody@{inbound[1]}")[0] == 550
            assert client.rcpt(f"unsubscribe@{inbound[1]}")[0] == 250

        with httpx.Client(base_url=demo.url, timeout=10) as browser:
            form = browser.get("/login")
            assert form.status_code == 200
            fields = {"email": email, "next": "/", "_csrf": login_csrf_of(form.text)}
            wrong = browser.post("/login", data={**fields, "password": "nope"})
            assert wrong.status_code == 400
            login = browser.post("/login", data={**fields, "password": password})
            assert login.status_code == 303 and login.headers["location"] == "/"
            home = browser.get("/")
            assert home.status_code == 200, home.text[:500]
            assert "text/html" in home.headers["content-type"]
            assert "Nordlicht Kaffeerösterei" in home.text  # the seeded shop's dashboard
            cookies = dict(browser.cookies)
    finally:
        code = demo.stop()
    assert code == 0, demo.output()
    assert "loyalmail demo stopped." in demo.output()
    assert customer_count(data_dir) == 200

    again = Demo(data_dir)
    try:
        again.wait_healthy()
        assert "Reusing the demo shop (200 customers)" in again.output()
        # Sessions live in the database, not in the process: a restart keeps the login.
        with httpx.Client(base_url=again.url, timeout=10, cookies=cookies) as browser:
            assert browser.get("/", follow_redirects=False).status_code == 200
    finally:
        code = again.stop()
    assert code == 0, again.output()
    assert customer_count(data_dir) == 200


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALMAIL_")}
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("loyalmail")),
                "demo",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "d"),
            ],  # fmt: skip
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {port}" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "d").exists()


def test_stopping_while_seeding_leaves_nothing_half_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    demo = Demo(data_dir, customers=5000)
    deadline = time.monotonic() + 60
    while "Preparing the demo" not in demo.output():
        assert time.monotonic() < deadline and demo.process.poll() is None, demo.output()
        time.sleep(0.05)
    time.sleep(1.0)  # migrated by now, seeding 5,000 customers takes several seconds
    code = demo.stop()
    assert code == 0, demo.output()
    customers = customer_count(data_dir)
    merchants = customer_count(data_dir, "merchant")
    # One transaction: either the whole shop or none of it, never a shop with half its list.
    assert (merchants, customers) in {(0, 0), (1, 5000)}, demo.output()
