"""The hostile-input corpus, part 1: stored XSS. Every user-supplied field, entered through
the API, a form or an import file, is shown on every page that shows it as text: escaped,
never as markup. Payloads and the table of cases proven elsewhere: hostile_payloads.py."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import escape

from accounts import services as accounts
from accounts.schemas import MerchantOut, UserOut
from campaigns.tables import Campaign, CampaignRecipient
from customers.services import imports
from customers.tables import Customer
from tests.campaigns.test_api import auth
from tests.conftest import jobs_go_nowhere, login, make_owner
from tests.loyalmail.hostile_payloads import MARK, XSS_MARKUP
from tracking import tokens

#: They create customers and imports, whose jobs must not run behind later tests.
pytestmark = pytest.mark.usefixtures("no_background_jobs")


@pytest.fixture(autouse=True)
def _browser_accept_header(request: pytest.FixtureRequest) -> None:
    # Pages answer errors as HTML only to callers that accept HTML, as a browser does.
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        client.headers["accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


def evil(field: str) -> str:
    """A payload naming its field: a script element and an attribute break-out."""
    return f"<script>{MARK}({field})</script>\"'><img src=x onerror={MARK}({field})>"


#: What a page must never contain: the payloads' markup, unescaped.
FORBIDDEN = (f"<script>{MARK}(", f"<img src=x onerror={MARK}(", *XSS_MARKUP)


def shown_as_text(page: str, field: str) -> bool:
    """The payload is on the page as text: HTML-escaped (quotes too, or only ``<>&`` in an
    element's text, as the e-mail HTML has it), or escaped inside a JSON island."""
    value = evil(field)
    as_json = json.dumps(value)[1:-1]
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027"), ("&", "\\u0026")):
        as_json = as_json.replace(char, code)
    forms = (str(escape(value)), html.escape(value, quote=False), as_json)
    return any(form in page for form in forms)


class _Elements(HTMLParser):
    """What a browser would make of a page: event-handler attributes carrying a payload,
    ``javascript:`` addresses, and script bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.handlers: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = value or ""
            if (name.startswith("on") and MARK in value) or value.lower().startswith("javascript:"):
                self.handlers.append((tag, name, value))
        kind = dict(attrs).get("type") or ""
        self._in_script = tag == "script" and "json" not in kind

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def no_markup(html: str, where: str) -> None:
    """Neither the payloads' markup nor anything a browser would run made of them."""
    for fragment in FORBIDDEN:
        assert fragment not in html, f"{where}: unescaped {fragment!r}"
    elements = _Elements()
    elements.feed(html)
    assert elements.handlers == [], f"{where}: event handlers {elements.handlers}"
    assert not [s for s in elements.scripts if MARK in s], f"{where}: a payload runs as a script"


BRAND_FIELDS = ("name", "publisher", "imprint", "copyright", "street", "city", "opening_hours")


async def hostile_shop(client: Any) -> tuple[MerchantOut, UserOut, str]:
    """A merchant whose every brand text is a payload, set through the API as an
    integration would."""
    from tests.conftest import make_merchant

    merchant = await make_merchant()
    owner = await make_owner(merchant)
    token = (await accounts.create_api_token(merchant.id, evil("token"))).token
    brand = {f: evil(f"brand_{f}") for f in BRAND_FIELDS}
    brand |= {
        "sender_name": evil("sender"),
        "sender_email": "news@shop.example",
        # No spaces: the URL pattern lets it through, so it must be escaped in attributes.
        "logo_url": f'https://x.example/"><img/src=x/onerror={MARK}(logo)>',
        "privacy_policy_url": f"https://x.example/privacy'onmouseover='{MARK}(privacy)",
        "time_zone": "Europe/Berlin",
    }
    answer = await client.put("/api/merchant", json=brand, headers=auth(token))
    assert answer.status_code == 200, answer.text
    return await accounts.get_merchant(merchant.id), owner, token


async def test_every_stored_field_is_text_on_every_page(client: Any) -> None:
    merchant, owner, token = await hostile_shop(client)
    h = auth(token)
    customer = await client.post(
        "/api/customers",
        json={
            "email": "victim@example.com",
            "first_name": evil("first")[:100],
            "last_name": evil("last"),
            "city": evil("city"),
            "custom_fields": {evil("ck")[:64]: evil("cv")},
            "customer_type": "loyal",
            "send_optin": False,
        },
        headers=h,
    )
    assert customer.status_code == 201, customer.text
    customer_id = customer.json()["id"]
    purchase = await client.post(
        f"/api/customers/{customer_id}/purchases",
        json={"amount": "9.90", "reference": evil("ref")},
        headers=h,
    )
    assert purchase.status_code == 201, purchase.text
    await Customer.update({Customer.email_status: "verified", Customer.subscribed: True}).where(
        Customer.id == customer_id
    )
    definition = {"type": "group", "conditions": [{"type": "city", "values": [evil("city")]}]}
    segment = await client.post(
        "/api/segments",
        json={"name": evil("segment"), "description": evil("seg_desc"), "definition": definition},
        headers=h,
    )
    assert segment.status_code == 201, segment.text
    segment_id = segment.json()["id"]
    blocks = [
        {"type": "heading", "text": evil("heading")},
        {"type": "text", "markdown": evil("markdown")},
        {"type": "button", "label": evil("button")[:120], "href": "https://shop.example/"},
        {"type": "image", "src": "https://img.example/a.png", "alt": evil("alt")},
    ]
    campaign = await client.post(
        "/api/campaigns",
        json={
            "name": evil("campaign"),
            "subject": evil("subject"),
            "preheader": evil("preheader"),
            "sender_name": evil("campaign_sender"),
            "audience": {"segment_id": segment_id},
            "blocks": blocks,
        },
        headers=h,
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    # A second campaign that "went out" to the customer: the report, the people list and the
    # recipient's own pages (web version, unsubscribe, preferences).
    sent = await client.post(
        "/api/campaigns",
        json={"name": evil("sent"), "subject": evil("sent_subject"), "blocks": blocks},
        headers=h,
    )
    assert sent.status_code == 201, sent.text
    sent_id = sent.json()["id"]
    now = datetime.now(UTC)
    await Campaign.update(
        {Campaign.status: "sent", Campaign.started_at: now, Campaign.finished_at: now}
    ).where(Campaign.id == sent_id)
    recipient = await CampaignRecipient.insert(
        CampaignRecipient(
            campaign=sent_id,
            merchant=merchant.id,
            customer=customer_id,
            email="victim@example.com",
            email_normalized="victim@example.com",
            status="sent",
            attempts=1,
            sent_at=now,
        )
    ).returning(CampaignRecipient.id)
    data = tokens.TokenData(merchant.id, sent_id, int(recipient[0]["id"]))
    unsubscribe = tokens.make("unsubscribe", data)

    # Which page must show which payload as text (every page is also searched for markup).
    expected: dict[str, tuple[str, ...]] = {
        "/": ("first", "last", "brand_name"),
        "/customers": ("first", "last", "city"),
        f"/customers/{customer_id}": ("first", "last", "city", "cv"),
        f"/customers/{customer_id}/edit": ("first", "last", "city"),
        f"/customers/{customer_id}/activity": ("ref",),
        f"/customers/{customer_id}/erase": (),
        "/customers/signup": ("brand_name",),
        f"/r/signup/{merchant.slug}": ("brand_name",),
        "/segments": ("segment",),
        f"/segments/{segment_id}": ("segment",),
        f"/segments/{segment_id}/members": ("first",),
        "/campaigns": ("campaign", "sent"),
        f"/campaigns/{campaign_id}": ("campaign", "subject", "preheader", "campaign_sender"),
        f"/campaigns/{campaign_id}/audience": ("segment",),
        f"/campaigns/{campaign_id}/layout": (),
        f"/campaigns/{campaign_id}/design": ("heading", "markdown", "button", "alt"),
        f"/campaigns/{campaign_id}/summary": ("campaign", "segment"),
        f"/campaigns/{sent_id}/report": ("sent",),
        "/settings": ("brand_name", "brand_imprint", "sender"),
        "/settings/tokens": ("token",),
        "/quota": (),
        f"/r/view/{tokens.make('view', data)}": ("heading", "brand_imprint"),
        f"/r/unsubscribe/{unsubscribe}": ("brand_name",),
        f"/r/preferences/{unsubscribe}": ("brand_name",),
    }
    await login(client, owner)
    missing = []
    for path, fields in expected.items():
        page = await client.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:500])
        no_markup(page.text, path)
        missing += [(path, f) for f in fields if not shown_as_text(page.text, f)]
        assert f'"><img/src=x/onerror={MARK}(logo)>' not in page.text, path
    assert missing == [], missing
    # The recipient leaves; the report's people list names them (the names are payloads).
    left = await client.post(
        f"/r/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}
    )
    assert left.status_code == 200, left.text
    no_markup(left.text, "unsubscribed")
    report = await client.get(f"/campaigns/{sent_id}/report?activity=unsubscribed")
    assert report.status_code == 200
    no_markup(report.text, "report people")
    section = report.text.split('data-testid="report-people"')[1]
    assert shown_as_text(section, "first") and shown_as_text(section, "last")


def csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


async def test_import_rows_their_report_and_the_file_name_are_text(client: Any) -> None:
    merchant, owner, _token = await hostile_shop(client)
    rows = [
        "email,first_name,last_name,city,customer_type",
        f"ok@example.com,{csv_cell(evil('imp_first'))},{csv_cell(evil('imp_last'))},"
        f"{csv_cell(evil('imp_city'))},loyal",
        # Refused rows whose report line repeats what the file said.
        f"{csv_cell(evil('imp_email'))},a,b,c,loyal",
        f"bad-type@example.com,a,b,c,{csv_cell(evil('imp_type'))}",
    ]
    content = ("\r\n".join(rows) + "\r\n").encode()
    csrf = await login(client, owner)
    # This test runs the import's jobs itself: the session's worker must not run them too.
    with jobs_go_nowhere():
        uploaded = await client.post(
            "/customers/import/",
            data={"_csrf": csrf, "consent": "none"},  # the token first, as the page sends it
            files={"file": (evil("file") + ".csv", content, "text/csv")},
            follow_redirects=False,
        )
    assert uploaded.status_code == 303, uploaded.text
    job_id = int(uploaded.headers["location"].rsplit("/", 1)[1])
    await imports.preview(merchant.id, job_id)  # what the background job does
    issues = await imports.list_issues(merchant.id, job_id, per_page=100)
    assert sorted(i.row_number for i in issues.items) == [3, 4]
    for path in (f"/customers/import/{job_id}", f"/customers/import/{job_id}/status"):
        page = await client.get(path)
        assert page.status_code == 200
        no_markup(page.text, path)
        assert shown_as_text(page.text, "imp_email"), path
    listing = await client.get("/customers/import/")
    no_markup(listing.text, "import list")
    # The name as sent, less any folders ("</script>" has a slash; the client encodes quotes).
    assert f"&lt;img src=x onerror={MARK}(file)&gt;.csv" in listing.text
    with jobs_go_nowhere():
        ran = await client.post(f"/customers/import/{job_id}/run", data={"_csrf": csrf})
    assert ran.status_code in (200, 303), ran.text
    await imports.apply(merchant.id, job_id)
    job = await client.get(f"/customers/import/{job_id}")
    no_markup(job.text, "import report")
    people = await client.get("/customers")
    no_markup(people.text, "customers after the import")
    assert all(shown_as_text(people.text, f) for f in ("imp_first", "imp_last", "imp_city"))
    # Exactly the one good row was written.
    assert await Customer.count().where(Customer.merchant == merchant.id) == 1


async def test_a_refused_form_echoes_the_values_as_text(client: Any) -> None:
    merchant, owner, _token = await hostile_shop(client)
    csrf = await login(client, owner)
    refused = await client.post(
        "/customers/new",
        data={
            "_csrf": csrf,
            "email": evil("form_email")[:254],
            "first_name": evil("form_first"),
            "city": evil("form_city"),
            "country": evil("form_country"),
        },
    )
    assert refused.status_code == 422
    no_markup(refused.text, "refused customer form")
    assert shown_as_text(refused.text, "form_first") and shown_as_text(refused.text, "form_city")
    assert await Customer.count().where(Customer.merchant == merchant.id) == 0
    basics = await client.post(
        "/campaigns/new", data={"_csrf": csrf, "name": evil("form_campaign"), "subject": "{{ x"}
    )
    no_markup(basics.text, "refused campaign form")
    assert basics.status_code in (200, 422), basics.status_code
