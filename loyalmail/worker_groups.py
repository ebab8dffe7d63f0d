"""``loyalmail worker``'s process groups: dramatiq's CLI runs one set of queues with one number
of processes and threads, so imports and everything else are two dramatiq commands, each with
processes (and memory) of its own. A workbook that takes minutes and hundreds of MB then never
holds a process or thread that sends campaigns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

#: The signals dramatiq's CLI acts on (stop; SIGHUP: restart the worker processes).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def dramatiq_command(processes: int, threads: int, queues: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "loyalmail.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        *queues,
    ]


def run_groups(commands: list[list[str]], poll_seconds: float = 0.5) -> int:
    """Run every command, pass the stop and restart signals on to all of them, and when one
    ends, stop the others: half a worker (sends without imports, or the reverse) would look
    alive to a supervisor while a queue grows. Returns the exit code of the command that ended
    first (128 + the signal that ended it, as a shell says)."""
    children = [subprocess.Popen(command) for command in commands]  # noqa: S603 - our own

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        while (first := next((c for c in children if c.poll() is not None), None)) is None:
            time.sleep(poll_seconds)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    code = first.returncode
    return 128 - code if code < 0 else code
