"""Is an open or a click a person, or a machine acting for one?

Machine events are kept and flagged (the report shows them apart), never dropped: an Apple
Mail user with Mail Privacy Protection did get the message, we just cannot tell whether they
read it. The reason is stored with the event.

- ``head``: a HEAD request. Browsers and mail clients GET; link checkers and scanners HEAD.
- ``apple-mpp``: Apple's privacy proxy fetches every image of a message when it is delivered,
  with the bare user agent ``Mozilla/5.0`` (Apple documents no other marker).
- ``google-proxy`` / ``yahoo-proxy``: the mail providers' image proxies (GoogleImageProxy,
  YahooMailProxy). Google's fetches when the message is opened, but from Google's servers,
  cached: a second open is invisible, so it cannot count as a person's unique open.
- ``scanner``: security gateways and link checkers that say who they are (Barracuda,
  Proofpoint, Mimecast, Microsoft's Safe Links preview, generic bots and HTTP libraries).
- ``no-agent``: no user agent at all; every mail client and browser sends one.
- ``too-fast``: a click within seconds of the message being handed over, before a person
  could have opened it: a gateway following every link on arrival.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["open", "click"]

#: A click this soon after delivery is a gateway's, not a reader's.
TOO_FAST_SECONDS = 10.0

#: Lower-case fragments of known machine user agents, and the reason stored for each.
KNOWN_AGENTS: tuple[tuple[str, str], ...] = (
    ("googleimageproxy", "google-proxy"),
    ("yahoomailproxy", "yahoo-proxy"),
    ("barracuda", "scanner"),
    ("proofpoint", "scanner"),
    ("mimecast", "scanner"),
    ("ms-office", "scanner"),
    ("microsoft office existence discovery", "scanner"),
    ("safelinks", "scanner"),
    ("trendmicro", "scanner"),
    ("symantec", "scanner"),
    ("forcepoint", "scanner"),
    ("python-requests", "scanner"),
    ("python-urllib", "scanner"),
    ("aiohttp", "scanner"),
    ("go-http-client", "scanner"),
    ("curl/", "scanner"),
    ("wget/", "scanner"),
    ("okhttp", "scanner"),
    ("java/", "scanner"),
    ("headlesschrome", "scanner"),
    ("bot", "scanner"),
    ("spider", "scanner"),
    ("crawler", "scanner"),
    ("preview", "scanner"),
    ("scanner", "scanner"),
)


def machine_reason(
    kind: Kind, method: str, user_agent: str, seconds_since_sent: float | None = None
) -> str:
    """Why this request is a machine's, or "" for a person."""
    if method.upper() == "HEAD":
        return "head"
    agent = user_agent.strip()
    if not agent:
        return "no-agent"
    if agent == "Mozilla/5.0":
        return "apple-mpp"
    lowered = agent.lower()
    for fragment, reason in KNOWN_AGENTS:
        if fragment in lowered:
            return reason
    if kind == "click" and seconds_since_sent is not None and seconds_since_sent < TOO_FAST_SECONDS:
        return "too-fast"
    return ""
