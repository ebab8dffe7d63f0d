"""The dramatiq broker, set up in this one place, and the list of actor modules.

Redis when ``LOYALMAIL_REDIS_URL`` is set (any number of ``loyalmail worker`` processes on
any number of machines); otherwise an in-process broker whose worker threads run inside
the ``loyalmail demo`` process. Async actors run on the AsyncIO middleware's event loop.

Imports run apart from everything else (issue 21): a workbook can take minutes and much
memory, and the threads that send campaigns must never wait behind it. ``loyalmail worker``
runs the ``imports`` queue in a process group of its own; the embedded mode gives it a
dramatiq Worker of its own beside the one for every other queue (:func:`start_workers`).
"""

from __future__ import annotations

import asyncio
import importlib
import threading

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from dramatiq.middleware.asyncio import AsyncIO
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from loyalmail import database
from loyalmail.settings import Settings, get_settings

#: Registered explicitly: a worker imports exactly these.
ACTOR_MODULES = ["accounts.actors", "customers.actors", "quota.actors", "campaigns.actors"]
#: The queues whose jobs get threads (embedded) or processes (``loyalmail worker``) of their own.
IMPORT_QUEUES = frozenset({"imports"})

_broker: dramatiq.Broker | None = None
_lock = threading.Lock()


class SharedAsyncIO(AsyncIO):
    """dramatiq's AsyncIO middleware for one or more Workers in the process: the first to
    boot starts the event loop thread, the last to shut down stops it (dramatiq's own stops
    it with the first Worker to stop, under the other's running actors)."""

    def __init__(self) -> None:
        super().__init__()
        self._workers = 0

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._workers += 1
        if self._workers == 1:
            super().before_worker_boot(broker, worker)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._workers -= 1
        if self._workers == 0:
            super().after_worker_shutdown(broker, worker)


class DatabasePool(Middleware):
    """A PostgreSQL connection pool on the async actors' event loop, for as long as the worker
    runs. Without it every transaction of an actor opens a connection of its own: a send
    worker commits every 20 messages, and connecting costs the server a process each time
    (measured: 1,500 connections for 2,000 messages, a third of the worker's database time).
    Sized to the first Worker's threads, the most actors that can wait on it at once, plus two;
    the embedded import Worker (one thread, booted second) shares it within those two."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._workers = 0

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._workers += 1
        engine, loop_thread = database.engine(), get_event_loop_thread()
        if self._workers > 1 or not isinstance(engine, PostgresEngine) or loop_thread is None:
            return
        size = worker.worker_threads + 2
        loop_thread.run_coroutine(engine.start_connection_pool(min_size=1, max_size=size))
        self._engine = engine

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._workers -= 1
        engine, loop_thread = self._engine, get_event_loop_thread()
        if self._workers > 0 or not isinstance(engine, PostgresEngine) or loop_thread is None:
            return
        loop_thread.run_coroutine(engine.close_connection_pool())
        self._engine = None


def make_broker(redis_url: str, heartbeat_seconds: float = 60.0) -> dramatiq.Broker:
    broker: dramatiq.Broker = (
        RedisBroker(url=redis_url, heartbeat_timeout=int(heartbeat_seconds * 1000))
        if redis_url
        else StubBroker()
    )
    broker.add_middleware(SharedAsyncIO())
    # After AsyncIO, whose boot hook starts the event loop this one opens the pool on.
    broker.add_middleware(DatabasePool())
    return broker


def setup(settings: Settings | None = None) -> dramatiq.Broker:
    """Create the broker once per process and make it dramatiq's global broker."""
    global _broker
    with _lock:
        if _broker is None:
            settings = settings or get_settings()
            _broker = make_broker(settings.redis_url, settings.broker_heartbeat_seconds)
            dramatiq.set_broker(_broker)
        return _broker


def use_uvloop() -> None:
    """Run this process's event loops on uvloop: a worker process calls it before its worker
    boots. A send worker spends much of its time in the event loop (four SMTP round trips a
    message); uvloop does that work in C (measured in benchmarks/send.py)."""
    try:
        import uvloop
    except ImportError:  # not built for this platform: asyncio's own loop does the same job
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


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


def queues_apart_from_imports() -> list[str]:
    """Every queue of the registered actors but the import queues."""
    load_actors()
    broker = get_broker()
    declared = {broker.get_actor(name).queue_name for name in broker.get_declared_actors()}
    return sorted(declared - IMPORT_QUEUES)


class Workers:
    """The embedded mode's two dramatiq Workers, stopped and joined together."""

    def __init__(self, workers: list[dramatiq.Worker]) -> None:
        self.workers = workers

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def join(self) -> None:
        for worker in self.workers:
            worker.join()


def start_workers(threads: int, import_threads: int) -> Workers:
    """One Worker for every queue but imports, one with threads of its own for imports: a
    running import never holds a thread that sends campaigns. The sending Worker boots first,
    so the database pool is sized to its threads (:class:`DatabasePool`)."""
    load_actors()
    broker = get_broker()
    others = dramatiq.Worker(
        broker, queues=set(queues_apart_from_imports()), worker_threads=threads, worker_timeout=200
    )
    others.start()
    imports = dramatiq.Worker(
        broker, queues=set(IMPORT_QUEUES), worker_threads=import_threads, worker_timeout=200
    )
    imports.start()
    return Workers([others, imports])


def start_embedded_worker(threads: int) -> Workers:
    """Worker threads inside this process: the embedded mode's stand-in for ``loyalmail worker``."""
    from loyalmail import scheduler

    workers = start_workers(threads, get_settings().import_worker_threads)
    scheduler.start_in_thread()
    return workers
