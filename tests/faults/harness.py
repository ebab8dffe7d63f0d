"""The send fault harness: a real campaign through real worker processes, PostgreSQL or
SQLite, Redis and an SMTP server that records every message it accepted; a fault injected
mid-send; then every frozen recipient classified.

Classes of a recipient at the end: accepted once, duplicated (accepted more than once),
lost (never accepted although nothing stopped it), stopped (skipped because it unsubscribed
or was suppressed, bounced) — and "stopped but sent": accepted after the unsubscribe
committed. The invariants (:meth:`Outcome.problems`): nobody lost; duplicates only where a
worker lost what it had in hand (killed, or cut off from PostgreSQL), at most those
messages; nothing overspent (no quota source drawn past what it granted, and a unit spent
for every accepted message); the reservation closed and balanced; nothing sent after an
unsubscribe committed.

Used by the test suite (``tests/faults/test_send_faults.py``, a small fixed size) and by the
fault suite command (``python -m tests.faults.suite``), which repeats every scenario and
prints one table.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from accounts.schemas import MerchantOut
from campaigns.schemas import Audience, CampaignCreate
from campaigns.sending import control, deliver, dispatch
from campaigns.sending.progress import progress
from campaigns.services import create_campaign
from campaigns.tables import CampaignRecipient
from customers.tables import Customer
from loyalmail.errors import Conflict, QuotaExceeded
from quota import services as quota
from quota.tables import QuotaReservationPart, QuotaSource
from tests.faults.tcp_cut import TcpCut, tcp_cut
from tests.smtp import Recorder

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "kill",
    "redis-flush",
    "smtp-421",
    "smtp-550",
    "drop-after-data",
    "pause-resume",
    "unsubscribe",
    "postgres-down",
    "sigstop",
    "month-end",
    "concurrent-dispatch",
)
#: Scenarios that need the PostgreSQL server behind a relay (SQLite has no network).
POSTGRES_ONLY = frozenset({"postgres-down"})
#: How long PostgreSQL stays unreachable, and how long a worker stays stopped: past its
#: lease and the broker's heartbeat (the rig's LOYALMAIL_SEND_LEASE_SECONDS and
#: LOYALMAIL_BROKER_HEARTBEAT_SECONDS).
CUT_SECONDS = 10.0
STOP_SECONDS = 15.0
WORKER_COUNT = 2


def lease_seconds(scenario: str) -> float:
    """The recipients' lease in the rig: short, so that a killed or stopped worker's share is
    taken over quickly; for the outage, long enough that it fits in half a lease (a lease is
    renewed once half of it is gone), as the production lease of 120 s makes a 10 s outage."""
    return 4 * CUT_SECONDS if scenario == "postgres-down" else 10.0


@dataclass
class Workers:
    """Worker processes (one dramatiq worker each) with the harness's settings."""

    env: dict[str, str]
    threads: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    stops: int = 0

    def start(self) -> None:
        env = {**os.environ, **self.env, "FAULT_WORKER_THREADS": str(self.threads)}
        with self.log_path().open("ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.worker_process"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.processes.append(process)

    def log_path(self) -> Path:
        """Where the workers write their logs (in the rig's data directory)."""
        return Path(self.env["LOYALMAIL_DATA_DIR"]) / "workers.log"

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_path()
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill_one(self) -> None:
        """``kill -9`` the oldest living worker and start a replacement."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                self.kills += 1
                break
        self.start()

    async def pause_one(self, seconds: float) -> None:
        """SIGSTOP the oldest living worker for ``seconds``, then SIGCONT: a frozen VM or a
        stuck process that wakes up with messages in hand."""
        process = next(p for p in self.processes if p.poll() is None)
        process.send_signal(signal.SIGSTOP)
        self.stops += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Outcome:
    scenario: str
    recipients: int
    once: int
    duplicated: int
    lost: int
    stopped: int
    stopped_but_sent: int
    spent: int
    accepted_recipients: int
    reservation_balanced: bool
    #: Units beyond what the quota held: sources drawn past their grant, plus messages
    #: accepted without a unit spent.
    overspent: int
    #: The most duplicates the fault allows: the messages a worker had in hand and lost.
    duplicate_bound: int
    kills: int
    stops: int
    seconds: float
    #: What else the scenario checked and found wrong (its own invariants).
    own_problems: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = list(self.own_problems)
        if self.lost:
            found.append(f"{self.lost} recipients lost")
        if self.duplicated > self.duplicate_bound:
            found.append(f"{self.duplicated} duplicated (bound {self.duplicate_bound})")
        if self.spent != self.accepted_recipients:
            found.append(f"quota spent {self.spent} != {self.accepted_recipients} accepted")
        if self.overspent:
            found.append(f"{self.overspent} units overspent")
        if not self.reservation_balanced:
            found.append("the reservation is not closed and balanced")
        if self.stopped_but_sent:
            found.append(f"{self.stopped_but_sent} sent after their unsubscribe committed")
        return found


async def _people(merchant: MerchantOut, count: int) -> list[str]:
    addresses = [f"f{n}.{merchant.slug}@example.com" for n in range(count)]
    for start in range(0, count, 400):
        await Customer.insert(
            *[
                Customer(
                    merchant=merchant.id,
                    email=address,
                    email_normalized=address,
                    first_name=f"Fa{start + n}",
                    locale="de",
                    customer_type="loyal",
                    email_status="verified",
                    # They confirmed their addresses themselves: only then do loyal customers
                    # count for the monthly allowance the month-end scenario spends from.
                    confirmed_by_recipient=True,
                    subscribed=True,
                )
                for n, address in enumerate(addresses[start : start + 400])
            ]
        )
    return addresses


async def _merchant() -> MerchantOut:
    from tests.campaigns.test_api import branded
    from tests.conftest import make_merchant

    return await branded(await make_merchant())


async def _campaign(merchant: MerchantOut, name: str) -> int:
    campaign = await create_campaign(
        merchant.id,
        CampaignCreate(
            name=name,
            subject="{{ salutation }}, a fault test",
            layout="offer",
            audience=Audience(predefined="all_customers"),
        ),
    )
    return campaign.id


async def _wait_until(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the fault never came due")
        await asyncio.sleep(0.05)


@dataclass
class Rig:
    """What a scenario runs against: the SMTP recorder, the worker processes and, on
    PostgreSQL, the relay between the workers and the server (None on SQLite)."""

    recorder: Recorder
    workers: Workers
    relay: TcpCut | None


@contextlib.asynccontextmanager
async def fault_rig(
    database_url: str, redis_url: str, recorder: Recorder, threads: int, lease: float = 10.0
) -> AsyncIterator[Rig]:
    """Worker processes for ``database_url`` (PostgreSQL through a :class:`TcpCut` relay),
    Redis at ``redis_url`` (flushed first) and ``recorder``; this process dispatches and
    reconciles with the same settings on its own engine, already pointed at the database."""
    import redis

    from loyalmail import broker as broker_setup
    from tests.settings_env import settings_env

    redis.Redis.from_url(redis_url).flushdb()
    with contextlib.ExitStack() as stack:
        relay: TcpCut | None = None
        workers_url = database_url
        if database_url.startswith(("postgres://", "postgresql://")):
            parsed = urlparse(database_url)
            relay = stack.enter_context(
                tcp_cut(parsed.hostname or "127.0.0.1", parsed.port or 5432)
            )
            netloc = f"{parsed.username or 'postgres'}@127.0.0.1:{relay.port}"
            workers_url = urlunparse(parsed._replace(netloc=netloc))
        settings = {
            "LOYALMAIL_REDIS_URL": redis_url,
            "LOYALMAIL_SMTP_PORT": str(recorder.port),
            "LOYALMAIL_SEND_BATCH_SIZE": "50",
            "LOYALMAIL_SEND_LEASE_SECONDS": str(lease),
            "LOYALMAIL_SEND_RETRY_BASE_SECONDS": "0.5",
            "LOYALMAIL_RECONCILE_AFTER_SECONDS": "2",
            "LOYALMAIL_BROKER_HEARTBEAT_SECONDS": "3",
            # A stopped worker's open transaction is ended well within the others' leases.
            "LOYALMAIL_DATABASE_IDLE_TRANSACTION_SECONDS": "3",
            "LOYALMAIL_DATA_DIR": tempfile.mkdtemp(prefix="loyalmail-faults-"),
            "LOYALMAIL_SECRET_KEY": "fault-harness-secret",
        }
        old_broker = broker_setup.get_broker()
        workers = Workers(env={**settings, "LOYALMAIL_DATABASE_URL": workers_url}, threads=threads)
        # This process keeps its own engine: the workers' settings minus the database.
        with settings_env(settings):
            broker_setup.use_broker(broker_setup.make_broker(redis_url, heartbeat_seconds=3.0))
            for _ in range(WORKER_COUNT):
                workers.start()
            try:
                yield Rig(recorder, workers, relay)
            finally:
                workers.stop()
                broker_setup.use_broker(old_broker)


async def run_scenario(
    scenario: str, rig: Rig, *, recipients: int, give_up_after: float = 180.0
) -> Outcome:
    """Send one campaign of ``recipients`` with ``scenario``'s fault; classify everyone."""
    if scenario == "concurrent-dispatch":
        return await _concurrent_dispatch(rig, recipients, give_up_after)
    if scenario in POSTGRES_ONLY and rig.relay is None:
        raise ValueError(f"{scenario} needs PostgreSQL")
    recorder, workers = rig.recorder, rig.workers
    started = time.monotonic()
    kills_before, stops_before = workers.kills, workers.stops
    merchant = await _merchant()
    addresses = await _people(merchant, recipients)
    await quota.buy_pack(merchant.id, reference=f"fault-{merchant.slug}", packs=1)
    campaign_id = await _campaign(merchant, f"Fault {scenario}")
    unsubscribed: list[str] = []
    own_problems: list[str] = []
    if scenario == "smtp-550":
        recorder.rcpt_answers = dict.fromkeys(addresses[::50], "550 5.1.1 No such user")
    if scenario == "smtp-421":
        recorder.busy_until = time.monotonic() + 3.0
    if scenario == "drop-after-data":
        recorder.drop_after_data = 5
    await dispatch.send_now(merchant.id, campaign_id)
    # The scheduler's periodic reconciler, every second here (every 20 s in production); it
    # runs in a process of its own, which loses PostgreSQL too when the network does.
    reconciling = asyncio.Event()
    reconciling.set()
    reconciler = asyncio.create_task(_reconcile_forever(reconciling))

    async def accepted_at_least(share: float) -> bool:
        return recorder.total >= share * recipients or await _finished(merchant.id, campaign_id)

    async def at(share: float) -> None:
        await _wait_until(lambda: accepted_at_least(share), give_up_after)

    duplicate_bound = 0
    if scenario == "kill":
        for share in (0.2, 0.45, 0.7):
            await at(share)
            workers.kill_one()
        # Each killed worker may have sent a group per thread without recording it.
        duplicate_bound = 3 * workers.threads * deliver.FLUSH_EVERY
    elif scenario == "redis-flush":
        import redis

        await at(0.3)
        redis.Redis.from_url(workers.env["LOYALMAIL_REDIS_URL"]).flushdb()
    elif scenario == "pause-resume":
        for _ in range(20):
            try:
                await control.pause(merchant.id, campaign_id)
            except Conflict:
                # Only a sending campaign can be paused: the workers sent the last of it
                # between two pauses (CI run of stop 17: on a quiet moment, before the 20th).
                assert await _finished(merchant.id, campaign_id)
                break
            await asyncio.sleep(0.05)
            await control.resume(merchant.id, campaign_id)
            await asyncio.sleep(0.05)
    elif scenario == "unsubscribe":
        await control.pause(merchant.id, campaign_id)
        await asyncio.sleep(0.5)  # the workers stop after what they have in hand
        waiting = await CampaignRecipient.select(CampaignRecipient.email_normalized).where(
            (CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.status == "queued")
        )
        unsubscribed = [row["email_normalized"] for row in waiting[::10]]
        if unsubscribed:
            await Customer.update({Customer.subscribed: False}).where(
                (Customer.merchant == merchant.id) & Customer.email_normalized.is_in(unsubscribed)
            )
        before = Counter(recorder.accepted)
        await control.resume(merchant.id, campaign_id)
    elif scenario == "postgres-down":
        assert rig.relay is not None
        await at(0.3)
        reconciling.clear()
        rig.relay.cut()
        await asyncio.sleep(CUT_SECONDS)
        rig.relay.restore()
        reconciling.set()
        # The workers wait the outage out to record what the relay had accepted (their
        # leases outlast it), so nothing goes out twice.
    elif scenario == "sigstop":
        await at(0.3)
        await workers.pause_one(STOP_SECONDS)
        # As after a kill: what each thread had sent of its group before the stop was not
        # recorded, and goes out again from the worker that takes the expired lease over.
        # Woken past its lease, the stopped worker sends none of the rest (deliver's lease
        # check), so the bound is a kill's.
        duplicate_bound = workers.threads * deliver.FLUSH_EVERY
    elif scenario == "month-end":
        own_problems += await _month_ends(merchant.id, campaign_id, at)

    with contextlib.suppress(TimeoutError):  # what is unfinished then is counted as lost
        await _wait_until(lambda: _finished(merchant.id, campaign_id), give_up_after)
    reconciler.cancel()
    outcome = await _classify(
        scenario,
        merchant,
        campaign_id,
        recorder,
        unsubscribed,
        before if scenario == "unsubscribe" else Counter(),
    )
    outcome.duplicate_bound = duplicate_bound
    outcome.kills, outcome.stops = workers.kills - kills_before, workers.stops - stops_before
    outcome.own_problems += own_problems
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


async def _month_ends(merchant_id: int, campaign_id: int, at: Any) -> list[str]:
    """The month of the allowance the campaign reserved from ends mid-send (its expiry is
    moved to this instant), and the monthly job runs twice at once, as two scheduler
    processes would. The reservation must stay spendable; what it does not spend expires
    with the month instead of going back."""
    parts = await QuotaReservationPart.select(QuotaReservationPart.source.kind).where(
        QuotaReservationPart.reservation.key == f"campaign:{campaign_id}"
    )
    if not any(part["source.kind"] == "allowance" for part in parts):
        return ["the campaign reserved nothing from the monthly allowance: no month to end"]
    await at(0.3)
    await QuotaSource.update({QuotaSource.expires_at: datetime.now(UTC)}).where(
        (QuotaSource.merchant == merchant_id) & (QuotaSource.kind == "allowance")
    )
    await asyncio.gather(quota.run_monthly_job(), quota.run_monthly_job())
    return []


async def _concurrent_dispatch(rig: Rig, recipients: int, give_up_after: float) -> Outcome:
    """Two campaigns of one merchant sent at the same instant, with quota for one and a
    half: exactly one goes out, the other is refused whole (nothing frozen or reserved)."""
    started = time.monotonic()
    merchant = await _merchant()
    await _people(merchant, recipients)
    await quota.buy_pack(merchant.id, reference=f"fault-{merchant.slug}", packs=1)
    available = (await quota.overview(merchant.id)).available
    hold = available - recipients - recipients // 2
    await quota.reserve(merchant.id, hold, key="fault-hold", purpose="leaves 1.5 campaigns")
    ids = [await _campaign(merchant, f"Concurrent {n}") for n in (1, 2)]
    answers = await asyncio.gather(
        *(dispatch.send_now(merchant.id, campaign_id) for campaign_id in ids),
        return_exceptions=True,
    )
    sent = [
        c for c, answer in zip(ids, answers, strict=True) if not isinstance(answer, BaseException)
    ]
    refused = [a for a in answers if isinstance(a, QuotaExceeded)]
    own_problems = [
        f"dispatch raised {a!r}"
        for a in answers
        if isinstance(a, BaseException) and not isinstance(a, QuotaExceeded)
    ]
    if len(sent) != 1 or len(refused) != 1:
        own_problems.append(f"{len(sent)} campaigns went out and {len(refused)} were refused")
    reconciling = asyncio.Event()
    reconciling.set()
    reconciler = asyncio.create_task(_reconcile_forever(reconciling))
    for campaign_id in sent:
        with contextlib.suppress(TimeoutError):
            await _wait_until(lambda c=campaign_id: _finished(merchant.id, c), give_up_after)
    reconciler.cancel()
    for campaign_id in ids:
        if campaign_id in sent:
            continue
        frozen = await CampaignRecipient.count().where(CampaignRecipient.campaign == campaign_id)
        held = await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")
        if frozen or (held and held.units):
            own_problems.append(
                f"the refused campaign froze {frozen} and reserved {held and held.units}"
            )
    outcome = await _classify(
        "concurrent-dispatch", merchant, sent[0] if sent else ids[0], rig.recorder, [], Counter()
    )
    outcome.own_problems += own_problems
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


async def _reconcile_forever(running: asyncio.Event) -> None:
    """As the scheduler runs its periodic jobs: a run that fails is logged, and the next one
    comes a second later (a dead reconciler would leave a lost job's recipients behind)."""
    while True:
        await running.wait()
        try:
            await control.reconcile()
        except Exception as exc:  # the next run tries again, as the scheduler's would
            print(f"reconciler: {exc!r}", file=sys.stderr)
        await asyncio.sleep(1.0)


async def _finished(merchant_id: int, campaign_id: int) -> bool:
    return (await progress(merchant_id, campaign_id)).status in {"sent", "cancelled"}


async def _overspent(merchant_id: int, accepted: int, spent: int) -> int:
    """Units beyond what the merchant's quota held. The database's CHECK constraints should
    make the first part impossible; it is counted, not assumed."""
    sources = await QuotaSource.select(
        QuotaSource.granted, QuotaSource.reserved, QuotaSource.spent, QuotaSource.expired
    ).where(QuotaSource.merchant == merchant_id)
    drawn_past = sum(
        max(0, s["spent"] + s["reserved"] + s["expired"] - s["granted"]) for s in sources
    )
    return drawn_past + max(0, accepted - spent)


async def _classify(
    scenario: str,
    merchant: MerchantOut,
    campaign_id: int,
    recorder: Recorder,
    unsubscribed: list[str],
    before_unsubscribe: Counter[str],
) -> Outcome:
    rows = await CampaignRecipient.select(
        CampaignRecipient.email_normalized, CampaignRecipient.status
    ).where(CampaignRecipient.campaign == campaign_id)
    with recorder.lock:
        accepted = Counter(recorder.accepted)
    stopped_statuses = {"skipped", "bounced"}
    once = duplicated = lost = stopped = 0
    for row in rows:
        count = accepted[row["email_normalized"]]
        if row["status"] in stopped_statuses:
            stopped += 1
        elif count == 0:
            lost += 1
        elif count == 1:
            once += 1
        else:
            duplicated += 1
    late = sum(1 for address in unsubscribed if accepted[address] > before_unsubscribe[address])
    reservation = await quota.reservation_by_key(merchant.id, f"campaign:{campaign_id}")
    balanced = bool(
        reservation
        and reservation.closed_at is not None
        and reservation.spent + reservation.released + reservation.expired == reservation.units
    )
    accepted_recipients = sum(1 for row in rows if accepted[row["email_normalized"]] > 0)
    spent = reservation.spent if reservation else -1
    return Outcome(
        scenario=scenario,
        recipients=len(rows),
        once=once,
        duplicated=duplicated,
        lost=lost,
        stopped=stopped,
        stopped_but_sent=late,
        spent=spent,
        accepted_recipients=accepted_recipients,
        reservation_balanced=balanced,
        overspent=await _overspent(merchant.id, accepted_recipients, max(spent, 0)),
        duplicate_bound=0,
        kills=0,
        stops=0,
        seconds=0.0,
    )
