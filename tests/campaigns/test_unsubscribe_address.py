"""The signed unsubscribe address of a recipient (List-Unsubscribe's mailto:), without a
database: its format, what verifies, and that its key is nobody else's."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import cast

import pytest

from accounts.schemas import MerchantOut
from campaigns.bounces import unsubscribe_address, verp
from campaigns.bounces.unsubscribe_address import AddressMaker, address, is_legacy, parse
from campaigns.sending import envelope, mime
from tests.settings_env import settings_env

DOMAIN = "in.loyalmail.example"


@pytest.fixture(autouse=True)
def inbound_settings() -> Iterator[None]:
    values = {
        "LOYALMAIL_INBOUND_DOMAIN": DOMAIN,
        "LOYALMAIL_BOUNCE_ADDRESS": "bounces@lists.example",
    }
    with settings_env(values):
        yield


def test_an_address_names_its_recipient_whatever_the_case() -> None:
    made = address(12, 345, 67890)
    local, _at, domain = made.partition("@")
    assert local.startswith("unsubscribe+c.159.10932.") and domain == DOMAIN
    assert made == made.lower()
    expected = verp.RecipientRef(12, 345, 67890)
    assert parse(made) == expected
    assert parse(f" <{made.upper()}> ") == expected  # an MTA upper-cased it
    largest = address(2**31 - 1, 2**31 - 1, 2**63 - 1)
    assert len(largest.partition("@")[0]) <= 64
    assert parse(largest) == verp.RecipientRef(2**31 - 1, 2**31 - 1, 2**63 - 1)
    # A test send's recipient 0 verifies (and the inbound server then changes nothing).
    assert parse(address(1, 2, 0)) == verp.RecipientRef(1, 2, 0)
    # Past what the columns hold: nobody's.
    assert parse(address(2**31, 1, 1)) is None
    # One HMAC per recipient with a keyed copy: the same address as one by one.
    maker = AddressMaker(12, 345)
    assert [maker.for_recipient(n) for n in (67890, 1, 0)] == [
        address(12, 345, n) for n in (67890, 1, 0)
    ]


def test_the_domain_is_the_setting_else_the_mail_from_domain() -> None:
    with settings_env({"LOYALMAIL_INBOUND_DOMAIN": "", "LOYALMAIL_MAIL_FROM": "n@Mail.Example"}):
        made = address(1, 2, 3)
        assert made.endswith("@mail.example") and parse(made) is not None
        assert is_legacy("unsubscribe@mail.example")
    assert parse(made) is None  # another domain than the inbound one now
    with settings_env({"LOYALMAIL_INBOUND_DOMAIN": "bücher.example"}):
        assert address(1, 2, 3).endswith("@xn--bcher-kva.example")


def test_an_altered_forged_or_foreign_address_names_nobody() -> None:
    made = address(12, 345, 67890)
    local, _at, domain = made.partition("@")
    signature = local.rpartition(".")[2]
    other = "a" if signature[0] != "a" else "b"
    return_path = verp.return_path(12, 345, 67890)
    assert return_path is not None
    for forged in (
        local.replace("+c.", "+d.", 1) + "@" + domain,  # another merchant, same signature
        local[: -len(signature)] + other + signature[1:] + "@" + domain,  # another signature
        local[:-1] + "@" + domain,  # truncated
        local.rpartition(".")[0] + "@" + domain,  # no signature
        local + "@other.example",  # another domain
        "bounces+" + local.partition("+")[2] + "@" + domain,  # not the unsubscribe address
        # The same ids signed for a return path: another key, no unsubscribe address.
        "unsubscribe+" + return_path.partition("+")[2].partition("@")[0] + "@" + domain,
        "unsubscribe@" + domain,
        "",
        "x" * 400,
    ):
        assert parse(forged) is None, forged
    assert verp.parse_return_path(made.replace("unsubscribe+", "bounces+")) is None
    assert is_legacy("Unsubscribe@" + DOMAIN.upper()) and not is_legacy(made)
    assert not is_legacy("unsubscribe@other.example")


def test_addresses_signed_before_a_key_rotation_still_verify() -> None:
    old = address(1, 2, 3)
    rotated = {
        "LOYALMAIL_SECRET_KEY": "the-new-secret-key",
        "LOYALMAIL_PREVIOUS_SECRET_KEYS": "test-secret-key-not-for-production",
    }
    with settings_env(rotated):
        assert address(1, 2, 3) != old
        assert parse(old) == verp.RecipientRef(1, 2, 3)
        assert parse(address(1, 2, 3)) == verp.RecipientRef(1, 2, 3)
    with settings_env({"LOYALMAIL_SECRET_KEY": "the-new-secret-key"}):
        assert parse(old) is None


def test_each_message_carries_its_recipients_address_in_list_unsubscribe() -> None:
    # Only the fields the list headers read.
    shop = cast(MerchantOut, SimpleNamespace(id=7, slug="nordlicht", name="Nordlicht"))
    maker = envelope.list_header_maker(shop, 42)
    first, second = maker.for_recipient(1), maker.for_recipient(2)
    assert first.unsubscribe_mailto == address(7, 42, 1) != second.unsubscribe_mailto
    assert first.unsubscribe_subject == "unsubscribe"
    assert unsubscribe_address.parse(second.unsubscribe_mailto) == verp.RecipientRef(7, 42, 2)
    assert envelope.list_headers(shop, 42, 0).unsubscribe_mailto == address(7, 42, 0)
    assert isinstance(first, mime.ListHeaders)
