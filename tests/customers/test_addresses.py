"""Addresses beyond ASCII, one rule (customers.schemas): a non-ASCII local part
(``jürgen@example.de``) needs SMTPUTF8, which this installation does not use, so every door
refuses it with that reason; an internationalised domain (``kunde@bäckerei.de``) is accepted,
and whatever sends (campaigns, the opt-in mail) puts it on the wire IDNA-encoded. On SQLite
and PostgreSQL, with real jobs and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from accounts.schemas import MerchantOut, UserOut
from campaigns.sending import dispatch
from campaigns.sending.progress import progress
from customers.schemas import NEEDS_SMTPUTF8, CustomerCreate, wire_address
from customers.services import customers
from customers.tables import Customer
from loyalmail.errors import ValidationFailed
from quota import services as quota
from tests.campaigns.test_api import auth, branded
from tests.campaigns.test_sending import a_campaign
from tests.conftest import Jobs, login
from tests.customers.test_imports import apply, csv_bytes, issues, preview
from tests.smtp import mail_to, recipients_in

UTF8_LOCAL = "jürgen@example.de"
IDNA_DOMAIN = "kunde@bäckerei.de"
IDNA_WIRE = "kunde@xn--bckerei-5wa.de"
GERMAN_REASON = (
    "Diese Adresse braucht einen internationalisierten Mailserver (SMTPUTF8), den diese"
    " Installation nicht verwendet; bitte verwenden Sie eine andere Adresse."
)


async def stored(merchant: MerchantOut) -> list[str]:
    rows = await Customer.select(Customer.email).where(Customer.merchant == merchant.id)
    return sorted(str(r["email"]) for r in rows)


def test_the_wire_form_is_idna_2008_and_a_utf8_local_part_has_none() -> None:
    assert wire_address(IDNA_DOMAIN) == IDNA_WIRE
    # IDNA 2008 keeps ß (Python's "idna" codec, IDNA 2003, made it "strasse.de": another
    # domain, somebody else's mailbox).
    assert wire_address("kunde@straße.de") == "kunde@xn--strae-oqa.de"
    assert wire_address("plain@example.com") == "plain@example.com"
    try:
        wire_address(UTF8_LOCAL)
    except ValidationFailed as exc:
        assert exc.message == NEEDS_SMTPUTF8
    else:
        raise AssertionError("a non-ASCII local part has no ASCII form")


async def test_the_import_names_the_reason_per_row_and_takes_the_idna_domain(
    merchant: MerchantOut, jobs: Jobs
) -> None:
    content = csv_bytes("email,first_name", f"{UTF8_LOCAL},Jürgen", f"{IDNA_DOMAIN},Kunde")
    job = await preview(merchant, jobs, content)
    assert (job.rows_total, job.rows_new, job.rows_invalid) == (2, 1, 1), job.error
    assert await issues(merchant, job) == [
        f"row 2: '{UTF8_LOCAL}' needs an internationalised mail server (SMTPUTF8), which this"
        " installation does not use; please use another address"
    ]
    job = await apply(merchant, jobs, job)
    assert job.rows_new == 1
    assert await stored(merchant) == [IDNA_DOMAIN]


async def test_the_api_refuses_a_utf8_local_part_with_the_reason(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    refused = await client.post(
        "/api/customers",
        json={"email": UTF8_LOCAL, "send_optin": False},
        headers=auth(api_token),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == NEEDS_SMTPUTF8
    assert refused.json()["fields"] == {"email": NEEDS_SMTPUTF8}
    made = await client.post(
        "/api/customers",
        json={"email": IDNA_DOMAIN, "send_optin": False},
        headers=auth(api_token),
    )
    assert made.status_code == 201, made.text
    # Changing an address to one that cannot be sent to is refused the same way.
    changed = await client.patch(
        f"/api/customers/{made.json()['id']}", json={"email": UTF8_LOCAL}, headers=auth(api_token)
    )
    assert changed.status_code == 422 and changed.json()["detail"] == NEEDS_SMTPUTF8
    assert await stored(merchant) == [IDNA_DOMAIN]


async def test_the_add_customer_page_says_why(
    client: Any, merchant: MerchantOut, owner: UserOut, no_background_jobs: None
) -> None:
    csrf = await login(client, owner)
    refused = await client.post(
        "/customers/new", headers={"x-csrf-token": csrf}, data={"email": UTF8_LOCAL}
    )
    assert refused.status_code == 422 and NEEDS_SMTPUTF8 in refused.text
    created = await client.post(
        "/customers/new",
        headers={"x-csrf-token": csrf},
        data={"email": IDNA_DOMAIN},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert await stored(merchant) == [IDNA_DOMAIN]


async def test_the_sign_up_page_says_why_in_the_visitors_language(
    client: Any, merchant: MerchantOut, no_background_jobs: None
) -> None:
    page = f"/r/signup/{merchant.slug}"
    form = {"email": UTF8_LOCAL, "consent": "yes", "leave_empty": ""}
    refused = await client.post(page + "?lang=de", data=form)
    assert refused.status_code == 422
    assert GERMAN_REASON in refused.text
    refused = await client.post(page + "?lang=en", data=form)
    assert refused.status_code == 422 and NEEDS_SMTPUTF8 in refused.text
    assert await stored(merchant) == []
    done = await client.post(page, data={**form, "email": IDNA_DOMAIN})
    assert done.status_code == 200 and "Please check your inbox" in done.text
    assert await stored(merchant) == [IDNA_DOMAIN]


async def test_the_optin_mail_goes_to_the_idna_domain(
    merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    address = f"kunde.{merchant.slug}.{jobs.kind}@bäckerei.de"
    await customers.create_customer(merchant.id, CustomerCreate(email=address, send_optin=True))
    wire = address.replace("bäckerei.de", "xn--bckerei-5wa.de")
    message = await mail_to(smtp, wire)
    assert message["To"].addresses[0].addr_spec == wire


async def test_a_campaign_reaches_idna_domains_in_their_punycode_form(
    merchant: MerchantOut, jobs: Jobs, smtp: Path
) -> None:
    await branded(merchant)
    await quota.buy_pack(merchant.id, reference=f"pack-{merchant.slug}")
    tag = f"{merchant.slug}.{jobs.kind}"
    addresses = {
        f"kunde.{tag}@bäckerei.de": f"kunde.{tag}@xn--bckerei-5wa.de",
        f"kunde.{tag}@straße.de": f"kunde.{tag}@xn--strae-oqa.de",
    }
    for address in addresses:
        created = await customers.create_customer(
            merchant.id, CustomerCreate(email=address, send_optin=False)
        )
        await Customer.update({Customer.email_status: "verified", Customer.subscribed: True}).where(
            Customer.id == created.id
        )
    campaign_id = await a_campaign(merchant)
    await dispatch.send_now(merchant.id, campaign_id)
    await asyncio.to_thread(jobs.drain)
    done = await progress(merchant.id, campaign_id)
    assert (done.status, done.sent, done.skipped) == ("sent", 2, 0)
    arrived = await asyncio.to_thread(recipients_in, smtp)
    for wire in addresses.values():
        assert arrived.count(wire) == 1, (wire, arrived)
    assert not any("strasse.de" in to for to in arrived)
