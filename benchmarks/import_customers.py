"""Benchmark: import a generated customer CSV (dry run, then apply) and print the figures.

    uv run python benchmarks/import_customers.py                 # 200,000 rows on SQLite
    uv run python benchmarks/import_customers.py --quick         # 10,000 rows
    uv run python benchmarks/import_customers.py --database-url postgresql://postgres@127.0.0.1/bench

With ``--database-url`` the same run is repeated on PostgreSQL (migrated forward; a new
merchant per run, nothing is wiped). The services the actors call are timed directly — the
actors are one-line wrappers — so broker latency is not in the figures.

Per phase: rows, seconds, rows/s, the peak resident set size (RSS, sampled every 20 ms) and
the peak of Python allocations (tracemalloc). tracemalloc slows allocation-heavy code several
times over, so the timed pass runs without it and a second, "traced" pass measures it on a
sample file (``--traced-rows``, default 20,000; ``--traced-rows 0`` traces the timed pass
itself, whose seconds then include the tracing). Flat memory means the peaks do not grow
with the file: compare RSS of a --quick run with the full one. The file has ~0.5 % invalid
addresses and ~0.2 % repeated addresses, like a real export from a shop system. The last
line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import RssSampler  # noqa: E402

FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hugo", "Ida", "Jonas", "Zoë"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoß"]
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667")]
LOCALES = ["de", "de_AT", "en", "fr", "nb", "fi", "sr"]
TYPES = ["loyal", "member", "non_member"]


def generate_csv(path: Path, rows: int, seed: int = 7) -> int:
    """Write the file row by row; returns its size in bytes."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(
            "email,first_name,last_name,gender,birth_date,locale,country,city,postal_code,"
            "phone,customer_type,custom.member_number\r\n"
        )
        for n in range(1, rows + 1):
            roll = rng.random()
            if roll < 0.005:
                email = f"broken{n}@@example"
            elif roll < 0.007 and n > 10:
                email = f"Customer{rng.randrange(1, n - 1)}@Example.com"  # repeated, other case
            else:
                email = f"customer{n}@example.com"
            city, postal = rng.choice(CITIES)
            birth = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            out.write(
                f"{email},{rng.choice(FIRST)},{rng.choice(LAST)},"
                f"{rng.choice(['female', 'male', 'diverse', ''])},{birth},{rng.choice(LOCALES)},"
                f"DE,{city},{postal},+49 30 {rng.randint(100000, 999999)},{rng.choice(TYPES)},"
                f"M-{n}\r\n"
            )
    return path.stat().st_size


@dataclass
class Phase:
    engine: str
    phase: str
    rows: int
    seconds: float
    rows_per_second: float
    mode: str
    peak_traced_mib: float | None
    peak_rss_mib: float
    counts: dict[str, int]


async def run_engine(
    engine_name: str, url: str, csv_path: Path, rows: int, *, traced: bool
) -> list[Phase]:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    from accounts import services as accounts
    from accounts.schemas import MerchantCreate
    from customers.services import imports
    from customers.services.imports import ImportOptions
    from loyalmail import database
    from loyalmail.settings import get_settings

    engine = database.make_engine(url)
    database.use_engine(engine)
    if database.is_postgres(engine):
        await engine.start_connection_pool(min_size=1, max_size=4)  # type: ignore[call-arg]
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            result = await run_forwards("all")
        if not result.success:
            raise RuntimeError(result.message)
        slug = f"bench-{os.getpid()}-{int(time.time())}"
        merchant = await accounts.create_merchant(
            MerchantCreate(slug=slug, name="Benchmark shop", time_zone="UTC")
        )
        upload = get_settings().import_dir / f"bench-{engine_name}.csv"
        upload.parent.mkdir(parents=True, exist_ok=True)
        upload = upload.with_name(f"{upload.stem}-{os.urandom(4).hex()}.csv")
        os.link(csv_path, upload)  # apply deletes its upload; the original stays for the next run
        job = await imports.create_job(
            merchant.id,
            filename="bench.csv",
            stored_path=upload,
            options=ImportOptions(),
            created_by=None,
            actor="benchmark",
        )
        phases = []
        for name in ("dry run", "apply"):
            if name == "apply":
                await imports.start_apply(merchant.id, job.id)
            if traced:
                tracemalloc.start()
            with RssSampler() as rss:
                started = time.perf_counter()
                if name == "dry run":
                    await imports.preview(merchant.id, job.id)
                else:
                    await imports.apply(merchant.id, job.id)
                seconds = time.perf_counter() - started
            peak: int | None = None
            if traced:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            out = await imports.get_job(merchant.id, job.id)
            if out.status not in {"previewed", "done"}:
                raise RuntimeError(f"{name} ended as {out.status}: {out.error}")
            phases.append(
                Phase(
                    engine=engine_name,
                    phase=name,
                    rows=out.rows_total,
                    seconds=round(seconds, 2),
                    rows_per_second=round(out.rows_total / seconds),
                    mode="traced" if traced else "timed",
                    peak_traced_mib=None if peak is None else round(peak / 2**20, 1),
                    peak_rss_mib=round(rss.peak / 2**20, 1),
                    counts={
                        "new": out.rows_new,
                        "updated": out.rows_updated,
                        "unchanged": out.rows_unchanged,
                        "invalid": out.rows_invalid,
                        "suppressed": out.rows_suppressed,
                    },
                )
            )
        return phases
    finally:
        if database.is_postgres(engine):
            await engine.close_connection_pool()


def print_table(phases: list[Phase], file_bytes: int) -> None:
    print(f"\nImport benchmark — file {file_bytes / 2**20:.1f} MiB")
    header = f"{'engine':<9} {'mode':<7} {'phase':<8} {'rows':>8} {'seconds':>8} {'rows/s':>7}"
    header += f" {'traced MiB':>10} {'RSS MiB':>8}  counts"
    print(header)
    print("-" * len(header) + "-" * 40)
    for p in phases:
        counts = " ".join(f"{k}={v}" for k, v in p.counts.items())
        traced = "-" if p.peak_traced_mib is None else f"{p.peak_traced_mib:.1f}"
        print(
            f"{p.engine:<9} {p.mode:<7} {p.phase:<8} {p.rows:>8} {p.seconds:>8.2f}"
            f" {p.rows_per_second:>7} {traced:>10} {p.peak_rss_mib:>8.1f}  {counts}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    parser.add_argument("--database-url", default="", help="also run on this PostgreSQL")
    parser.add_argument(
        "--traced-rows",
        type=int,
        default=20_000,
        help="rows of the tracemalloc pass (0: trace the timed pass itself)",
    )
    args = parser.parse_args()
    rows = 10_000 if args.quick else args.rows

    with tempfile.TemporaryDirectory(prefix="loyalmail-bench-") as tmp:
        work = Path(tmp)
        # Settings are read once: point them at the scratch directory before anything loads.
        os.environ["LOYALMAIL_DATA_DIR"] = str(work / "data")
        os.environ.setdefault("LOYALMAIL_SECRET_KEY", "benchmark-secret")
        os.environ.pop("LOYALMAIL_REDIS_URL", None)
        os.environ["LOYALMAIL_DATABASE_URL"] = f"sqlite:///{work / 'data' / 'bench.sqlite'}"
        from loyalmail import broker

        broker.setup()  # in-process broker, no worker: the services are timed directly

        csv_path = work / "customers.csv"
        started = time.perf_counter()
        size = generate_csv(csv_path, rows)
        took = time.perf_counter() - started
        print(f"generated {rows:,} rows ({size / 2**20:.1f} MiB) in {took:.1f}s")

        targets = [("sqlite", os.environ["LOYALMAIL_DATABASE_URL"])]
        if args.database_url:
            targets.append(("postgres", args.database_url))
        sample = work / "sample.csv"
        traced_rows = min(args.traced_rows, rows)
        if traced_rows:
            generate_csv(sample, traced_rows, seed=11)
        phases: list[Phase] = []
        for name, url in targets:
            phases += asyncio.run(run_engine(name, url, csv_path, rows, traced=traced_rows == 0))
            if traced_rows:
                phases += asyncio.run(run_engine(name, url, sample, traced_rows, traced=True))
    print_table(phases, size)
    print(
        json.dumps(
            {
                "benchmark": "import_customers",
                "rows": rows,
                "traced_rows": traced_rows or rows,
                "file_mib": round(size / 2**20, 1),
                "results": [asdict(p) for p in phases],
            }
        )
    )


if __name__ == "__main__":
    main()
