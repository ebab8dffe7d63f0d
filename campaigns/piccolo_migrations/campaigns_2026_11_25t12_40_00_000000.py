from loyalmail.migration_steps import statements_migration

ID = "2026-11-25T12:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "bounces after the fact: one row per event, and a campaign's bounce counts"

# A migration of its own: Piccolo runs a migration's raw steps before its new tables exist.

STATEMENTS = [
    # A replayed webhook event or a report read twice is recorded once: the second insert
    # fails here, and is answered as a duplicate.
    "CREATE UNIQUE INDEX campaign_bounce_event ON campaign_bounce (merchant, event_id)",
    # A campaign's report: its bounces and complaints by kind.
    "CREATE INDEX campaign_bounce_campaign ON campaign_bounce (campaign, kind)",
]


async def forwards():
    return statements_migration(ID, "campaigns", DESCRIPTION, statements=STATEMENTS)
