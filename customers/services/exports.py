"""The filtered customer list as CSV or Excel, streamed, safe to open in a spreadsheet.

One pass over the database (:func:`customers.services.customers.iter_customers`, keyset
pagination) spools the customers to a scratch file while collecting the custom field names
that become ``custom.<name>`` columns; the file is then written out from the spool. Memory
stays flat whatever the list's size, and the header names every custom field in the rows.

Formula injection (OWASP "CSV Injection"): a text cell that starts with ``= + - @``, a tab
or a carriage return gets a leading apostrophe, so a spreadsheet shows it as text instead of
running it. So does one whose first visible character is such a sign after whitespace
(``" =1+1"``: spreadsheets trim it and run the rest) or in a compatibility form (full-width
``＝ ＋ － ＠``, small ``﹦ ﹢ ﹣ ﹫``, the minus sign ``−``: some spreadsheets, Japanese and
Chinese Excel among them, take these for the ASCII sign). Numbers we produce ourselves
(counts, money) are written as numbers.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from customers.schemas import CustomerOut, CustomerQuery
from customers.services.customers import iter_customers
from customers.services.import_rows import (
    CUSTOM_PREFIX,
    TEMPLATE_COLUMNS,
    TEMPLATE_EXAMPLE_CUSTOM,
    TEMPLATE_EXAMPLE_ROWS,
)
from loyalmail.settings import get_settings

EXPORT_COLUMNS: tuple[str, ...] = (
    *TEMPLATE_COLUMNS,
    "email_status",
    "subscribed",
    "created_at",
    "purchase_count",
    "lifetime_value",
)
_FORMULA_SIGNS = frozenset("=+-@")
#: Not folded to "-" by NFKC, yet read as one by spreadsheets.
_MINUS_SIGN = "\u2212"
#: Characters an XLSX cell cannot hold (openpyxl refuses them); they are dropped.
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CHUNK_CHARS = 64 * 1024
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CustomerOut)


def starts_a_formula(text: str) -> bool:
    """Whether a spreadsheet could take the cell for a formula: a tab or carriage return
    first, or a formula sign as the first character that is not whitespace, in any of its
    compatibility forms (NFKC folds full-width and small forms to ASCII)."""
    if text.startswith(("\t", "\r")):
        return True
    first = text.lstrip()[:1]
    return first == _MINUS_SIGN or unicodedata.normalize("NFKC", first)[:1] in _FORMULA_SIGNS


def neutralise(text: str) -> str:
    """A text cell a spreadsheet will show, never evaluate."""
    return "'" + text if starts_a_formula(text) else text


def _scratch_dir() -> Path:
    directory = get_settings().data_dir / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Spool:
    """The customers of one export in a scratch file, and the custom field names seen."""

    def __init__(self, path: Path, custom_names: list[str], count: int) -> None:
        self.path = path
        self.custom_names = custom_names
        self.count = count

    def customers(self) -> Iterator[CustomerOut]:
        with self.path.open("rb") as handle:
            for line in handle:
                yield _decoder.decode(line)

    def header(self) -> list[str]:
        return [*EXPORT_COLUMNS, *(CUSTOM_PREFIX + name for name in self.custom_names)]

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


async def spool_customers(merchant_id: int, query: CustomerQuery) -> Spool:
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - handed to the Spool, deleted there
        prefix="export-", suffix=".jsonl", dir=_scratch_dir(), delete=False
    )
    names: dict[str, None] = {}
    count = 0
    try:
        with handle:
            async for customer in iter_customers(merchant_id, query):
                handle.write(_encoder.encode(customer) + b"\n")
                for name in customer.custom_fields:
                    names.setdefault(name, None)
                count += 1
    except BaseException:
        _delete(Path(handle.name))
        raise
    return Spool(Path(handle.name), sorted(names), count)


def _row(customer: CustomerOut, custom_names: list[str]) -> list[Any]:
    """Typed cells: str (neutralised), int, Decimal, date, datetime (UTC), or None."""
    cells: list[Any] = [
        customer.birth_date if name == "birth_date" else neutralise(getattr(customer, name))
        for name in TEMPLATE_COLUMNS
    ]
    cells += [
        customer.email_status,
        customer.subscribed,
        customer.created_at.astimezone(UTC).replace(tzinfo=None, microsecond=0),
        customer.purchase_count,
        customer.lifetime_value,
    ]
    for name in custom_names:
        value = customer.custom_fields.get(name)
        cells.append(neutralise(value) if isinstance(value, str) else value)
    return cells


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


async def csv_chunks(spool: Spool) -> AsyncIterator[bytes]:
    """The spooled export as UTF-8 CSV (with a byte-order mark, so Excel reads accents right).

    Spool first (:func:`spool_customers`), then stream: a database error then still answers
    with a proper error instead of a response cut off halfway."""
    try:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        buffer.write("\ufeff")
        writer.writerow(spool.header())
        for customer in spool.customers():
            writer.writerow([_csv_text(v) for v in _row(customer, spool.custom_names)])
            if buffer.tell() >= _CHUNK_CHARS:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()
    finally:
        spool.delete()


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, str):
        return _ILLEGAL_XLSX.sub("", value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _write_xlsx(rows: Iterator[list[Any]], header: list[str], title: str) -> Path:
    """A write-only workbook (constant memory) in a scratch file; the caller deletes it."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    sheet.append(header)
    for values in rows:
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=_xlsx_cell(value))
            if isinstance(value, str):
                # Text stays text even if it looks like "=1+1" (openpyxl would make a formula).
                cell.data_type = "s"
            elif isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
            cells.append(cell)
        sheet.append(cells)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed at once, path returned
        prefix="export-", suffix=".xlsx", dir=_scratch_dir(), delete=False
    )
    handle.close()
    workbook.save(handle.name)
    return Path(handle.name)


async def xlsx_file(merchant_id: int, query: CustomerQuery) -> Path:
    """The export as an .xlsx scratch file; stream it with :func:`file_chunks`."""
    import asyncio

    spool = await spool_customers(merchant_id, query)
    try:
        rows = (_row(c, spool.custom_names) for c in spool.customers())
        return await asyncio.to_thread(_write_xlsx, rows, spool.header(), "Customers")
    finally:
        spool.delete()


async def file_chunks(path: Path, chunk_bytes: int = 256 * 1024) -> AsyncIterator[bytes]:
    """Read a scratch file out in chunks, then delete it (also when the client goes away)."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk
    finally:
        _delete(path)


def _delete(path: Path) -> None:
    path.unlink(missing_ok=True)


# --- The import template ---------------------------------------------------------------------


def template_header() -> list[str]:
    return [*TEMPLATE_COLUMNS, TEMPLATE_EXAMPLE_CUSTOM]


def template_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(template_header())
    writer.writerows(TEMPLATE_EXAMPLE_ROWS)
    return ("\ufeff" + buffer.getvalue()).encode()


async def template_xlsx() -> Path:
    import asyncio

    rows = (list(row) for row in TEMPLATE_EXAMPLE_ROWS)
    return await asyncio.to_thread(_write_xlsx, rows, template_header(), "Customers")
