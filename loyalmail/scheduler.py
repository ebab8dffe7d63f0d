"""The periodic jobs: one loop that enqueues each job's actor on its interval.

Embedded mode (``serve`` / ``demo`` without Redis) runs the loop in a thread beside the
worker threads. With Redis, ``loyalmail scheduler`` runs it; running it on two machines
is harmless, because every periodic job is safe to run twice (keyed writes, row locks), so
there is no leader election to get wrong.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass

import dramatiq

log = logging.getLogger("loyalmail.scheduler")


@dataclass(frozen=True)
class PeriodicJob:
    module: str
    actor: str
    every_seconds: float


#: Registered explicitly, like the actor modules.
PERIODIC_JOBS = [
    PeriodicJob("quota.actors", "monthly_quota_job", 300.0),
    PeriodicJob("campaigns.actors", "start_due_campaigns", 15.0),
    PeriodicJob("campaigns.actors", "reconcile_sends", 20.0),
    PeriodicJob("customers.actors", "end_due_pauses", 600.0),
    PeriodicJob("accounts.actors", "recheck_sending_domains", 300.0),
]


def _actor(job: PeriodicJob) -> dramatiq.Actor:
    actor = getattr(importlib.import_module(job.module), job.actor)
    assert isinstance(actor, dramatiq.Actor)
    return actor


def run(stop: threading.Event, jobs: list[PeriodicJob] | None = None) -> None:
    """Enqueue every job at once, then each on its interval, until ``stop`` is set."""
    jobs = jobs or PERIODIC_JOBS
    due = dict.fromkeys(range(len(jobs)), 0.0)
    while not stop.is_set():
        now = time.monotonic()
        for index, job in enumerate(jobs):
            if now >= due[index]:
                try:
                    _actor(job).send()
                except Exception:  # the broker is down: try again on the next round
                    log.exception("could not enqueue %s.%s", job.module, job.actor)
                due[index] = now + job.every_seconds
        stop.wait(min(1.0, min(job.every_seconds for job in jobs)))


def start_in_thread() -> threading.Event:
    """The embedded mode's scheduler; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run, args=(stop,), name="loyalmail-scheduler", daemon=True).start()
    return stop
