"""An .xlsx is checked here before openpyxl reads it: a workbook is a zip of XML files, and
both layers can be made to expand without bound.

Why openpyxl alone is not enough (issue 21, measured on the shared worker): a ~1 MB workbook
whose one cell or shared string unpacks to 1,000 MiB took the worker from 130 MB to 2,168 MB,
and 32 million blank rows in 4.4 MB ran a core for 13 minutes at 4.4 GB. In read-only mode
openpyxl still holds a whole ``<row>`` element, a whole cell value and every shared string in
memory, reads the other parts (styles, workbook, theme) whole, and fills gaps in the row
numbers with empty rows.

So two passes, both streamed and bounded:

1. :func:`check_archive` reads only the zip's central directory: how many entries, each
   entry's declared size, the total, and the compression ratio of every large entry. Cheap
   enough for the upload request, so a plain zip bomb is refused before it is queued.
2. :func:`check_workbook` then unpacks every entry through a size-capped stream (declared
   sizes can lie) and runs each XML part through expat with handlers that count, never keep:
   rows (by their number, so blank and skipped rows count), cells per row, characters per
   cell and per shared string, all shared strings, and the size of any single XML token
   (expat buffers a start tag or a comment whole). It stops at the first limit.

Only after both does openpyxl open the file, which then cannot meet anything larger than
these limits. The limits follow what Excel itself allows (1,048,576 rows, 16,384 columns,
32,767 characters a cell), so no workbook Excel can save is refused by them, except for its
size: the total follows ``LOYALMAIL_MAX_IMPORT_BYTES``.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.parsers import expat

from loyalmail.errors import ValidationFailed, _
from loyalmail.settings import get_settings

MB = 1_000_000
#: The namespace of SpreadsheetML's own elements, as expat reports it ("<uri> <name>").
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_ROW, _CELL, _SHARED_STRING = f"{_MAIN} row", f"{_MAIN} c", f"{_MAIN} si"
#: The parts openpyxl streams; every other XML part it reads whole, so those stay small.
_STREAMED_PART = re.compile(r"^xl/(worksheets/[^/]+\.xml|sharedStrings\.xml)$")
_XML_PART = re.compile(r"\.(xml|rels|vml)$", re.IGNORECASE)
_COLUMN = re.compile(r"^([A-Za-z]{1,7})")
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class WorkbookLimits:
    #: Every entry together, unpacked.
    max_total_bytes: int
    #: Any XML part openpyxl reads whole (everything but worksheets and shared strings).
    max_part_bytes: int = 16 * MB
    max_entries: int = 10_000
    #: Unpacked ÷ packed size, for entries larger than ``ratio_floor_bytes``: worksheets of
    #: real data compress about 5–20:1; 1,000 MiB of one letter compresses about 1,000:1.
    max_ratio: int = 100
    ratio_floor_bytes: int = 1 * MB
    #: Excel's own grid and cell limits.
    max_rows: int = 1_048_576
    max_cells_per_row: int = 16_384
    max_cell_chars: int = 32_767
    #: openpyxl holds a whole row element: 16,384 cells of 32,767 characters would be 512 MiB.
    max_row_chars: int = 1_000_000
    #: openpyxl keeps every shared string in a list: these bound that list's memory.
    max_shared_strings: int = 1_000_000
    max_shared_string_chars: int = 32_000_000
    #: Longest single XML token (a start tag with its attributes, a comment) expat may buffer,
    #: and longest text outside a cell (real parts have only line breaks between elements).
    max_token_bytes: int = 1 * MB

    @classmethod
    def for_upload_limit(cls, max_import_bytes: int) -> WorkbookLimits:
        """Real workbooks unpack to about 5–10 times their size; 4× the largest accepted
        upload, at least 64 MB, keeps the worker's unpacking bounded to a few hundred MB."""
        return cls(max_total_bytes=max(64 * MB, 4 * max_import_bytes))


def default_limits() -> WorkbookLimits:
    return WorkbookLimits.for_upload_limit(get_settings().max_import_bytes)


def _mb(size: int) -> str:
    return f"{size / MB:,.0f}"


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={"file": "xlsx"})


def _damaged(error: object) -> ValidationFailed:
    return _refuse(
        _("The workbook cannot be opened ({error}). Save it again as .xlsx or CSV.").format(
            error=error
        )
    )


def check_archive(path: Path, limits: WorkbookLimits) -> None:
    """The central directory's figures against the limits; nothing is unpacked."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _damaged(type(exc).__name__) from exc
    if len(entries) > limits.max_entries:
        raise _refuse(
            _(
                "The workbook has more than {limit} parts, more than any spreadsheet program"
                " writes. Save it again as .xlsx or as CSV."
            ).format(limit=f"{limits.max_entries:,}")
        )
    total = 0
    for entry in entries:
        total += entry.file_size
        if total > limits.max_total_bytes:
            raise _too_big(limits)
        _check_part_size(entry.filename, entry.file_size, limits)
        if entry.file_size > limits.ratio_floor_bytes and entry.file_size > limits.max_ratio * max(
            entry.compress_size, 1
        ):
            raise _refuse(
                _(
                    "The workbook part {name} unpacks to more than {ratio} times its packed size,"
                    " which no real spreadsheet does (it looks like a zip bomb). Save the sheet"
                    " again as .xlsx or as CSV."
                ).format(name=_shown_name(entry.filename), ratio=limits.max_ratio)
            )


def _shown_name(name: str) -> str:
    return repr(name[:80])


def _too_big(limits: WorkbookLimits) -> ValidationFailed:
    return _refuse(
        _(
            "The workbook unpacks to more than {limit} MB. Save it as CSV, or split it into"
            " smaller files."
        ).format(limit=_mb(limits.max_total_bytes))
    )


def _check_part_size(name: str, size: int, limits: WorkbookLimits) -> None:
    if size > limits.max_part_bytes and _XML_PART.search(name) and not _STREAMED_PART.match(name):
        raise _refuse(
            _(
                "The workbook part {name} is larger than {limit} MB (only worksheets may be that"
                " large). Save the sheet again as .xlsx or as CSV."
            ).format(name=_shown_name(name), limit=_mb(limits.max_part_bytes))
        )


def check_workbook(path: Path, limits: WorkbookLimits) -> None:
    """:func:`check_archive`, then every entry unpacked and every XML part scanned."""
    check_archive(path, limits)
    unpacked = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in archive.infolist():
                scanner = (
                    _XmlScanner(entry.filename, limits)
                    if _XML_PART.search(entry.filename)
                    else None
                )
                with archive.open(entry) as stream:
                    unpacked = _unpack(stream, entry, unpacked, limits, scanner)
                if scanner is not None:
                    scanner.finish()
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,  # a compression method zipfile lacks
        RuntimeError,  # an encrypted entry
    ) as exc:
        # A CRC error is what Python's zipfile reports when an entry unpacks to more or less
        # than its declared size.
        raise _damaged(type(exc).__name__) from exc


def _unpack(
    stream: IO[bytes],
    entry: zipfile.ZipInfo,
    unpacked: int,
    limits: WorkbookLimits,
    scanner: _XmlScanner | None,
) -> int:
    """Read one entry in chunks, counting the ACTUAL bytes against the limits."""
    size = 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        unpacked += len(chunk)
        if unpacked > limits.max_total_bytes:
            raise _too_big(limits)
        if size > entry.file_size:
            raise _damaged("size")
        _check_part_size(entry.filename, size, limits)
        if scanner is not None:
            scanner.feed(chunk)
    return unpacked


class _XmlScanner:
    """Counts what openpyxl would keep, one XML part at a time; keeps nothing itself."""

    def __init__(self, name: str, limits: WorkbookLimits) -> None:
        self._name = name
        self._limits = limits
        self._parser = expat.ParserCreate(namespace_separator=" ")
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._parser.StartDoctypeDeclHandler = self._doctype
        self._parser.EntityDeclHandler = self._doctype
        self._fed = 0
        self._last_event = 0
        self._row = 0
        self._cells = 0
        self._in_cell = False
        self._in_string = False
        self._chars = 0
        self._row_chars = 0
        self._run = 0
        self._strings = 0
        self._string_chars = 0

    def feed(self, chunk: bytes) -> None:
        self._fed += len(chunk)
        self._parse(chunk, final=False)
        if self._fed - self._last_event > self._limits.max_token_bytes:
            raise self._token_too_long()

    def _token_too_long(self) -> ValidationFailed:
        return _refuse(
            _(
                "The workbook part {name} holds a single XML element longer than {limit} MB,"
                " which no real spreadsheet does. Save the sheet again as .xlsx or as CSV."
            ).format(name=_shown_name(self._name), limit=_mb(self._limits.max_token_bytes))
        )

    def finish(self) -> None:
        self._parse(b"", final=True)

    def _parse(self, data: bytes, *, final: bool) -> None:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise _damaged(f"XML: {expat.ErrorString(exc.code)}") from exc

    def _event(self) -> None:
        self._last_event = self._parser.CurrentByteIndex
        self._run = 0

    def _doctype(self, *_args: object) -> None:
        raise _refuse(
            _(
                "The workbook contains a document type declaration, which spreadsheets never"
                " have. Save the sheet again as .xlsx or as CSV."
            )
        )

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self._event()
        if name == _ROW:
            number = attributes.get("r", "")
            self._row = int(number) if number.isascii() and number.isdigit() else self._row + 1
            self._cells = self._row_chars = 0
            if self._row > self._limits.max_rows:
                raise _refuse(
                    _(
                        "The workbook has more than {limit} rows (blank rows count). Save it as"
                        " CSV or remove the empty rows."
                    ).format(limit=f"{self._limits.max_rows:,}")
                )
        elif name == _CELL:
            self._cells += 1
            column = _column_number(attributes.get("r", ""))
            if max(self._cells, column) > self._limits.max_cells_per_row:
                raise _refuse(
                    _(
                        "Row {row} of the workbook has more than {limit} cells. Delete the unused"
                        " columns or save the sheet as CSV."
                    ).format(row=self._row, limit=f"{self._limits.max_cells_per_row:,}")
                )
            self._in_cell, self._chars = True, 0
        elif name == _SHARED_STRING:
            self._in_string, self._chars = True, 0
            self._strings += 1
            if self._strings > self._limits.max_shared_strings:
                raise self._too_many_texts()

    def _end(self, name: str) -> None:
        self._event()
        if name == _CELL:
            self._in_cell = False
        elif name == _SHARED_STRING:
            self._in_string = False

    def _text(self, data: str) -> None:
        # Not an event for the token check: a text arrives in many pieces, counted here.
        self._last_event = self._parser.CurrentByteIndex
        if not (self._in_cell or self._in_string):
            self._run += len(data)
            if self._run > self._limits.max_token_bytes:
                raise self._token_too_long()
            return
        self._chars += len(data)
        if self._chars > self._limits.max_cell_chars:
            where = _("row {n}").format(n=self._row) if self._in_cell else _("a shared text")
            raise _refuse(
                _(
                    "A cell ({where}) holds more than {limit} characters, more than Excel allows."
                    " Shorten it or save the sheet as CSV."
                ).format(where=where, limit=f"{self._limits.max_cell_chars:,}")
            )
        if self._in_cell:
            self._row_chars += len(data)
            if self._row_chars > self._limits.max_row_chars:
                raise _refuse(
                    _(
                        "Row {row} of the workbook holds more than {limit} characters. Shorten"
                        " its cells or save the sheet as CSV."
                    ).format(row=self._row, limit=f"{self._limits.max_row_chars:,}")
                )
        if self._in_string:
            self._string_chars += len(data)
            if self._string_chars > self._limits.max_shared_string_chars:
                raise self._too_many_texts()

    def _too_many_texts(self) -> ValidationFailed:
        return _refuse(
            _(
                "The workbook's texts are more than {count} different values or {limit} million"
                " characters. Save it as CSV or split it into smaller files."
            ).format(
                count=f"{self._limits.max_shared_strings:,}",
                limit=f"{self._limits.max_shared_string_chars / 1_000_000:,.0f}",
            )
        )


def _column_number(reference: str) -> int:
    """The column of a cell reference like "AB12" (0 when there is none)."""
    match = _COLUMN.match(reference)
    number = 0
    for letter in match.group(1).upper() if match else "":
        number = number * 26 + ord(letter) - ord("A") + 1
    return number
