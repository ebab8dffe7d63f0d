"""A small HTTP/1.1 load generator for benchmarks/tracking.py: keep-alive connections to
127.0.0.1, each sending the next path as soon as the answer to the last one has arrived.

    python benchmarks/http_load.py PORT SECONDS CONNECTIONS PATHS_FILE

Reads one path per line from PATHS_FILE and goes round them; prints one JSON object:
requests, seconds, requests per second, p50/p99/max latency in milliseconds and the count
of each status. Bounded by SECONDS; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from itertools import cycle
from pathlib import Path


async def connection(
    port: int,
    paths: list[str],
    offset: int,
    until: float,
    latencies: list[float],
    statuses: Counter[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = cycle(paths[offset:] + paths[:offset])
    agent = "Mozilla/5.0 (X11; Linux x86_64) loyalmail-bench/1.0"
    try:
        while time.perf_counter() < until:
            path = next(requests)
            started = time.perf_counter()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {agent}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[int(head.split(b" ", 2)[1])] += 1
    finally:
        writer.close()


async def main(port: int, seconds: float, connections: int, paths: list[str]) -> None:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    until = started + seconds
    step = max(1, len(paths) // connections)
    await asyncio.gather(
        *(
            connection(port, paths, n * step % len(paths), until, latencies, statuses)
            for n in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "seconds": round(elapsed, 2),
                "rps": round(len(latencies) / elapsed, 1),
                "p50_ms": percentile(0.50),
                "p99_ms": percentile(0.99),
                "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
            }
        )
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    lines = Path(sys.argv[4]).read_text().splitlines()
    asyncio.run(
        main(
            int(sys.argv[1]),
            float(sys.argv[2]),
            int(sys.argv[3]),
            [line.strip() for line in lines if line.strip()],
        )
    )
