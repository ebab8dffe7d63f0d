"""Bounce and complaint reports that arrive by mail, read with :mod:`email` (policy default).

* RFC 3464 delivery status notifications: ``multipart/report; report-type=delivery-status``
  (and RFC 6533's ``global-delivery-status``). One entry per recipient block: its addresses
  (Original-Recipient, then Final-Recipient), Action, Status and Diagnostic-Code.
* RFC 5965 abuse reports (ARF, the feedback loops of mailbox providers):
  ``multipart/report; report-type=feedback-report``. One complaint for the Original-Rcpt-To
  (or the original message's To when the report has none; many providers redact both).

In both, the attached original (``message/rfc822``, ``text/rfc822-headers`` …) gives its
Message-ID and, when the receiving side kept it, its Return-Path. Where a report was delivered
(the caller's RCPT TO, or the Delivered-To / X-Original-To / Envelope-To the MTA added), and
an ARF's Original-Mail-From, are candidate VERP addresses too;
:mod:`campaigns.bounces.verp` decides which candidate is one.

Status to kind, the same line as the SMTP answers of :mod:`campaigns.sending.deliver`:
5.x.x is a hard bounce, except 5.7.x (security or policy: refused for the sender or the
content, not for the address) and 5.2.2 (the mailbox is full, the address exists); 4.x.x,
a delayed action and a failure without any status are soft. Nothing here raises on what a
stranger can send: a message that is no report gives a :class:`Report` without recipients
and with the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import Literal

Kind = Literal["hard", "soft", "policy", "complaint"]
ReportType = Literal["delivery-status", "feedback-report", ""]

#: Why a report gave nothing to act on (answered to the caller, printed by the CLI).
NOT_A_REPORT = "not_a_report"
UNKNOWN_REPORT_TYPE = "unknown_report_type"
NO_RECIPIENTS = "no_recipients"
UNREADABLE = "unreadable"

#: Feedback types that are a recipient's complaint; ``not-spam`` and ``auth-failure`` are not.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_NOT_FAILURES = frozenset({"delivered", "relayed", "expanded"})
#: Headers an MTA adds with the envelope recipient it delivered the report to.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")
_ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "message/global", "message/global-headers", "text/rfc822-headers"}
)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"^(?:smtp\s*;\s*)?([245])\d\d(?:[\s-]|$)", re.IGNORECASE)
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_SPACES = re.compile(r"\s+")
_UTF8 = policy.default.clone(utf8=True)
#: Caps on what one report may make us look at.
MAX_RECIPIENTS = 100
MAX_CANDIDATES = 10


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """What a report says about one recipient."""

    #: None: nothing went wrong (delivered, relayed, expanded) or a feedback type that is no
    #: complaint; the reason is then in ``action``.
    kind: Kind | None
    #: As reported, without the address type: Original-Recipient first, then Final-Recipient
    #: (an ARF: its Original-Rcpt-To). Empty when the report redacts it.
    addresses: tuple[str, ...]
    #: failed | delayed | delivered | relayed | expanded, or the ARF's feedback type.
    action: str
    #: The enhanced status code ("5.1.1"), or "" (always "" for a complaint).
    status: str
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Report:
    report_type: ReportType
    recipients: tuple[RecipientReport, ...]
    #: The original message's Message-ID, as written ("" when the report does not carry it).
    message_id: str
    #: Addresses that may be our VERP return path; only a valid signature makes one so.
    return_paths: tuple[str, ...]
    #: What tells this report from another: its own Message-ID, or a digest of its bytes.
    reference: str
    #: Why there are no recipients ("" when there are).
    reason: str = ""


def parse(raw: bytes, envelope_to: str = "") -> Report:
    """The report in ``raw``; ``envelope_to`` is the address it was delivered to, if known."""
    reference = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        return _parse(raw, envelope_to, reference)
    except Exception as exc:  # a stranger's bytes: whatever trips the parser is their problem
        return Report("", (), "", (), reference, f"{UNREADABLE}: {type(exc).__name__}")


def _parse(raw: bytes, envelope_to: str, reference: str) -> Report:
    message = message_from_bytes(raw, policy=policy.default)
    own_id = _text(message.get("Message-ID", ""))
    if own_id:
        reference = own_id[:200]
    candidates = [envelope_to] if envelope_to else []
    for name in _ENVELOPE_HEADERS:
        candidates += _addresses(message.get_all(name))
    report = next((p for p in message.walk() if p.get_content_type() == "multipart/report"), None)
    if report is None:
        return Report("", (), "", (), reference, NOT_A_REPORT)
    report_type = str(report.get_param("report-type", "") or "").lower()
    original = _original_headers(report)
    message_id = _text(original.get("Message-ID", "")) if original is not None else ""
    if original is not None:
        candidates = _addresses(original.get_all("Return-Path")) + candidates
    read_as: ReportType
    if report_type in ("delivery-status", "global-delivery-status"):
        recipients = _delivery_status(report)
        read_as = "delivery-status"
    elif report_type == "feedback-report":
        fields = _feedback_fields(report)
        recipients = _feedback(fields, original) if fields is not None else ()
        if fields is not None:  # the original's envelope sender: our return path
            candidates = _addresses(fields.get_all("Original-Mail-From")) + candidates
        read_as = "feedback-report"
    else:
        paths = tuple(dict.fromkeys(candidates))[:MAX_CANDIDATES]
        return Report("", (), message_id, paths, reference, UNKNOWN_REPORT_TYPE)
    paths = tuple(dict.fromkeys(candidates))[:MAX_CANDIDATES]
    reason = "" if recipients else NO_RECIPIENTS
    return Report(read_as, recipients, message_id, paths, reference, reason)


# --- delivery status notifications -----------------------------------------------------------


def _delivery_status(report: Message) -> tuple[RecipientReport, ...]:
    part = _part(report, "message/delivery-status", "message/global-delivery-status")
    if part is None:
        return ()
    # The first block holds the per-message fields; each further one is a recipient.
    recipients = []
    for block in _blocks(part)[1 : MAX_RECIPIENTS + 1]:
        named = (
            _address(_text(block.get(n, ""))) for n in ("Original-Recipient", "Final-Recipient")
        )
        addresses = tuple(dict.fromkeys(address for address in named if address))
        if not addresses:
            continue
        action = _text(block.get("Action", "")).lower()
        diagnostic = _text(block.get("Diagnostic-Code", ""))
        status = _specific(_status(_text(block.get("Status", ""))), _status_in(diagnostic))
        recipients.append(
            RecipientReport(classify(action, status), addresses, action, status, diagnostic)
        )
    return tuple(recipients)


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]  # split by the parser
    # message/global-delivery-status (RFC 6533) is parsed as one message whose body holds the
    # other blocks: split them here.
    if isinstance(payload, list):
        text = "".join(m.as_string(policy=_UTF8) for m in payload if isinstance(m, Message))
    else:
        text = _decoded(part)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [HeaderParser(policy=policy.default).parsestr(chunk) for chunk in chunks if chunk]


def classify(action: str, status: str) -> Kind | None:
    """The kind of a recipient's outcome; None when it is none of our concern."""
    if action in _NOT_FAILURES:
        return None
    if action == "delayed" or not status or status.startswith("4."):
        return "soft"
    if status.startswith("2."):
        return None
    _class, subject, detail = status.split(".")
    if subject == "7":
        return "policy"
    if (subject, detail) == ("2", "2"):
        return "soft"
    return "hard"


def _status(value: str) -> str:
    found = _STATUS.match(value.strip())
    return ".".join(found.groups()) if found else ""


def _specific(status: str, answered: str) -> str:
    """The Status field, unless it is only a class ("5.0.0", Exim's habit) and the server's
    answer says more in the same class ("5.7.1": a policy refusal, not an unknown user)."""
    if not status:
        return answered
    if status.endswith(".0.0") and answered[:2] == status[:2] and not answered.endswith(".0.0"):
        return answered
    return status


def _status_in(diagnostic: str) -> str:
    """A status from the server's answer when the Status field is missing or garbled."""
    found = _STATUS.search(diagnostic)
    if found:
        return ".".join(found.groups())
    code = _SMTP_CODE.match(diagnostic)
    return f"{code.group(1)}.0.0" if code else ""


# --- abuse reports ---------------------------------------------------------------------------


def _feedback_fields(report: Message) -> Message | None:
    part = _part(report, "message/feedback-report")
    if part is None:
        return None
    # Parsed like message/rfc822: the fields are the headers of the one message inside.
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    return inner if isinstance(inner, Message) else part


def _feedback(fields: Message, original: Message | None) -> tuple[RecipientReport, ...]:
    feedback_type = _text(fields.get("Feedback-Type", "")).lower()
    reported = [_address(_text(v)) for v in fields.get_all("Original-Rcpt-To") or []]
    if not any(reported) and original is not None:
        reported = _addresses(original.get_all("To"))[:1]
    addresses = tuple(a for a in dict.fromkeys(reported) if a)[:MAX_RECIPIENTS]
    kind: Kind | None = "complaint" if feedback_type in COMPLAINT_TYPES else None
    detail = _text(fields.get("User-Agent", ""))
    # A redacted report names nobody: one entry all the same, a VERP path may still say who.
    return tuple(
        RecipientReport(kind, (address,) if address else (), feedback_type, "", detail)
        for address in (addresses or ("",))
    )


# --- shared ----------------------------------------------------------------------------------


def _original_headers(report: Message) -> Message | None:
    """The headers of the message the report is about, when it carries them."""
    part = _part(report, *_ORIGINAL_TYPES)
    if part is not None:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        if isinstance(payload, str):  # text/rfc822-headers
            return HeaderParser(policy=policy.default).parsestr(_decoded(part))
    return None


def _part(report: Message, *content_types: str) -> Message | None:
    """The report's first part of one of these types."""
    parts = report.get_payload()
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, Message) and part.get_content_type() in content_types:
            return part
    return None


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(part.get_payload())


def _addresses(values: Sequence[object] | None) -> list[str]:
    """The bare addresses in address headers (``Anna <anna@example.com>``, ``<…>``)."""
    found = getaddresses([_text(value) for value in values or []])
    return [address for _name, address in found if "@" in address and len(address) <= 320]


def _text(value: object) -> str:
    """A header's value on one line (folding and stray control characters made spaces)."""
    return _SPACES.sub(" ", str(value)).strip()


def _address(value: str) -> str:
    """``rfc822; anna@example.com`` → ``anna@example.com``; "" for other address types."""
    kind, semicolon, address = value.partition(";")
    if not semicolon:
        kind, address = "rfc822", value
    kind = kind.strip().lower()
    if kind == "utf-8":
        address = _UTF8_ESCAPE.sub(lambda m: _char(m.group(1)), address)
    elif kind != "rfc822":
        return ""
    address = address.strip().removeprefix("<").removesuffix(">").strip()
    return address if "@" in address and len(address) <= 320 else ""


def _char(code: str) -> str:
    number = int(code, 16)
    return chr(number) if number <= 0x10FFFF else ""
