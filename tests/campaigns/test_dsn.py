"""Reading bounce and complaint reports (campaigns.bounces.dsn): realistic samples of the
MTAs and providers that send them, and whatever else arrives at a bounce address."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.bounces import dsn

SAMPLES = Path(__file__).with_name("bounce_samples")
ANNA = "anna@example.com"
OUR_ID = "<lm.7.8.9@shop.example>"
RETURN_PATH = "bounces+7.8.9.abcdefghijkl@lists.example"


def sample(
    name: str,
    *,
    recipient: str = ANNA,
    message_id: str = OUR_ID,
    return_path: str = RETURN_PATH,
) -> bytes:
    """A sample report with the recipient, the original's Message-ID and the return path."""
    text = string.Template((SAMPLES / name).read_text()).safe_substitute(
        RECIPIENT=recipient, MESSAGE_ID=message_id, RETURN_PATH=return_path
    )
    return text.encode()


def test_a_postfix_bounce_is_hard_with_its_status_and_original() -> None:
    report = dsn.parse(sample("postfix_hard.eml"))
    assert report.report_type == "delivery-status" and report.reason == ""
    (entry,) = report.recipients
    assert (entry.kind, entry.addresses, entry.action, entry.status) == (
        "hard",
        (ANNA,),
        "failed",
        "5.1.1",
    )
    assert entry.diagnostic.startswith("smtp; 550 5.1.1 <anna@example.com>: Recipient address")
    assert "\n" not in entry.diagnostic  # the folded field is one line
    assert report.message_id == OUR_ID
    assert report.return_paths[0] == RETURN_PATH  # from X-Original-To / Delivered-To / To
    assert report.reference == "<20261125091403.4Zk1Q2x3Y4z5@relay.shop.example>"


def test_a_delay_warning_is_soft() -> None:
    (entry,) = dsn.parse(sample("postfix_delayed.eml")).recipients
    assert (entry.kind, entry.action, entry.status) == ("soft", "delayed", "4.4.1")


def test_exim_names_two_recipients_and_the_answer_refines_its_generic_status() -> None:
    report = dsn.parse(sample("exim_two_recipients.eml"))
    first, second = report.recipients
    # Exim writes Status: 5.0.0 for everything; the servers' answers say what it was.
    assert (first.kind, first.addresses, first.status) == ("hard", (ANNA,), "5.1.1")
    assert (second.kind, second.addresses, second.status) == (
        "policy",
        ("partner@example.net",),
        "5.7.1",
    )
    assert report.message_id == OUR_ID  # from the attached message/rfc822
    assert report.return_paths[0] == RETURN_PATH  # the original's Return-path, then Envelope-to


def test_a_gmail_bounce() -> None:
    report = dsn.parse(sample("gmail_hard.eml"))
    (entry,) = report.recipients
    assert (entry.kind, entry.addresses, entry.status) == ("hard", (ANNA,), "5.1.1")
    assert "The email account that you tried to reach does not exist" in entry.diagnostic
    assert report.message_id == OUR_ID


def test_a_feedback_loop_report_is_a_complaint() -> None:
    report = dsn.parse(sample("yahoo_arf.eml"))
    assert report.report_type == "feedback-report"
    (entry,) = report.recipients
    assert (entry.kind, entry.addresses, entry.action) == ("complaint", (ANNA,), "abuse")
    assert report.message_id == OUR_ID
    # The original's Return-Path and the report's Original-Mail-From: our VERP address.
    assert report.return_paths[0] == RETURN_PATH
    assert "fbl@lists.example" in report.return_paths  # where it was delivered: no VERP


def test_a_redacted_complaint_names_nobody_but_keeps_the_return_path() -> None:
    raw = sample("yahoo_arf.eml").replace(b"Original-Rcpt-To: anna@example.com\n", b"")
    raw = raw.replace(b"To: anna@example.com\n", b"")
    report = dsn.parse(raw)
    (entry,) = report.recipients
    assert (entry.kind, entry.addresses) == ("complaint", ())
    assert RETURN_PATH in report.return_paths


def test_not_spam_feedback_is_no_complaint() -> None:
    raw = sample("yahoo_arf.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    (entry,) = dsn.parse(raw).recipients
    assert (entry.kind, entry.action) == (None, "not-spam")


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("failed", "5.1.1", "hard"),
        ("failed", "5.1.10", "hard"),
        ("failed", "5.4.4", "hard"),
        ("failed", "5.7.1", "policy"),
        ("failed", "5.7.26", "policy"),  # DMARC: the sender's setup, not the address
        ("failed", "5.2.2", "soft"),  # mailbox full: the address exists
        ("failed", "4.4.7", "soft"),  # given up after retries on a temporary failure
        ("failed", "", "soft"),  # no status at all: undetermined
        ("delayed", "4.4.1", "soft"),
        ("delayed", "5.1.1", "soft"),
        ("delivered", "2.0.0", None),
        ("relayed", "2.0.0", None),
        ("expanded", "2.0.0", None),
    ],
)
def test_status_to_kind(action: str, status: str, kind: str | None) -> None:
    assert dsn.classify(action, status) == kind


def test_a_missing_status_is_read_from_the_answer() -> None:
    raw = sample("postfix_hard.eml").replace(b"Status: 5.1.1\n", b"")
    (entry,) = dsn.parse(raw).recipients
    assert (entry.kind, entry.status) == ("hard", "5.1.1")
    no_enhanced = raw.replace(b"550 5.1.1 <", b"550 <")
    (entry,) = dsn.parse(no_enhanced).recipients
    assert (entry.kind, entry.status) == ("hard", "5.0.0")


def test_utf8_addresses_and_the_global_delivery_status() -> None:
    raw = (
        b"Content-Type: multipart/report; report-type=global-delivery-status; boundary=B\n"
        b"MIME-Version: 1.0\n\n--B\nContent-Type: text/plain\n\nfailed\n--B\n"
        b"Content-Type: message/global-delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
        b"Final-Recipient: utf-8; j\\x{00F6}rg@b\\x{00FC}cher.example\nAction: failed\n"
        b"Status: 5.1.1\n\n--B--\n"
    )
    report = dsn.parse(raw)
    (entry,) = report.recipients
    assert (entry.kind, entry.addresses) == ("hard", ("jörg@bücher.example",))
    assert report.message_id == ""  # no original attached: only a VERP path could tell


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", dsn.NOT_A_REPORT),
        (b"\x00\xff\xfe garbage \r\n\r\n\x80", dsn.NOT_A_REPORT),
        (
            b"Content-Type: multipart/report; report-type=disposition-notification; boundary=B"
            b"\n\n--B\nContent-Type: message/disposition-notification\n\nDisposition: displayed"
            b"\n--B--\n",
            dsn.UNKNOWN_REPORT_TYPE,
        ),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\n"
            b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n--B--\n",
            dsn.NO_RECIPIENTS,
        ),
    ],
)
def test_what_is_no_report_gives_nothing_and_says_why(raw: bytes, reason: str) -> None:
    report = dsn.parse(raw)
    assert report.recipients == () and report.reason == reason


def test_an_out_of_office_reply_is_no_report() -> None:
    report = dsn.parse(sample("out_of_office.eml"))
    assert (report.recipients, report.reason) == ((), dsn.NOT_A_REPORT)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_are_read_without_an_error(raw: bytes) -> None:
    report = dsn.parse(raw)
    assert report.reason or report.recipients


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.eml"))),
    st.integers(min_value=0, max_value=6000),
    st.binary(max_size=40),
)
def test_cut_or_spliced_samples_are_read_without_an_error(name: str, at: int, junk: bytes) -> None:
    raw = sample(name)
    report = dsn.parse(raw[:at] + junk + raw[at + len(junk) :])
    assert report.reason or report.recipients
