"""How ``loyalmail serve`` runs the web app: under granian (a Rust HTTP server) by default,
or uvicorn.

granian parses HTTP in Rust: a bare endpoint answers about 24,000 requests per second here
against about 13,000 under uvicorn (benchmarks/tracking.py, the same run), which is what
lets the open pixel and the click redirect reach their target of 8,000 tracked requests a
second (issue 7). uvicorn stays for the case that needs one process: without Redis the
background jobs run in the web process, and granian serves from worker processes of its own.

The app that is served tunes Python's garbage collector once it has started
(:func:`tune_garbage_collector`): under load the collector's full passes over the app's
long-lived objects (routes, templates, compiled messages) stalled every request of the
moment, which set the pixel's p99 latency at 76 ms; with them frozen out it is 11 ms.
"""

from __future__ import annotations

import gc

from litestar import Litestar
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from loyalmail.app import create_app
from loyalmail.settings import get_settings

#: Objects allocated between two young collections (CPython's default is 700), and how many
#: collections of one generation make one of the next (10 and 10). A request allocates a
#: few hundred objects that die with it; collecting every 700 allocations did work that
#: reference counting does anyway. Measured: 8,513 → 10,258 pixels/s with the heap frozen.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_garbage_collector() -> None:
    """Move everything the app holds once started into the permanent generation (the
    collector never walks it again) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _tune_when_started() -> None:
    tune_garbage_collector()


def create_served_app() -> ProxyHeadersMiddleware:
    """The app as ``loyalmail serve`` runs it (a factory: each granian worker makes its
    own): the tuned collector, and the client address from a local reverse proxy."""
    app = create_app()
    app.on_startup.append(_tune_when_started)
    return behind_proxy(app)


def behind_proxy(app: Litestar) -> ProxyHeadersMiddleware:
    """The client address and scheme as the trusted proxies (settings.trusted_proxies, by
    default the one on this machine) name them in X-Forwarded-For / X-Forwarded-Proto; any
    other peer's headers are ignored. The per-address limits (the /r/ paths, logins) count
    that address; a cookie set over that scheme's HTTPS is Secure."""
    # The two libraries spell the same ASGI types differently.
    return ProxyHeadersMiddleware(app, trusted_hosts=get_settings().trusted_proxies)  # type: ignore[arg-type]


#: The factory both servers call (benchmarks/tracking.py serves its bare reference the same way).
SERVED_APP = "loyalmail.serving:create_served_app"


def run_granian(
    host: str, port: int, workers: int, log_level: str, target: str = SERVED_APP
) -> None:
    """Serve the factory ``target`` under granian until stopped (SIGINT / SIGTERM)."""
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    Server(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        websockets=False,
        factory=True,
        log_level=LogLevels(log_level.lower()),
        log_access=False,
    ).serve()


def run_uvicorn(
    host: str, port: int, workers: int, log_level: str, target: str = SERVED_APP
) -> None:
    """Serve the factory ``target`` under uvicorn (uvloop, httptools) until stopped."""
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        proxy_headers=False,  # the app's own ProxyHeadersMiddleware does it, for both servers
        loop="uvloop",
        http="httptools",
    )
