"""The marketer's Segments page: predefined groups, saved target groups, the builder.

The builder is a small script (``loyalmail/static/segments.js``) that talks to the JSON API
(``/api/segments``). Everything it shows in words comes from here, translated into the page's
language and rendered into the page as JSON: the condition catalog, the labels, and the
translations of the messages the API may answer with (the API itself answers in English).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from loyalmail.auth import principal_of
from loyalmail.errors import _
from loyalmail.i18n import babel_locale, format_number, gettext
from loyalmail.pages_controller import LABELS, is_htmx, page, partial
from segments import services
from segments.predefined import PREDEFINED
from segments.schemas import SegmentOut
from segments.validation import MAX_DEPTH, MAX_NODES, MAX_VALUES_TOTAL

#: How many members a "Show members" list and the builder's preview show.
SAMPLE_SIZE = 10

#: Messages after a redirect, chosen by key (the query string never carries page text).
SEGMENT_NOTICES = {
    "segment_created": _("The target group was saved."),
    "segment_saved": _("Your changes to the target group were saved."),
    "segment_deleted": _("The target group was deleted."),
}

#: Words of the builder script, by the key the script uses. ``{count}``, ``{value}`` are
#: filled in by the script.
BUILDER_LABELS = {
    "match_all": _("all of the following"),
    "match_any": _("any of the following"),
    "match_none": _("none of the following"),
    "match_not_all": _("not all of the following"),
    "customers_who_match": _("Customers who match"),
    "group_match": _("How the conditions of this group combine"),
    "add_condition": _("Add condition"),
    "add_group": _("Add group"),
    "remove_condition": _("Remove condition"),
    "remove_group": _("Remove group"),
    "condition": _("Condition"),
    "comparison": _("Comparison"),
    "op_in": _("is one of"),
    "op_not_in": _("is none of"),
    "op_starts_with": _("starts with"),
    "op_before": _("before"),
    "op_after": _("after"),
    "op_within_last_days": _("within the last … days"),
    "op_more_than_days_ago": _("more than … days ago"),
    "op_never": _("never"),
    "op_equals": _("equals"),
    "op_not_equals": _("does not equal"),
    "op_is_set": _("is set"),
    "op_is_not_set": _("is not set"),
    "minimum": _("At least"),
    "maximum": _("At most"),
    "years": _("years"),
    "days": _("days"),
    "date": _("Date"),
    "first_day": _("From"),
    "last_day": _("Until"),
    "field_name": _("Field name"),
    "value": _("Value"),
    "values": _("Values"),
    "add_value": _("Add"),
    "remove_value": _("Remove {value}"),
    "values_hint": _("Type a value, then Enter"),
    "postal_hint": _("Postal codes, or their first digits with “starts with”."),
    "country_hint": _("Two-letter country codes, for example DE."),
    "recipients_one": _("{count} recipient"),
    "recipients_other": _("{count} recipients"),
    "quota_one": _("Sending to this group costs {count} quota unit."),
    "quota_other": _("Sending to this group costs {count} quota units."),
    "counting": _("Counting…"),
    "start_hint": _("Add a condition to see who is in the group."),
    "incomplete": _("Complete the marked conditions to see the count."),
    "need_values": _("Choose or enter at least one value."),
    "need_range": _("Give a minimum, a maximum or both."),
    "need_number": _("Enter a whole number."),
    "need_amount": _("Enter an amount such as 19.90."),
    "need_date": _("Enter a date."),
    "need_days": _("Enter a number of days."),
    "need_key": _("Enter the name of the field."),
    "need_value": _("Enter a value."),
    "empty_group": _("A group needs at least one condition."),
    "invalid_value": _("This value is not valid."),
    "error_title": _("The target group cannot be counted yet."),
    "save_error_title": _("The target group could not be saved."),
    "details": _("Details"),
    "sample": _("Some of the members"),
    "no_members": _("Nobody matches these conditions."),
    "name_required": _("Give the target group a name."),
    "saving": _("Saving…"),
    "network_error": _("The server could not be reached. Check the connection and try again."),
}

#: What the API may answer with, in English; the script shows the translation. The service's
#: checks (segments/validation.py) and the shell's own messages (loyalmail/http_errors.py).
API_MESSAGES = (
    _("The request is not valid."),
    _("The request body is not valid."),
    _("The request is nested too deeply."),
    _("Something went wrong on our side."),
    _("Not found."),
    _("Please log in."),
    _("There is no such target group."),
    _("The form has expired or did not come from this site. Reload the page and try again."),
    _("A group needs at least one condition."),
    _("The amount is out of range."),
    _("The amount has too many decimal places."),
    _("This comparison needs a date."),
    _("A comparison with a date takes no days."),
    _("This comparison needs a number of days."),
    _("A comparison in days takes no date."),
    _("'never' takes neither a date nor days."),
    _("The end date lies before the start date."),
    _("Custom field names cannot contain quotes or \\."),
    _("Compare with a value, or use 'is set' / 'is not set' for empty fields."),
    _("Give a minimum, a maximum or both."),
    _("The maximum is smaller than the minimum."),
)
#: Messages the service formats before raising them: (template, the limit as the service
#: writes it into the English text, the limit).
API_FORMATTED_MESSAGES: tuple[tuple[str, str, int], ...] = (
    (
        _("A target group may have at most {limit} conditions and groups."),
        str(MAX_NODES),
        MAX_NODES,
    ),
    (_("Groups may be nested at most {limit} levels deep."), str(MAX_DEPTH), MAX_DEPTH),
    (
        _("A target group may list at most {limit} values in all."),
        f"{MAX_VALUES_TOTAL:,}",
        MAX_VALUES_TOTAL,
    ),
)

_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


def _messages() -> dict[str, str]:
    out = {message: gettext(message) for message in API_MESSAGES}
    for template, english, limit in API_FORMATTED_MESSAGES:
        out[template.format(limit=english)] = gettext(template).format(limit=format_number(limit))
    return out


def _countries() -> list[list[str]]:
    """Two-letter codes with their names in the page's language, for the country input."""
    territories = babel_locale().territories
    pairs = [
        [code, name]
        for code, name in territories.items()
        if _COUNTRY_CODE.match(code) and code != "ZZ"
    ]
    return sorted(pairs, key=lambda pair: pair[1])


async def _builder_config(merchant_id: int, segment: SegmentOut | None) -> dict[str, Any]:
    """Everything the builder script needs, as plain JSON values in the page's language."""
    catalog = await services.catalog(merchant_id, gettext)
    return {
        "catalog": msgspec.to_builtins(catalog),
        "labels": {key: gettext(text) for key, text in BUILDER_LABELS.items()},
        "customer_types": {key: gettext(text) for key, text in LABELS["customer_type"].items()},
        "messages": _messages(),
        "countries": _countries(),
        "sample_size": SAMPLE_SIZE,
        "segment": None
        if segment is None
        else {
            "id": segment.id,
            "name": segment.name,
            "description": segment.description,
            "definition": msgspec.to_builtins(segment.definition),
        },
    }


class SegmentPagesController(Controller):
    path = "/segments"
    include_in_schema = False

    @get("/")
    async def overview(self, request: Request) -> Template:
        """Predefined groups with their counts, the saved groups, and the builder for a new one."""
        merchant_id = principal_of(request).merchant_id
        return await page(
            request,
            "segments.html",
            active="segments",
            predefined=await services.list_predefined(merchant_id),
            saved=await services.list_segments(merchant_id),
            builder=await _builder_config(merchant_id, None),
            notices=SEGMENT_NOTICES,
        )

    @get("/{segment_id:int}")
    async def edit(self, request: Request, segment_id: FromPath[int]) -> Template:
        """The builder with a saved group loaded; saving changes it."""
        merchant_id = principal_of(request).merchant_id
        segment = await services.get_segment(merchant_id, segment_id, with_count=True)
        return await page(
            request,
            "segment_edit.html",
            active="segments",
            segment=segment,
            builder=await _builder_config(merchant_id, segment),
        )

    @get("/{segment_id:int}/members")
    async def segment_members(self, request: Request, segment_id: FromPath[int]) -> Template:
        """Some members of a saved group (an HTMX fragment)."""
        merchant_id = principal_of(request).merchant_id
        segment = await services.get_segment(merchant_id, segment_id)
        preview = await services.preview_segment(merchant_id, segment_id, SAMPLE_SIZE)
        return partial("_segment_sample.html", preview=preview, group_name=segment.name)

    @get("/predefined/{key:str}/members")
    async def predefined_members(self, request: Request, key: FromPath[str]) -> Template:
        """Some members of a predefined group (an HTMX fragment)."""
        merchant_id = principal_of(request).merchant_id
        preview = await services.preview_predefined(merchant_id, key, SAMPLE_SIZE)
        # The key is known here: the service answers 404 for any other.
        name = next(group.name for group in PREDEFINED.values() if group.key == key)
        return partial("_segment_sample.html", preview=preview, group_name=gettext(name))

    @post("/{segment_id:int}/delete", status_code=303)
    async def delete(self, request: Request, segment_id: FromPath[int]) -> Redirect | Response:
        """Delete, then back to the list. HTMX posts it (after a confirmation, with the CSRF
        header) and is sent on by ``HX-Redirect``, so the page loads whole and its builder
        script runs again; without JavaScript the form posts its ``_csrf`` field."""
        await services.delete_segment(principal_of(request).merchant_id, segment_id)
        target = "/segments?notice=segment_deleted"
        if is_htmx(request):
            return Response(content=b"", status_code=204, headers={"HX-Redirect": target})
        return Redirect(target, status_code=303)
