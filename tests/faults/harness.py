"""The send fault harness: a real campaign through real worker processes, PostgreSQL or
SQLite, Redis and an SMTP server that records every message it accepted; a fault injected
mid-send; then every frozen recipient classified.

Classes of a recipient at the end: accepted once, duplicated (accepted more than once),
lost (never accepted although nothing stopped it), stopped (skipped because it unsubscribed
or was suppressed, bounced) — and "stopped but sent": accepted after the unsubscribe
committed. The invariants (:meth:`Outcome.problems`): nobody lost; duplicates only after a
kill, at most the messages a killed worker had in hand; quota spent = recipients accepted;
the reservation closed and balanced; nothing sent after an unsubscribe committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accounts.schemas import MerchantOut
from campaigns.schemas import Audience, CampaignCreate
from campaigns.sending import control, deliver, dispatch
from campaigns.sending.progress import progress
from campaigns.services import create_campaign
from campaigns.tables import CampaignRecipient
from customers.tables import Customer
from quota import services as quota
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
)


@dataclass
class Workers:
    """Worker processes (one dramatiq worker each) with the harness's settings."""

    env: dict[str, str]
    threads: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0

    def start(self) -> None:
        env = {**os.environ, **self.env, "FAULT_WORKER_THREADS": str(self.threads)}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker_process"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)

    def kill_one(self) -> None:
        """``kill -9`` the oldest living worker and start a replacement."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
                self.kills += 1
                break
        self.start()

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
    kills: int
    flush_every: int
    threads: int
    seconds: float

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{self.lost} recipients lost")
        bound = self.kills * self.threads * self.flush_every
        if self.duplicated > bound:
            found.append(f"{self.duplicated} duplicated (bound {bound} after {self.kills} kills)")
        if self.spent != self.accepted_recipients:
            found.append(f"quota spent {self.spent} != {self.accepted_recipients} accepted")
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


async def _wait_until(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the fault never came due")
        await asyncio.sleep(0.05)


async def run_scenario(
    scenario: str,
    *,
    recorder: Recorder,
    workers: Workers,
    recipients: int,
    give_up_after: float = 180.0,
) -> Outcome:
    """Send one campaign of ``recipients`` with ``scenario``'s fault; classify everyone."""
    started = time.monotonic()
    merchant = await _merchant()
    addresses = await _people(merchant, recipients)
    await quota.buy_pack(merchant.id, reference=f"fault-{merchant.slug}", packs=1)
    campaign = await create_campaign(
        merchant.id,
        CampaignCreate(
            name=f"Fault {scenario}",
            subject="{{ salutation }}, a fault test",
            layout="offer",
            audience=Audience(predefined="all_customers"),
        ),
    )
    unsubscribed: list[str] = []
    if scenario == "smtp-550":
        recorder.rcpt_answers = dict.fromkeys(addresses[::50], "550 5.1.1 No such user")
    if scenario == "smtp-421":
        recorder.busy_until = time.monotonic() + 3.0
    if scenario == "drop-after-data":
        recorder.drop_after_data = 5
    await dispatch.send_now(merchant.id, campaign.id)
    # The scheduler's periodic reconciler, every second here (every 20 s in production).
    reconciler = asyncio.create_task(_reconcile_forever())

    async def accepted_at_least(share: float) -> bool:
        return recorder.total >= share * recipients or await _finished(merchant.id, campaign.id)

    if scenario == "kill":
        for share in (0.2, 0.45, 0.7):
            await _wait_until(lambda share=share: accepted_at_least(share), give_up_after)
            workers.kill_one()
    elif scenario == "redis-flush":
        import redis

        await _wait_until(lambda: accepted_at_least(0.3), give_up_after)
        redis.Redis.from_url(workers.env["LOYALMAIL_REDIS_URL"]).flushdb()
    elif scenario == "pause-resume":
        for _ in range(20):
            await control.pause(merchant.id, campaign.id)
            await asyncio.sleep(0.05)
            await control.resume(merchant.id, campaign.id)
            await asyncio.sleep(0.05)
    elif scenario == "unsubscribe":
        await control.pause(merchant.id, campaign.id)
        await asyncio.sleep(0.5)  # the workers stop after what they have in hand
        waiting = await CampaignRecipient.select(CampaignRecipient.email_normalized).where(
            (CampaignRecipient.campaign == campaign.id) & (CampaignRecipient.status == "queued")
        )
        unsubscribed = [row["email_normalized"] for row in waiting[::10]]
        if unsubscribed:
            await Customer.update({Customer.subscribed: False}).where(
                (Customer.merchant == merchant.id) & Customer.email_normalized.is_in(unsubscribed)
            )
        before = Counter(recorder.accepted)
        await control.resume(merchant.id, campaign.id)

    with contextlib.suppress(TimeoutError):  # what is unfinished then is counted as lost
        await _wait_until(lambda: _finished(merchant.id, campaign.id), give_up_after)
    reconciler.cancel()
    return await _classify(
        scenario,
        merchant,
        campaign.id,
        recorder,
        workers,
        unsubscribed,
        before if scenario == "unsubscribe" else Counter(),
        time.monotonic() - started,
    )


async def _reconcile_forever() -> None:
    while True:
        await control.reconcile()
        await asyncio.sleep(1.0)


async def _finished(merchant_id: int, campaign_id: int) -> bool:
    return (await progress(merchant_id, campaign_id)).status in {"sent", "cancelled"}


async def _classify(
    scenario: str,
    merchant: MerchantOut,
    campaign_id: int,
    recorder: Recorder,
    workers: Workers,
    unsubscribed: list[str],
    before_unsubscribe: Counter[str],
    seconds: float,
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
    return Outcome(
        scenario=scenario,
        recipients=len(rows),
        once=once,
        duplicated=duplicated,
        lost=lost,
        stopped=stopped,
        stopped_but_sent=late,
        spent=reservation.spent if reservation else -1,
        accepted_recipients=sum(1 for row in rows if accepted[row["email_normalized"]] > 0),
        reservation_balanced=balanced,
        kills=workers.kills,
        flush_every=deliver.FLUSH_EVERY,
        threads=workers.threads,
        seconds=round(seconds, 1),
    )
