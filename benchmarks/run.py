"""Every benchmark of the project in one run, on PostgreSQL + Redis: one table and a report.

    uv run python benchmarks/run.py --quick       # the small sizes, a few minutes in all
    uv run python benchmarks/run.py               # the full sizes the targets are set for
    uv run python benchmarks/run.py --only send,tracking --report /tmp/figures.md

Each benchmark runs in a process of its own (``sys.executable benchmarks/<name>.py``), as a
user would start it, against its own ``loyalmail_bench_*`` database on ``--postgres`` (each
one drops or wipes only that database) and the Redis database of ``--redis-url`` (flushed by
the send benchmark). Its output is kept whole in the report; the figures are read from its
last line, the one JSON object every benchmark ends with.

The table has, per figure: the value, the target, whether it is met, and the reference the
same run measured on the same machine with none of our code in the way (the raw SMTP blast,
the bare Litestar endpoint, plain asyncpg statements, a plain Jinja render). A target missed
at ``--quick`` size says little: the targets are set for the full sizes. The exit status is
1 only when a benchmark failed to run or printed no figures, never for a missed target: the
figures are for people to read, as CI runs this at ``--quick`` size to prove it works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: The benchmarks that end-to-end tests and the machine can run (bare_gif, http_load and
#: measure are parts of the others).
ORDER = ["render", "quota", "import_customers", "segments", "report", "tracking", "send"]


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: str
    target: str = "-"
    ok: bool | None = None
    reference: str = "-"

    def ok_text(self) -> str:
        return "" if self.ok is None else ("yes" if self.ok else "MISSED")


@dataclass
class Outcome:
    name: str
    command: list[str]
    seconds: float
    returncode: int
    output: str
    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] | None = None
    error: str = ""


# --- reading each benchmark's JSON ------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.1f} ms"


def _rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def render_figures(d: dict[str, Any]) -> list[Figure]:
    jinja = _rate(d["jinja_reference_per_second"], "recipients/s (plain jinja2 render)")
    compile_ms = d["compile_inline_ms"]["median_ms"]
    rate = d["personalise_per_second"]
    return [
        Figure(
            "render",
            "compile + inline a ~50 KB newsletter (median)",
            _ms(compile_ms),
            "< 50 ms",
            compile_ms < 50,
        ),
        Figure(
            "render",
            "personalise, tokens included (1 core)",
            _rate(rate, "recipients/s"),
            ">= 30,000/s",
            rate >= 30_000,
            jinja,
        ),
        Figure("render", "peak RSS", f"{d['rss_peak_mib']} MiB"),
    ]


def quota_figures(d: dict[str, Any]) -> list[Figure]:
    reference = _rate(d["reference_conditional_updates_per_s"], "bare conditional UPDATEs/s")
    spends = d["spends_per_s_batch_100"]
    return [
        Figure(
            "quota",
            f"reservations, {d['clients']} clients, one merchant",
            _rate(d["reservations_per_s"], "/s"),
            reference=reference,
        ),
        Figure(
            "quota",
            "spends in batches of 100",
            _rate(spends, "units/s"),
            ">= 5,000/s",
            spends >= 5_000,
            reference,
        ),
        Figure(
            "quota",
            "spends one per call",
            _rate(d["spends_per_s_one_at_a_time"], "/s"),
            reference=reference,
        ),
    ]


def import_figures(d: dict[str, Any]) -> list[Figure]:
    figures = []
    for phase in d["results"]:
        if phase["peak_traced_mib"] is not None:
            continue  # the tracemalloc pass is slow on purpose: memory only
        figures.append(
            Figure(
                "import_customers",
                f"{phase['engine']} {phase['mode']} {phase['phase']}, {phase['rows']:,} rows",
                f"{phase['rows_per_second']:,.0f} rows/s, peak RSS {phase['peak_rss_mib']} MiB",
            )
        )
    traced = [p["peak_traced_mib"] for p in d["results"] if p["peak_traced_mib"] is not None]
    if traced:
        figures.append(
            Figure(
                "import_customers",
                f"peak Python allocations, {d['traced_rows']:,} rows ({d['file_mib']} MiB file)",
                f"{max(traced)} MiB",
                "streamed: far below the file",
            )
        )
    return figures


def segments_figures(d: dict[str, Any]) -> list[Figure]:
    results = d["results"]
    references = [r for r in results if r["kind"] == "reference"]
    scan = next((r for r in references if "plain asyncpg" in r["figure"]), None)
    heap = next((r for r in references if "no key and no index" in r["figure"]), None)
    figures = []
    for r in results:
        if r["kind"] in {"reference", "list"}:
            continue
        reference = "-"
        if r["kind"] == "freeze":
            value = f"{r['median_ms'] / 1000:.2f} s ({r['members']:,} rows)"
            target = f"< {r['target_ms'] / 1000:.0f} s"
            if heap:
                reference = f"{heap['median_ms'] / 1000:.2f} s (same INSERT, bare heap)"
        else:
            value = f"{_ms(r['median_ms'])} (n={r['members']:,})"
            target = f"< {r['target_ms']:.0f} ms"
            if scan and r["kind"] == "custom":
                reference = f"{_ms(scan['median_ms'])} (plain asyncpg, every row read)"
        figures.append(
            Figure("segments", f"{r['kind']}: {r['figure']}", value, target, r["ok"], reference)
        )
    rss = d["rss_mib"]
    figures.append(
        Figure(
            "segments",
            f"RSS, {d['customers']:,} customers",
            f"{rss['before']} → peak {rss['peak']} MiB",
            "flat",
            rss["peak"] - rss["before"] < 50,
        )
    )
    return figures


def report_figures(d: dict[str, Any]) -> list[Figure]:
    pages = [v for k, v in d.items() if k.endswith("_page_ms")]
    return [
        Figure(
            "report",
            f"campaign report, {d['recipients']:,} recipients",
            _ms(d["report_ms"]),
            "< 1,000 ms",
            d["report_ms"] < 1000,
        ),
        Figure("report", "people lists, slowest page of 100", _ms(max(pages)) if pages else "-"),
        Figure(
            "report",
            "clicked people as CSV",
            f"{d['clicked_csv_seconds']} s for {d['clicked_csv_people']:,} people,"
            f" peak RSS {d['export_peak_rss_mib']} MiB",
        ),
    ]


def tracking_figures(d: dict[str, Any]) -> list[Figure]:
    phases = d["phases"]
    bare = next((v for k, v in phases.items() if k.startswith("bare")), None)
    reference = "-" if bare is None else f"{bare['rps']:,.0f}/s, p99 {bare['p99_ms']:.1f} ms (bare)"
    target_rps, target_p99 = d["targets"]["rps"], d["targets"]["p99_ms"]
    figures = []
    for name, p in phases.items():
        if p is bare:
            continue
        ok = p["rps"] >= target_rps and p["p99_ms"] < target_p99
        rounds = p.get("rounds_rps", [])
        spread = (
            ""
            if len(rounds) < 2
            else " (median of " + " / ".join(f"{r:,.0f}" for r in rounds) + ")"
        )
        figures.append(
            Figure(
                "tracking",
                name,
                f"{p['rps']:,.0f}/s, p99 {p['p99_ms']:.1f} ms{spread}",
                f">= {target_rps:,.0f}/s, p99 < {target_p99:.0f} ms",
                ok,
                reference,
            )
        )
    figures.append(
        Figure(
            "tracking",
            "every answered request's event stored",
            "yes" if d["every_event_stored"] else "NO",
            "yes",
            d["every_event_stored"],
        )
    )
    return figures


def send_figures(d: dict[str, Any]) -> list[Figure]:
    raw = d["raw"]["msg_per_s"]
    reference = f"{raw:,.0f} msg/s (raw smtplib blast)"
    dkim, plain = d["with_dkim"]["msg_per_s"], d["without_dkim"]["msg_per_s"]
    peak = max(d["with_dkim"]["worker_peak_mib"] + d["without_dkim"]["worker_peak_mib"])
    return [
        Figure(
            "send",
            f"end to end with DKIM, {d['recipients']:,} recipients",
            f"{dkim:,.0f} msg/s ({d['ratio_with_dkim']:.2f} of raw)",
            ">= 500 msg/s",
            dkim >= 500,
            reference,
        ),
        Figure(
            "send",
            "end to end without DKIM",
            f"{plain:,.0f} msg/s ({d['ratio_without_dkim']:.2f} of raw)",
            ">= 0.7 of raw",
            d["ratio_without_dkim"] >= 0.7,
            reference,
        ),
        Figure("send", "worker peak RSS", f"{peak} MiB", "< 300 MiB", peak < 300),
        Figure(
            "send",
            "dispatch (freeze + reserve + batches)",
            f"{d['with_dkim']['dispatch_seconds']} s",
        ),
    ]


@dataclass(frozen=True)
class Benchmark:
    name: str
    quick: list[str]
    full: list[str]
    figures: Callable[[dict[str, Any]], list[Figure]]
    database: str = ""  # the loyalmail_bench_* database it is pointed at, if any
    uses_redis: bool = False


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("render", ["--quick"], [], render_figures),
        Benchmark("quota", ["--quick"], [], quota_figures, "loyalmail_bench_quota"),
        Benchmark("import_customers", ["--quick"], [], import_figures, "loyalmail_bench_import"),
        Benchmark("segments", ["--quick"], [], segments_figures, "loyalmail_bench_segments"),
        Benchmark("report", ["--quick"], [], report_figures, "loyalmail_bench_report"),
        Benchmark("tracking", ["--quick"], [], tracking_figures, "loyalmail_bench_tracking"),
        Benchmark("send", ["--quick"], [], send_figures, "loyalmail_bench_send", True),
    ]
}
# The quick size must not wipe the data of a full build (segments and report keep theirs for
# --skip-build): a quick run works in databases of its own.
QUICK_SUFFIX = "_quick"


def command_for(bench: Benchmark, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, str(ROOT / "benchmarks" / f"{bench.name}.py")]
    command += bench.quick if args.quick else bench.full
    if bench.database:
        name = bench.database + (QUICK_SUFFIX if args.quick else "")
        command += ["--database-url", f"{args.postgres.rstrip('/')}/{name}"]
    if bench.uses_redis:
        command += ["--redis-url", args.redis_url]
    return command


def ensure_database(url: str) -> None:
    """The import benchmark migrates an existing database forward; the others make theirs."""
    import asyncio

    import asyncpg

    admin_url, name = url.rsplit("/", 1)

    async def create() -> None:
        admin = await asyncpg.connect(f"{admin_url}/postgres")
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')  # a name of this module
        finally:
            await admin.close()

    asyncio.run(create())


def run_one(bench: Benchmark, args: argparse.Namespace) -> Outcome:
    command = command_for(bench, args)
    if bench.name == "import_customers":
        ensure_database(command[-1])
    print(f"\n== {bench.name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(  # noqa: S603 - our own scripts, our own arguments
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    output = completed.stdout + (f"\n[stderr]\n{completed.stderr}" if completed.stderr else "")
    outcome = Outcome(bench.name, command, seconds, completed.returncode, output)
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if completed.returncode != 0:
        outcome.error = f"exit status {completed.returncode}: {completed.stderr.strip()[-400:]}"
    elif not lines or not lines[-1].startswith("{"):
        outcome.error = "no JSON figures on its last line"
    else:
        try:
            outcome.data = json.loads(lines[-1])
            outcome.figures = bench.figures(outcome.data)
        except (ValueError, KeyError, TypeError) as exc:
            outcome.error = f"figures unreadable: {exc!r}"
    status = outcome.error or f"{len(outcome.figures)} figures"
    print(f"   {seconds:.0f} s, {status}", flush=True)
    return outcome


# --- output ------------------------------------------------------------------------------------

HEADER = ("benchmark", "figure", "value", "target", "ok", "reference (same run)")


def rows_of(outcomes: list[Outcome]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for outcome in outcomes:
        if outcome.error:
            rows.append((outcome.name, "FAILED TO RUN", outcome.error[:80], "-", "", "-"))
        for f in outcome.figures:
            rows.append((f.benchmark, f.name, f.value, f.target, f.ok_text(), f.reference))
    return rows


def text_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate([HEADER, *rows]):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(outcomes: list[Outcome], args: argparse.Namespace, facts: dict[str, Any]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    size = "quick (`--quick`)" if args.quick else "full"
    lines = [
        "# loyalmail benchmark figures",
        "",
        f"Written by `benchmarks/run.py` on {facts['finished']} ({size} sizes), in"
        f" {facts['seconds']:.0f} s. Machine: {facts['cpus']} CPUs, {facts['machine']},"
        f" Python {facts['python']}; load average before {facts['load_before']},"
        f" after {facts['load_after']}. The reference column is measured in the same run.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows_of(outcomes)]
    lines += ["", "## Each benchmark's own output", ""]
    for outcome in outcomes:
        lines += [
            f"### {outcome.name} ({outcome.seconds:.0f} s)",
            "",
            "`" + " ".join(["python", *outcome.command[1:]]).replace(str(ROOT) + "/", "") + "`",
            "",
            "```",
            # The last line is the JSON the table was read from; the rest is its own table.
            "\n".join(outcome.output.rstrip().splitlines()[-60:]),
            "```",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark at its small size")
    parser.add_argument("--only", default="", help="comma-separated names: " + ",".join(ORDER))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument(
        "--report",
        default="",
        help="markdown file (default: none for --quick, docs/benchmarks.md for the full sizes)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or ORDER
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ORDER)}")

    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    outcomes = [run_one(BENCHMARKS[name], args) for name in names]
    facts = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    rows = rows_of(outcomes)
    size = "quick" if args.quick else "full"
    print(f"\nloyalmail benchmarks ({size} sizes), {facts['seconds']:.0f} s")
    print(text_table(rows))
    report_path = args.report or ("" if args.quick else str(ROOT / "docs" / "benchmarks.md"))
    if report_path:
        Path(report_path).write_text(markdown(outcomes, args, facts), encoding="utf-8")
        print(f"report written to {report_path}")
    failed = [o.name for o in outcomes if o.error]
    summary = {
        "benchmark": "run",
        "quick": args.quick,
        **facts,
        "failed": failed,
        "figures": [f.__dict__ for o in outcomes for f in o.figures],
        "missed": [
            f"{f.benchmark}: {f.name}" for o in outcomes for f in o.figures if f.ok is False
        ],
    }
    print(json.dumps(summary, ensure_ascii=False))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
