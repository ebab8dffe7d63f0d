"""One dramatiq worker in exactly one process (``python -m tests.faults.worker_process``), so
the fault harness can ``kill -9`` the process that is sending. ``dramatiq``'s own command
forks workers under a supervisor, whose pid is not the one holding the leases."""

from __future__ import annotations

import os
import signal
import threading

import dramatiq

from loyalmail.broker import get_broker, load_actors, use_uvloop


def main() -> None:
    use_uvloop()  # as loyalmail.worker does
    load_actors()
    threads = int(os.environ.get("FAULT_WORKER_THREADS", "4"))
    worker = dramatiq.Worker(get_broker(), worker_threads=threads, worker_timeout=100)
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("worker ready", flush=True)
    stop.wait()
    worker.stop()


if __name__ == "__main__":
    main()
