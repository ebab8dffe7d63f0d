"""Reading an import file row by row: CSV or XLSX, header mapping, per-row validation.

Everything here is synchronous and streams: a file is never held in memory whole, whatever
its size. The import service (:mod:`customers.services.imports`) calls it in a thread.

Choices the marketer will notice (the import page and the README say so too):

* **Encoding.** UTF-8, with or without a byte-order mark. A file that is not valid UTF-8 is
  read as Windows-1252 (a superset of Latin-1, what Excel on Windows writes as "CSV") only if
  every byte of it decodes cleanly; the job's notes then say so. Anything else is refused with
  "save the file as CSV UTF-8".
* **Delimiter.** Comma, semicolon or tab: whichever occurs most in the header line.
* **Row numbers** are the ones a spreadsheet shows: the header is row 1, blank rows count.
* **Formula cells.** A text value that starts with ``=`` (``=HYPERLINK(…)``) is rejected with
  a report line: it would be a formula in a spreadsheet and it has no business in a salutation.
  Values starting with ``+ - @`` are kept (phone numbers start with ``+``); the export
  neutralises every such cell anyway.
* **Empty cells** mean "no value in the file": they never overwrite what the customer has.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from babel import Locale

from customers.schemas import NEEDS_SMTPUTF8, PROFILE_COLUMNS, normalize_email
from customers.services.workbook_guard import check_archive, check_workbook, default_limits
from loyalmail.errors import ValidationFailed, _

FileFormat = Literal["csv", "xlsx"]

#: The template's columns, in order; the export adds its own after them.
TEMPLATE_COLUMNS: tuple[str, ...] = PROFILE_COLUMNS
CUSTOM_PREFIX = "custom."
TEMPLATE_EXAMPLE_CUSTOM = "custom.member_number"
TEMPLATE_EXAMPLE_ROWS: tuple[tuple[str, ...], ...] = (
    (
        "anna.schmidt@example.com",
        "Anna",
        "Schmidt",
        "female",
        "1985-04-12",
        "de_DE",
        "DE",
        "Berlin",
        "10115",
        "+49 30 1234567",
        "loyal",
        "M-10001",
    ),
    (
        "jean.dupont@example.org",
        "Jean",
        "Dupont",
        "male",
        "",
        "fr",
        "FR",
        "Lyon",
        "69001",
        "",
        "non_member",
        "",
    ),
)

MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_VALUE = 500
#: Longest text a cell may hold per field (the table's column widths).
TEXT_LIMITS: dict[str, int] = {
    "first_name": 100,
    "last_name": 100,
    "city": 100,
    "postal_code": 20,
    "phone": 50,
}
#: Header spellings people use for our columns (compared after lower-casing, spaces → "_").
ALIASES: dict[str, str] = {
    "e-mail": "email",
    "e_mail": "email",
    "email_address": "email",
    "e-mail_address": "email",
    "mail": "email",
    "firstname": "first_name",
    "given_name": "first_name",
    "vorname": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "nachname": "last_name",
    "salutation": "gender",
    "sex": "gender",
    "birthday": "birth_date",
    "date_of_birth": "birth_date",
    "birthdate": "birth_date",
    "language": "locale",
    "zip": "postal_code",
    "zip_code": "postal_code",
    "postcode": "postal_code",
    "plz": "postal_code",
    "telephone": "phone",
    "mobile": "phone",
    "type": "customer_type",
}
GENDER_VALUES: dict[str, str] = {
    "female": "female",
    "f": "female",
    "w": "female",
    "woman": "female",
    "mrs": "female",
    "ms": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "mr": "male",
    "diverse": "diverse",
    "d": "diverse",
    "x": "diverse",
}
CUSTOMER_TYPE_VALUES: dict[str, str] = {
    "loyal": "loyal",
    "member": "member",
    "non_member": "non_member",
    "non-member": "non_member",
    "nonmember": "non_member",
    "non member": "non_member",
}
_LOCALE_RE = re.compile(r"^([A-Za-z]{2})(?:[_-]([A-Za-z]{2}))?$")
_DATE_DOTTED_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_WHITESPACE_RE = re.compile(r"[\r\n\t]+")
_COUNTRIES: frozenset[str] = frozenset(
    str(code) for code in Locale("en").territories if len(str(code)) == 2 and str(code).isalpha()
)
_SAMPLE_BYTES = 64 * 1024
_CHUNK_BYTES = 1024 * 1024
#: A CSV cell larger than this is a broken file (an unclosed quote swallowing the rest).
_MAX_CSV_FIELD = 100_000
csv.field_size_limit(_MAX_CSV_FIELD)


def _shown(value: str, limit: int = 60) -> str:
    value = value if len(value) <= limit else value[: limit - 1] + "…"
    return f"'{value}'"


# --- File format and encoding -------------------------------------------------------------


def sniff_format(path: Path, filename: str) -> FileFormat:
    """The format named by the file's extension, checked against its content."""
    suffix = Path(filename).suffix.lower()
    if suffix not in {".csv", ".xlsx"}:
        raise ValidationFailed(
            _("Only .csv and .xlsx files can be imported."), fields={"file": filename}
        )
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE_BYTES)
    if not head.strip(b" \r\n\t\xef\xbb\xbf"):
        raise ValidationFailed(_("The file is empty."), fields={"file": filename})
    if suffix == ".xlsx":
        if not head.startswith(b"PK\x03\x04") or not _is_workbook(path):
            raise ValidationFailed(
                _("This .xlsx file is not an Excel workbook. Save it again as .xlsx or CSV."),
                fields={"file": filename},
            )
        # Only the zip's directory: a declared bomb is refused before a job is queued.
        check_archive(path, default_limits())
        return "xlsx"
    if head.startswith(b"PK\x03\x04") or b"\x00" in head:
        raise ValidationFailed(
            _("This is not a CSV text file. In Excel, use File → Save as → CSV UTF-8."),
            fields={"file": filename},
        )
    return "csv"


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _decodes_cleanly(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(_CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def detect_encoding(path: Path) -> tuple[str, str]:
    """(codec, note for the marketer or ""). One streamed pass; refuses what it cannot read."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", ""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationFailed(
            _("The file is saved as UTF-16. Save it as CSV UTF-8 and upload it again.")
        )
    if _decodes_cleanly(path, "utf-8"):
        return "utf-8", ""
    if _decodes_cleanly(path, "cp1252"):
        return "cp1252", _(
            "The file was not saved as UTF-8; it was read as Windows-1252 (Western European). "
            "Check that accented letters look right; if not, save the file as CSV UTF-8."
        )
    raise ValidationFailed(
        _("The file is not UTF-8 text. Save it as CSV UTF-8 and upload it again.")
    )


def sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


# --- Readers --------------------------------------------------------------------------------


@dataclass
class RowSource:
    """An open file: its header, then its data rows as (row number, cell texts)."""

    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    #: CSV rows must have exactly the header's number of cells; a worksheet pads with blanks.
    exact_width: bool
    notes: list[str] = field(default_factory=list)
    _closers: list[IO[bytes] | IO[str] | object] = field(default_factory=list)

    def __enter__(self) -> RowSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if close is not None:
                close()


def open_rows(path: Path, file_format: FileFormat) -> RowSource:
    if file_format == "xlsx":
        return _open_xlsx(path)
    return _open_csv(path)


def _open_csv(path: Path) -> RowSource:
    encoding, note = detect_encoding(path)
    text = io.TextIOWrapper(path.open("rb"), encoding=encoding, newline="")
    try:
        first_line = text.readline(_SAMPLE_BYTES)
        text.seek(0)
        delimiter = sniff_delimiter(first_line)
        reader = csv.reader(text, delimiter=delimiter, strict=False)
        header: list[str] | None = None
        for header_row in reader:
            if any(cell.strip() for cell in header_row):
                header = header_row
                break
        if header is None:
            raise ValidationFailed(_("The file is empty."))
    except csv.Error as exc:
        text.close()
        raise ValidationFailed(
            _("The header row cannot be read: {error}").format(error=exc)
        ) from exc
    except BaseException:
        text.close()
        raise
    notes = [note] if note else []
    if delimiter != ",":
        notes.append(
            _("Columns are separated by {name}.").format(
                name="semicolons" if delimiter == ";" else "tabs"
            )
        )
    header_number = reader.line_num  # a header never spans lines in practice
    return RowSource(
        header=header,
        rows=_csv_rows(reader, start=header_number),
        exact_width=True,
        notes=notes,
        _closers=[text],
    )


def _csv_rows(reader: object, start: int) -> Iterator[tuple[int, list[str]]]:
    """Rows numbered as a spreadsheet numbers records; a broken record becomes one report row."""
    number = start
    iterator = iter(reader)  # type: ignore[call-overload]
    while True:
        number += 1
        try:
            cells = next(iterator)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, [MALFORMED_MARK, str(exc)]
            continue
        yield number, cells


#: Stands in a row's first cell for "the reader could not parse this record".
MALFORMED_MARK = "\x00malformed"


def _open_xlsx(path: Path) -> RowSource:
    import openpyxl

    limits = default_limits()
    check_workbook(path, limits)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise ValidationFailed(
            _("The workbook cannot be opened ({error}). Save it again as .xlsx or CSV.").format(
                error=type(exc).__name__
            )
        ) from exc
    sheet = workbook.worksheets[0] if workbook.worksheets else None
    if sheet is None:
        workbook.close()
        raise ValidationFailed(_("The file is empty."))
    # The declared dimension would pad every row to its width and add rows after the last
    # one; the check above counted the rows and cells the sheet really has, not the claim.
    sheet.reset_dimensions()
    rows = enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
    header: list[str] | None = None
    for _number, values in rows:
        cells = [_cell_text(v) for v in values]
        if any(c.strip() for c in cells):
            header = cells
            break
    if header is None:
        workbook.close()
        raise ValidationFailed(_("The file is empty."))
    notes = []
    if len(workbook.worksheets) > 1:
        notes.append(_("Only the first worksheet was read."))
    data = ((n, [_cell_text(v) for v in values]) for n, values in rows)
    return RowSource(header=header, rows=data, exact_width=False, notes=notes, _closers=[workbook])


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- Header ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnMap:
    #: cell index → customer field
    fields: dict[int, str]
    #: cell index → custom field name
    custom: dict[int, str]
    #: number of header cells (trailing blank header cells not counted)
    width: int
    ignored: list[str]

    @property
    def email_index(self) -> int:
        return next(i for i, name in self.fields.items() if name == "email")


def _canonical(name: str) -> str:
    key = name.strip().lstrip("\ufeff").strip().lower()
    key = re.sub(r"[\s]+", "_", key)
    return ALIASES.get(key, key)


def map_header(header: list[str]) -> ColumnMap:
    cells = list(header)
    while cells and not cells[-1].strip():
        cells.pop()
    fields: dict[int, str] = {}
    custom: dict[int, str] = {}
    ignored: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(cells):
        label = raw.strip().lstrip("\ufeff").strip()
        if not label:
            continue
        if label.lower().startswith(CUSTOM_PREFIX):
            name = label[len(CUSTOM_PREFIX) :].strip()
            key = CUSTOM_PREFIX + name
            if not name or len(name) > 64:
                ignored.append(label)
                continue
            target: dict[int, str] = custom
            value = name
        else:
            key = _canonical(label)
            if key not in TEMPLATE_COLUMNS:
                ignored.append(label)
                continue
            target = fields
            value = key
        if key in seen:
            raise ValidationFailed(
                _("The column {name} appears twice (columns {first} and {second}).").format(
                    name=_shown(label), first=seen[key] + 1, second=index + 1
                ),
                fields={"file": label},
            )
        seen[key] = index
        target[index] = value
    if "email" not in fields.values():
        found = ", ".join(_shown(c.strip()) for c in cells if c.strip()) or _("none")
        raise ValidationFailed(
            _("The file has no 'email' column. Columns found: {found}.").format(found=found),
            fields={"file": "email"},
        )
    if len(custom) > MAX_CUSTOM_FIELDS:
        raise ValidationFailed(
            _("The file has {count} custom.* columns; at most {limit} are allowed.").format(
                count=len(custom), limit=MAX_CUSTOM_FIELDS
            )
        )
    return ColumnMap(fields=fields, custom=custom, width=len(cells), ignored=ignored)


# --- Rows -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedRow:
    number: int
    email: str
    email_normalized: str
    #: Only the fields the file has a non-empty value for.
    values: dict[str, object]
    custom: dict[str, str]


@dataclass(slots=True)
class RowProblem:
    number: int
    column: str
    message: str
    email: str = ""


def parse_row(
    number: int, cells: list[str], columns: ColumnMap, *, exact_width: bool
) -> ParsedRow | list[RowProblem] | None:
    """A valid row, the problems that reject it, or None for a blank row (skipped)."""
    if cells and cells[0] == MALFORMED_MARK:
        return [
            RowProblem(
                number,
                "",
                _("row {n}: the row cannot be read as CSV ({error})").format(
                    n=number, error=cells[1]
                ),
            )
        ]
    if not any(c.strip() for c in cells):
        return None
    raw_email = cells[columns.email_index].strip() if columns.email_index < len(cells) else ""
    too_many = len(cells) > columns.width and (
        exact_width or any(c.strip() for c in cells[columns.width :])
    )
    if too_many or (exact_width and len(cells) < columns.width):
        return [
            RowProblem(
                number,
                "",
                _("row {n}: the row has {cells} cells but the header has {width} columns").format(
                    n=number, cells=len(cells), width=columns.width
                )
                + (_(' (is a quote " not closed?)') if any("\n" in c for c in cells) else ""),
                raw_email,
            )
        ]

    problems: list[RowProblem] = []
    email = normalized = ""
    if not raw_email:
        problems.append(
            RowProblem(
                number, "email", _("row {n}: the e-mail address is missing").format(n=number)
            )
        )
    else:
        try:
            email, normalized = normalize_email(raw_email)
        except ValidationFailed as exc:
            reason = (
                _(
                    "row {n}: {value} needs an internationalised mail server (SMTPUTF8), which"
                    " this installation does not use; please use another address"
                )
                if exc.message == NEEDS_SMTPUTF8
                else _("row {n}: {value} is not a valid e-mail address")
            )
            problems.append(
                RowProblem(
                    number, "email", reason.format(n=number, value=_shown(raw_email)), raw_email
                )
            )
    values: dict[str, object] = {}
    for index, name in columns.fields.items():
        if name == "email" or index >= len(cells):
            continue
        raw = _WHITESPACE_RE.sub(" ", cells[index]).strip()
        if not raw:
            continue
        try:
            values[name] = _field_value(name, raw)
        except ValueError as exc:
            problems.append(
                RowProblem(
                    number,
                    name,
                    _("row {n}: {column} {value} {reason}").format(
                        n=number, column=name, value=_shown(raw), reason=exc
                    ),
                    raw_email,
                )
            )
    custom: dict[str, str] = {}
    for index, name in columns.custom.items():
        if index >= len(cells):
            continue
        raw = _WHITESPACE_RE.sub(" ", cells[index]).strip()
        if not raw:
            continue
        if raw.startswith("="):
            reason = _("looks like a spreadsheet formula and was not imported")
        elif len(raw) > MAX_CUSTOM_VALUE:
            reason = _("is longer than {limit} characters").format(limit=MAX_CUSTOM_VALUE)
        else:
            custom[name] = raw
            continue
        problems.append(
            RowProblem(
                number,
                CUSTOM_PREFIX + name,
                _("row {n}: {column} {value} {reason}").format(
                    n=number, column=CUSTOM_PREFIX + name, value=_shown(raw), reason=reason
                ),
                raw_email,
            )
        )
    if problems:
        for problem in problems:
            problem.email = problem.email or raw_email
        return problems
    return ParsedRow(number, email, normalized, values, custom)


def _field_value(name: str, raw: str) -> object:
    """The stored value for one cell, or ValueError with the reason (read after the value)."""
    if name in TEXT_LIMITS:
        if raw.startswith("="):
            raise ValueError(_("looks like a spreadsheet formula and was not imported"))
        if len(raw) > TEXT_LIMITS[name]:
            raise ValueError(_("is longer than {limit} characters").format(limit=TEXT_LIMITS[name]))
        return raw
    if name == "gender":
        gender = GENDER_VALUES.get(raw.lower().rstrip("."))
        if gender is None:
            raise ValueError(_("is not a gender (female, male or diverse)"))
        return gender
    if name == "customer_type":
        kind = CUSTOMER_TYPE_VALUES.get(raw.lower())
        if kind is None:
            raise ValueError(_("is not a customer type (loyal, member or non_member)"))
        return kind
    if name == "country":
        code = raw.upper()
        if code not in _COUNTRIES:
            raise ValueError(_("is not a two-letter country code (like DE)"))
        return code
    if name == "locale":
        match = _LOCALE_RE.match(raw)
        if match is None:
            raise ValueError(_("is not a language code (like de or de_AT)"))
        language, region = match.group(1).lower(), match.group(2)
        return f"{language}_{region.upper()}" if region else language
    if name == "birth_date":
        return _birth_date(raw)
    raise ValueError(_("is not expected here"))  # pragma: no cover - columns are mapped first


def _birth_date(raw: str) -> date:
    value: date | None = None
    try:
        value = date.fromisoformat(raw[:10]) if len(raw) >= 10 and raw[4] == "-" else None
    except ValueError:
        value = None
    if value is None and (match := _DATE_DOTTED_RE.match(raw)):
        try:
            value = date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        except ValueError:
            value = None
    if value is None:
        raise ValueError(_("is not a date (write 1985-04-12 or 12.04.1985)"))
    if value.year < 1900 or value > date.today():
        raise ValueError(_("is not a plausible birth date"))
    return value


# --- Duplicates within one file, with flat memory ---------------------------------------------


class SeenAddresses:
    """The first row of every address in the file so far, kept on disk, not in memory.

    A 200,000-row file would otherwise hold 200,000 addresses in a dict; a scratch SQLite
    file keeps memory flat at any size and answers a batch of 1,000 look-ups in one query.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        import tempfile

        self._tmp = tempfile.TemporaryDirectory(prefix="seen-", dir=directory)
        # Batches are read in worker threads, one at a time: never concurrently.
        self._db = sqlite3.connect(Path(self._tmp.name) / "seen.sqlite", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID")

    def first_rows(self, rows: list[tuple[str, int]]) -> dict[int, int]:
        """Record (address key, row number) in file order; → {duplicate row: its first row}."""
        if not rows:
            return {}
        keys = list({key for key, _number in rows})
        earlier: dict[str, int] = {}
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, row FROM seen WHERE key IN ({marks})"  # noqa: S608 - marks only
            earlier.update(self._db.execute(query, chunk).fetchall())
        duplicates: dict[int, int] = {}
        fresh: dict[str, int] = {}
        for key, number in rows:
            first = earlier.get(key) or fresh.get(key)
            if first is not None:
                duplicates[number] = first
            else:
                fresh[key] = number
        self._db.executemany("INSERT INTO seen (key, row) VALUES (?, ?)", fresh.items())
        return duplicates

    def close(self) -> None:
        self._db.close()
        self._tmp.cleanup()

    def __enter__(self) -> SeenAddresses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
