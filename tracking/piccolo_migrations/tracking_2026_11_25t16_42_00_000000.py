from loyalmail.migration_steps import statements_migration

ID = "2026-11-25T16:42:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tracking: the indexes of the redirect and of the reports"

# A migration of its own: Piccolo runs a migration's raw steps before its new tables exist.

STATEMENTS = [
    # A click's redirect: the campaign's link by its number, once per number.
    "CREATE UNIQUE INDEX campaign_link_number ON campaign_link (campaign, number)",
    # The report's unique opens and clicks (distinct recipients per kind) and per-link counts.
    "CREATE INDEX tracking_event_campaign ON tracking_event (campaign, kind, recipient)",
]


async def forwards():
    return statements_migration(ID, "tracking", DESCRIPTION, statements=STATEMENTS)
