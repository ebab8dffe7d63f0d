"""Words of the campaign pages and of the composer script, and the translation of what the
campaigns API answers with (in English) into the page's language.

The API names problems in English sentences; some carry values (an unknown placeholder's name
and where it is). Those are matched against their English template and re-filled into the
translated one, on the server for the forms and in ``composer.js`` for the design step.
"""

from __future__ import annotations

import re
from functools import cache

from accounts import services as accounts
from loyalmail.errors import LoyalmailError, _
from loyalmail.i18n import gettext

#: Messages after a redirect, chosen by key (the query string never carries page text).
CAMPAIGN_NOTICES = {
    "campaign_created": _("The draft was created. Start with the subject."),
    "campaign_deleted": _("The draft was deleted."),
    "test_sent": _("The test is on its way: it arrives in a moment."),
    "saved": _("Saved."),
    "sending": _("The campaign is being sent."),
    "scheduled": _("The campaign is scheduled."),
    "unscheduled": _("The schedule was cancelled: the campaign is a draft again."),
    "paused": _("The send is paused."),
    "resumed": _("The send goes on."),
    "cancelled": _("The send was cancelled: nobody else gets the campaign."),
}

#: Every state of a campaign, in its life's order (``campaigns.schemas.CampaignStatus``).
STATUS_LABELS = {
    "draft": _("Draft"),
    "scheduled": _("Scheduled"),
    "overdue": _("Overdue"),
    "sending": _("Sending"),
    "paused": _("Paused"),
    "sent": _("Sent"),
    "cancelled": _("Cancelled"),
}

#: The composer's steps in the order of PRODUCT §3: (key, label, path after /campaigns/{id}).
STEPS: tuple[tuple[str, str, str], ...] = (
    ("basics", _("Basics"), ""),
    ("audience", _("Target group"), "/audience"),
    ("layout", _("Layout"), "/layout"),
    ("design", _("Design"), "/design"),
    ("summary", _("Summary"), "/summary"),
)

#: Which step fixes a problem the check names (by its field).
PROBLEM_STEPS = {
    "subject": "",
    "preheader": "",
    "audience": "/audience",
    "layout": "/layout",
    "blocks": "/design",
}

#: Block types in the order the "add" buttons show them.
BLOCK_LABELS = {
    "heading": _("Heading"),
    "text": _("Text"),
    "image": _("Image"),
    "button": _("Button"),
    "columns": _("Two columns"),
    "divider": _("Divider"),
    "spacer": _("Space"),
}

#: Words of the composer script, by the key the script uses; ``{count}`` etc. are filled in
#: by the script.
COMPOSER_LABELS = {
    "add_block": _("Add a block"),
    "block_n": _("Block {number}: {type}"),
    "move_up": _("Move up"),
    "move_down": _("Move down"),
    "remove_block": _("Remove block"),
    "heading_text": _("Heading text"),
    "heading_level": _("Size"),
    "level_1": _("Large"),
    "level_2": _("Medium"),
    "new_heading": _("New heading"),
    "markdown": _("Text"),
    "markdown_hint": _(
        "**bold**, *italic*, [link text](https://…), lines starting with - for a list"
    ),
    "formatting": _("Formatting"),
    "bold": _("Bold"),
    "italic": _("Italic"),
    "link": _("Link"),
    "link_text": _("link text"),
    "bold_text": _("bold text"),
    "italic_text": _("italic text"),
    "image_src": _("Image address"),
    "image_src_hint": _("Upload a picture, or enter an address starting with https://"),
    "upload": _("Upload a picture"),
    "uploading": _("Uploading…"),
    "uploaded": _("The picture was uploaded."),
    "upload_failed": _("The picture could not be uploaded."),
    "alt": _("Alternative text"),
    "alt_hint": _("Describes the picture for people who cannot see it."),
    "image_href": _("Link when clicked (optional)"),
    "width": _("Width in pixels (40–600)"),
    "button_label": _("Button text"),
    "new_button": _("Find out more"),
    "button_href": _("Link"),
    "column_n": _("Column {number}"),
    "title": _("Title"),
    "column_text": _("Text"),
    "price": _("Price"),
    "divider_hint": _("A thin line between two parts of the newsletter."),
    "height": _("Height in pixels (4–120)"),
    "placeholders": _("Personalise"),
    "placeholders_hint": _("Click into a text field, then insert a placeholder at the cursor."),
    "insert_into": _("Click into a text field first."),
    "no_blocks": _("The newsletter is empty. Add a block below."),
    "too_many": _("A newsletter can have at most {count} blocks."),
    "save": _("Save"),
    "save_continue": _("Save and continue"),
    "saving": _("Saving…"),
    "saved": _("All changes are saved."),
    "unsaved": _("Unsaved changes"),
    "save_error": _("The campaign has problems; nothing was saved."),
    "previewing": _("Updating the preview…"),
    "preview_stale": _("The preview shows the last version that could be shown."),
    "preview_error": _("The newsletter cannot be shown yet."),
    "required": _("This field is required."),
    "too_long": _("This is too long (at most {count} characters)."),
    "invalid": _("This value is not valid."),
    "network_error": _("The server could not be reached. Check the connection and try again."),
}

#: Every message the campaigns, templates and media APIs (and the shell) may answer with.
API_MESSAGES = (
    _("This campaign is being sent already."),
    _("This campaign is being sent already (it is paused)."),
    _("This campaign has been sent already."),
    _("This campaign was cancelled."),
    _("Nobody in the target group can receive newsletters right now."),
    _("Give the time as 2026-12-01T09:00 (the shop's time zone) or with an offset."),
    _("That time has passed."),
    _("A campaign can be scheduled at most a year ahead."),
    _("This campaign is not scheduled."),
    _("Its time passed while the service was not running: send it now or reschedule."),
    _("Only a campaign that is being sent can be paused."),
    _("Only a paused campaign can be resumed."),
    _("Only a campaign that is being sent can be cancelled."),
    _("The database is busy. Please try again in a moment."),
    _("Campaign not found."),
    _("Must be a single line without control characters."),
    _("Choose a predefined group or a saved segment, not both."),
    _("There is no such target group."),
    _("The campaign has problems; nothing was saved."),
    _("Unknown layout."),
    _("Only a draft can be edited."),
    _("Only a draft can be deleted."),
    _("The campaign has no subject."),
    _("Choose a target group."),
    _("Set a sender address in the brand settings first."),
    _("The newsletter has no content."),
    _("The newsletter cannot be rendered yet."),
    _("The layout could not be compiled."),
    _("The address contains spaces or control characters."),
    _("The address is not a valid URL."),
    _("Only https, http, mailto and tel addresses are allowed."),
    _("The address has no host name."),
    _("Images must be uploaded or use an https address."),
    _("The image is larger than 5 MB."),
    _("The file is empty."),
    _("The image has too many pixels."),
    _("The file is not an image we can use (PNG, JPEG, GIF or WebP)."),
    _("The request is not valid."),
    _("The request body is not valid."),
    _("Something went wrong on our side."),
    _("Not found."),
    _("Please log in."),
    _("Customer not found."),
    _("The form has expired or did not come from this site. Reload the page and try again."),
    _("Test sends go only to your team's login addresses."),
    _("Choose who gets the test: one to five addresses."),
    # The bounce webhooks (campaigns.bounces): answered to a provider, not to the composer.
    _("Bounce webhooks are not enabled on this installation."),
    _("The request is not signed: send the X-Loyalmail-Signature header."),
    _("The signature header must read t=<unix seconds>,v1=<hex HMAC-SHA256>."),
    _("The signature is more than five minutes old or ahead: check the sender's clock."),
    _("The signature does not match the request body."),
    _("The request body is not valid JSON."),
    _("The request body is empty."),
    _("The body is larger than 1 MiB."),
    # What the legal footer still lacks (accounts.legal), and why a send is refused for it.
    *accounts.LEGAL_FOOTER_MESSAGES,
)

#: Messages the services fill in before raising them; ``{name}`` parts are values.
API_PATTERNS = (
    _("This send needs {needed} units but only {available} are available."),
    _("The mail server refused the messages: {answer}"),
    # Before the complaint and hard-bounce limits (campaigns.sending.deliverability): the
    # reason of campaigns paused back then.
    _("{share}% of the messages bounced: check the list before resuming."),
    _("Paused: {rate} % of recipients complained (limit {limit} %)."),
    _("Paused: {rate} % of recipients bounced hard (limit {limit} %)."),
    _("Unknown placeholder “{name}” at line {line}, column {column}."),
    _("This month's test sends are used up; new ones arrive on {date}."),
)

_SLOT = re.compile(r"\{(\w+)\}")


@cache
def _pattern(template: str) -> re.Pattern[str]:
    parts = _SLOT.split(template)
    # split() alternates literal text and slot names: even indexes are text.
    source = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)"
        for index, part in enumerate(parts)
    )
    return re.compile(source)


def translate(message: str) -> str:
    """The page-language version of an API message; an unknown one stays as it is."""
    if message in API_MESSAGES:
        return gettext(message)
    for template in API_PATTERNS:
        found = _pattern(template).fullmatch(message)
        if found:
            return gettext(template).format(**found.groupdict())
    return message


def field_errors(exc: LoyalmailError) -> dict[str, str]:
    """A domain error's fields as {field: translated message}; an empty one gets the error's."""
    message = translate(exc.message)
    return {name: translate(text) if text else message for name, text in exc.fields.items()}


def script_words() -> dict[str, object]:
    """The composer script's words and the API's messages, in the page's language."""
    return {
        "labels": {key: gettext(text) for key, text in COMPOSER_LABELS.items()},
        "block_types": {key: gettext(text) for key, text in BLOCK_LABELS.items()},
        "messages": {message: gettext(message) for message in API_MESSAGES},
        "patterns": [[template, gettext(template)] for template in API_PATTERNS],
    }
