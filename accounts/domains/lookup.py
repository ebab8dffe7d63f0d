"""TXT look-ups for the domain checks, through the installation's resolver.

``LOYALMAIL_DNS_RESOLVER`` names the nameservers ("10.0.0.2" or "127.0.0.1:5353",
comma-separated); empty uses the system's (/etc/resolv.conf). Every answer is one of three:
the TXT strings found, none (the name or the record does not exist: a definite "missing"),
or an error (timeout, unreachable resolver, malformed answer): then nothing is known, and a
check that meets an error never takes a domain's verification away.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

from loyalmail.settings import get_settings


@dataclass(frozen=True, slots=True)
class TxtAnswer:
    #: Each record's strings joined (a record over 255 bytes arrives as several strings).
    records: tuple[str, ...] = ()
    #: Why nothing is known ("" when the answer is definite).
    error: str = ""


def _resolver() -> dns.asyncresolver.Resolver:
    settings = get_settings()
    configured = [item.strip() for item in settings.dns_resolver.split(",") if item.strip()]
    resolver = dns.asyncresolver.Resolver(configure=not configured)
    if configured:
        hosts: list[str] = []
        for item in configured:
            host, port = _host_port(item)
            hosts.append(host)
            resolver.port = port  # dnspython has one port for all its nameservers
        resolver.nameservers = hosts
    resolver.lifetime = settings.dns_timeout_seconds
    resolver.timeout = settings.dns_timeout_seconds
    return resolver


def _host_port(item: str) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:53
        host, _bracket, rest = item[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if item.count(":") == 1:
        host, _colon, port = item.partition(":")
        return host, int(port)
    return item, 53


async def txt(name: str) -> TxtAnswer:
    """The TXT records at ``name`` (an ASCII domain name)."""
    try:
        answer = await _resolver().resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return TxtAnswer()
    except dns.resolver.LifetimeTimeout:
        return TxtAnswer(error="timeout")
    except dns.resolver.NoNameservers:
        return TxtAnswer(error="no nameserver answered")
    except dns.exception.DNSException as exc:  # malformed answers, bad names
        return TxtAnswer(error=type(exc).__name__)
    except (OSError, ValueError) as exc:  # an unreachable or malformed resolver address
        return TxtAnswer(error=str(exc) or type(exc).__name__)
    records = []
    for rdata in answer:
        strings = getattr(rdata, "strings", ())
        records.append(b"".join(strings).decode("utf-8", errors="replace"))
    return TxtAnswer(records=tuple(records))
