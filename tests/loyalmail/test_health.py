"""``GET /health``: what a load balancer and an operator see, with real parts up and down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from piccolo.engine.postgres import PostgresEngine

from loyalmail.catcher import start_catcher
from loyalmail.demo import free_port
from loyalmail.settings import reset_settings_cache


@pytest.fixture
def smtp_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the settings' SMTP transport at a port; the real settings come back afterwards."""

    def point(port: int) -> None:
        monkeypatch.setenv("LOYALMAIL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("LOYALMAIL_SMTP_PORT", str(port))
        monkeypatch.setenv("LOYALMAIL_SMTP_SECURITY", "none")
        reset_settings_cache()

    try:
        yield point
    finally:
        monkeypatch.undo()
        reset_settings_cache()


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[Controller]:
    controller = start_catcher(tmp_path / "outbox", port=free_port())
    try:
        yield controller
    finally:
        controller.stop()


async def test_healthy_when_every_part_answers(
    client: Any, db: Any, smtp_at: Any, catcher: Controller
) -> None:
    smtp_at(catcher.port)
    response = await client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {
        "ok": True,
        "detail": "postgresql" if isinstance(db, PostgresEngine) else "sqlite",
    }
    assert body["broker"]["ok"] is True
    assert body["mail"]["ok"] is True and str(catcher.port) in body["mail"]["detail"]


async def test_503_and_the_mail_part_named_when_smtp_is_down(client: Any, smtp_at: Any) -> None:
    smtp_at(free_port())  # nothing listens there
    response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["mail"]["ok"] is False and body["mail"]["detail"]
    # The other parts are still reported, so the operator sees which one is down.
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True


async def test_health_needs_no_login(client: Any, smtp_at: Any, catcher: Controller) -> None:
    smtp_at(catcher.port)
    response = await client.get("/health", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
