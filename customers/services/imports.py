"""Customer imports as background jobs: upload → dry run (preview) → apply → done.

    uploaded ──preview actor──▶ previewing ──▶ previewed ──POST run──▶ importing ──▶ done
        └──────────────── any unreadable file / missing column ───────────────────▶ failed

Both steps stream the file (:mod:`customers.services.import_rows`) in batches of
:data:`BATCH_ROWS` rows. The dry run classifies every row (new, updated, unchanged,
invalid, suppressed) and writes only the job's counts and report lines. Apply writes each
batch — customers, consent log, report lines, the job's counts and its resume point — in one
transaction: a crash leaves whole batches, and running it again resumes after the last
committed batch (rows are matched by (merchant, normalised address), so nothing doubles).

Rules an import never breaks:

* it never lowers consent: ``email_status`` and ``subscribed`` of an existing customer are
  never touched, so nobody is re-subscribed or un-verified by a file;
* it never brings back a suppressed (erased, bounced, complained) address: such a row is
  reported as suppressed and skipped;
* it overwrites only fields that are present and non-empty in the file; ``custom.<name>``
  columns are merged into the customer's custom fields;
* the same address twice in one file (in any case): the first row counts, the later one is
  reported as "duplicate of row N".

New customers get ``source = "import"`` and, in the consent log (source "import", actor =
the marketer or token): "confirmed" when the marketer declared the addresses confirmed
elsewhere (``mark_verified``), "requested" when the opt-in mail is sent (``send_optin``).
A plain import (neither) records no consent event: none was given or asked for, and the
addresses stay ``unverified`` — they receive no newsletter until they confirm.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from customers.services import loyalty
from customers.services.customers import OPTIN_WORDING_VERSION, transaction
from customers.services.import_rows import (
    MAX_CUSTOM_FIELDS,
    TEMPLATE_COLUMNS,
    ColumnMap,
    FileFormat,
    ParsedRow,
    RowProblem,
    RowSource,
    SeenAddresses,
    map_header,
    open_rows,
    parse_row,
    sniff_format,
)
from customers.tables import Customer, ImportIssue, ImportJob, Suppression
from loyalmail import database
from loyalmail.errors import Conflict, NotFound, ValidationFailed, _
from loyalmail.security import email_hash
from loyalmail.settings import get_settings

log = logging.getLogger("loyalmail.imports")

#: Rows per transaction: big enough to be fast, small enough that a crash loses little.
BATCH_ROWS = 1000
#: The profile fields an import may set (everything of the template but the address).
PROFILE_FIELDS: tuple[str, ...] = TEMPLATE_COLUMNS[1:]
#: The wording version a "confirmed" event carries when the marketer vouched for consent.
DECLARED_WORDING = "declared-by-marketer"

JobStatus = Literal["uploaded", "previewing", "previewed", "importing", "done", "failed"]
IssueKind = Literal["invalid", "duplicate", "suppressed"]


# --- Edge values -------------------------------------------------------------------------------


class ImportOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: The marketer declares these addresses confirmed elsewhere: new ones become verified.
    mark_verified: bool = False
    #: New addresses become pending and receive the double opt-in e-mail.
    send_optin: bool = False


class ImportJobOut(msgspec.Struct, kw_only=True):
    id: int
    filename: str
    file_format: str
    status: JobStatus
    mark_verified: bool
    send_optin: bool
    rows_total: int
    rows_new: int
    rows_updated: int
    rows_unchanged: int
    rows_invalid: int
    rows_suppressed: int
    #: While importing: the last file row whose batch is written.
    rows_processed: int
    error: str
    notes: list[str]
    created_at: datetime
    finished_at: datetime | None


class ImportIssueOut(msgspec.Struct, kw_only=True):
    row_number: int
    email: str
    column: str
    kind: IssueKind
    message: str


class ImportIssuePage(msgspec.Struct, kw_only=True):
    items: list[ImportIssueOut]
    total: int
    page: int
    per_page: int


def _now() -> datetime:
    return datetime.now(UTC)


def _job_out(row: dict[str, Any]) -> ImportJobOut:
    return ImportJobOut(
        id=int(row["id"]),
        filename=row["filename"],
        file_format=row["file_format"],
        status=row["status"],
        mark_verified=bool(row["mark_verified"]),
        send_optin=bool(row["send_optin"]),
        rows_total=int(row["rows_total"]),
        rows_new=int(row["rows_new"]),
        rows_updated=int(row["rows_updated"]),
        rows_unchanged=int(row["rows_unchanged"]),
        rows_invalid=int(row["rows_invalid"]),
        rows_suppressed=int(row["rows_suppressed"]),
        rows_processed=int(row["rows_processed"]),
        error=row["error"],
        notes=[line for line in (row["notes"] or "").split("\n") if line],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


# --- Jobs: create, read, start -----------------------------------------------------------------


async def create_job(
    merchant_id: int,
    *,
    filename: str,
    stored_path: Path,
    options: ImportOptions,
    created_by: int | None,
    actor: str,
) -> ImportJobOut:
    """Register an uploaded file and queue its dry run. The file is deleted if it is refused."""
    try:
        if options.mark_verified and options.send_optin:
            raise ValidationFailed(
                _(
                    "Choose one: either the addresses are confirmed already (mark_verified), or "
                    "they get a confirmation e-mail (send_optin)."
                ),
                fields={"send_optin": _("cannot be combined with mark_verified")},
            )
        file_format = await asyncio.to_thread(sniff_format, stored_path, filename)
    except BaseException:
        _delete(stored_path)
        raise
    rows = await ImportJob.insert(
        ImportJob(
            merchant=merchant_id,
            created_by=created_by,
            filename=Path(filename).name[:255] or "upload",
            file_format=file_format,
            stored_path=str(stored_path),
            status="uploaded",
            consent_source="import",
            mark_verified=options.mark_verified,
            send_optin=options.send_optin,
            actor=actor[:254],
            created_at=_now(),
        )
    ).returning(ImportJob.id)
    job_id = int(rows[0]["id"])
    from customers import actors  # actors import this module: import late

    actors.preview_import.send(merchant_id, job_id)
    return await get_job(merchant_id, job_id)


async def _job_row(merchant_id: int, job_id: int) -> dict[str, Any]:
    row = (
        await ImportJob.select()
        .where((ImportJob.id == job_id) & (ImportJob.merchant == merchant_id))
        .first()
    )
    if row is None:
        raise NotFound(_("There is no such import."))
    return row


async def get_job(merchant_id: int, job_id: int) -> ImportJobOut:
    return _job_out(await _job_row(merchant_id, job_id))


async def list_jobs(merchant_id: int, limit: int = 100) -> list[ImportJobOut]:
    rows = (
        await ImportJob.select()
        .where(ImportJob.merchant == merchant_id)
        .order_by(ImportJob.id, ascending=False)
        .limit(limit)
    )
    return [_job_out(row) for row in rows]


async def start_apply(merchant_id: int, job_id: int) -> ImportJobOut:
    """previewed → importing, then queue the apply actor. Only one caller wins the switch."""
    await _job_row(merchant_id, job_id)
    async with transaction():
        row = await _job_row(merchant_id, job_id)
        if row["status"] != "previewed":
            raise Conflict(
                _("This import can run only after its preview; it is {status}.").format(
                    status=row["status"]
                ),
                fields={"status": row["status"]},
            )
        await ImportJob.update(
            {
                ImportJob.status: "importing",
                ImportJob.rows_processed: 0,
                ImportJob.error: "",
            }
        ).where((ImportJob.id == job_id) & (ImportJob.merchant == merchant_id))
    from customers import actors  # actors import this module: import late

    actors.apply_import.send(merchant_id, job_id)
    return await get_job(merchant_id, job_id)


async def list_issues(
    merchant_id: int, job_id: int, *, page: int = 1, per_page: int = 100
) -> ImportIssuePage:
    await _job_row(merchant_id, job_id)
    where = (ImportIssue.job == job_id) & (ImportIssue.merchant == merchant_id)
    rows = (
        await ImportIssue.select(*_ISSUE_COLUMNS)
        .where(where)
        .order_by(ImportIssue.row_number)
        .order_by(ImportIssue.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    total = await ImportIssue.count().where(where)
    return ImportIssuePage(
        items=[_issue_out(row) for row in rows], total=int(total), page=page, per_page=per_page
    )


_ISSUE_COLUMNS = (
    ImportIssue.id,
    ImportIssue.row_number,
    ImportIssue.email,
    ImportIssue.column,
    ImportIssue.kind,
    ImportIssue.message,
)


def _issue_out(row: dict[str, Any]) -> ImportIssueOut:
    return ImportIssueOut(
        row_number=int(row["row_number"]),
        email=row["email"],
        column=row["column"],
        kind=row["kind"],
        message=row["message"],
    )


async def iter_issues(merchant_id: int, job_id: int) -> AsyncIterator[ImportIssueOut]:
    """Every report line in row order, 1,000 at a time (keyset on row number and id)."""
    await _job_row(merchant_id, job_id)
    after: tuple[int, int] | None = None
    while True:
        query = ImportIssue.select(*_ISSUE_COLUMNS).where(
            (ImportIssue.job == job_id) & (ImportIssue.merchant == merchant_id)
        )
        if after is not None:
            query = query.where(
                (ImportIssue.row_number > after[0])
                | ((ImportIssue.row_number == after[0]) & (ImportIssue.id > after[1]))
            )
        rows = await query.order_by(ImportIssue.row_number).order_by(ImportIssue.id).limit(1000)
        for row in rows:
            yield _issue_out(row)
        if len(rows) < 1000:
            return
        after = (int(rows[-1]["row_number"]), int(rows[-1]["id"]))


# --- The two steps -------------------------------------------------------------------------------


@dataclass
class Counts:
    total: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    suppressed: int = 0

    @classmethod
    def of_job(cls, row: dict[str, Any]) -> Counts:
        return cls(
            total=int(row["rows_total"]),
            new=int(row["rows_new"]),
            updated=int(row["rows_updated"]),
            unchanged=int(row["rows_unchanged"]),
            invalid=int(row["rows_invalid"]),
            suppressed=int(row["rows_suppressed"]),
        )

    def columns(self) -> dict[Any, int]:
        return {
            ImportJob.rows_total: self.total,
            ImportJob.rows_new: self.new,
            ImportJob.rows_updated: self.updated,
            ImportJob.rows_unchanged: self.unchanged,
            ImportJob.rows_invalid: self.invalid,
            ImportJob.rows_suppressed: self.suppressed,
        }


async def preview(merchant_id: int, job_id: int) -> None:
    """The dry run: classify every row, write counts and report lines, no customer.

    Safe to run twice: a finished preview is left alone, an interrupted one starts over."""
    try:
        job = await _job_row(merchant_id, job_id)
    except NotFound:
        return  # deleted meanwhile: nothing to do
    if job["status"] not in {"uploaded", "previewing"}:
        return
    await ImportJob.update(
        {ImportJob.status: "previewing", ImportJob.error: "", **Counts().columns()}
    ).where(ImportJob.id == job_id)
    await ImportIssue.delete().where(ImportIssue.job == job_id)
    result = await _run_or_fail(job, write=False, resume_after=0, counts=Counts())
    if result is None:
        return
    counts, notes = result
    await ImportJob.update(
        {**counts.columns(), ImportJob.status: "previewed", ImportJob.notes: "\n".join(notes)}
    ).where(ImportJob.id == job_id)


async def apply(merchant_id: int, job_id: int) -> None:
    """Write the import, batch by batch. Safe to run twice: resumes after the last batch."""
    try:
        job = await _job_row(merchant_id, job_id)
    except NotFound:
        return
    if job["status"] != "importing":
        return
    resume_after = int(job["rows_processed"])
    if resume_after == 0:
        # The preview's report is replaced by what apply finds now (the list may have changed).
        await ImportIssue.delete().where(ImportIssue.job == job_id)
        counts = Counts()
    else:
        counts = Counts.of_job(job)
    result = await _run_or_fail(job, write=True, resume_after=resume_after, counts=counts)
    if result is None:
        return
    counts, _notes = result
    await ImportJob.update(
        {
            **counts.columns(),
            ImportJob.status: "done",
            ImportJob.error: "",
            ImportJob.finished_at: _now(),
        }
    ).where(ImportJob.id == job_id)
    # The file holds personal data: once imported, the report is all that is kept.
    _delete(job["stored_path"])


async def _run_or_fail(
    job: dict[str, Any], *, write: bool, resume_after: int, counts: Counts
) -> tuple[Counts, list[str]] | None:
    """:func:`_run`; a file that cannot be read fails the job with its message (None), a crash
    is noted on the job and raised again so the actor retries."""
    try:
        return await _run(job, write=write, resume_after=resume_after, counts=counts)
    except ValidationFailed as exc:
        await _fail(job, exc.message)
        return None
    except Exception:
        await _note_crash(job)
        raise


async def _fail(job: dict[str, Any], message: str) -> None:
    await ImportJob.update(
        {ImportJob.status: "failed", ImportJob.error: message, ImportJob.finished_at: _now()}
    ).where(ImportJob.id == job["id"])
    _delete(job["stored_path"])


async def _note_crash(job: dict[str, Any]) -> None:
    """A crash (database or disk trouble) keeps the status, so the actor's retry carries on;
    the marketer sees why it is taking longer."""
    log.exception("import %s stopped unexpectedly", job["id"])
    try:
        await ImportJob.update(
            {ImportJob.error: _("The import stopped unexpectedly and is retried automatically.")}
        ).where(ImportJob.id == job["id"])
    except Exception:
        log.exception("could not record the crash of import %s", job["id"])


def _delete(path: str | Path) -> None:
    Path(path).unlink(missing_ok=True)


@dataclass
class _Batch:
    last_number: int
    rows: list[ParsedRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    #: (row, its first row) for addresses seen earlier in the file
    duplicates: list[tuple[ParsedRow, int]] = field(default_factory=list)
    #: rows that reached a verdict (blank rows are not counted)
    counted: int = 0


def _read_batch(source: RowSource, columns: ColumnMap, seen: SeenAddresses) -> _Batch | None:
    """The next :data:`BATCH_ROWS` non-blank rows, parsed and checked for duplicates.

    Runs in a worker thread: reading and validating is CPU work that must not stall the
    event loop. Batch boundaries depend only on the file, which is what lets apply resume."""
    batch: _Batch | None = None
    parsed: list[ParsedRow] = []
    for number, cells in source.rows:
        result = parse_row(number, cells, columns, exact_width=source.exact_width)
        if result is None:
            continue
        batch = batch or _Batch(last_number=number)
        batch.last_number = number
        batch.counted += 1
        if isinstance(result, ParsedRow):
            parsed.append(result)
        else:
            batch.problems.extend(result)
        if batch.counted >= BATCH_ROWS:
            break
    if batch is None:
        return None
    first_rows = seen.first_rows([(row.email_normalized, row.number) for row in parsed])
    for row in parsed:
        if row.number in first_rows:
            batch.duplicates.append((row, first_rows[row.number]))
        else:
            batch.rows.append(row)
    return batch


async def _run(
    job: dict[str, Any], *, write: bool, resume_after: int, counts: Counts
) -> tuple[Counts, list[str]]:
    path = Path(job["stored_path"])
    if not await asyncio.to_thread(path.is_file):
        raise ValidationFailed(_("The uploaded file is no longer there. Upload it again."))
    file_format: FileFormat = job["file_format"]
    source = await asyncio.to_thread(open_rows, path, file_format)
    with source, SeenAddresses(get_settings().import_dir) as seen:
        columns = map_header(source.header)
        notes = list(source.notes)
        if columns.ignored:
            notes.append(
                _("These columns are not customer fields and were ignored: {names}.").format(
                    names=", ".join(columns.ignored)
                )
            )
        while (batch := await asyncio.to_thread(_read_batch, source, columns, seen)) is not None:
            if batch.last_number <= resume_after:
                continue  # committed by an earlier run; read only to know its addresses
            await _process_batch(job, batch, counts, write=write)
    if counts.total == 0:
        raise ValidationFailed(_("The file has a header row but no customers in it."))
    return counts, notes


def _issue(job: dict[str, Any], problem: RowProblem, kind: IssueKind) -> tuple[Any, ...]:
    """A report line as the values of :data:`_INSERT_ISSUE`."""
    return (
        int(job["merchant"]),
        int(job["id"]),
        problem.number,
        problem.email[:254],
        problem.column[:64],
        kind,
        problem.message,
    )


@dataclass
class _Verdicts:
    new: list[ParsedRow] = field(default_factory=list)
    updates: list[tuple[int, dict[str, object]]] = field(default_factory=list)
    unchanged: int = 0
    issues: list[tuple[Any, ...]] = field(default_factory=list)
    suppressed: int = 0
    invalid: int = 0
    #: (customer id, old type, new type) of the updates that change a type: the history.
    type_changes: list[tuple[int, str, str]] = field(default_factory=list)


async def _process_batch(
    job: dict[str, Any], batch: _Batch, counts: Counts, *, write: bool
) -> None:
    merchant_id = int(job["merchant"])
    async with transaction():
        # Read inside the write transaction: the verdicts hold for what gets written.
        verdicts = await _judge(job, batch)
        new_ids: list[int] = []
        if write:
            new_ids = await _insert_new(job, verdicts.new)
            await _update_changed(merchant_id, verdicts.updates)
            await _record_type_changes(job, verdicts.type_changes)
        await _executemany(_INSERT_ISSUE, verdicts.issues)
        counts.total += batch.counted
        counts.new += len(verdicts.new)
        counts.updated += len(verdicts.updates)
        counts.unchanged += verdicts.unchanged
        counts.invalid += verdicts.invalid
        counts.suppressed += verdicts.suppressed
        progress: dict[Any, object] = dict(counts.columns())
        if write:
            progress[ImportJob.rows_processed] = batch.last_number
        await ImportJob.update(progress).where(ImportJob.id == job["id"])
    if write and job["send_optin"]:
        _enqueue_optin(new_ids)


async def _judge(job: dict[str, Any], batch: _Batch) -> _Verdicts:
    merchant_id = int(job["merchant"])
    verdicts = _Verdicts()
    rejected: set[int] = set()
    for problem in batch.problems:
        verdicts.issues.append(_issue(job, problem, "invalid"))
        rejected.add(problem.number)
    verdicts.invalid += len(rejected)
    for row, first in batch.duplicates:
        message = _("row {n}: duplicate of row {first} ({email} is in the file twice)").format(
            n=row.number, first=first, email=row.email
        )
        verdicts.issues.append(
            _issue(job, RowProblem(row.number, "email", message, row.email), "duplicate")
        )
        verdicts.invalid += 1
    keys = [row.email_normalized for row in batch.rows]
    existing = await _existing(merchant_id, keys)
    suppressed = await _suppressed(merchant_id, keys)
    for row in batch.rows:
        if row.email_normalized in suppressed:
            message = _(
                "row {n}: {email} was erased or blocked earlier (suppression list) and is not "
                "imported; only the customer's own confirmation can bring it back"
            ).format(n=row.number, email=row.email)
            verdicts.issues.append(
                _issue(job, RowProblem(row.number, "email", message, row.email), "suppressed")
            )
            verdicts.suppressed += 1
            continue
        current = existing.get(row.email_normalized)
        old_type = "non_member" if current is None else str(current["customer_type"])
        new_type = str(row.values.get("customer_type", old_type))
        if loyalty.operator_decides() and loyalty.touches_loyalty(old_type, new_type):
            message = _(
                "row {n}: loyal customers come from the loyalty programme; only its operator"
                " can make a customer loyal or take that away. The row is not imported."
            ).format(n=row.number)
            problem = RowProblem(row.number, "customer_type", message, row.email)
            verdicts.issues.append(_issue(job, problem, "invalid"))
            verdicts.invalid += 1
            continue
        if current is None:
            verdicts.new.append(row)
            continue
        changes = _changes(current, row)
        custom = changes.get("custom_fields")
        if isinstance(custom, dict) and len(custom) > MAX_CUSTOM_FIELDS:
            message = _("row {n}: the customer would have more than {limit} custom fields").format(
                n=row.number, limit=MAX_CUSTOM_FIELDS
            )
            verdicts.issues.append(
                _issue(job, RowProblem(row.number, "", message, row.email), "invalid")
            )
            verdicts.invalid += 1
        elif changes:
            if isinstance(custom, dict):
                changes["custom_fields"] = json.dumps(custom, ensure_ascii=False)
            verdicts.updates.append((int(current["id"]), changes))
            if "customer_type" in changes:
                verdicts.type_changes.append((int(current["id"]), old_type, new_type))
        else:
            verdicts.unchanged += 1
    return verdicts


async def _existing(merchant_id: int, keys: list[str]) -> dict[str, dict[str, Any]]:
    if not keys:
        return {}
    columns = [getattr(Customer, name) for name in PROFILE_FIELDS]
    rows = await Customer.select(
        Customer.id, Customer.email_normalized, Customer.custom_fields, *columns
    ).where((Customer.merchant == merchant_id) & Customer.email_normalized.is_in(keys))
    return {row["email_normalized"]: row for row in rows}


async def _suppressed(merchant_id: int, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    by_hash = {email_hash(key): key for key in keys}
    rows = await Suppression.select(Suppression.email_hash).where(
        (Suppression.merchant == merchant_id) & Suppression.email_hash.is_in(list(by_hash))
    )
    return {by_hash[row["email_hash"]] for row in rows}


def _changes(current: dict[str, Any], row: ParsedRow) -> dict[str, object]:
    """The fields the file changes; present, non-empty values only. Never consent."""
    changes: dict[str, object] = {
        name: value for name, value in row.values.items() if current.get(name) != value
    }
    if row.custom:
        stored = current.get("custom_fields") or {}
        if isinstance(stored, str):
            stored = json.loads(stored or "{}")
        merged = dict(stored)
        for name, value in row.custom.items():
            # A file has only text: 12345 stored as a number equals "12345" in the file.
            if name not in stored or _as_text(stored[name]) != value:
                merged[name] = value
        if merged != stored:
            changes["custom_fields"] = merged
    return changes


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --- Bulk writes -------------------------------------------------------------------------------
# One executemany per statement and batch, on the batch transaction's own connection: building
# 1,000 ORM objects per batch cost several times what the database did. The SQL is the same on
# both engines; only the drivers' placeholders differ (sqlite3 "?", asyncpg "$n").

_NEW_CUSTOMER_COLUMNS: tuple[str, ...] = (
    "merchant",
    "email",
    "email_normalized",
    "email_status",
    "subscribed",
    "source",
    "custom_fields",
    "created_at",
    "updated_at",
    "purchase_count",
    "refund_count",
    "lifetime_value_minor",
    *PROFILE_FIELDS,
)
#: What a new customer has where the file has no value (the table's defaults).
_PROFILE_DEFAULTS: dict[str, object] = {
    name: None if name == "birth_date" else ("non_member" if name == "customer_type" else "")
    for name in PROFILE_FIELDS
}
_INSERT_CUSTOMER = "INSERT INTO customer ({}) VALUES ({})".format(  # noqa: S608 - constant names
    ", ".join(f'"{c}"' for c in _NEW_CUSTOMER_COLUMNS), ", ".join("?" * len(_NEW_CUSTOMER_COLUMNS))
)
#: Absent values are NULL and keep what is stored: only present, non-empty cells overwrite.
_UPDATE_CUSTOMER = (
    "UPDATE customer SET "  # noqa: S608 - column names are this module's constants
    + ", ".join(f'"{c}" = COALESCE(?, "{c}")' for c in (*PROFILE_FIELDS, "custom_fields"))
    + ', "updated_at" = ? WHERE "id" = ? AND "merchant" = ?'
)
_INSERT_CONSENT = (
    'INSERT INTO consent_event ("merchant", "customer", "action", "source", "email", "ip",'
    ' "user_agent", "wording_version", "actor", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
)
_INSERT_ISSUE = (
    'INSERT INTO import_issue ("merchant", "job", "row_number", "email", "column", "kind",'
    ' "message") VALUES (?, ?, ?, ?, ?, ?, ?)'
)


def _numbered(sql: str) -> str:
    """sqlite3's "?" placeholders as asyncpg's "$1, $2, …" (our SQL has no other "?")."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


async def _executemany(sql: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    db = Customer._meta.db
    current = db.current_transaction.get()
    if current is None:
        raise RuntimeError("bulk writes run inside the batch's transaction")
    statement = _numbered(sql) if database.is_postgres(db) else sql
    await current.connection.executemany(statement, rows)


async def _update_changed(merchant_id: int, updates: list[tuple[int, dict[str, object]]]) -> None:
    moment = _now()
    await _executemany(
        _UPDATE_CUSTOMER,
        [
            (
                *(changes.get(name) for name in (*PROFILE_FIELDS, "custom_fields")),
                moment,
                customer_id,
                merchant_id,
            )
            for customer_id, changes in updates
        ],
    )


async def _insert_new(job: dict[str, Any], rows: list[ParsedRow]) -> list[int]:
    if not rows:
        return []
    merchant_id = int(job["merchant"])
    if job["mark_verified"]:
        status, action, wording = "verified", "confirmed", DECLARED_WORDING
    elif job["send_optin"]:
        status, action, wording = "pending", "requested", OPTIN_WORDING_VERSION
    else:
        status, action, wording = "unverified", "", ""
    moment = _now()
    await _executemany(
        _INSERT_CUSTOMER,
        [
            (
                merchant_id,
                row.email,
                row.email_normalized,
                status,
                True,
                "import",
                json.dumps(row.custom, ensure_ascii=False),
                moment,
                moment,
                0,
                0,
                0,
                *(row.values.get(name, default) for name, default in _PROFILE_DEFAULTS.items()),
            )
            for row in rows
        ],
    )
    by_key = {row.email_normalized: row for row in rows}
    inserted = await Customer.select(Customer.id, Customer.email_normalized).where(
        (Customer.merchant == merchant_id) & Customer.email_normalized.is_in(list(by_key))
    )
    await _record_type_changes(
        job,
        [
            (int(found["id"]), "", str(typed))
            for found in inserted
            if (typed := by_key[found["email_normalized"]].values.get("customer_type"))
            not in (None, "non_member")
        ],
        moment,
    )
    if action:
        await _executemany(
            _INSERT_CONSENT,
            [
                (
                    merchant_id,
                    int(found["id"]),
                    action,
                    "import",
                    by_key[found["email_normalized"]].email,
                    "",
                    "",
                    wording,
                    str(job["actor"]),
                    moment,
                )
                for found in inserted
            ],
        )
    return [int(found["id"]) for found in inserted]


async def _record_type_changes(
    job: dict[str, Any], changes: list[tuple[int, str, str]], moment: datetime | None = None
) -> None:
    """The customers' type history (customers.services.loyalty), one executemany a batch."""
    when = moment or _now()
    await _executemany(
        loyalty.INSERT_TYPE_CHANGE,
        [
            (int(job["merchant"]), customer_id, old, new, "import", str(job["actor"]), when)
            for customer_id, old, new in changes
        ],
    )


def _enqueue_optin(customer_ids: list[int]) -> None:
    """Queue the opt-in mails once the batch is committed. A failure to queue leaves those
    addresses pending without ``optin_sent_at``: the marketer can resend from the customer."""
    from customers import actors  # actors import this module: import late

    send = getattr(actors, "send_optin_email", None)
    if send is None:
        log.warning("no opt-in actor: %d opt-in mails not queued", len(customer_ids))
        return
    for customer_id in customer_ids:
        try:
            send.send(customer_id)
        except Exception:
            log.exception("could not queue the opt-in e-mail for customer %s", customer_id)
