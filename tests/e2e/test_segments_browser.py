"""The Segments page in a real browser: predefined counts, building a nested target group,
the live count, an error from the API, saving, editing and deleting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from playwright.async_api import expect

from accounts.schemas import MerchantOut
from customers.schemas import CustomerCreate, PurchaseCreate
from customers.services import customers, purchases
from customers.tables import Customer
from segments import services
from segments.schemas import Group
from tests.conftest import make_merchant, make_owner
from tests.e2e.conftest import shot

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Person:
    email: str
    customer_type: str
    city: str
    spent: Decimal = Decimal(0)
    verified: bool = True
    subscribed: bool = True

    @property
    def mailable(self) -> bool:
        return self.verified and self.subscribed


#: The shop's list. The target group built below is "loyal, and (from Berlin or spent at
#: least 100 EUR)"; the comments say who is in it and why not.
PEOPLE = [
    Person("anna.berlin@example.com", "loyal", "Berlin"),  # in: Berlin
    Person("ben.spender@example.com", "loyal", "Hamburg", Decimal("150")),  # in: spent 150
    Person("carla.small@example.com", "loyal", "Hamburg", Decimal("20")),  # out: neither
    Person("dora.member@example.com", "member", "Berlin", Decimal("500")),  # out: not loyal
    Person("emil.exact@example.com", "loyal", "München", Decimal("100")),  # in: 100 inclusive
    Person("fritz.nonmember@example.com", "non_member", "Berlin"),  # out: not loyal
    Person("gerd.pending@example.com", "loyal", "Berlin", verified=False),  # out: unconfirmed
    Person("hanna.gone@example.com", "loyal", "Berlin", subscribed=False),  # out: unsubscribed
]


def _in_group(person: Person) -> bool:
    """The group, written in Python over the list above: the count the page must show."""
    return (
        person.mailable
        and person.customer_type == "loyal"
        and (person.city == "Berlin" or person.spent >= 100)
    )


async def _seed(merchant: MerchantOut) -> None:
    for person in PEOPLE:
        created = await customers.create_customer(
            merchant.id,
            CustomerCreate(
                email=person.email,
                first_name=person.email.split(".")[0].title(),
                city=person.city,
                customer_type=person.customer_type,  # type: ignore[arg-type]
                send_optin=False,
            ),
        )
        # What a confirmed opt-in (and an unsubscribe) would have written.
        await Customer.update(
            {
                Customer.email_status: "verified" if person.verified else "pending",
                Customer.subscribed: person.subscribed,
            }
        ).where(Customer.id == created.id)
        if person.spent:
            await purchases.add_purchase(
                merchant.id, created.id, PurchaseCreate(amount=person.spent)
            )


async def _log_in(page: Any, base: str, email: str) -> None:
    await page.goto(f"{base}/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


async def test_build_a_nested_target_group_see_its_count_and_save_it(
    page: Any, live_server: str
) -> None:
    merchant = await make_merchant(name="Kiez Kaffee")
    owner = await make_owner(merchant, PASSWORD)
    await _seed(merchant)
    expected = sorted(p.email for p in PEOPLE if _in_group(p))
    assert len(expected) == 3  # Anna, Ben, Emil
    mailable = [p for p in PEOPLE if p.mailable]

    await _log_in(page, live_server, owner.email)
    await page.get_by_role("link", name="Segments", exact=True).click()
    await expect(page.get_by_role("heading", name="Segments", exact=True)).to_be_visible()

    # Predefined groups with their live counts: only mailable addresses count.
    def predefined(key: str) -> Any:
        return page.get_by_test_id(f"predefined-{key}")

    await expect(predefined("all_customers").get_by_test_id("predefined-count")).to_have_text(
        str(len(mailable))
    )
    network = [p for p in mailable if p.customer_type in ("loyal", "member")]
    await expect(predefined("network_members").get_by_test_id("predefined-count")).to_have_text(
        str(len(network))
    )
    await expect(predefined("non_members").get_by_test_id("predefined-count")).to_have_text("1")
    await predefined("non_members").get_by_role("button", name="Show members").click()
    sample = page.get_by_test_id("sample")
    await expect(sample).to_contain_text("Members of “All non-members”")
    await expect(sample).to_contain_text("fritz.nonmember@example.com")
    await expect(sample).not_to_contain_text("anna.berlin@example.com")

    # Build: loyal AND (any of: city Berlin, total spent ≥ 100).
    builder = page.get_by_test_id("segment-builder")
    count = page.get_by_test_id("builder-count")
    await expect(builder.get_by_text("Add a condition to see who is in the group.")).to_be_visible()
    await builder.get_by_role("button", name="Add condition").click()
    first = builder.get_by_test_id("condition").first
    await expect(first.get_by_label("Condition", exact=True)).to_have_value("customer_type")
    await expect(first).to_contain_text("Choose or enter at least one value.")
    await first.get_by_role("checkbox", name="Loyal").check()
    loyal = [p for p in mailable if p.customer_type == "loyal"]
    await expect(count).to_have_text(str(len(loyal)))  # the count follows every change

    await builder.get_by_role("button", name="Add group").click()
    nested = builder.get_by_test_id("group")
    await nested.get_by_label("How the conditions of this group combine").select_option("any")
    await nested.get_by_label("Condition", exact=True).select_option("city")
    city = nested.get_by_label("City: Values")
    await city.fill("Berlin")
    await city.press("Enter")
    await expect(nested.get_by_role("button", name="Remove Berlin")).to_be_visible()
    await expect(count).to_have_text("1")  # loyal and from Berlin: Anna

    await nested.get_by_role("button", name="Add condition").click()
    await nested.get_by_label("Condition", exact=True).nth(1).select_option("total_spent")
    await nested.get_by_label("At least", exact=True).fill("100")
    await expect(count).to_have_text(str(len(expected)))
    await expect(page.get_by_test_id("builder-quota")).to_have_text(
        f"Sending to this group costs {len(expected)} quota units."
    )
    sample = page.get_by_test_id("builder-sample")
    for email in expected:
        await expect(sample).to_contain_text(email)
    await expect(sample).not_to_contain_text("carla.small@example.com")

    # A rule only the API checks: its message appears next to the condition it names.
    await nested.get_by_label("At most", exact=True).fill("50")
    spent = nested.get_by_test_id("condition").nth(1)
    await expect(spent).to_contain_text("The maximum is smaller than the minimum.")
    await expect(page.get_by_test_id("builder-errors")).to_contain_text(
        "The target group cannot be counted yet."
    )
    await expect(count).to_have_text("–")
    await nested.get_by_label("At most", exact=True).fill("")
    await expect(count).to_have_text(str(len(expected)))
    await expect(spent).not_to_contain_text("The maximum is smaller than the minimum.")

    # A value the API's decoder refuses (postal codes have at most 20 characters).
    await builder.get_by_role("button", name="Add condition").last.click()
    postal = builder.get_by_test_id("condition").last
    await postal.get_by_label("Condition", exact=True).select_option("postal_code")
    await postal.get_by_label("Postal code: Values").fill("1" * 25)
    await postal.get_by_label("Postal code: Values").press("Enter")
    await expect(postal).to_contain_text("This value is not valid.")
    await expect(count).to_have_text("–")
    await postal.get_by_role("button", name="Remove condition").click()
    await expect(count).to_have_text(str(len(expected)))

    # The same definition, counted by the service: the page and the database agree.
    definition = {
        "type": "group",
        "conditions": [
            {"type": "customer_type", "values": ["loyal"]},
            {
                "type": "group",
                "match": "any",
                "conditions": [
                    {"type": "city", "values": ["Berlin"]},
                    {"type": "total_spent", "min": "100"},
                ],
            },
        ],
    }
    group = msgspec.convert(definition, Group)
    assert await services.count_definition(merchant.id, group) == len(expected)
    await shot(page, "segments-builder")

    # Save it under a name; the list shows it with the same count.
    await builder.get_by_role("button", name="Save target group").click()
    await expect(page.get_by_test_id("save-error")).to_have_text("Give the target group a name.")
    await builder.get_by_label("Name", exact=True).fill("Berlin regulars and big spenders")
    await builder.get_by_label("Description (optional)").fill("Loyal only")
    await builder.get_by_role("button", name="Save target group").click()
    await expect(page).to_have_url(re.compile(r"/segments\?notice=segment_created$"))
    await expect(page.get_by_role("status")).to_have_text("The target group was saved.")
    row = page.get_by_test_id("saved-segment").filter(has_text="Berlin regulars and big spenders")
    await expect(row.get_by_test_id("saved-count")).to_have_text(str(len(expected)))
    await expect(row).to_contain_text("Loyal only")
    (stored,) = await services.list_segments(merchant.id)
    assert stored.definition == group
    await shot(page, "segments-saved")

    # Edit: "none of" negates the nested group — loyal, neither from Berlin nor ≥ 100: Carla.
    await row.get_by_role("link", name="Edit").click()
    await expect(page.get_by_role("heading", name="Edit target group")).to_be_visible()
    await expect(builder.get_by_label("Name", exact=True)).to_have_value(
        "Berlin regulars and big spenders"
    )
    await expect(count).to_have_text(str(len(expected)))
    await nested.get_by_label("How the conditions of this group combine").select_option("none")
    await expect(count).to_have_text("1")
    await expect(page.get_by_test_id("builder-sample")).to_contain_text("carla.small@example.com")
    await builder.get_by_label("Name", exact=True).fill("Loyal, neither Berlin nor big spenders")
    await builder.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your changes to the target group were saved."
    )
    row = page.get_by_test_id("saved-segment")
    await expect(row).to_have_count(1)
    await expect(
        row.get_by_role("link", name="Loyal, neither Berlin nor big spenders")
    ).to_be_visible()
    await expect(row.get_by_test_id("saved-count")).to_have_text("1")

    # Delete, after the confirmation.
    async def confirm(dialog: Any) -> None:
        assert "Delete the target group" in dialog.message
        await dialog.accept()

    page.once("dialog", confirm)
    await row.get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("status")).to_have_text("The target group was deleted.")
    await expect(page.get_by_test_id("saved-segment")).to_have_count(0)
    assert await services.list_segments(merchant.id) == []
