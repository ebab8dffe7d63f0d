"""What every benchmark measures besides time: the resident memory of its own process."""

from __future__ import annotations

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
