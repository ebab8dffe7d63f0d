"""The hostile-input corpus: one list of payloads that test_hostile_*.py (inputs: pages;
mail: SMTP; api: parameters and bodies; quota) drive through every entry point (JSON API
bodies, form posts, CSV imports, query parameters, the messages that reach an SMTP server).

Where a case is already proven fully by an existing test, the corpus does not repeat it;
the table below says where it is proven (case → test).

Case → where it is proven (tests/ omitted):

- CR/LF, NUL, U+2028, RFC 2047 encoded newline in a placeholder value → one subject line
  → templates/test_rendering.py::test_no_value_can_break_the_subject_line
- CR/LF, NUL in the subject / sender name of a built MIME message
  → campaigns/test_mime.py::test_no_value_ever_becomes_a_header_or_the_body (subject and sender
    name)
- control characters in the campaign subject refused with a 422 naming the field
  → campaigns/test_api.py (``{"subject": "Hi\\x00there"}``)
- ``javascript:`` / ``data:`` links in blocks refused
  → campaigns/test_api.py, templates/test_rendering.py
- Jinja ``{{ 7*7 }}``, ``{% for %}``, ``''.__class__`` in placeholder values and merchant text
  rendered literally
  → templates/test_rendering.py::test_template_injection_written_by_the_merchant_comes_out_liter
    ally and ::test_placeholder_values_escaped_in_html_literal_in_text
- SVG with ``<script>`` refused by the media library
  → templates/test_media.py
- SQL fragments in segment filter values and custom-field keys
  → segments/test_api.py::test_sql_in_values_is_matched_literally
- SQL fragment in the customer search ``q``
  → customers/test_customers.py::test_search_is_case_insensitive_and_takes_wildcards_literally
- deep / oversized JSON bodies (413 with a JSON body, 422 too deep)
  → segments/test_api.py::test_huge_and_deep_bodies_are_refused_cleanly
- formula cells on the customer CSV / XLSX export
  → customers/test_exports.py::test_csv_export_has_every_column_and_neutralises_formulas,
    ::test_xlsx_export_keeps_formulas_as_text
- formula cells on the report's people CSV
  → tracking/test_people.py (``=HYPERLINK("x")`` → ``'=HYPERLINK``)
- formula cells in an import file get a report line; XLSX formulas refused
  → customers/test_imports.py::test_malformed_rows_and_formula_cells_get_report_lines,
    ::test_xlsx_import_reads_dates_numbers_and_refuses_formulas
- duplicates by case inside one import file; by case against a stored customer
  → customers/test_imports.py ("duplicate of row 3"),
    customers/test_customers.py::test_duplicate_address_differing_only_in_case_is_a_conflict
- script in the caught mail of the demo outbox (sandboxed iframe)
  → loyalmail/test_pages.py::test_outbox_shows_caught_mail_sandboxed
- forged, unsigned and stale bounce webhooks refused, nothing changed
  → campaigns/test_bounces.py::test_unsigned_forged_and_stale_requests_are_refused_and_change_no
    thing
- the same webhook event twice at once recorded once
  → campaigns/test_bounces.py::test_the_same_event_twice_at_once_is_recorded_once
- forged DSN with a guessed Message-ID / forged VERP address
  → campaigns/test_bounces.py::test_a_forged_dsn_with_a_guessed_message_id_suppresses_nobody,
    ::test_an_altered_or_foreign_return_path_names_nobody
- forged opt-in / tracking tokens
  → customers/test_optin.py, tracking/test_redirects.py
- the 11th test send refused with the renewal date, quota untouched
  → campaigns/test_test_sends.py::test_refusals_change_nothing,
    quota/test_ledger.py::test_the_eleventh_test_send_is_refused_with_the_renewal_date
- two campaigns at once never exceed the quota
  → quota/test_race.py::test_concurrent_reservations_never_overspend
- an oversized sign-up field
  → customers/test_signup.py ("This is too long.")
- workbook bombs (one cell / one shared string of 1,000 MiB, 32 million blank rows), built
  at test time by :func:`write_workbook_bomb`: refused with their limit, the parsing process
  staying under 300 MB → customers/test_workbook_bombs.py
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

#: A marker that is unique to the corpus, so a page showing it can be found by a substring.
MARK = "lmx"

#: Stored XSS: each must come back as text (escaped), never as markup.
XSS = (
    f"<script>alert('{MARK}1')</script>",
    f'"><img src=x onerror=alert("{MARK}2")>',
    f"'><svg/onload=alert({MARK}3)>",
    f"</textarea></title><iframe src=javascript:alert({MARK}4)>",
)

#: The raw markup fragments that must never appear on a page that shows an XSS payload.
XSS_MARKUP = (
    f"<script>alert('{MARK}1')",
    "<img src=x onerror=",
    "<svg/onload=",
    "<iframe src=javascript:",
)

#: Header injection: line breaks, NUL and RFC 2047 encoded line breaks (CVE-2024-6923).
HEADER_BREAKERS = (
    "Ann\r\nBcc: victim@evil.example",
    "Ann\nBcc: victim@evil.example",
    "Ann\rBcc: victim@evil.example",
    "Ann\x00Bcc: victim@evil.example",
    "=?utf-8?q?Ann=0D=0ABcc:_victim@evil.example?=",
    "=?utf-8?b?QW5uDQpCY2M6IHZpY3RpbUBldmlsLmV4YW1wbGU=?=",
    "Ann\u2028Bcc: victim@evil.example",
)

#: What an injected header would carry; it must appear in no received header.
INJECTED_ADDRESS = "victim@evil.example"

#: Display names that try to pass as someone else, or to smuggle a second address.
SPOOFED_NAMES = (
    '"Bank Support <ceo@bank.example>" <x@y.example>',
    "Bank Support <ceo@bank.example>",
    "ceo@bank.example, other@evil.example",
    'Shop"; attacker@evil.example; "',
)

#: Template injection: printed literally, never evaluated (49 must not appear).
TEMPLATE = (
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "${7*7}",
    "#{7*7}",
)

#: SQL fragments for filters, sort keys and search.
SQL = (
    "'; DROP TABLE customer; --",
    "x' OR '1'='1",
    "1; SELECT pg_sleep(5)",
    "email DESC; DROP TABLE customer",
    "(SELECT 1)",
    "%",
    "_",
)

#: Spreadsheet formula cells; an export shows them as text ("'=…").
FORMULAS = (
    '=HYPERLINK("http://evil.example","click")',
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
)

#: Addresses that are valid but unusual.
IDN_ADDRESSES = (
    "user@bücher.example",
    "jörg@bücher.example",
    "用户@例子.example",
)

#: A field far past every limit.
OVERSIZED = "x" * 100_000

#: Invalid UTF-8: lone continuation bytes, an overlong encoding, a surrogate.
INVALID_UTF8 = (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"caf\xe9")

#: NUL and other control characters a text column should never keep.
CONTROL = ("a\x00b", "a\x1bb", "a\x7fb")


# --- Workbook bombs: small on disk, huge unpacked ----------------------------------------------

WorkbookBomb = Literal["cell", "shared_string", "blank_rows"]
WORKBOOK_BOMBS: tuple[WorkbookBomb, ...] = ("cell", "shared_string", "blank_rows")
MIB = 1024 * 1024

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_WORKBOOK_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook {_NS} xmlns:r="{_REL}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
}
_HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>'


def _letters(mib: int) -> Iterator[bytes]:
    chunk = b"A" * MIB
    for _ in range(mib):
        yield chunk


def _blank_rows(count: int) -> Iterator[bytes]:
    # Without the r="N" attribute (a row then follows the one before): numbered, 32 million
    # rows pack to 79 MB; like this to under 1 MB, and every reader still counts each row.
    step = 1_000_000
    for start in range(0, count, step):
        yield b"<row/>" * min(step, count - start)


def write_workbook_bomb(
    path: Path, kind: WorkbookBomb, *, mib: int = 1000, rows: int = 32_000_000
) -> Path:
    """An .xlsx that openpyxl opens, streamed into the zip so that neither this process nor
    the disk holds it unpacked: one inline cell of ``mib`` MiB of 'A', one shared string of
    that size, or a header and ``rows`` blank rows (``<row/>``). The fastest compression
    level builds 1,000 MiB in seconds (229:1, a 4.4 MB file; level 9 packs 1,000:1 but takes
    four times as long): the checks refuse both."""
    if kind == "cell":
        sheet_body: Iterator[bytes] = iter(
            [
                b'<row r="2"><c r="A2" t="inlineStr"><is><t>',
                *_letters(mib),
                b"</t></is></c></row>",
            ]
        )
        strings_body: Iterator[bytes] = iter([])
    elif kind == "shared_string":
        sheet_body = iter([b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>'])
        strings_body = iter([b"<si><t>", *_letters(mib), b"</t></si>"])
    else:
        sheet_body = _blank_rows(rows)
        strings_body = iter([])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, text in _WORKBOOK_PARTS.items():
            zf.writestr(name, text)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<?xml version="1.0"?><worksheet {_NS}><sheetData>'.encode())
            sheet.write(_HEADER_ROW.encode())
            for chunk in sheet_body:
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
            strings.write(f'<?xml version="1.0"?><sst {_NS}>'.encode())
            for chunk in strings_body:
                strings.write(chunk)
            strings.write(b"</sst>")
    return path
