"""The campaigns app's services: drafts (:mod:`.drafts`) and rendering for a person
(:mod:`.previews`). Callers use this package; the names below are its whole interface."""

from campaigns.services.drafts import (
    brand_frame,
    check_campaign,
    create_campaign,
    delete_campaign,
    get_campaign,
    list_campaigns,
    update_campaign,
)
from campaigns.services.links import campaign_links, link_url
from campaigns.services.previews import (
    compile_for,
    link_owner,
    preview_campaign,
    recipient_from_row,
    render_for,
    sample_recipient,
    web_version,
)
from campaigns.services.recipients import (
    RecipientPerson,
    TokenRecipient,
    frozen_customer,
    recipient_people,
    sent_at,
    sent_times,
    token_recipient,
)

__all__ = [
    "brand_frame",
    "check_campaign",
    "compile_for",
    "create_campaign",
    "delete_campaign",
    "get_campaign",
    "list_campaigns",
    "preview_campaign",
    "recipient_from_row",
    "recipient_people",
    "RecipientPerson",
    "render_for",
    "sample_recipient",
    "campaign_links",
    "frozen_customer",
    "link_owner",
    "link_url",
    "sent_at",
    "sent_times",
    "token_recipient",
    "TokenRecipient",
    "update_campaign",
    "web_version",
]
