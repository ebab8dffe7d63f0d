"""The import API as an integration or a marketer's browser uses it: template, upload, run,
report, and every refusal with a clear 4xx."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl

from accounts.schemas import MerchantOut, UserOut
from customers.tables import Customer
from tests.conftest import Jobs, login, make_merchant


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def upload(
    client: Any,
    headers: dict[str, str],
    content: bytes,
    name: str = "customers.csv",
    **flags: str,
) -> Any:
    return await client.post(
        "/api/imports", files={"file": (name, content)}, data=flags, headers=headers
    )


async def test_csv_template_round_trip(
    client: Any, api_token: str, merchant: MerchantOut, jobs: Jobs
) -> None:
    headers = auth(api_token)
    template = await client.get("/api/imports/template.csv", headers=headers)
    assert template.status_code == 200
    assert template.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(template.content.decode("utf-8-sig"))))
    assert rows[0][0] == "email" and rows[0][-1] == "custom.member_number"
    assert len(rows) == 3
    rows.append(["lena@example.com", "Lena", "Lind", "female", "1999-12-31", "sv", "SE"])
    rows[-1] += ["Malmö", "21119", "", "member", "M-77"]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    created = await upload(client, headers, buffer.getvalue().encode(), send_optin="false")
    assert created.status_code == 202, created.text
    job = created.json()
    # The worker may have started the preview before the answer was written.
    assert job["status"] in {"uploaded", "previewing", "previewed"}
    assert job["filename"] == "customers.csv"
    jobs.drain()
    previewed = (await client.get(f"/api/imports/{job['id']}", headers=headers)).json()
    assert previewed["status"] == "previewed", previewed["error"]
    assert previewed["rows_new"] == 3 and previewed["rows_invalid"] == 0
    assert await Customer.count().where(Customer.merchant == merchant.id) == 0
    ran = await client.post(f"/api/imports/{job['id']}/run", headers=headers)
    # As with the preview: the worker may have finished before the answer was written.
    assert ran.status_code == 202 and ran.json()["status"] in {"importing", "done"}
    jobs.drain()
    done = (await client.get(f"/api/imports/{job['id']}", headers=headers)).json()
    assert (done["status"], done["rows_new"]) == ("done", 3)
    lena = (
        await Customer.select()
        .where(
            (Customer.merchant == merchant.id) & (Customer.email_normalized == "lena@example.com")
        )
        .first()
    )
    assert lena is not None and (lena["city"], lena["customer_type"]) == ("Malmö", "member")
    again = await client.post(f"/api/imports/{job['id']}/run", headers=headers)
    assert again.status_code == 409 and "only after its preview" in again.json()["detail"]


async def test_xlsx_template_round_trip(
    client: Any, api_token: str, merchant: MerchantOut, jobs: Jobs
) -> None:
    headers = auth(api_token)
    template = await client.get("/api/imports/template.xlsx", headers=headers)
    assert template.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(template.content))
    sheet = workbook.worksheets[0]
    assert [c.value for c in sheet[1]][:3] == ["email", "first_name", "last_name"]
    sheet.append(["otto@example.com", "Otto", "", "male", "", "de", "AT", "Wien", "1010"])
    out = io.BytesIO()
    workbook.save(out)
    created = await upload(client, headers, out.getvalue(), name="filled.xlsx")
    assert created.status_code == 202, created.text
    assert created.json()["file_format"] == "xlsx"
    jobs.drain()
    job_id = created.json()["id"]
    assert (await client.get(f"/api/imports/{job_id}", headers=headers)).json()["rows_new"] == 3
    await client.post(f"/api/imports/{job_id}/run", headers=headers)
    jobs.drain()
    listed = (await client.get("/api/imports", headers=headers)).json()
    assert listed[0]["id"] == job_id and listed[0]["status"] == "done"
    assert await Customer.count().where(Customer.merchant == merchant.id) == 3


async def test_report_and_paginated_issues(client: Any, api_token: str, jobs: Jobs) -> None:
    headers = auth(api_token)
    lines = ["email,first_name"] + [f"bad{n}@@x,B{n}" for n in range(5)] + ["ok@example.com,Ok"]
    lines.append("=cmd|' /C calc'!A0,Evil")
    created = await upload(client, headers, "\n".join(lines).encode())
    jobs.drain()
    job_id = created.json()["id"]
    first = (await client.get(f"/api/imports/{job_id}/issues?per_page=2", headers=headers)).json()
    assert first["total"] == 6 and len(first["items"]) == 2
    assert first["items"][0] == {
        "row_number": 2,
        "email": "bad0@@x",
        "column": "email",
        "kind": "invalid",
        "message": "row 2: 'bad0@@x' is not a valid e-mail address",
    }
    third = (
        await client.get(f"/api/imports/{job_id}/issues?per_page=2&page=3", headers=headers)
    ).json()
    assert [i["row_number"] for i in third["items"]] == [6, 8]
    report = await client.get(f"/api/imports/{job_id}/report.csv", headers=headers)
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0] == ["row", "email", "column", "kind", "message"]
    assert len(rows) == 7
    # The bad address is echoed back, but a spreadsheet must not run it.
    assert rows[-1][1] == "'=cmd|' /C calc'!A0"
    bad_page = await client.get(f"/api/imports/{job_id}/issues?per_page=0", headers=headers)
    assert bad_page.status_code == 400 and "detail" in bad_page.json()


async def test_bad_uploads_answer_4xx_and_leave_nothing(
    client: Any, api_token: str, merchant: MerchantOut
) -> None:
    from loyalmail.settings import get_settings

    headers = auth(api_token)
    before = (
        set(get_settings().import_dir.glob("*")) if get_settings().import_dir.exists() else set()
    )
    cases = [
        (await upload(client, headers, b"email\na@x.de\n", name="list.pdf"), "Only .csv and .xlsx"),
        (await upload(client, headers, b"", name="list.csv"), "The file is empty"),
        (await upload(client, headers, b"email\n", name="list.xlsx"), "not an Excel workbook"),
        (
            await upload(client, headers, b"email\na@x.de\n", mark_verified="1", send_optin="1"),
            "Choose one",
        ),
        (await upload(client, headers, b"email\n", mark_verified="maybe"), "true or false"),
        (
            await client.post("/api/imports", json={"file": "x"}, headers=headers),
            "multipart/form-data",
        ),
        (
            await client.post(
                "/api/imports", files={"other": ("a.csv", b"email\n")}, headers=headers
            ),
            "Choose a .csv or .xlsx file",
        ),
    ]
    for response, expected in cases:
        assert response.status_code == 422, response.text
        assert expected in response.json()["detail"]
    after = (
        set(get_settings().import_dir.glob("*")) if get_settings().import_dir.exists() else set()
    )
    assert {p for p in after - before if p.is_file()} == set()
    listed = (await client.get("/api/imports", headers=headers)).json()
    assert listed == []


def _multipart(*parts: bytes) -> bytes:
    return b"".join(b"--B\r\n" + part + b"\r\n" for part in parts) + b"--B--\r\n"


async def test_a_multipart_body_that_cannot_be_parsed_is_a_400_not_a_500(
    client: Any, api_token: str, owner: UserOut
) -> None:
    file_part = b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n'
    huge_header = file_part + b"X-Padding: " + b"x" * 5_000_000 + b"\r\n\r\nemail\r\n"
    no_colon = b"this line is no header\r\n\r\nemail\r\n"
    multipart = {"content-type": "multipart/form-data; boundary=B"}
    message = "The form data could not be read."
    for broken in (huge_header, no_colon):
        api = await client.post(
            "/api/imports", content=_multipart(broken), headers={**auth(api_token), **multipart}
        )
        assert api.status_code == 400, api.text[:300]
        assert api.json()["detail"] == message
    csrf = await login(client, owner)
    token_first = _multipart(
        b'Content-Disposition: form-data; name="_csrf"\r\n\r\n' + csrf.encode(), huge_header
    )
    page_cases = [
        ({"x-csrf-token": csrf}, _multipart(huge_header)),  # the handler's parser
        ({}, token_first),  # the token check's parser reads the first chunk
    ]
    for headers, body in page_cases:
        page = await client.post(
            "/customers/import",
            content=body,
            headers={**headers, **multipart, "accept": "text/html"},
        )
        assert page.status_code == 400, page.text[:300]
        assert message in page.text and "<html" in page.text


async def test_another_merchants_import_is_404(client: Any, api_token: str, jobs: Jobs) -> None:
    created = await upload(client, auth(api_token), b"email\nmine@example.com\n")
    jobs.drain()
    job_id = created.json()["id"]
    other = await make_merchant()
    from accounts import services as accounts

    other_token = (await accounts.create_api_token(other.id, "other")).token
    for path in (f"/{job_id}", f"/{job_id}/issues", f"/{job_id}/report.csv"):
        response = await client.get(f"/api/imports{path}", headers=auth(other_token))
        assert response.status_code == 404, path
        assert response.json()["detail"]
    run = await client.post(f"/api/imports/{job_id}/run", headers=auth(other_token))
    assert run.status_code == 404
    assert (await client.get("/api/imports", headers=auth(other_token))).json() == []
    mine = (await client.get(f"/api/imports/{job_id}", headers=auth(api_token))).json()
    assert mine["status"] == "previewed"


async def test_a_marketer_uploads_with_session_and_csrf(
    client: Any, owner: UserOut, merchant: MerchantOut, jobs: Jobs
) -> None:
    csrf = await login(client, owner)
    accepted = await upload(client, {"x-csrf-token": csrf}, b"email\nsession@example.com\n")
    assert accepted.status_code == 202
    jobs.drain()
    job_id = accepted.json()["id"]
    await client.post(f"/api/imports/{job_id}/run", headers={"x-csrf-token": csrf})
    jobs.drain()
    from customers.tables import ConsentEvent, ImportJob

    job = await ImportJob.select().where(ImportJob.id == job_id).first()
    assert job is not None and job["created_by"] == owner.id and job["actor"] == owner.email
    assert job["status"] == "done"
    assert not await ConsentEvent.exists().where(ConsentEvent.merchant == merchant.id)
