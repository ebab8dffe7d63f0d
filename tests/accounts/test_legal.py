"""The legal footer's rule (accounts.legal): what a brand must hold before its shop sends."""

from __future__ import annotations

from typing import Any

from accounts.legal import IMPRINT_COUNTRIES, legal_footer_problems
from accounts.schemas import Brand

COMPLETE = Brand(
    name="Fjord Bakeri",
    street="Storgata 1",
    postal_code="0155",
    city="Oslo",
    country="NO",
    publisher="Fjord Bakeri AS",
    privacy_policy_url="https://fjord.example/privacy",
)


def fields(brand: Brand) -> list[str]:
    return [problem.field for problem in legal_footer_problems(brand)]


def test_an_empty_brand_lacks_address_legal_name_and_privacy_link() -> None:
    assert fields(Brand(name="Empty")) == [
        "street",
        "postal_code",
        "city",
        "country",
        "publisher",
        "privacy_policy_url",
    ]


def test_shops_in_germany_austria_and_switzerland_need_an_imprint() -> None:
    assert fields(COMPLETE) == []
    for country in sorted(IMPRINT_COUNTRIES):
        brand = Brand(**{**_values(COMPLETE), "country": country})
        assert fields(brand) == ["imprint"], country
        with_imprint = Brand(**{**_values(brand), "imprint": "Bakeri GmbH, HRB 1"})
        assert fields(with_imprint) == []


def test_blank_values_count_as_missing_and_some_countries_have_no_postal_codes() -> None:
    blank = Brand(**{**_values(COMPLETE), "street": "   ", "publisher": "\t"})
    assert fields(blank) == ["street", "publisher"]
    hong_kong = Brand(**{**_values(COMPLETE), "country": "HK", "postal_code": ""})
    assert fields(hong_kong) == []


def test_every_problem_has_a_message_id() -> None:
    for problem in legal_footer_problems(Brand(name="Empty", country="DE")):
        assert problem.message.startswith(("The legal footer needs", "Shops in Germany"))


def _values(brand: Brand) -> dict[str, Any]:
    return {name: getattr(brand, name) for name in brand.__struct_fields__}
