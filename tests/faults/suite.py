"""The fault suite as one command: every send fault scenario, repeated, on PostgreSQL and
SQLite, with one table of what happened to every recipient.

    uv run python -m tests.faults.suite                       # 3 trials × 3,000 recipients
    uv run python -m tests.faults.suite --trials 1 --recipients 600 --scenarios kill,sigstop
    uv run python -m tests.faults.suite --engines sqlite      # no PostgreSQL needed

Needs Redis (``--redis-url``; that database is flushed) and, for PostgreSQL, a database this
command may wipe (``--database-url``; its name must contain "test"). The worker processes
and the SMTP server that records every accepted message run on this machine. CI runs the
same scenarios once each at 600 recipients (``tests/faults/test_send_faults.py``).

Per scenario and engine the table gives the trials, the recipients frozen in all, and the
sums of the lost, duplicated (with the most a trial allowed), overspent and suppressed-but-
sent recipients, and whether every invariant of the harness held in every trial. The last
line is one JSON object with every trial. Exit status 1 when an invariant broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

# Settings are read once, by the first module that asks: a scratch data directory and a
# secret before any of the app is imported (the harness imports it).
_DATA_DIR = Path(tempfile.mkdtemp(prefix="loyalmail-fault-suite-"))
os.environ["LOYALMAIL_DATA_DIR"] = str(_DATA_DIR)
os.environ.setdefault("LOYALMAIL_SECRET_KEY", "fault-suite-secret")
os.environ["LOYALMAIL_DATABASE_URL"] = f"sqlite:///{_DATA_DIR / 'boot.sqlite'}"
os.environ.pop("LOYALMAIL_REDIS_URL", None)
os.environ.setdefault("LOYALMAIL_LOG_LEVEL", "WARNING")

from tests.faults import harness  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/loyalmail_faults_test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/10"
COLUMNS = (
    "scenario",
    "engine",
    "trials",
    "recipients",
    "lost",
    "duplicated",
    "overspent",
    "suppressed but sent",
    "seconds",
    "invariants",
)


async def _engine(name: str, url: str) -> Any:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from loyalmail import database

    if name == "sqlite":
        engine: Any = database.sqlite_engine(_DATA_DIR / "faults.sqlite")
    else:
        if "test" not in url.rsplit("/", 1)[-1]:
            raise SystemExit("--database-url: the database name must contain 'test' (it is wiped)")
        engine = database.make_engine(url)
        await engine.run_ddl("DROP SCHEMA IF EXISTS public CASCADE")
        await engine.run_ddl("CREATE SCHEMA public")
    database.use_engine(engine)
    result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"migrations failed: {result.message}")
    return engine


async def run_engine(name: str, args: argparse.Namespace) -> list[tuple[str, harness.Outcome]]:
    from tests.smtp import recording_server

    engine = await _engine(name, args.database_url)
    workers_url = args.database_url if name == "postgres" else f"sqlite:///{engine.path}"
    done: list[tuple[str, harness.Outcome]] = []
    for scenario in args.scenarios:
        if scenario in harness.POSTGRES_ONLY and name != "postgres":
            continue
        for trial in range(1, args.trials + 1):
            with recording_server() as recorder:
                lease = harness.lease_seconds(scenario)
                async with harness.fault_rig(
                    workers_url, args.redis_url, recorder, args.threads, lease
                ) as rig:
                    outcome = await harness.run_scenario(scenario, rig, recipients=args.recipients)
                    problems = outcome.problems()
                    if problems:
                        print(rig.workers.log_tail(), file=sys.stderr)
            state = "ok" if not problems else "; ".join(problems)
            print(
                f"{name:8} {scenario:20} trial {trial}: {outcome.duplicated} duplicated,"
                f" {outcome.lost} lost, {outcome.seconds} s — {state}",
                flush=True,
            )
            done.append((name, outcome))
    return done


def table(results: list[tuple[str, harness.Outcome]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    groups: dict[tuple[str, str], list[harness.Outcome]] = {}
    for engine, outcome in results:
        groups.setdefault((outcome.scenario, engine), []).append(outcome)
    for (scenario, engine), outcomes in groups.items():
        broken = sum(1 for o in outcomes if o.problems())
        rows.append(
            (
                scenario,
                engine,
                str(len(outcomes)),
                f"{sum(o.recipients for o in outcomes):,}",
                str(sum(o.lost for o in outcomes)),
                f"{sum(o.duplicated for o in outcomes)}"
                f" (≤ {max(o.duplicate_bound for o in outcomes)} a trial)",
                str(sum(o.overspent for o in outcomes)),
                str(sum(o.stopped_but_sent for o in outcomes)),
                f"{sum(o.seconds for o in outcomes):.0f}",
                "held" if not broken else f"BROKEN in {broken}",
            )
        )
    return rows


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    for n, row in enumerate([COLUMNS, *rows]):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--engines", default="postgres,sqlite")
    parser.add_argument("--scenarios", default=",".join(harness.SCENARIOS))
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4, help="per worker process")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.scenarios) - set(harness.SCENARIOS))
    if unknown or not set(engines) <= {"postgres", "sqlite"} or args.trials < 1:
        parser.error(
            f"scenarios are {', '.join(harness.SCENARIOS)}; engines postgres and sqlite;"
            " trials at least 1"
        )
    if args.recipients < 100:
        parser.error("--recipients must be at least 100 (the faults come due at shares of it)")

    async def run_all() -> list[tuple[str, harness.Outcome]]:
        results: list[tuple[str, harness.Outcome]] = []
        for engine in engines:
            results += await run_engine(engine, args)
        return results

    results = asyncio.run(run_all())
    rows = table(results)
    print(
        f"\nFault suite: {args.trials} trial(s) of {args.recipients:,} recipients,"
        f" {harness.WORKER_COUNT} worker processes × {args.threads} threads"
    )
    print_table(rows)
    broken = [row for row in rows if row[-1] != "held"]
    print(
        json.dumps(
            {
                "suite": "faults",
                "trials": args.trials,
                "recipients": args.recipients,
                "results": [{"engine": e, **asdict(o)} for e, o in results],
                "all_held": not broken,
            }
        )
    )
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
