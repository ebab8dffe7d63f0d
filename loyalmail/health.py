"""``GET /health``: the database, the broker and the mail transport, each checked for real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from litestar import MediaType, Response, get

from loyalmail import broker, database, mail


async def _check(name: str, probe: Awaitable[str]) -> tuple[str, dict[str, object]]:
    try:
        detail = await asyncio.wait_for(probe, timeout=3)
        return name, {"ok": True, "detail": detail}
    except Exception as exc:  # a down part is reported, not raised: that is the point
        return name, {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}


async def _database() -> str:
    db = database.engine()
    from piccolo.querystring import QueryString

    await db.run_querystring(QueryString("SELECT 1"))
    return "postgresql" if database.is_postgres(db) else "sqlite"


@get("/health", media_type=MediaType.JSON, opt={"exclude_from_auth": True})
async def health() -> Response[dict[str, object]]:
    results = dict(
        await asyncio.gather(
            _check("database", _database()),
            _check("broker", asyncio.to_thread(broker.ping)),
            _check("mail", mail.ping()),
        )
    )
    healthy = all(part["ok"] for part in results.values())
    body: dict[str, object] = {"status": "ok" if healthy else "degraded", **results}
    return Response(body, status_code=200 if healthy else 503)
