"""What every benchmark measures besides time (the resident memory of its own process), and
the fresh PostgreSQL database the end-to-end benchmarks start from."""

from __future__ import annotations

import contextlib
import io
import threading


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Peak RSS during a block, sampled by a thread (ru_maxrss would be the process's peak)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0  # since the last reset
        self.overall = 0  # since the start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = rss_bytes()
            self.peak = max(self.peak, now)
            self.overall = max(self.overall, now)
            self._stop.wait(self.interval)

    def reset(self) -> None:
        """Start a new peak (the thread keeps running)."""
        self.peak = rss_bytes()

    def __enter__(self) -> RssSampler:
        self.peak = self.overall = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.overall = max(self.overall, self.peak)


async def fresh_database(url: str) -> None:
    """Drop and make the database of ``url`` (its name must contain "bench"), migrate it
    forward and point the app's tables at it."""
    import asyncpg

    from loyalmail import database

    admin_url, name = url.rsplit("/", 1)
    if "bench" not in name:
        raise SystemExit(f"refusing to wipe {name!r}: the database name must contain 'bench'")
    admin = await asyncpg.connect(f"{admin_url}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database.use_engine(database.make_engine(url))
    from piccolo.apps.migrations.commands.forwards import run_forwards

    with contextlib.redirect_stdout(io.StringIO()):
        result = await run_forwards("all")
    assert result.success, result.message
