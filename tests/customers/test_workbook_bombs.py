"""Hostile workbooks (issue 21, finding 1): zip bombs and blank-row floods are refused with the
limit they broke, the parsing process stays small, and real workbooks still import.

The bombs are built at test time (hostile_payloads.write_workbook_bomb): 4.4 MB or less on
disk, 1,000 MiB or 32 million rows unpacked. Each is parsed in a subprocess of its own so its
peak RSS is its own; before the checks, the first two took the worker past 2 GB and the third
ran for 13 minutes.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from accounts.schemas import MerchantOut
from customers.services.exports import template_xlsx
from customers.services.import_rows import open_rows
from customers.tables import Customer
from loyalmail.errors import ValidationFailed
from tests.conftest import Jobs
from tests.customers.test_imports import apply, preview, stored, upload
from tests.loyalmail.hostile_payloads import WORKBOOK_BOMBS, WorkbookBomb, write_workbook_bomb

ROOT = Path(__file__).resolve().parents[2]
PEAK_RSS_LIMIT_MB = 300
SECONDS_LIMIT = 60
ROWS_REFUSED = "rows (blank rows count). Save it as CSV or remove the empty rows."

#: What the import worker does with a file (open it, read every row), in a fresh process that
#: reports its own peak RSS. "streamed" turns the zip directory's checks off, as if the sizes
#: it declares were lies: the caps applied while unpacking must stop the bomb on their own.
CHILD = """
import json, resource, sys, time
from pathlib import Path
from customers.services.import_rows import open_rows
from customers.services.workbook_guard import WorkbookLimits, check_workbook
from loyalmail.errors import ValidationFailed

def peak_rss_mb():
    # VmHWM, not getrusage: ru_maxrss keeps the forking parent's peak across exec (pytest's).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")

# A safety net for the machine running the tests, far above the limit asserted.
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
started, message = time.monotonic(), ""
try:
    if sys.argv[2] == "streamed":
        check_workbook(Path(sys.argv[1]), WorkbookLimits(max_total_bytes=2**40, max_ratio=2**40))
    with open_rows(Path(sys.argv[1]), "xlsx") as source:
        for _row in source.rows:
            pass
except ValidationFailed as exc:
    message = exc.message
print(json.dumps({
    "message": message,
    "seconds": time.monotonic() - started,
    "peak_mb": peak_rss_mb(),
}))
"""

#: The limit each bomb meets first: the zip directory (declared), or while unpacking (streamed).
EXPECTED: dict[tuple[WorkbookBomb, str], str] = {
    ("cell", "declared"): "The workbook unpacks to more than 400 MB.",
    ("shared_string", "declared"): "The workbook unpacks to more than 400 MB.",
    ("blank_rows", "declared"): "unpacks to more than 100 times its packed size",
    ("cell", "streamed"): "A cell (row 2) holds more than 32,767 characters",
    ("shared_string", "streamed"): "A cell (a shared text) holds more than 32,767 characters",
    ("blank_rows", "streamed"): f"more than 1,048,576 {ROWS_REFUSED}",
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[WorkbookBomb, Path]:
    directory = tmp_path_factory.mktemp("workbook-bombs")
    return {kind: write_workbook_bomb(directory / f"{kind}.xlsx", kind) for kind in WORKBOOK_BOMBS}


@pytest.mark.parametrize("checks", ["declared", "streamed"])
@pytest.mark.parametrize("kind", WORKBOOK_BOMBS)
def test_a_workbook_bomb_is_refused_in_bounded_memory_and_time(
    bombs: dict[WorkbookBomb, Path], kind: WorkbookBomb, checks: str
) -> None:
    path = bombs[kind]
    assert path.stat().st_size < 5_000_000  # small on disk
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CHILD, str(path), checks],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS_LIMIT * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{kind} ({checks}): peak RSS {result['peak_mb']:.0f} MB, {result['seconds']:.1f} s")
    assert EXPECTED[(kind, checks)] in result["message"]
    assert result["peak_mb"] < PEAK_RSS_LIMIT_MB
    assert result["seconds"] < SECONDS_LIMIT


def test_an_entry_larger_than_it_declares_is_refused(tmp_path: Path) -> None:
    """A central directory that understates the sheet's size (by half, so no size or ratio
    check sees it): Python's zipfile stops at the declared size and then finds the checksum
    wrong. The file is refused as damaged before openpyxl reads a row; before, openpyxl's
    BadZipFile came in the middle of the rows and crashed the job (retried, then stuck)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["email", "first_name"])
    for n in range(2000):
        sheet.append([f"person{n}@example.com", "A" * 100])
    path = tmp_path / "liar.xlsx"
    workbook.save(path)
    with zipfile.ZipFile(path) as archive:
        half = archive.getinfo("xl/worksheets/sheet1.xml").file_size // 2
    path.write_bytes(_declare_size(path.read_bytes(), b"xl/worksheets/sheet1.xml", half))
    with pytest.raises(ValidationFailed, match=r"cannot be opened \(BadZipFile\)"):
        with open_rows(path, "xlsx") as source:
            for _row in source.rows:
                pass


def _declare_size(data: bytes, name: bytes, size: int) -> bytes:
    """The archive with ``name``'s uncompressed size in the central directory rewritten."""
    out, at = bytearray(data), 0
    while (at := out.find(b"PK\x01\x02", at)) >= 0:
        (name_length,) = struct.unpack_from("<H", out, at + 28)
        if out[at + 46 : at + 46 + name_length] == name:
            struct.pack_into("<I", out, at + 24, size)
        at += 4
    return bytes(out)


def far_row_workbook(directory: Path) -> bytes:
    """A workbook whose second row is numbered 2,000,000 (openpyxl cannot write one)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["email", "first_name"])
    sheet.cell(row=1_048_576, column=1, value="late@example.com")  # Excel's last row
    saved, path = directory / "last.xlsx", directory / "far.xlsx"
    workbook.save(saved)
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w") as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"1048576", b"2000000")
            target.writestr(entry, content)
    return path.read_bytes()


async def test_a_row_past_the_limit_fails_the_job_with_the_message(
    merchant: MerchantOut, jobs: Jobs, tmp_path: Path
) -> None:
    """A tiny file whose one row is numbered 2,000,000: openpyxl would read two million rows.
    The job fails with the limit and advice, and writes no customer."""
    job = await preview(merchant, jobs, far_row_workbook(tmp_path), name="far.xlsx")
    assert job.status == "failed"
    assert job.error.startswith("The workbook has more than 1,048,576 rows (blank rows count).")
    assert await Customer.count().where(Customer.merchant == merchant.id) == 0


async def test_a_declared_bomb_is_refused_at_upload(merchant: MerchantOut, tmp_path: Path) -> None:
    path = write_workbook_bomb(tmp_path / "bomb.xlsx", "blank_rows", rows=2_000_000)
    stored_path = stored("bomb.xlsx", path.read_bytes())
    with pytest.raises(ValidationFailed, match="more than 100 times its packed size"):
        await upload(merchant, "bomb.xlsx", stored_path)
    assert not stored_path.exists()


async def test_the_template_and_a_few_thousand_rows_still_import(
    merchant: MerchantOut, jobs: Jobs, tmp_path: Path
) -> None:
    template = await template_xlsx()
    workbook = openpyxl.load_workbook(template)
    sheet = workbook.worksheets[0]
    for n in range(3000):
        sheet.append([f"person{n}@example.com", f"First{n}", "Last", "female", "1990-01-02"])
    path = tmp_path / "many.xlsx"
    workbook.save(path)
    job = await preview(merchant, jobs, path.read_bytes(), name="many.xlsx")
    assert (job.status, job.rows_new, job.rows_invalid) == ("previewed", 3002, 0), job.error
    job = await apply(merchant, jobs, job)
    assert job.status == "done"
    assert await Customer.count().where(Customer.merchant == merchant.id) == 3002


async def test_the_api_answers_a_bomb_with_422_and_shows_a_failed_job_s_message(
    client: Any, api_token: str, jobs: Jobs, tmp_path: Path
) -> None:
    headers = {"authorization": f"Bearer {api_token}"}
    bomb = write_workbook_bomb(tmp_path / "bomb.xlsx", "blank_rows", rows=2_000_000)
    refused = await client.post(
        "/api/imports", files={"file": ("bomb.xlsx", bomb.read_bytes())}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert "more than 100 times its packed size" in refused.json()["detail"]
    created = await client.post(
        "/api/imports", files={"file": ("far.xlsx", far_row_workbook(tmp_path))}, headers=headers
    )
    assert created.status_code == 202, created.text
    jobs.drain()
    job = (await client.get(f"/api/imports/{created.json()['id']}", headers=headers)).json()
    assert job["status"] == "failed"
    assert f"more than 1,048,576 {ROWS_REFUSED}" in job["error"]
