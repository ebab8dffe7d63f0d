"""What the campaign pages show besides the campaign itself: the target group as the
marketer knows it, the layouts, and the server-rendered preview with its "preview as" chooser
(the design and summary steps; ``composer.js`` takes the chooser over on the design step)."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Request

from accounts.schemas import Locale, MerchantOut
from campaigns import services
from campaigns.pages_text import translate
from campaigns.schemas import Audience, CampaignOut, PreviewRequest
from customers.services import customers
from loyalmail.errors import LoyalmailError, NotFound
from loyalmail.i18n import RECIPIENT_LOCALES, gettext, language_name
from loyalmail.pages_controller import id_in_field
from segments import services as segments
from segments.predefined import PREDEFINED
from segments.schemas import Preview
from templates.layouts import LAYOUTS
from templates.placeholders import PLACEHOLDERS

#: How many members of the target group the "preview as" chooser offers.
SAMPLE_SIZE = 10


def placeholders() -> list[dict[str, str]]:
    """The placeholders as the marketer writes them, with their labels."""
    return [
        {"token": f"{{{{ {name} }}}}", "label": gettext(label)}
        for name, label in PLACEHOLDERS.items()
    ]


def audience_label(campaign: CampaignOut) -> str:
    """The target group as the marketer knows it: predefined names are translated."""
    if campaign.audience is not None and campaign.audience.predefined is not None:
        return gettext(PREDEFINED[campaign.audience.predefined].name)
    return campaign.audience_name


def audience_choice(campaign: CampaignOut) -> str:
    audience = campaign.audience
    if audience is None:
        return ""
    if audience.predefined is not None:
        return f"predefined:{audience.predefined}"
    return f"segment:{audience.segment_id}"


def audience_from(choice: str) -> Audience | None:
    kind, _colon, value = choice.partition(":")
    if kind == "predefined" and value in PREDEFINED:
        return msgspec.convert({"predefined": value}, Audience)
    if kind == "segment" and id_in_field(value) is not None:
        return Audience(segment_id=int(value))
    return None


def layouts() -> list[dict[str, str]]:
    return [
        {
            "key": layout.key,
            "name": gettext(layout.name),
            "description": gettext(layout.description),
        }
        for layout in LAYOUTS.values()
    ]


def _languages() -> list[tuple[str, str]]:
    return [(code, language_name(code)) for code in RECIPIENT_LOCALES]


async def audience_preview(merchant_id: int, campaign: CampaignOut) -> Preview | None:
    if campaign.audience is None:
        return None
    ref = segments.AudienceRef(
        predefined=campaign.audience.predefined, segment_id=campaign.audience.segment_id
    )
    try:
        return await segments.preview_audience(merchant_id, ref, SAMPLE_SIZE)
    except NotFound:
        return None  # the saved segment is gone: the target group step says so


async def _people(merchant_id: int, sample: Preview | None) -> list[dict[str, Any]]:
    """Whom the preview can be shown as: the target group's first members, with their
    language (which decides the fixed texts and the salutation)."""
    people = []
    for member in sample.sample if sample else []:
        customer = await customers.get_customer(merchant_id, member.id)
        name = f"{member.first_name} {member.last_name}".strip() or member.email
        language = customer.locale or ""
        people.append(
            {
                "id": member.id,
                "label": f"{name} · {member.email}"
                + (f" · {language_name(language)}" if language else ""),
            }
        )
    return people


async def preview_context(
    request: Request, merchant: MerchantOut, campaign: CampaignOut, sample: Preview | None
) -> dict[str, Any]:
    """The server-rendered preview (design and summary steps): as the customer and in the
    language the query asks for, so the chooser works as a plain GET form."""
    people = await _people(merchant.id, sample)
    wanted = request.query_params.get("customer", "")
    customer_id = id_in_field(wanted)
    language = request.query_params.get("language", "")
    if language not in RECIPIENT_LOCALES:
        language = merchant.default_locale
    preview, problem = None, ""
    try:
        preview = await services.preview_campaign(
            merchant.id,
            campaign.id,
            PreviewRequest(customer_id=customer_id, language=cast(Locale, language)),
        )
    except LoyalmailError as exc:
        problem = translate(exc.message)
    return {
        "people": people,
        "chosen_customer": customer_id,
        "chosen_language": language,
        "languages": _languages(),
        "preview": preview,
        "preview_problem": problem,
    }
