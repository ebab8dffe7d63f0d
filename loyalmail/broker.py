"""The dramatiq broker, set up in this one place, and the list of actor modules.

Redis when ``LOYALMAIL_REDIS_URL`` is set (any number of ``loyalmail worker`` processes on
any number of machines); otherwise an in-process broker whose worker threads run inside
the ``loyalmail demo`` process. Async actors run on the AsyncIO middleware's event loop.
"""

from __future__ import annotations

import importlib
import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from loyalmail.settings import Settings, get_settings

#: Registered explicitly: a worker imports exactly these.
ACTOR_MODULES = ["customers.actors", "quota.actors", "campaigns.actors"]

_broker: dramatiq.Broker | None = None
_lock = threading.Lock()


def make_broker(redis_url: str) -> dramatiq.Broker:
    broker: dramatiq.Broker = RedisBroker(url=redis_url) if redis_url else StubBroker()
    broker.add_middleware(AsyncIO())
    return broker


def setup(settings: Settings | None = None) -> dramatiq.Broker:
    """Create the broker once per process and make it dramatiq's global broker."""
    global _broker
    with _lock:
        if _broker is None:
            settings = settings or get_settings()
            _broker = make_broker(settings.redis_url)
            dramatiq.set_broker(_broker)
        return _broker


def load_actors() -> None:
    setup()
    for module in ACTOR_MODULES:
        importlib.import_module(module)


def use_broker(broker: dramatiq.Broker) -> None:
    """Make ``broker`` the global one and move every declared actor onto it (tests use this
    to run the same jobs on the in-process broker and on Redis)."""
    global _broker
    with _lock:
        previous = _broker
        _broker = broker
        dramatiq.set_broker(broker)
    load_actors()
    if previous is not None and previous is not broker:
        for name in previous.get_declared_actors():
            actor = previous.get_actor(name)
            actor.broker = broker
            broker.declare_actor(actor)


def get_broker() -> dramatiq.Broker:
    return setup()


def ping() -> str:
    broker = get_broker()
    if isinstance(broker, RedisBroker):
        broker.client.ping()
        return "redis"
    return "in-process"


def start_embedded_worker(threads: int) -> dramatiq.Worker:
    """Worker threads inside this process: the embedded mode's stand-in for ``loyalmail worker``."""
    from loyalmail import scheduler

    load_actors()
    worker = dramatiq.Worker(get_broker(), worker_threads=threads, worker_timeout=200)
    worker.start()
    scheduler.start_in_thread()
    return worker
