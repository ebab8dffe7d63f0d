"""``loyalmail serve``: the app under granian in a real process, and the collector tuning of
the served app (loyalmail.serving)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loyalmail.demo import free_port
from loyalmail.serving import GC_THRESHOLDS, tune_garbage_collector
from tests.conftest import TEST_REDIS_URL, service_missing

ROOT = Path(__file__).resolve().parents[2]
#: The command the README gives, from this environment.
LOYALMAIL = str(Path(sys.executable).parent / "loyalmail")


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_served_app_freezes_what_it_holds_and_collects_less_often(
    restored_collector: None,
) -> None:
    held = [object() for _ in range(1000)]
    tune_garbage_collector()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(held)


def test_loyalmail_serve_answers_under_granian(tmp_path: Path) -> None:
    """With Redis (the jobs run in worker processes), serve runs granian: the health check,
    a page, and the tracking fast path answer; SIGTERM stops it."""
    if not TEST_REDIS_URL:
        service_missing("Redis", "LOYALMAIL_TEST_REDIS_URL is not set")
    port = free_port()
    env = {
        **os.environ,
        "LOYALMAIL_DATA_DIR": str(tmp_path),
        "LOYALMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}",
        "LOYALMAIL_REDIS_URL": TEST_REDIS_URL,
        "LOYALMAIL_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [LOYALMAIL, "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [LOYALMAIL, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "serve did not answer within a minute"
                time.sleep(0.2)
        assert health.headers["server"] == "granian"
        # No SMTP server here: degraded (503), with the database and Redis up.
        assert health.json()["database"]["ok"] and health.json()["broker"]["detail"] == "redis"
        assert httpx.get(f"{url}/login", timeout=5).status_code == 200
        pixel = httpx.get(f"{url}/r/o/not-a-token.gif", timeout=5)
        assert pixel.status_code == 404
        assert pixel.headers["cache-control"] == "no-store, private"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert process.returncode is not None
