"""Benchmark: a campaign sent end to end through the real pipeline, against the raw rate.

    uv run python benchmarks/send.py --quick     # 3,000 recipients per pass
    uv run python benchmarks/send.py             # 100,000 recipients per pass

PostgreSQL (``--database-url``, dropped and made again; its name must contain "bench"),
Redis (``--redis-url``, the database is flushed) and an SMTP sink in a process of its own
that accepts and discards every message. Two worker processes (one dramatiq worker each,
``--threads`` threads) send the campaign: dispatch (freeze + reservation), claims with
leases, personalisation of a ~50 KB newsletter, MIME, DKIM (RSA-2048) when on, pooled SMTP,
outcomes and quota spends. Passes: with DKIM, without DKIM. The reference in the same run:
pre-built messages blasted at the same sink over one smtplib connection.

Printed: messages per second end to end, the ratio to the raw rate, the per-message cost of
render / MIME / DKIM / database (measured in this process on a sample; the database figure
is the time inside the pipeline's transactions for three batches) and SMTP (the raw blast),
and the peak memory of each worker process. Targets (issue 6): ≥ 500 msg/s with DKIM,
≥ 0.7 of the raw rate without, worker memory under 300 MB. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import smtplib
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

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/loyalmail_bench_send"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
TARGET_DKIM = 500.0
TARGET_RATIO_PLAIN = 0.7
TARGET_RSS_MIB = 300.0
#: Text blocks that bring the offer layout to a realistic newsletter size.
FILLER = (
    "Our autumn collection is here: warm knitwear, rain-proof jackets and boots for long "
    "walks. Members collect double points on every purchase until the end of the month. "
) * 12

#: A minimal SMTP sink: enough of the protocol for smtplib and aiosmtplib, and DATA read with
#: one buffer search for the end marker, so the sink is not the bottleneck it would be with
#: aiosmtpd's line-by-line parsing (which takes ~160 messages of 100 KB per second here).
SINK = r"""
import asyncio, sys

async def serve(reader, writer):
    writer.write(b"220 sink ESMTP\r\n")
    while True:
        line = await reader.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            await reader.readuntil(b"\r\n.\r\n")
            writer.write(b"250 OK discarded\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 OK\r\n")
        await writer.drain()

async def session(reader, writer):
    # A worker that is stopped drops its connections without QUIT: not worth a traceback.
    try:
        await serve(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(
        session, "127.0.0.1", int(sys.argv[1]), limit=64 * 1024 * 1024
    )
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()

asyncio.run(main())
"""


async def prepare(url: str, recipients: int) -> tuple[int, int]:
    """A fresh database with one merchant of ``recipients`` customers and a campaign."""
    import asyncpg

    await fresh_database(url)
    from tests.campaigns.test_api import branded
    from tests.conftest import make_merchant

    merchant = await branded(await make_merchant())
    conn = await asyncpg.connect(url)
    await conn.execute(
        "INSERT INTO customer (merchant, email, email_normalized, first_name, last_name,"
        " gender, locale, country, city, postal_code, phone, customer_type, email_status,"
        " subscribed, suppressed, source, custom_fields, created_at, updated_at,"
        " purchase_count, refund_count, lifetime_value_minor)"
        " SELECT $1, 'c' || g || '@example.com', 'c' || g || '@example.com', 'Kim' || g,"
        " 'Example', CASE WHEN g % 2 = 0 THEN 'female' ELSE 'male' END, 'de', 'DE', 'Berlin',"
        " '10115', '', 'loyal', 'verified', TRUE, FALSE, 'import', '{}'::jsonb, now(), now(),"
        " 0, 0, 0 FROM generate_series(1, $2) AS g",
        merchant.id,
        recipients,
    )
    await conn.close()
    return merchant.id, merchant.id


async def new_campaign(merchant_id: int, packs: int) -> int:
    from campaigns.schemas import Audience, CampaignCreate, CampaignUpdate
    from campaigns.services import create_campaign, get_campaign, update_campaign
    from quota import services as quota

    await quota.buy_pack(merchant_id, reference=f"bench-{time.time_ns()}", packs=packs)
    created = await create_campaign(
        merchant_id,
        CampaignCreate(
            name="Benchmark",
            subject="{{ salutation }}, autumn is here",
            layout="offer",
            audience=Audience(predefined="all_customers"),
        ),
    )
    campaign = await get_campaign(merchant_id, created.id)
    blocks = list(campaign.blocks)
    from templates.blocks import Text

    blocks += [Text(markdown=FILLER) for _ in range(5)]
    await update_campaign(merchant_id, created.id, CampaignUpdate(blocks=blocks))
    return created.id


def worker_peak_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process (and of its reaped children), 0 when unreadable."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Fields 14-17 of proc(5), counted from the state (field 3) here.
        used = int(fields[11]) + int(fields[12])
        if children:
            used += int(fields[13]) + int(fields[14])
        return used / _TICKS
    return 0.0


def services_cpu() -> dict[str, float]:
    """CPU seconds so far of the local PostgreSQL (every backend, and those that ended) and
    Redis, read from /proc; empty when they run elsewhere."""
    used = {"postgres": 0.0, "redis": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            name = (entry / "comm").read_text().strip()
            if name.startswith("postgres"):
                # The postmaster's reaped children are the backends that ended meanwhile.
                used["postgres"] += cpu_seconds(int(entry.name), children=True)
            elif name.startswith("redis-server"):
                used["redis"] += cpu_seconds(int(entry.name))
    return used


async def send_pass(
    merchant_id: int, env: dict[str, str], threads: int, packs: int, sink_pid: int
) -> dict[str, Any]:
    """One campaign through two fresh worker processes; messages per second end to end, and
    the CPU milliseconds per message each part of the system used meanwhile."""
    from campaigns.sending.dispatch import send_now
    from campaigns.sending.progress import progress
    from campaigns.tables import Campaign

    campaign_id = await new_campaign(merchant_id, packs)
    workers = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before the clock
            [sys.executable, "-m", "tests.faults.worker_process"],
            cwd=ROOT,
            env={**os.environ, **env, "FAULT_WORKER_THREADS": str(threads)},
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None
        worker.stdout.readline()  # "worker ready": imports done before the clock starts
    before = {
        "workers": sum(cpu_seconds(w.pid) for w in workers),
        "sink": cpu_seconds(sink_pid),
        "this process": time.process_time(),
        **services_cpu(),
    }
    started = time.perf_counter()
    first = await send_now(merchant_id, campaign_id)
    dispatched = time.perf_counter() - started
    peaks = [0.0, 0.0]
    status = "sending"
    while status == "sending":
        # The campaign row says when it is done; counting the recipients' statuses every
        # moment would take the database's time from the send being measured.
        await asyncio.sleep(0.1)
        row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
        status = str(row["status"]) if row else "gone"
        peaks = [max(p, worker_peak_mib(w.pid)) for p, w in zip(peaks, workers, strict=True)]
    seconds = time.perf_counter() - started
    after = {
        "workers": sum(cpu_seconds(w.pid) for w in workers),
        "sink": cpu_seconds(sink_pid),
        "this process": time.process_time(),
        **services_cpu(),
    }
    for worker in workers:
        worker.terminate()
        worker.wait(timeout=20)
    figures = await progress(merchant_id, campaign_id)
    sent = max(figures.sent, 1)
    return {
        "status": figures.status,
        "recipients": first.recipients,
        "sent": figures.sent,
        "seconds": round(seconds, 2),
        "dispatch_seconds": round(dispatched, 2),
        "msg_per_s": round(figures.sent / seconds, 1),
        "worker_peak_mib": [round(p, 1) for p in peaks],
        "cpu_ms_per_message": {
            part: round((after[part] - before[part]) * 1000 / sent, 3) for part in before
        },
    }


async def costs(merchant_id: int, campaign_id: int, dkim: Any, sample: int) -> dict[str, Any]:
    """Per-message milliseconds of render (slot values and the pre-encoded parts filled),
    MIME and DKIM, and the size, on ``sample`` recipients in this process, the way a worker
    does them; also the built messages for the raw blast."""
    from datetime import UTC, datetime

    from accounts import services as accounts
    from campaigns.personalise import Personaliser
    from campaigns.sending import mime
    from campaigns.sending.deliver import CompiledCampaign
    from campaigns.sending.envelope import envelope_of, list_header_maker
    from campaigns.services import compile_for
    from campaigns.services.drafts import campaign_row
    from campaigns.services.previews import recipient_from_row, saved_content
    from customers.tables import Customer

    merchant = await accounts.get_merchant(merchant_id)
    row = await campaign_row(merchant_id, campaign_id)
    personaliser = Personaliser(
        compile_for(merchant, saved_content(row), "de", pixel=True),
        merchant_id=merchant.id,
        campaign_id=campaign_id,
        merchant_locale="de",
        base_url="https://news.example",
    )
    compiled = CompiledCampaign.of(personaliser)
    people = await Customer.select().where(Customer.merchant == merchant_id).limit(sample)
    now = datetime.now(UTC)
    sender = (await envelope_of(merchant)).sender
    clock = time.perf_counter()
    bodies = [
        compiled.body_for(n + 1, recipient_from_row(person, merchant))
        for n, person in enumerate(people)
    ]
    render_ms = (time.perf_counter() - clock) * 1000 / len(people)
    maker = list_header_maker(merchant, campaign_id)
    lists = [maker.for_recipient(n + 1) for n in range(len(people))]

    def build(key: Any) -> list[bytes]:
        return [
            mime.build(
                body,
                to=p["email"],
                sender=sender,
                lists=lists[n],
                message_id=mime.message_id(merchant.id, campaign_id, n + 1, "shop.example"),
                date=now,
                dkim_key=key,
            )
            for n, (body, p) in enumerate(zip(bodies, people, strict=True))
        ]

    clock = time.perf_counter()
    plain = build(None)
    mime_ms = (time.perf_counter() - clock) * 1000 / len(people)
    clock = time.perf_counter()
    build(dkim)
    dkim_ms = (time.perf_counter() - clock) * 1000 / len(people) - mime_ms
    return {
        "render_ms": round(render_ms, 3),
        "mime_ms": round(mime_ms, 3),
        "dkim_ms": round(dkim_ms, 3),
        "size_kib": round(sum(map(len, plain)) / len(plain) / 1024, 1),
        "messages": plain,
    }


async def database_cost(merchant_id: int, packs: int, batches: int = 3) -> dict[str, float]:
    """Milliseconds a message spends in the database on the worker's side (claims, the
    re-check before each group, the outcome commits with their quota units, settling), from
    the first ``batches`` batches of a campaign sent in this process: the time inside every
    transaction the pipeline opens. The campaign is cancelled afterwards."""
    from contextlib import asynccontextmanager

    import redis

    from campaigns.sending import control, deliver
    from campaigns.sending.dispatch import send_now
    from loyalmail import database, sql
    from loyalmail.settings import get_settings

    inside = [0.0]
    originals = sql.write_transaction, sql.read_transaction

    def timed(open_transaction: Any) -> Any:
        @asynccontextmanager
        async def transaction(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                async with open_transaction(*args, **kwargs):
                    yield
            finally:
                inside[0] += time.perf_counter() - started

        return transaction

    campaign_id = await new_campaign(merchant_id, packs)
    await send_now(merchant_id, campaign_id)
    redis.Redis.from_url(get_settings().redis_url).flushdb()  # this process sends them
    async with sql.read_transaction():
        rows = await sql.fetch(
            "SELECT id FROM campaign_batch WHERE campaign = ? ORDER BY id LIMIT ?",
            campaign_id,
            batches,
        )
    sent = 0
    engine = database.engine()
    assert isinstance(engine, database.LoopPooledPostgresEngine)
    await engine.start_connection_pool(min_size=1, max_size=4)  # as a worker has
    sql.write_transaction, sql.read_transaction = map(timed, originals)
    try:
        for row in rows:
            sent += (await deliver.send_batch(campaign_id, int(row["id"]))).sent
    finally:
        sql.write_transaction, sql.read_transaction = originals
        await engine.close_connection_pool()
    await control.cancel(merchant_id, campaign_id)
    return {"database_ms": round(inside[0] * 1000 / max(sent, 1), 3)}


def raw_blast(port: int, messages: list[bytes], seconds: float) -> dict[str, float]:
    """Pre-built messages over one smtplib connection for ``seconds``: the ceiling."""
    sent = 0
    with smtplib.SMTP("127.0.0.1", port) as client:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            for data in messages:
                client.sendmail("news@shop.example", ["c1@example.com"], data)
                sent += 1
        elapsed = time.perf_counter() - started
    smtp_ms = elapsed * 1000 / sent
    return {"msg_per_s": round(sent / elapsed, 1), "smtp_ms": round(smtp_ms, 3)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import redis
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from campaigns.sending import mime
    from loyalmail import broker as broker_setup
    from loyalmail.settings import reset_settings_cache

    recipients = 3_000 if args.quick else args.recipients
    redis.Redis.from_url(args.redis_url).flushdb()
    port = free_port()
    sink = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        [sys.executable, "-c", SINK, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert sink.stdout is not None
    sink.stdout.readline()
    data_dir = tempfile.mkdtemp(prefix="loyalmail-bench-send-")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = Path(data_dir) / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    base_env = {
        "LOYALMAIL_DATABASE_URL": args.database_url,
        "LOYALMAIL_REDIS_URL": args.redis_url,
        "LOYALMAIL_SMTP_PORT": str(port),
        "LOYALMAIL_DATA_DIR": data_dir,
        "LOYALMAIL_SECRET_KEY": "bench-secret",
        "LOYALMAIL_BASE_URL": "https://news.example",
    }
    dkim_env = {
        "LOYALMAIL_DKIM_DOMAIN": "shop.example",
        # The benchmark's shop has no verified domain of its own: its mail goes out From the
        # installation's fallback address, which the installation key signs.
        "LOYALMAIL_FALLBACK_FROM": "news@shop.example",
        "LOYALMAIL_DKIM_SELECTOR": "bench",
        "LOYALMAIL_DKIM_PRIVATE_KEY_FILE": str(key_file),
    }
    os.environ.update(base_env)
    reset_settings_cache()
    broker_setup.use_broker(broker_setup.make_broker(args.redis_url))
    try:
        print(f"building {recipients:,} customers …", file=sys.stderr)
        merchant_id, _ = await prepare(args.database_url, recipients)
        packs = 1 + recipients // 10_000
        sample_campaign = await new_campaign(merchant_id, 1)
        dkim = mime.DkimKey("shop.example", "bench", key_file.read_bytes())
        cost = await costs(merchant_id, sample_campaign, dkim, 300)
        cost.update(await database_cost(merchant_id, packs))
        raw = raw_blast(port, cost.pop("messages")[:200], 3.0 if args.quick else 8.0)
        print("pass with DKIM …", file=sys.stderr)
        with_dkim = await send_pass(
            merchant_id, {**base_env, **dkim_env}, args.threads, packs, sink.pid
        )
        print("pass without DKIM …", file=sys.stderr)
        plain = await send_pass(merchant_id, base_env, args.threads, packs, sink.pid)
    finally:
        sink.communicate(b"", timeout=10)
    return {
        "benchmark": "send",
        "recipients": recipients,
        "threads_per_worker": args.threads,
        "raw": raw,
        "cost": cost,
        "with_dkim": with_dkim,
        "without_dkim": plain,
        "ratio_with_dkim": round(with_dkim["msg_per_s"] / raw["msg_per_s"], 2),
        "ratio_without_dkim": round(plain["msg_per_s"] / raw["msg_per_s"], 2),
    }


def table(result: dict[str, Any]) -> str:
    raw, cost = result["raw"], result["cost"]
    rows = [
        ("raw blast, one smtplib connection", f"{raw['msg_per_s']:,.0f} msg/s", "reference"),
        (
            "end to end with DKIM",
            f"{result['with_dkim']['msg_per_s']:,.0f} msg/s"
            f" ({result['ratio_with_dkim']:.2f} of raw)",
            f">= {TARGET_DKIM:.0f} msg/s",
        ),
        (
            "end to end without DKIM",
            f"{result['without_dkim']['msg_per_s']:,.0f} msg/s"
            f" ({result['ratio_without_dkim']:.2f} of raw)",
            f">= {TARGET_RATIO_PLAIN} of raw",
        ),
        (
            "per message: render / MIME / DKIM / SMTP / database",
            f"{cost['render_ms']} / {cost['mime_ms']} / {cost['dkim_ms']} / {raw['smtp_ms']}"
            f" / {cost['database_ms']} ms ({cost['size_kib']} KiB)",
            "",
        ),
        *(
            (
                f"CPU per message {label}",
                " / ".join(f"{v}" for v in result[key]["cpu_ms_per_message"].values()) + " ms",
                "workers / sink / this process / postgres / redis",
            )
            for label, key in (("with DKIM", "with_dkim"), ("without DKIM", "without_dkim"))
        ),
        (
            "dispatch (freeze + reserve + batches)",
            f"{result['with_dkim']['dispatch_seconds']} s",
            "",
        ),
        (
            "worker peak RSS (MiB)",
            ", ".join(
                str(p)
                for p in result["with_dkim"]["worker_peak_mib"]
                + result["without_dkim"]["worker_peak_mib"]
            ),
            f"< {TARGET_RSS_MIB:.0f}",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:<45}  {target}" for name, value, target in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="3,000 recipients per pass")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
