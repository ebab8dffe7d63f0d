"""The campaign pages through the whole app: the list, a new draft, every composer step, the
forms of the steps that work without JavaScript, German, and tenant isolation."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from accounts.schemas import MerchantOut, UserOut
from campaigns import services
from campaigns.pages_text import API_MESSAGES, API_PATTERNS
from campaigns.schemas import Audience, CampaignCreate, CampaignUpdate
from campaigns.tables import Campaign
from customers.schemas import CustomerCreate
from customers.services import customers
from customers.tables import Customer
from loyalmail.errors import NotFound
from segments import services as segments
from segments.schemas import Group, SegmentCreate
from templates.blocks import Block
from tests.campaigns.test_api import branded
from tests.campaigns.test_bounces import sent_messages
from tests.conftest import login, make_merchant
from tracking import events

LOYAL_ONLY = {"type": "group", "conditions": [{"type": "customer_type", "values": ["loyal"]}]}
SUBJECT = "{{ salutation }} – we have an offer for you!"


@pytest.fixture(autouse=True)
def _browser_accept_header(request: pytest.FixtureRequest) -> None:
    # Pages answer errors as HTML only to callers that accept HTML, as a browser does.
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        client.headers["accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


async def _customer(merchant: MerchantOut, email: str, **values: Any) -> int:
    created = await customers.create_customer(
        merchant.id, CustomerCreate(email=email, send_optin=False, **values)
    )
    # What a confirmed opt-in would have written: only such addresses are in a target group.
    await Customer.update(
        {
            Customer.email_status: "verified",
            Customer.confirmed_by_recipient: True,
            Customer.subscribed: True,
        }
    ).where(Customer.id == created.id)
    return created.id


async def _campaign(merchant: MerchantOut, name: str = "Autumn sale", **values: Any) -> int:
    created = await services.create_campaign(merchant.id, CampaignCreate(name=name, **values))
    return created.id


async def _segment(merchant: MerchantOut, name: str) -> int:
    created = await segments.create_segment(
        merchant.id, SegmentCreate(name=name, definition=msgspec.convert(LOYAL_ONLY, Group))
    )
    return created.id


def _input_value(html: str, name: str) -> str:
    found = re.search(rf'<input type="text" name="{name}" value="([^"]*)"', html)
    assert found, f"no input {name}"
    return html_lib.unescape(found.group(1))


def _composer_config(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="composer-config">(.*?)</script>', html, re.DOTALL
    )
    assert found, "the composer's configuration is in the page"
    return json.loads(found.group(1))


def _srcdoc(html: str) -> str:
    found = re.search(r'<iframe sandbox="" [^>]*srcdoc="([^"]*)"', html)
    assert found, "the preview is a sandboxed iframe"
    return html_lib.unescape(found.group(1))


async def test_the_list_explains_what_to_do_then_shows_the_drafts(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await login(client, owner)
    empty = await client.get("/campaigns")
    assert empty.status_code == 200
    assert 'href="/campaigns" aria-current="page"' in empty.text
    assert "No campaigns yet" in empty.text and 'href="/campaigns/new"' in empty.text
    assert "give it a name, write the subject" in empty.text

    segment = await _segment(merchant, "Regulars")
    first = await _campaign(
        merchant, subject=SUBJECT, audience=Audience(predefined="network_members")
    )
    second = await _campaign(merchant, "Second", audience=Audience(segment_id=segment))
    html = (await client.get("/campaigns")).text
    assert "No campaigns yet" not in html
    rows = re.findall(r'data-testid="campaign-row" data-campaign-id="(\d+)"', html)
    assert rows == [str(second), str(first)]  # the last changed first
    assert "Autumn sale" in html and html_lib.escape(SUBJECT, quote=False) in html
    assert "All network members" in html and "Regulars" in html
    assert "Draft" in html and "No subject yet" in html
    assert "Not available yet" not in html  # sending has arrived


async def test_a_new_campaign_is_created_from_its_name_and_layout(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    form = await client.get("/campaigns/new")
    assert form.status_code == 200
    for name in ("Classic newsletter", "Offer", "Birthday greeting"):
        assert name in form.text
    assert 'name="layout" value="classic" checked' in form.text

    refused = await client.post("/campaigns/new", data={"_csrf": csrf, "name": " "})
    assert refused.status_code == 422
    assert "This field is required." in refused.text
    assert await services.list_campaigns(merchant.id) == []

    created = await client.post(
        "/campaigns/new",
        data={"_csrf": csrf, "name": "Summer offer", "layout": "offer"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    (campaign,) = await services.list_campaigns(merchant.id)
    assert created.headers["location"] == f"/campaigns/{campaign.id}?notice=campaign_created"
    assert campaign.name == "Summer offer" and campaign.layout == "offer"
    blocks = msgspec.to_builtins(campaign.blocks)
    assert [block["type"] for block in blocks][:3] == ["heading", "text", "columns"]
    page = await client.get(created.headers["location"])
    assert "The draft was created. Start with the subject." in page.text

    forged = await client.post("/campaigns/new", data={"_csrf": "forged", "name": "x"})
    assert forged.status_code == 403


async def test_every_step_renders_in_order(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await branded(merchant)
    campaign = await _campaign(merchant, subject=SUBJECT)
    await login(client, owner)
    steps = ["", "/audience", "/layout", "/design", "/summary"]
    names = ["1. Basics", "2. Target group", "3. Layout", "4. Design", "5. Summary"]
    for path, name in zip(steps, names, strict=True):
        response = await client.get(f"/campaigns/{campaign}{path}")
        assert response.status_code == 200, path
        html = response.text
        links = re.findall(r'<a href="/campaigns/\d+([a-z/]*)"[^>]*>(\d\. [A-Za-z ]+)</a>', html)
        assert links == list(zip(steps, names, strict=True)), path
        assert f'<a href="/campaigns/{campaign}{path}" aria-current="page">{name}</a>' in html

    design = (await client.get(f"/campaigns/{campaign}/design")).text
    config = _composer_config(design)
    assert config["campaign"]["id"] == campaign
    assert [block["type"] for block in config["campaign"]["blocks"]] == [
        "heading",
        "text",
        "button",
    ]
    assert config["block_order"] == [
        "heading",
        "text",
        "image",
        "button",
        "columns",
        "divider",
        "spacer",
    ]
    assert {"token": "{{ last_name }}", "label": "Last name"} in config["placeholders"]
    assert config["labels"]["bold"] == "Bold"
    assert "/static/composer.js" in design
    # Without JavaScript the design step still shows the saved newsletter, as the sample person.
    frame = _srcdoc(design)
    assert "Hello Alex Example" in frame and merchant.name in frame and "Unsubscribe" in frame
    assert (await client.get("/static/composer.js")).status_code == 200

    summary = (await client.get(f"/campaigns/{campaign}/summary")).text
    assert html_lib.escape(SUBJECT, quote=False) in summary
    assert "Choose a target group." in summary  # the check's problem, with a link to fix it
    assert f'href="/campaigns/{campaign}/audience">Fix it' in summary
    # Not ready (no target group): nothing to send yet, so no "Send" part.
    assert "Not available yet" not in summary and 'data-testid="send"' not in summary
    assert "Hello Alex Example – we have an offer for you!" in summary


async def test_basics_are_saved_through_the_form(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign = await _campaign(merchant)
    csrf = await login(client, owner)
    saved = await client.post(
        f"/campaigns/{campaign}/basics",
        data={
            "_csrf": csrf,
            "name": "Autumn sale 2026",
            "subject": SUBJECT,
            "preheader": "Only this week",
            "sender_name": "Kiez Kaffee",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/campaigns/{campaign}/audience?notice=saved"
    stored = await services.get_campaign(merchant.id, campaign)
    assert (stored.name, stored.subject, stored.preheader, stored.sender_name) == (
        "Autumn sale 2026",
        SUBJECT,
        "Only this week",
        "Kiez Kaffee",
    )
    html = (await client.get(f"/campaigns/{campaign}")).text
    assert _input_value(html, "subject") == SUBJECT
    assert "Saved." in (await client.get(saved.headers["location"])).text


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("Hello\r\nBcc: everyone@example.com", "Must be a single line without control characters."),
        ("{{ frist_name }}, hello", "Unknown placeholder “frist_name” at line 1, column 1."),
    ],
)
async def test_bad_basics_show_a_message_and_keep_what_was_typed(
    client: Any, merchant: MerchantOut, owner: UserOut, subject: str, message: str
) -> None:
    campaign = await _campaign(merchant, subject="The old subject")
    csrf = await login(client, owner)
    refused = await client.post(
        f"/campaigns/{campaign}/basics",
        data={"_csrf": csrf, "name": "Renamed", "subject": subject, "preheader": "Typed too"},
    )
    assert refused.status_code == 422
    html = refused.text
    assert "The campaign has problems; nothing was saved." in html
    assert f'<span class="field-error" id="err-subject">{html_lib.escape(message)}</span>' in html
    assert 'aria-invalid="true" aria-describedby="err-subject"' in html
    assert "Traceback" not in html
    assert _input_value(html, "subject") == subject
    assert _input_value(html, "name") == "Renamed"
    assert _input_value(html, "preheader") == "Typed too"
    stored = await services.get_campaign(merchant.id, campaign)
    assert stored.subject == "The old subject" and stored.name == "Autumn sale"


async def test_the_target_group_is_chosen_from_live_counts(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await _customer(merchant, "lotte@example.com", customer_type="loyal")
    await _customer(merchant, "lars@example.com", customer_type="loyal")
    await _customer(merchant, "nils@example.com", customer_type="non_member")
    segment = await _segment(merchant, "Loyal regulars")
    theirs = await _segment(await make_merchant(), "Their group")
    campaign = await _campaign(merchant)
    csrf = await login(client, owner)

    html = (await client.get(f"/campaigns/{campaign}/audience")).text
    counts = dict(
        re.findall(
            r'data-testid="audience-([a-z_]+)">.*?data-testid="audience-count">(\d+)<',
            html,
            re.DOTALL,
        )
    )
    assert counts["all_customers"] == "3" and counts["non_members"] == "1"
    assert counts["segment"] == "2"  # the saved "Loyal regulars"
    assert "Loyal regulars" in html and "Their group" not in html
    assert 'type="radio" name="audience" value="predefined:all_customers" >' in html

    async def choose(value: str) -> Any:
        return await client.post(
            f"/campaigns/{campaign}/audience",
            data={"_csrf": csrf, "audience": value},
            follow_redirects=False,
        )

    chosen = await choose(f"segment:{segment}")
    assert chosen.status_code == 303
    assert chosen.headers["location"] == f"/campaigns/{campaign}/layout?notice=saved"
    stored = await services.get_campaign(merchant.id, campaign)
    assert stored.audience == Audience(segment_id=segment)
    html = (await client.get(f"/campaigns/{campaign}/audience")).text
    assert f'value="segment:{segment}" checked' in html

    assert (await choose("predefined:non_members")).status_code == 303
    summary = (await client.get(f"/campaigns/{campaign}/summary")).text
    assert "All non-members" in summary
    assert re.search(r'data-testid="summary-recipients"><strong>1</strong> recipient<', summary)

    for bad, message in (
        (f"segment:{theirs}", "There is no such target group."),
        ("predefined:everyone", "Choose a target group."),
        ("", "Choose a target group."),
    ):
        refused = await choose(bad)
        assert refused.status_code == 422, bad
        assert message in refused.text
    stored = await services.get_campaign(merchant.id, campaign)
    assert stored.audience == Audience(predefined="non_members")


async def test_switching_the_layout_keeps_the_blocks(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign = await _campaign(merchant, layout="birthday")
    before = (await services.get_campaign(merchant.id, campaign)).blocks
    csrf = await login(client, owner)
    html = (await client.get(f"/campaigns/{campaign}/layout")).text
    assert 'name="layout" value="birthday" checked' in html
    assert "A header in your brand colour and two offers side by side." in html
    switched = await client.post(
        f"/campaigns/{campaign}/layout",
        data={"_csrf": csrf, "layout": "offer"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == f"/campaigns/{campaign}/design?notice=saved"
    after = await services.get_campaign(merchant.id, campaign)
    assert after.layout == "offer" and after.blocks == before
    refused = await client.post(
        f"/campaigns/{campaign}/layout", data={"_csrf": csrf, "layout": "../secret"}
    )
    assert refused.status_code == 422 and "Choose one of the offered values." in refused.text
    assert (await services.get_campaign(merchant.id, campaign)).layout == "offer"


async def test_the_summary_previews_as_a_customer_of_the_target_group(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await branded(merchant)
    anna = await _customer(
        merchant, "anna@example.de", last_name="Müller", gender="female", locale="de"
    )
    campaign = await _campaign(
        merchant, subject=SUBJECT, audience=Audience(predefined="all_customers")
    )
    await login(client, owner)
    summary = (await client.get(f"/campaigns/{campaign}/summary")).text
    assert "Nothing is missing: the draft is complete." in summary
    assert f'<option value="{anna}" >Müller · anna@example.de · German</option>' in summary
    as_anna = (await client.get(f"/campaigns/{campaign}/summary?customer={anna}")).text
    assert "Sehr geehrte Frau Müller – we have an offer for you!" in as_anna
    frame = _srcdoc(as_anna)
    assert "Sehr geehrte Frau Müller" in frame and "Abmelden" in frame
    in_finnish = (await client.get(f"/campaigns/{campaign}/summary?language=fi")).text
    assert 'value="fi" selected' in in_finnish
    # Another merchant's customer is a message in the preview, not a broken page.
    stranger = await _customer(await make_merchant(), "stranger@example.com")
    odd = await client.get(f"/campaigns/{campaign}/summary?customer={stranger}")
    assert odd.status_code == 200 and "Customer not found." in odd.text
    assert "stranger@example.com" not in odd.text


async def test_another_merchants_campaign_answers_404(client: Any, owner: UserOut) -> None:
    other = await make_merchant(name="Elsewhere")
    theirs = await _campaign(other, "Their secret campaign")
    csrf = await login(client, owner)
    for path in ("", "/audience", "/layout", "/design", "/summary"):
        response = await client.get(f"/campaigns/{theirs}{path}")
        assert response.status_code == 404, path
        assert "Their secret campaign" not in response.text
    for path, data in (
        ("/basics", {"name": "Mine now", "subject": "x"}),
        ("/audience", {"audience": "predefined:all_customers"}),
        ("/layout", {"layout": "offer"}),
        ("/delete", {}),
    ):
        response = await client.post(
            f"/campaigns/{theirs}{path}", data={"_csrf": csrf, **data}, follow_redirects=False
        )
        assert response.status_code == 404, path
    stored = await services.get_campaign(other.id, theirs)
    assert (stored.name, stored.layout, stored.audience) == (
        "Their secret campaign",
        "classic",
        None,
    )
    assert "Their secret campaign" not in (await client.get("/campaigns")).text


async def test_a_draft_is_deleted_after_the_confirmation(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    campaign = await _campaign(merchant, "Short-lived")
    csrf = await login(client, owner)
    html = (await client.get("/campaigns")).text
    assert 'hx-confirm="Delete the draft “Short-lived”? This cannot be undone."' in html
    assert (await client.post(f"/campaigns/{campaign}/delete")).status_code == 403
    deleted = await client.post(
        f"/campaigns/{campaign}/delete", data={"_csrf": csrf}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/campaigns?notice=campaign_deleted"
    assert "The draft was deleted." in (await client.get(deleted.headers["location"])).text
    with pytest.raises(NotFound):
        await services.get_campaign(merchant.id, campaign)


async def test_the_pages_in_german(client: Any, merchant: MerchantOut, owner: UserOut) -> None:
    await _campaign(merchant, "Herbst")
    campaign = await _campaign(merchant, subject="Hallo")
    csrf = await login(client, owner)
    listing = (await client.get("/campaigns?lang=de")).text
    assert '<html lang="de">' in listing
    for text in ("Kampagnen", "Neue Kampagne", "Zielgruppe", "Zuletzt geändert", "Entwurf"):
        assert text in listing
    assert "Last changed" not in listing
    new = (await client.get("/campaigns/new?lang=de")).text
    assert "Name der Kampagne" in new and "Klassischer Newsletter" in new
    basics = (await client.get(f"/campaigns/{campaign}?lang=de")).text
    for text in ("1. Grunddaten", "2. Zielgruppe", "4. Gestaltung", "Speichern und weiter"):
        assert text in basics
    audience = (await client.get(f"/campaigns/{campaign}/audience?lang=de")).text
    assert "Vordefinierte Gruppen" in audience and "Alle Kunden" in audience
    design = (await client.get(f"/campaigns/{campaign}/design?lang=de")).text
    config = _composer_config(design)
    assert config["labels"]["bold"] == "Fett"
    assert config["block_types"]["columns"] == "Zwei Spalten"
    assert config["messages"]["Images must be uploaded or use an https address."] == (
        "Bilder müssen hochgeladen werden oder eine https-Adresse haben."
    )
    assert [
        "Unknown placeholder “{name}” at line {line}, column {column}.",
        "Unbekannter Platzhalter „{name}“ in Zeile {line}, Spalte {column}.",
    ] in config["patterns"]
    assert [
        "This month's test sends are used up; new ones arrive on {date}.",
        "Die Testsendungen dieses Monats sind aufgebraucht; neue gibt es am {date}.",
    ] in config["patterns"]
    assert "Vorschau als" in design and "Eine Beispielperson (Alex Example)" in design
    summary = (await client.get(f"/campaigns/{campaign}/summary?lang=de")).text
    assert "Wählen Sie eine Zielgruppe." in summary and "Noch nicht verfügbar" not in summary
    # The service's English message reaches the marketer in German, with its values.
    refused = await client.post(
        f"/campaigns/{campaign}/basics?lang=de",
        data={"_csrf": csrf, "name": "Herbst", "subject": "Hallo {{ vorname }}"},
    )
    assert refused.status_code == 422
    assert "Unbekannter Platzhalter „vorname“ in Zeile 1, Spalte 7." in refused.text
    assert "Die Kampagne hat Fehler; es wurde nichts gespeichert." in refused.text


async def test_names_are_escaped_everywhere(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    evil = "<script>alert(1)</script>"
    campaign = await _campaign(merchant, evil)
    await services.update_campaign(
        merchant.id,
        campaign,
        CampaignUpdate(
            subject=f"{evil} {{{{ first_name }}}}",
            blocks=msgspec.convert([{"type": "heading", "text": evil}], list[Block]),
        ),
    )
    await login(client, owner)
    for path in ("/campaigns", *(f"/campaigns/{campaign}{p}" for p in ("", "/design", "/summary"))):
        html = (await client.get(path)).text
        assert evil not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    config = _composer_config((await client.get(f"/campaigns/{campaign}/design")).text)
    assert config["campaign"]["blocks"][0]["text"] == evil  # text for the script, not HTML


def test_the_pages_translate_every_message_the_apis_can_send() -> None:
    """A new message in the campaigns or templates services must reach the pages' map."""
    from babel.messages.extract import extract_from_file

    known = set(API_MESSAGES) | set(API_PATTERNS)
    for module in (
        "campaigns/services/drafts.py",
        "campaigns/services/previews.py",
        "campaigns/sending/test_sends.py",
        "campaigns/sending/dispatch.py",
        "campaigns/sending/control.py",
        "campaigns/sending/deliver.py",
        "campaigns/sending/progress.py",
        "campaigns/bounces/webhooks.py",
        "campaigns/bounces/controllers.py",
        "campaigns/bounces/services.py",
        "loyalmail/sql.py",
        "templates/blocks.py",
        "templates/compiler.py",
        "templates/media.py",
    ):
        for _line, message, _comments, _context in extract_from_file("python", module):
            if message in ("This link is not valid.", "No such file."):
                continue  # the recipients' web version and media files, not the composer
            assert message in known, f"{module}: {message!r} is missing from API_MESSAGES"


def test_every_campaign_page_text_has_a_german_translation() -> None:
    from babel.messages.extract import extract_from_dir, extract_from_file
    from babel.messages.pofile import read_po

    from loyalmail.i18n import LOCALE_DIR

    with (LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po").open("rb") as po_file:
        catalog = read_po(po_file, locale="de")
    found: list[Any] = [
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            "campaigns",
            method_map=[("**/pages/**.html", "jinja2"), ("**.py", "python")],
            options_map={"**/pages/**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    ]
    # Layout names and placeholder labels are shown on the pages too.
    for module in ("templates/layouts.py", "templates/placeholders.py"):
        found += [message for _line, message, _c, _x in extract_from_file("python", module)]
    missing = []
    for message in found:
        msgid = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(msgid)
        if msgid and (entry is None or not entry.string or not all(entry.string)):
            missing.append(msgid)
    assert not missing, f"{len(missing)} campaign page texts without German: {missing[:10]}"


async def test_the_list_shows_the_rates_of_sent_campaigns(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    sent = await sent_messages(merchant, 4)
    campaign = sent[0].campaign_id
    now = datetime.now(UTC)
    await Campaign.update({Campaign.status: "sent", Campaign.started_at: now}).where(
        Campaign.id == campaign
    )
    r = [s.recipient_id for s in sent]
    await events.write_now(
        [
            events.Event(merchant.id, campaign, r[0], "open", now),
            events.Event(merchant.id, campaign, r[0], "click", now, 0),
            events.Event(merchant.id, campaign, r[1], "open", now, None, "apple-mpp"),
            events.Event(merchant.id, campaign, r[2], "unsubscribe", now),
        ]
    )
    draft = await services.create_campaign(merchant.id, CampaignCreate(name="Spring"))
    await login(client, owner)
    page = await client.get("/campaigns/?lang=de")
    assert page.status_code == 200, page.text
    row = page.text.split(f'data-campaign-id="{campaign}"')[1].split("</tr>")[0]
    assert 'data-testid="campaign-recipients">4<' in row
    assert 'data-testid="campaign-open-rate">25 %<' in row  # the machine's open left out
    assert 'data-testid="campaign-click-rate">25 %<' in row
    assert 'data-testid="campaign-unsubscribes">1<' in row
    assert "Öffnungsrate" in page.text
    drafted = page.text.split(f'data-campaign-id="{draft.id}"')[1].split("</tr>")[0]
    assert "campaign-open-rate" not in drafted
