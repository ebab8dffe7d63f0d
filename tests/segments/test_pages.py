"""The Segments page through the whole app: what a marketer sees and what its forms do."""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any

import pytest

from accounts.schemas import MerchantOut, UserOut
from customers.schemas import CustomerCreate, CustomerOut
from customers.services import customers
from customers.tables import Customer
from loyalmail.errors import NotFound
from segments import services
from segments.page_controllers import API_FORMATTED_MESSAGES, API_MESSAGES
from segments.schemas import Group, SegmentCreate
from tests.conftest import login, make_merchant

LOYAL_ONLY = {"type": "group", "conditions": [{"type": "customer_type", "values": ["loyal"]}]}


@pytest.fixture(autouse=True)
def _browser_accept_header(request: pytest.FixtureRequest) -> None:
    # Pages answer errors as HTML only to callers that accept HTML, as a browser does.
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        client.headers["accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


async def _customer(
    merchant: MerchantOut,
    email: str,
    *,
    verified: bool = True,
    subscribed: bool = True,
    **values: Any,
) -> CustomerOut:
    created = await customers.create_customer(
        merchant.id, CustomerCreate(email=email, send_optin=False, **values)
    )
    # What a confirmed opt-in (and a later unsubscribe) would have written.
    await Customer.update(
        {
            Customer.email_status: "verified" if verified else "unverified",
            Customer.subscribed: subscribed,
        }
    ).where(Customer.id == created.id)
    return created


async def _shop_list(merchant: MerchantOut) -> None:
    """Six addresses a newsletter may go to (three loyal, one member, two non-members) and two
    it may not: an unconfirmed one and an unsubscribed one."""
    await _customer(merchant, "lotte@example.com", customer_type="loyal", city="Berlin")
    await _customer(merchant, "lars@example.com", customer_type="loyal", city="Hamburg")
    await _customer(merchant, "lina@example.com", customer_type="loyal", city="Berlin")
    await _customer(merchant, "mia@example.com", customer_type="member", city="Köln")
    await _customer(merchant, "nils@example.com", customer_type="non_member", city="Berlin")
    await _customer(merchant, "nora@example.com", customer_type="non_member", city="Wien")
    await _customer(merchant, "unconfirmed@example.com", customer_type="loyal", verified=False)
    await _customer(merchant, "gone@example.com", customer_type="loyal", subscribed=False)


def _predefined_count(html: str, key: str) -> str:
    found = re.search(
        rf'data-testid="predefined-{key}".*?data-testid="predefined-count">([^<]+)<',
        html,
        re.DOTALL,
    )
    assert found, f"no card for {key}"
    return found.group(1)


def _saved_rows(html: str) -> dict[str, str]:
    """Saved segments on the page: name → the count shown in its row."""
    rows = re.findall(
        r'data-testid="saved-segment".*?class="seg-name">([^<]+)<.*?data-testid="saved-count">'
        r"([^<]+)<",
        html,
        re.DOTALL,
    )
    return {html_lib.unescape(name): count for name, count in rows}


def _builder_config(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="segment-builder-config">(.*?)</script>',
        html,
        re.DOTALL,
    )
    assert found, "the builder's configuration is in the page"
    return json.loads(found.group(1))


async def _save(merchant: MerchantOut, name: str, definition: dict[str, Any]) -> int:
    import msgspec

    created = await services.create_segment(
        merchant.id,
        SegmentCreate(name=name, definition=msgspec.convert(definition, Group)),
    )
    return created.id


async def test_page_shows_predefined_groups_with_live_counts(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await _shop_list(merchant)
    await login(client, owner)
    response = await client.get("/segments")
    assert response.status_code == 200
    html = response.text
    assert 'href="/segments" aria-current="page"' in html
    assert "Not available yet" not in html
    for name in ("First purchase", "Lost customers", "All customers", "Birthdays"):
        assert name in html
    assert "Customers whose birthday is in the next four weeks." in html
    # Only the six addresses that may be mailed count.
    assert _predefined_count(html, "all_customers") == "6"
    assert _predefined_count(html, "network_members") == "4"
    assert _predefined_count(html, "non_members") == "2"
    assert _predefined_count(html, "first_purchase") == "0"
    assert "No target groups saved yet." in html

    config = _builder_config(html)
    assert config["segment"] is None
    types = [field["type"] for field in config["catalog"]["fields"]]
    assert types[0] == "customer_type" and "custom_field" in types and "city" in types
    assert set(config["catalog"]["cities"]) == {"Berlin", "Hamburg", "Köln", "Wien"}
    assert config["labels"]["add_condition"] == "Add condition"
    assert ["DE", "Germany"] in config["countries"]
    assert config["customer_types"]["non_member"] == "Non-member"
    assert "/static/segments.js" in html

    sample = await client.get(
        "/segments/predefined/non_members/members", headers={"HX-Request": "true"}
    )
    assert sample.status_code == 200 and "<html" not in sample.text
    assert "Members of “All non-members”" in sample.text
    assert "nils@example.com" in sample.text and "nora@example.com" in sample.text
    assert "lotte@example.com" not in sample.text
    unknown = await client.get("/segments/predefined/everyone/members")
    assert unknown.status_code == 404


async def test_saved_segments_are_listed_with_counts_and_open_in_the_builder(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await _shop_list(merchant)
    loyal = await _save(merchant, "Loyal regulars", LOYAL_ONLY)
    berlin = await _save(
        merchant,
        "Berlin, not loyal",
        {
            "type": "group",
            "conditions": [
                {"type": "city", "values": ["Berlin"]},
                {"type": "group", "negate": True, "conditions": LOYAL_ONLY["conditions"]},
            ],
        },
    )
    await login(client, owner)
    html = (await client.get("/segments")).text
    assert _saved_rows(html) == {"Berlin, not loyal": "1", "Loyal regulars": "3"}
    assert f'href="/segments/{loyal}"' in html

    edit = await client.get(f"/segments/{berlin}")
    assert edit.status_code == 200
    assert "Edit target group" in edit.text and "Save changes" in edit.text
    config = _builder_config(edit.text)
    assert config["segment"]["id"] == berlin
    assert config["segment"]["name"] == "Berlin, not loyal"
    nested = config["segment"]["definition"]["conditions"][1]
    assert nested["type"] == "group" and nested["negate"] is True
    assert nested["conditions"][0]["values"] == ["loyal"]

    members = await client.get(f"/segments/{loyal}/members", headers={"HX-Request": "true"})
    assert members.status_code == 200 and "Members of “Loyal regulars”" in members.text
    for email in ("lotte@example.com", "lars@example.com", "lina@example.com"):
        assert email in members.text
    for email in ("unconfirmed@example.com", "gone@example.com", "mia@example.com"):
        assert email not in members.text


async def test_the_page_in_german(client: Any, merchant: MerchantOut, owner: UserOut) -> None:
    await _shop_list(merchant)
    await _save(merchant, "Treue", LOYAL_ONLY)
    await login(client, owner)
    html = (await client.get("/segments?lang=de")).text
    assert '<html lang="de">' in html
    for text in ("Zielgruppen", "Vordefinierte Gruppen", "Alle Kunden", "Neue Zielgruppe"):
        assert text in html
    assert "Kunden, die in den nächsten vier Wochen Geburtstag haben." in html
    assert "Ihre Zielgruppen" in html and "Mitglieder zeigen" in html
    assert "Predefined groups" not in html
    config = _builder_config(html)
    assert config["labels"]["add_condition"] == "Bedingung hinzufügen"
    assert config["labels"]["recipients_other"] == "{count} Empfänger"
    labels = {field["type"]: field["label"] for field in config["catalog"]["fields"]}
    assert labels["customer_type"] == "Kundenart" and labels["total_spent"] == "Umsatz insgesamt"
    gender = next(f for f in config["catalog"]["fields"] if f["type"] == "gender")
    assert {"value": "", "label": "Unbekannt"} in gender["options"]
    assert ["DE", "Deutschland"] in config["countries"]
    # The API answers in English; the page carries what the builder shows instead.
    messages = config["messages"]
    assert messages["The maximum is smaller than the minimum."] == (
        "Das Maximum ist kleiner als das Minimum."
    )
    assert messages["A target group may have at most 200 conditions and groups."] == (
        "Eine Zielgruppe darf höchstens 200 Bedingungen und Gruppen haben."
    )
    assert messages["A target group may list at most 5,000 values in all."] == (
        "Eine Zielgruppe darf insgesamt höchstens 5.000 Werte aufführen."
    )


async def test_another_merchants_segment_is_a_404(client: Any, owner: UserOut) -> None:
    other = await make_merchant(name="Elsewhere")
    theirs = await _save(other, "Their secret group", LOYAL_ONLY)
    csrf = await login(client, owner)
    for path in (f"/segments/{theirs}", f"/segments/{theirs}/members"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "Their secret group" not in response.text
    deleted = await client.post(
        f"/segments/{theirs}/delete",
        headers={"x-csrf-token": csrf, "HX-Request": "true"},
        follow_redirects=False,
    )
    assert deleted.status_code == 404 and "HX-Redirect" not in deleted.headers
    assert (await services.get_segment(other.id, theirs)).name == "Their secret group"
    assert "Their secret group" not in (await client.get("/segments")).text


async def test_delete_needs_the_csrf_token(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    segment = await _save(merchant, "Short-lived", LOYAL_ONLY)
    csrf = await login(client, owner)
    html = (await client.get("/segments")).text
    # HTMX posts the form with the layout's X-CSRF-Token header, after a confirmation.
    assert f'hx-post="/segments/{segment}/delete"' in html
    assert 'hx-confirm="Delete the target group “Short-lived”?' in html
    assert f'name="_csrf" value="{csrf}"' in html

    for headers in ({"HX-Request": "true"}, {"HX-Request": "true", "x-csrf-token": "forged"}):
        refused = await client.post(f"/segments/{segment}/delete", headers=headers)
        assert refused.status_code == 403
        assert "did not come from this site" in refused.text
    assert (await services.get_segment(merchant.id, segment)).name == "Short-lived"

    deleted = await client.post(
        f"/segments/{segment}/delete",
        headers={"x-csrf-token": csrf, "HX-Request": "true"},
        follow_redirects=False,
    )
    # The whole page is loaded again (HX-Redirect), so the builder's script runs on it.
    assert deleted.status_code == 204
    assert deleted.headers["HX-Redirect"] == "/segments?notice=segment_deleted"
    after = await client.get(deleted.headers["HX-Redirect"])
    assert "The target group was deleted." in after.text
    assert "Short-lived" not in after.text
    with pytest.raises(NotFound):
        await services.get_segment(merchant.id, segment)


async def test_delete_without_javascript_posts_the_csrf_field(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    segment = await _save(merchant, "Plain form", LOYAL_ONLY)
    csrf = await login(client, owner)
    forged = await client.post(f"/segments/{segment}/delete", data={"_csrf": "forged"})
    assert forged.status_code == 403
    assert (await services.get_segment(merchant.id, segment)).name == "Plain form"
    deleted = await client.post(
        f"/segments/{segment}/delete", data={"_csrf": csrf}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/segments?notice=segment_deleted"
    with pytest.raises(NotFound):
        await services.get_segment(merchant.id, segment)


async def test_notices_come_only_from_known_keys(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    await login(client, owner)
    saved = await client.get("/segments?notice=segment_created")
    assert "The target group was saved." in saved.text
    crafted = await client.get("/segments?notice=Your+account+is+locked")
    assert "Your account is locked" not in crafted.text


async def test_names_are_escaped_everywhere(
    client: Any, merchant: MerchantOut, owner: UserOut
) -> None:
    evil = "<script>alert(1)</script>"
    segment = await _save(merchant, evil, LOYAL_ONLY)
    await login(client, owner)
    for path in ("/segments", f"/segments/{segment}"):
        html = (await client.get(path)).text
        assert evil not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "\\u003cscript" in html
    config = _builder_config((await client.get(f"/segments/{segment}")).text)
    assert config["segment"]["name"] == evil  # the script gets it as text, not as HTML


def test_the_page_translates_every_message_the_segments_api_can_send() -> None:
    """A new check in segments/validation.py or services.py must reach the builder's map."""
    from babel.messages.extract import extract_from_file

    known = set(API_MESSAGES) | {template for template, _english, _limit in API_FORMATTED_MESSAGES}
    for module in ("segments/validation.py", "segments/services.py"):
        for _line, message, _comments, _context in extract_from_file("python", module):
            if "{problem}" in message:
                continue  # carries msgspec's own words; the builder shows it under "Details"
            assert message in known, f"{module}: {message!r} is missing from API_MESSAGES"
