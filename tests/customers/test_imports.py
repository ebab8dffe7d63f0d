"""Imports as a user meets them: preview counts, apply, reruns, consent, suppression, bad files.

Every test runs the real actors through the broker (in-process and Redis) and the real
database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, CustomerUpdate
from customers.services import customers as customer_service
from customers.services import imports
from customers.services.imports import ImportJobOut, ImportOptions
from customers.services.suppression import suppress
from customers.tables import ConsentEvent, Customer, ImportJob
from loyalmail.catcher import read_outbox, start_catcher
from loyalmail.errors import ValidationFailed
from loyalmail.settings import get_settings, reset_settings_cache
from tests.conftest import Jobs

HEADER = "email,first_name,last_name,city,customer_type"


def stored(name: str, content: bytes) -> Path:
    directory = get_settings().import_dir
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}{Path(name).suffix}"
    path.write_bytes(content)
    return path


async def upload(merchant: MerchantOut, name: str, stored_path: Path) -> ImportJobOut:
    """What the upload does with a stored file: register it and queue its preview."""
    return await imports.create_job(
        merchant.id,
        filename=name,
        stored_path=stored_path,
        options=ImportOptions(),
        created_by=None,
        actor="",
    )


async def preview(
    merchant: MerchantOut, jobs: Jobs, content: bytes, name: str = "list.csv", **options: bool
) -> ImportJobOut:
    job = await imports.create_job(
        merchant.id,
        filename=name,
        stored_path=stored(name, content),
        options=ImportOptions(**options),
        created_by=None,
        actor="marketer@shop.example",
    )
    jobs.drain()
    return await imports.get_job(merchant.id, job.id)


async def apply(merchant: MerchantOut, jobs: Jobs, job: ImportJobOut) -> ImportJobOut:
    await imports.start_apply(merchant.id, job.id)
    jobs.drain()
    return await imports.get_job(merchant.id, job.id)


async def issues(merchant: MerchantOut, job: ImportJobOut) -> list[str]:
    page = await imports.list_issues(merchant.id, job.id, per_page=1000)
    return [issue.message for issue in page.items]


async def customer(merchant: MerchantOut, email: str) -> dict[str, Any] | None:
    return (
        await Customer.select()
        .where((Customer.merchant == merchant.id) & (Customer.email_normalized == email.lower()))
        .first()
    )


async def add(merchant: MerchantOut, email: str, **values: Any) -> int:
    created = await customer_service.create_customer(
        merchant.id, CustomerCreate(email=email, send_optin=False, **values)
    )
    return created.id


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


async def test_preview_classifies_every_row_and_writes_no_customer(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    await add(merchant, "same@example.com", first_name="Sam", city="Bonn")
    await add(merchant, "moved@example.com", first_name="Mo", city="Bonn")
    await suppress(merchant.id, "gone@example.com", "erased")
    content = csv_bytes(
        HEADER,
        "new@example.com,Nina,New,Berlin,loyal",
        "same@example.com,Sam,,Bonn,",
        "MOVED@example.com,,,Köln,",
        "gone@example.com,Gina,,,",
        ",No,Address,,",
        "bob@@example,Bob,,,",
        "New@Example.com,Nina again,,,",
        "bad-type@example.com,,,,gold",
    )
    job = await preview(merchant, jobs, content)
    assert job.status == "previewed", job.error
    assert (job.rows_total, job.rows_new, job.rows_updated, job.rows_unchanged) == (8, 1, 1, 1)
    assert (job.rows_invalid, job.rows_suppressed) == (4, 1)
    messages = await issues(merchant, job)
    assert "row 7: 'bob@@example' is not a valid e-mail address" in messages
    assert any(m.startswith("row 8: duplicate of row 2") for m in messages)
    assert any(m.startswith("row 5: gone@example.com was erased") for m in messages)
    assert any("row 9: customer_type 'gold' is not a customer type" in m for m in messages)
    assert await customer(merchant, "new@example.com") is None
    moved = await customer(merchant, "moved@example.com")
    assert moved is not None and moved["city"] == "Bonn"


async def test_apply_writes_new_and_updated_and_logs_consent(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    await add(merchant, "known@example.com", first_name="Kim", last_name="Known", city="Bonn")
    content = csv_bytes(
        "email,first_name,last_name,birth_date,country,locale,custom.member_number,custom.tier",
        "fresh@example.com,Frida,Fresh,1990-02-03,de,de-at,M-1,gold",
        "Known@Example.com,,Kraft,,,,M-2,",
    )
    job = await apply(merchant, jobs, await preview(merchant, jobs, content, mark_verified=True))
    assert job.status == "done" and job.finished_at is not None
    assert (job.rows_new, job.rows_updated, job.rows_invalid) == (1, 1, 0)
    fresh = await customer(merchant, "fresh@example.com")
    assert fresh is not None
    assert (fresh["first_name"], fresh["birth_date"], fresh["country"], fresh["locale"]) == (
        "Frida",
        date(1990, 2, 3),
        "DE",
        "de_AT",
    )
    assert fresh["email_status"] == "verified" and fresh["source"] == "import"
    out = await customer_service.get_customer(merchant.id, fresh["id"])
    assert out.custom_fields == {"member_number": "M-1", "tier": "gold"}
    known = await customer(merchant, "known@example.com")
    assert known is not None
    # Only present, non-empty cells overwrite: the empty first_name kept "Kim".
    assert (known["first_name"], known["last_name"], known["city"]) == ("Kim", "Kraft", "Bonn")
    assert known["email"] == "known@example.com"
    events = await ConsentEvent.select().where(ConsentEvent.customer == fresh["id"])
    assert [(e["action"], e["source"], e["actor"]) for e in events] == [
        ("confirmed", "import", "marketer@shop.example")
    ]
    assert not await ConsentEvent.exists().where(ConsentEvent.customer == known["id"])


async def test_running_apply_twice_and_reimporting_change_nothing(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    content = csv_bytes(HEADER, "a@example.com,Ann,,,", "b@example.com,Ben,,,member")
    job = await apply(merchant, jobs, await preview(merchant, jobs, content))
    assert (job.status, job.rows_new) == ("done", 2)
    # The same message delivered again (a redelivery after a worker restart) does nothing.
    from customers import actors

    actors.apply_import.send(merchant.id, job.id)
    jobs.drain()
    again = await imports.get_job(merchant.id, job.id)
    assert (again.status, again.rows_new) == ("done", 2)
    assert await Customer.count().where(Customer.merchant == merchant.id) == 2
    second = await apply(merchant, jobs, await preview(merchant, jobs, content))
    assert (second.rows_new, second.rows_updated, second.rows_unchanged) == (0, 0, 2)
    assert await Customer.count().where(Customer.merchant == merchant.id) == 2


async def test_a_crash_leaves_whole_batches_and_the_rerun_resumes(
    merchant: MerchantOut, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "BATCH_ROWS", 3)
    lines = [HEADER] + [f"c{n}@example.com,C{n},,," for n in range(8)] + ["c1@example.com,X,,,"]
    job = await preview(merchant, jobs, csv_bytes(*lines))
    assert (job.rows_new, job.rows_invalid) == (8, 1)
    # Switched by hand, not by start_apply: the worker must not run it alongside this test.
    await ImportJob.update({ImportJob.status: "importing"}).where(ImportJob.id == job.id)
    real = imports._process_batch
    calls = 0

    async def crash_on_second_batch(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("worker died")
        await real(*args, **kwargs)

    monkeypatch.setattr(imports, "_process_batch", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        await imports.apply(merchant.id, job.id)
    halfway = await imports.get_job(merchant.id, job.id)
    assert (halfway.status, halfway.rows_processed, halfway.rows_new) == ("importing", 4, 3)
    assert "retried automatically" in halfway.error
    assert await Customer.count().where(Customer.merchant == merchant.id) == 3
    monkeypatch.setattr(imports, "_process_batch", real)
    await imports.apply(merchant.id, job.id)
    done = await imports.get_job(merchant.id, job.id)
    assert (done.status, done.rows_total, done.rows_new, done.rows_invalid) == ("done", 9, 8, 1)
    assert done.error == ""
    assert await Customer.count().where(Customer.merchant == merchant.id) == 8
    assert await issues(merchant, done) == [
        "row 10: duplicate of row 3 (c1@example.com is in the file twice)"
    ]


async def test_an_import_never_lowers_consent(merchant: MerchantOut, jobs: Jobs) -> None:
    quiet = await add(merchant, "quiet@example.com")
    await customer_service.update_customer(merchant.id, quiet, CustomerUpdate(subscribed=False))
    await Customer.update({Customer.email_status: "verified"}).where(Customer.id == quiet)
    content = csv_bytes(HEADER, "QUIET@example.com,Quentin,,Ulm,")
    job = await apply(merchant, jobs, await preview(merchant, jobs, content))
    assert job.rows_updated == 1
    row = await customer(merchant, "quiet@example.com")
    assert row is not None
    assert (row["first_name"], row["email_status"], row["subscribed"]) == (
        "Quentin",
        "verified",
        False,
    )
    # Declaring addresses confirmed applies to new ones only: a pending one stays pending.
    pending = await add(merchant, "pending@example.com")
    await Customer.update({Customer.email_status: "pending"}).where(Customer.id == pending)
    job = await apply(
        merchant,
        jobs,
        await preview(
            merchant, jobs, csv_bytes(HEADER, "pending@example.com,P,,,"), mark_verified=True
        ),
    )
    row = await customer(merchant, "pending@example.com")
    assert row is not None and row["email_status"] == "pending" and job.rows_updated == 1


async def test_an_erased_address_stays_out(merchant: MerchantOut, jobs: Jobs) -> None:
    erased = await add(merchant, "erased@example.com", first_name="Eva")
    await customer_service.erase_customer(merchant.id, erased)
    content = csv_bytes(HEADER, "Erased@Example.com,Eva,,,", "kept@example.com,Kai,,,")
    job = await apply(merchant, jobs, await preview(merchant, jobs, content, mark_verified=True))
    assert (job.rows_new, job.rows_suppressed) == (1, 1)
    assert await customer(merchant, "erased@example.com") is None
    page = await imports.list_issues(merchant.id, job.id)
    assert [(i.row_number, i.kind) for i in page.items] == [(2, "suppressed")]


async def test_missing_email_column_names_the_columns_found(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    job = await preview(merchant, jobs, csv_bytes("Name,Mail Adress,City", "Ann,a@x.de,Bonn"))
    assert job.status == "failed"
    assert job.error == (
        "The file has no 'email' column. Columns found: 'Name', 'Mail Adress', 'City'."
    )


async def test_empty_file_is_refused_and_header_only_fails(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    path = stored("empty.csv", b"")
    with pytest.raises(ValidationFailed, match="The file is empty"):
        await upload(merchant, "empty.csv", path)
    assert not path.exists()
    job = await preview(merchant, jobs, csv_bytes(HEADER))
    assert job.status == "failed" and "no customers" in job.error


async def test_windows_1252_file_is_read_and_the_note_says_so(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    content = csv_bytes(HEADER, "jose@example.com,José,Müller,Zürich,", encoding="cp1252")
    job = await apply(merchant, jobs, await preview(merchant, jobs, content))
    assert job.status == "done" and job.rows_new == 1
    assert any("Windows-1252" in note for note in job.notes)
    row = await customer(merchant, "jose@example.com")
    assert row is not None and (row["first_name"], row["last_name"], row["city"]) == (
        "José",
        "Müller",
        "Zürich",
    )


async def test_bytes_that_are_no_known_text_encoding_fail_with_advice(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    # 0x81 is undefined in Windows-1252 and invalid as UTF-8.
    job = await preview(merchant, jobs, b"email,first_name\r\na@example.com,\x81\x8d\r\n")
    assert job.status == "failed" and "Save it as CSV UTF-8" in job.error


async def test_semicolon_and_tab_files_with_bom(merchant: MerchantOut, jobs: Jobs) -> None:
    semicolon = "\ufeffemail;first_name;city\r\nsemi@example.com;Semi;Köln, Innenstadt\r\n"
    job = await apply(merchant, jobs, await preview(merchant, jobs, semicolon.encode()))
    assert job.rows_new == 1, job.error
    row = await customer(merchant, "semi@example.com")
    assert row is not None and row["city"] == "Köln, Innenstadt"
    tab = b"email\tfirst_name\r\ntab@example.com\tTabea\r\n"
    job = await apply(merchant, jobs, await preview(merchant, jobs, tab))
    assert job.rows_new == 1
    assert (await customer(merchant, "tab@example.com") or {}).get("first_name") == "Tabea"


async def test_malformed_rows_and_formula_cells_get_report_lines(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    content = csv_bytes(
        HEADER,
        "ok@example.com,Olga,,,",
        "long@example.com,Lars,,,,extra,cells",
        "short@example.com,Sid",
        'formula@example.com,"=HYPERLINK(""http://evil.example"",""x"")",,,',
    )
    job = await preview(merchant, jobs, content)
    assert (job.rows_new, job.rows_invalid) == (1, 3)
    messages = await issues(merchant, job)
    assert "row 3: the row has 7 cells but the header has 5 columns" in messages
    assert "row 4: the row has 2 cells but the header has 5 columns" in messages
    assert any(m.startswith("row 5: first_name '=HYPERLINK(") and "formula" in m for m in messages)


async def test_xlsx_import_reads_dates_numbers_and_refuses_formulas(
    merchant: MerchantOut, jobs: Jobs, tmp_path: Path
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Email", "First Name", "birth_date", "postal_code", "custom.member_number"])
    sheet.append(["xl@example.com", "Xenia", date(1980, 5, 6), 10115, 4711])
    sheet.append([])
    sheet.append(["evil@example.com", "=1+1", None, None, None])
    sheet.append(["not-an-address", "Nobody", None, None, None])
    path = tmp_path / "list.xlsx"
    workbook.save(path)
    job = await preview(merchant, jobs, path.read_bytes(), name="list.xlsx")
    assert (job.status, job.rows_total, job.rows_new, job.rows_invalid) == ("previewed", 3, 1, 2)
    messages = await issues(merchant, job)
    assert messages[0].startswith("row 4: first_name '=1+1'")
    assert messages[1] == "row 5: 'not-an-address' is not a valid e-mail address"
    job = await apply(merchant, jobs, job)
    row = await customer(merchant, "xl@example.com")
    assert row is not None
    assert (row["first_name"], row["birth_date"], row["postal_code"]) == (
        "Xenia",
        date(1980, 5, 6),
        "10115",
    )
    out = await customer_service.get_customer(merchant.id, row["id"])
    assert out.custom_fields == {"member_number": "4711"}


async def test_a_renamed_file_is_refused_by_its_content(merchant: MerchantOut) -> None:
    for name, content in (("fake.xlsx", b"email\na@example.com\n"), ("zip.csv", b"PK\x03\x04..")):
        with pytest.raises(ValidationFailed):
            await imports.create_job(
                merchant.id,
                filename=name,
                stored_path=stored(name, content),
                options=ImportOptions(),
                created_by=None,
                actor="",
            )


@pytest.fixture(scope="module")
def smtp() -> Iterator[Path]:
    """aiosmtpd on a free port, the settings pointing at it for this module."""
    outbox = Path(tempfile.mkdtemp(prefix="loyalmail-import-outbox-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = start_catcher(outbox, host="127.0.0.1", port=port)
    previous = os.environ.get("LOYALMAIL_SMTP_PORT")
    os.environ["LOYALMAIL_SMTP_PORT"] = str(port)
    reset_settings_cache()
    try:
        yield outbox
    finally:
        controller.stop()
        if previous is None:
            os.environ.pop("LOYALMAIL_SMTP_PORT", None)
        else:
            os.environ["LOYALMAIL_SMTP_PORT"] = previous
        reset_settings_cache()


async def test_send_optin_makes_new_addresses_pending_and_mails_them(
    merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    await add(merchant, "already@example.com")
    content = csv_bytes(HEADER, "optin-new@example.com,Olli,,,", "already@example.com,Al,,,")
    job = await apply(merchant, jobs, await preview(merchant, jobs, content, send_optin=True))
    assert (job.rows_new, job.rows_updated) == (1, 1)
    jobs.drain()
    fresh = await customer(merchant, "optin-new@example.com")
    assert fresh is not None and fresh["email_status"] == "pending"
    events = await ConsentEvent.select().where(ConsentEvent.customer == fresh["id"])
    assert [(e["action"], e["source"]) for e in events] == [("requested", "import")]
    recipients = [str(message["To"]) for _path, message in read_outbox(smtp)]
    assert any("optin-new@example.com" in to for to in recipients)
    assert not any("already@example.com" in to for to in recipients)
    already = await customer(merchant, "already@example.com")
    assert already is not None and already["email_status"] == "unverified"
