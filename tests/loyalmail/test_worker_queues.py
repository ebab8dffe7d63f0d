"""Imports never hold the threads or processes that send (issue 21, finding 1): the embedded
mode runs the imports queue on a Worker of its own, and ``loyalmail worker`` runs it in a
process group of its own."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from dramatiq.asyncio import get_event_loop_thread, set_event_loop_thread
from typer.testing import CliRunner

from loyalmail import broker as broker_setup
from loyalmail import scheduler
from loyalmail.cli import app
from loyalmail.worker_groups import run_groups
from tests.conftest import jobs_go_nowhere
from tests.settings_env import settings_env


@pytest.fixture
def own_broker() -> Iterator[None]:
    """A fresh in-process broker for the test's own Workers, the previous one put back, and
    the session's event loop for async actors too: the test's Workers start their own, and
    stopping them clears dramatiq's process-wide one (the session's worker would then run
    no async actor)."""
    previous_loop = get_event_loop_thread()
    try:
        with jobs_go_nowhere():
            yield
    finally:
        set_event_loop_thread(previous_loop)


def test_a_send_runs_while_an_import_holds_its_thread(
    own_broker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One sending thread, as small as the embedded worker can be: an import that blocks
    (a huge workbook) must not keep the send batch behind it waiting."""
    import campaigns.sending.deliver
    import customers.services.imports
    from campaigns import actors as campaign_actors
    from customers import actors as customer_actors

    import_running, release_import, sent = threading.Event(), threading.Event(), threading.Event()

    async def slow_preview(merchant_id: int, job_id: int) -> None:
        import_running.set()
        # A blocking wait in a thread, as the import's parsing is (asyncio.to_thread).
        await asyncio.to_thread(release_import.wait, 30)

    async def send_batch(campaign_id: int, batch_id: int) -> None:
        sent.set()

    monkeypatch.setattr(customers.services.imports, "preview", slow_preview)
    monkeypatch.setattr(campaigns.sending.deliver, "send_batch", send_batch)
    monkeypatch.setattr(scheduler, "start_in_thread", threading.Event)
    workers = broker_setup.start_embedded_worker(1)
    try:
        customer_actors.preview_import.send(1, 1)
        assert import_running.wait(10), "the import never started"
        started = time.monotonic()
        campaign_actors.send_batch.send(1, 1)
        assert sent.wait(10), "the send waited behind the running import"
        assert time.monotonic() - started < 5
        assert not release_import.is_set()  # the import was still running meanwhile
    finally:
        release_import.set()
        workers.stop()


def test_every_queue_but_imports_is_served_apart_from_imports(own_broker: None) -> None:
    others = broker_setup.queues_apart_from_imports()
    assert "sending" in others and "default" in others
    assert not set(others) & broker_setup.IMPORT_QUEUES


def test_loyalmail_worker_runs_imports_in_a_process_group_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import loyalmail.worker_groups

    started: list[list[list[str]]] = []

    def record(commands: list[list[str]], poll_seconds: float = 0.5) -> int:
        started.append(commands)
        return 0

    monkeypatch.setattr(loyalmail.worker_groups, "run_groups", record)
    with settings_env({"LOYALMAIL_REDIS_URL": "redis://127.0.0.1:6379/15"}):
        result = CliRunner().invoke(app, ["worker", "--processes", "3", "--threads", "8"])
    assert result.exit_code == 0, result.output
    (commands,) = started
    others, imports = (command[command.index("loyalmail.worker") :] for command in commands)
    assert others[:5] == ["loyalmail.worker", "--processes", "3", "--threads", "8"]
    assert _queues(others) == set(broker_setup.queues_apart_from_imports())
    assert imports[:5] == ["loyalmail.worker", "--processes", "1", "--threads", "1"]
    assert _queues(imports) == {"imports"}


def _queues(command: list[str]) -> set[str]:
    return set(command[command.index("--queues") + 1 :])


def test_when_one_process_group_ends_the_other_is_stopped() -> None:
    """A worker half gone (imports, or sends) must not look alive to systemd or Kubernetes."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    started = time.monotonic()
    assert run_groups([sleeper, failing], poll_seconds=0.05) == 3
    assert time.monotonic() - started < 10
