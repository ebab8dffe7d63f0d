"""The condition types as the builder offers them: label, input kind and fixed options.

Labels are English sentences marked with ``_``; the page translates them. The ``type``
values are exactly the tags of :mod:`segments.schemas`, so what the builder produces is
what the API validates.
"""

from __future__ import annotations

from collections.abc import Callable

from loyalmail.errors import _
from segments.schemas import AGE_GROUPS, FieldOption, FieldSpec

CUSTOMER_TYPE_OPTIONS = [
    ("loyal", _("Loyal")),
    ("member", _("Member")),
    ("non_member", _("Non-member")),
]
GENDER_OPTIONS = [
    ("female", _("Female")),
    ("male", _("Male")),
    ("diverse", _("Diverse")),
    ("", _("Unknown")),
]
AGE_GROUP_LABELS = {
    "under_18": _("under 18"),
    "18_24": "18–24",
    "25_34": "25–34",
    "35_44": "35–44",
    "45_54": "45–54",
    "55_64": "55–64",
    "65_plus": _("65 and over"),
}
assert set(AGE_GROUP_LABELS) == set(AGE_GROUPS)
LANGUAGE_OPTIONS = [
    ("de", _("German")),
    ("en", _("English")),
    ("fr", _("French")),
    ("nb", _("Norwegian")),
    ("fi", _("Finnish")),
    ("sr", _("Serbian")),
]


def field_specs(translate: Callable[[str], str] = lambda text: text) -> list[FieldSpec]:
    def options(pairs: list[tuple[str, str]]) -> list[FieldOption]:
        return [FieldOption(value=value, label=translate(label)) for value, label in pairs]

    def spec(type_: str, label: str, kind: str, **extra: list[FieldOption]) -> FieldSpec:
        return FieldSpec(type=type_, label=translate(label), kind=kind, **extra)  # type: ignore[arg-type]

    return [
        spec("customer_type", _("Customer type"), "set", options=options(CUSTOMER_TYPE_OPTIONS)),
        spec("gender", _("Gender"), "set", options=options(GENDER_OPTIONS)),
        spec("age_group", _("Age group"), "set", options=options(list(AGE_GROUP_LABELS.items()))),
        spec("age", _("Age"), "range"),
        spec("birthday", _("Birthday within the next days"), "days"),
        spec("country", _("Country"), "set"),
        spec("city", _("City"), "set"),
        spec("postal_code", _("Postal code"), "postal_code"),
        spec("language", _("Language"), "set", options=options(LANGUAGE_OPTIONS)),
        spec("created", _("Added"), "date"),
        spec("total_spent", _("Total spent"), "money_range"),
        spec("purchase_count", _("Number of purchases"), "range"),
        spec("first_purchase", _("First purchase"), "purchase_date"),
        spec("last_purchase", _("Last purchase"), "purchase_date"),
        spec("bought_between", _("Bought between"), "between_dates"),
        spec("custom_field", _("Custom field"), "custom_field"),
    ]
