"""Benchmark: the open pixel and the click redirect under load, events stored in PostgreSQL.

    uv run python benchmarks/tracking.py --quick     # 3 s per phase, 2,000 recipients
    uv run python benchmarks/tracking.py             # 15 s per phase, 20,000 recipients

PostgreSQL (``--database-url``, dropped and made again; its name must contain "bench") gets
one merchant, a sent campaign with two links and ``--recipients`` recipient rows. The app
runs under uvicorn (one process, uvloop and httptools) as ``loyalmail serve`` runs it, and a
second process (benchmarks/http_load.py) loads it from 127.0.0.1 over ``--connections``
keep-alive connections for ``--seconds``, going round every recipient's pixel or click URL
(so each token stays within its rate limit; the per-address limit is off: every request
comes from one address). The reference in the same run: a bare Litestar endpoint answering
the same GIF (benchmarks/bare_gif.py), served and loaded the same way.

Printed: requests per second, p50 / p99 / max latency per phase, and whether every answered
request's event is in the database (each is committed before its answer). Targets (issue
7): at least 8,000 tracked requests per second, p99 under 20 ms. The last line is one JSON
object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import fresh_database  # noqa: E402
from tests.smtp import free_port  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/loyalmail_bench_tracking"
SECRET = "benchmark-secret-key-for-tracking-tokens"
TARGET_RPS = 8000.0
TARGET_P99_MS = 20.0
LINKS = ("https://shop.example/autumn", "https://shop.example/members")


async def prepare(url: str, recipients: int) -> tuple[int, int, list[int]]:
    """A fresh database: a merchant, a sent campaign with its links and recipient rows."""
    import asyncpg

    await fresh_database(url)
    from tests.conftest import make_merchant

    merchant = await make_merchant()
    conn = await asyncpg.connect(url)
    try:
        campaign_id = await conn.fetchval(
            "INSERT INTO campaign (merchant, name, subject, preheader, audience_predefined,"
            " layout, blocks, sender_name, status, status_reason, started_at, finished_at,"
            " recipients, created_at, updated_at) VALUES ($1, 'Benchmark', 'Hello', '',"
            " 'all_customers', 'classic', '[]', '', 'sent', '', now(), now(), $2, now(), now())"
            " RETURNING id",
            merchant.id,
            recipients,
        )
        await conn.executemany(
            "INSERT INTO campaign_link (campaign, number, url) VALUES ($1, $2, $3)",
            [(campaign_id, number, url) for number, url in enumerate(LINKS)],
        )
        ids = await conn.fetch(
            "INSERT INTO campaign_recipient (campaign, merchant, customer, email,"
            " email_normalized, locale, status, attempts, lease_owner, detail, sent_at)"
            " SELECT $1, $2, NULL, 'r' || g || '@example.com', 'r' || g || '@example.com', 'de',"
            " 'sent', 1, '', '', now() - interval '1 hour' FROM generate_series(1, $3) AS g"
            " RETURNING id",
            campaign_id,
            merchant.id,
            recipients,
        )
    finally:
        await conn.close()
    return merchant.id, campaign_id, [int(row["id"]) for row in ids]


def write_paths(
    directory: Path, merchant_id: int, campaign_id: int, ids: list[int]
) -> dict[str, Path]:
    from tracking import tokens

    made = tokens.CampaignTokens(merchant_id, campaign_id)
    files = {"pixel": directory / "pixel.txt", "click": directory / "click.txt"}
    files["pixel"].write_text("".join(f"/r/o/{made.make('open', i)}.gif\n" for i in ids))
    files["click"].write_text(
        "".join(f"/r/c/{made.make('click', i)}/{i % len(LINKS)}\n" for i in ids)
    )
    return files


class Server:
    """uvicorn in a process of its own, as ``loyalmail serve`` runs the app."""

    def __init__(self, app: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.process.poll() is not None:
                raise SystemExit(f"{app} did not start")
            time.sleep(0.1)
        raise SystemExit(f"{app} did not listen within a minute")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def load(port: int, seconds: float, connections: int, paths: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "http_load.py"),
            str(port),
            str(seconds),
            str(connections),
            str(paths),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def stored_events(url: str, campaign_id: int) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT kind, COUNT(*) AS n FROM tracking_event WHERE campaign = $1 GROUP BY kind",
            campaign_id,
        )
    finally:
        await conn.close()
    return {str(row["kind"]): int(row["n"]) for row in rows}


def answered(result: dict[str, Any], status: str) -> int:
    return int(result["statuses"].get(status, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--quick", action="store_true", help="3 s per phase, 2,000 recipients")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.recipients = 3.0, 2_000
    os.environ["LOYALMAIL_SECRET_KEY"] = SECRET  # the tokens made here verify in the server

    merchant_id, campaign_id, ids = asyncio.run(prepare(args.database_url, args.recipients))
    env = {
        **os.environ,
        "LOYALMAIL_DATABASE_URL": args.database_url,
        "LOYALMAIL_SECRET_KEY": SECRET,
        "LOYALMAIL_PUBLIC_RATE_PER_IP": "0",
        "LOYALMAIL_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("LOYALMAIL_REDIS_URL", None)
    phases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="loyalmail-bench-tracking-") as tmp:
        env["LOYALMAIL_DATA_DIR"] = tmp
        files = write_paths(Path(tmp), merchant_id, campaign_id, ids)
        bare = Server("benchmarks.bare_gif:create_app", env)
        try:
            load(bare.port, 1.0, args.connections, files["pixel"])  # warm-up
            phases["bare GIF endpoint (reference)"] = load(
                bare.port, args.seconds, args.connections, files["pixel"]
            )
        finally:
            bare.stop()
        app = Server("loyalmail.app:create_app", env)
        try:
            warm = load(app.port, 1.0, args.connections, files["pixel"])
            phases["open pixel, event stored"] = load(
                app.port, args.seconds, args.connections, files["pixel"]
            )
            phases["click redirect, event stored"] = load(
                app.port, args.seconds, args.connections, files["click"]
            )
        finally:
            app.stop()
    stored = asyncio.run(stored_events(args.database_url, campaign_id))
    opens_answered = answered(warm, "200") + answered(phases["open pixel, event stored"], "200")
    clicks_answered = answered(phases["click redirect, event stored"], "302")
    durable = stored.get("open", 0) == opens_answered and stored.get("click", 0) == clicks_answered

    rows = [("phase", "requests/s", "p50 ms", "p99 ms", "max ms", "statuses")]
    for name, figures in phases.items():
        rows.append(
            (
                name,
                f"{figures['rps']:,.0f}",
                f"{figures['p50_ms']:.2f}",
                f"{figures['p99_ms']:.2f}",
                f"{figures['max_ms']:.1f}",
                ", ".join(f"{k}: {v:,}" for k, v in figures["statuses"].items()),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    tracked = [phases["open pixel, event stored"], phases["click redirect, event stored"]]
    ok_rate = all(p["rps"] >= TARGET_RPS for p in tracked)
    ok_p99 = all(p["p99_ms"] < TARGET_P99_MS for p in tracked)
    print(
        f"\nevents in PostgreSQL: {stored.get('open', 0):,} opens for {opens_answered:,} answered"
        f" pixels, {stored.get('click', 0):,} clicks for {clicks_answered:,} redirects:"
        f" {'every one stored' if durable else 'MISMATCH'}"
    )
    print(
        f"targets: >= {TARGET_RPS:,.0f} tracked requests/s {'met' if ok_rate else 'MISSED'};"
        f" p99 < {TARGET_P99_MS:.0f} ms {'met' if ok_p99 else 'MISSED'}"
        f" ({os.cpu_count()} CPUs: server, load generator and PostgreSQL share them)"
    )
    print(
        json.dumps(
            {
                "benchmark": "tracking",
                "seconds": args.seconds,
                "recipients": args.recipients,
                "connections": args.connections,
                "cpus": os.cpu_count(),
                "phases": phases,
                "stored": stored,
                "answered": {"open": opens_answered, "click": clicks_answered},
                "every_event_stored": durable,
                "targets": {"rps": TARGET_RPS, "p99_ms": TARGET_P99_MS},
                "ok": ok_rate and ok_p99 and durable,
            }
        )
    )


if __name__ == "__main__":
    main()
