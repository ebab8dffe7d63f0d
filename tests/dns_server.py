"""A real authoritative DNS server for the tests: dnslib's server on 127.0.0.1 (UDP and TCP,
a free port), serving TXT records from a dict the test changes while it runs, with the
resolver setting pointed at it. It can also answer garbage or nothing at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from tests.settings_env import settings_env

Mode = Literal["answer", "malformed", "silent"]


def _free_port() -> int:
    # The same number must be free for UDP and TCP: try until one is.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class Zone(BaseResolver):
    """TXT records by name (lower case, no trailing dot); a name not here is NXDOMAIN."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.mode: Mode = "answer"
        self.queries: list[str] = []

    def publish(self, name: str, value: str) -> None:
        self.txt.setdefault(name.lower().rstrip("."), []).append(value)

    def unpublish(self, name: str) -> None:
        self.txt.pop(name.lower().rstrip("."), None)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).lower().rstrip(".")
        self.queries.append(name)
        reply = request.reply()
        if name not in self.txt:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.TXT:
            for value in self.txt[name]:
                # A DKIM key is longer than one 255-byte string: split it as DNS does.
                data = value.encode()
                chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply


class _Handler(DNSHandler):
    """Answers as the zone's mode says: properly, with bytes that are no DNS message, or
    not at all (a resolver that times out)."""

    def get_reply(self, data: bytes) -> bytes:
        zone: Zone = self.server.resolver
        if zone.mode == "silent":
            return b""
        if zone.mode == "malformed":
            return data[:2] + b"\x81\x80\x00\x01\x00\x05garbage"
        return bytes(super().get_reply(data))

    def send_data(self, data: bytes) -> Any:
        if not data:
            return None  # say nothing: the client waits until its timeout
        return super().send_data(data)


@contextmanager
def dns_server(timeout_seconds: float = 1.0) -> Iterator[Zone]:
    """Serve a :class:`Zone` and point ``LOYALMAIL_DNS_RESOLVER`` at it while in use."""
    zone = Zone()
    port = _free_port()
    servers = [
        DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp, handler=_Handler)
        for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    try:
        with settings_env(
            {
                "LOYALMAIL_DNS_RESOLVER": f"127.0.0.1:{port}",
                "LOYALMAIL_DNS_TIMEOUT_SECONDS": str(timeout_seconds),
            }
        ):
            yield zone
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


def lookup_for(zone: Zone) -> Any:
    """A dkimpy ``dnsfunc`` that asks the test server over the wire (dnspython), the way
    ``dkim.verify`` asks real DNS."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    host, _colon, port = _resolver_address().partition(":")
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 2.0

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except dns.exception.DNSException:
            return b""
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    return dnsfunc


def _resolver_address() -> str:
    from loyalmail.settings import get_settings

    return get_settings().dns_resolver
